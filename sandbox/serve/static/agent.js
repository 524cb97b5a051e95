// The agent page's interview: each question is posted, the reply appended as text.
"use strict";
const box = document.getElementById("interview");
const url = `/api/runs/${encodeURIComponent(box.dataset.run)}/agents/${box.dataset.agent}/interview`;
let session = null;

document.getElementById("interview-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const question = form.question.value;
  const chat = document.getElementById("chat");
  const status = document.getElementById("interview-status");
  chat.append(el("li", {class: "you"}, question));
  form.question.value = "";
  status.textContent = "waiting for the agent…";
  const data = await postJSON(url, {question, session});
  if (data.error && !data.session) { status.textContent = data.error; return; }
  session = data.session;
  chat.append(el("li", {class: data.error ? "agent error" : "agent"}, data.error || data.reply));
  status.textContent = `interview ${session}, answering from step ${data.step + 1}`;
});
