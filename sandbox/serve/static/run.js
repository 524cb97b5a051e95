// The live run page: polls /api/runs/<id>/live and redraws what changed, without a reload.
"use strict";
const root = document.getElementById("run");
const runId = root.dataset.run;
const pollMs = Number(root.dataset.poll) || 1000;
const base = "/api/runs/" + encodeURIComponent(runId);
const IDLE = 5;  // a run that is not running is asked this many times less often
let lastVersion = null;

function fmt(n) { return Number(n || 0).toLocaleString("en"); }

function drawFigures(figures) {
  replaceChildren(document.querySelector("#figures tbody"), figures.map((f) => {
    const row = el("tr", {id: f.id});
    row.append(el("th", {}, f.label), el("td", {class: "value"}, f.text),
      el("td", {class: "interval"}, f.interval));
    return row;
  }));
}

function drawShares(shares) {
  const holder = document.getElementById("shares");
  replaceChildren(holder, shares.map((q) => {
    const box = el("figure", {class: "share", "data-question": q.question});
    box.append(el("figcaption", {}, q.question + ": " + q.ask));
    const w = 400, h = 160, pad = 24;
    const svg = el("svg:svg", {viewBox: `0 0 ${w} ${h}`, class: "chart"});
    svg.append(el("svg:line", {x1: pad, y1: h - pad, x2: w - 4, y2: h - pad, stroke: "#999"}));
    const n = q.series.length ? q.series[0].points.length : 0;
    const x = (i) => pad + (n > 1 ? i * (w - pad - 8) / (n - 1) : (w - pad) / 2);
    const y = (v) => h - pad - v * (h - 2 * pad);
    const legend = el("ul", {class: "legend"});
    q.series.forEach((s, k) => {
      const colour = PALETTE[k % PALETTE.length];
      const pts = s.points.map((p, i) => p[0] === null ? null : `${x(i)},${y(p[0])}`)
        .filter(Boolean).join(" ");
      svg.append(el("svg:polyline", {points: pts, fill: "none", stroke: colour,
        "stroke-width": 2}));
      const last = s.points[s.points.length - 1] || [null, null, null];
      const share = last[0] === null ? "n/a" : (100 * last[0]).toFixed(1) + "%";
      const interval = last[1] === null ? "" : ` (${(100 * last[1]).toFixed(1)}–${(100 * last[2]).toFixed(1)}%)`;
      const item = el("li", {"data-label": s.label});
      item.append(el("span", {class: "swatch", "data-colour": k}), el("span", {}, `${s.label}: ${share}${interval}`));
      legend.append(item);
    });
    svg.append(el("svg:text", {x: pad, y: h - 6, "font-size": 11}, `steps 1–${n}`));
    box.append(svg, legend);
    return box;
  }));
  colourSwatches(holder);
}

function colourSwatches(scope) {
  // Swatch colours go through the SVG fill attribute: inline styles are blocked by the policy.
  scope.querySelectorAll(".swatch").forEach((s) => {
    const k = Number(s.dataset.colour);
    const svg = el("svg:svg", {width: 12, height: 12, viewBox: "0 0 12 12"});
    svg.append(el("svg:rect", {width: 12, height: 12, fill: k >= 0 ? PALETTE[k % PALETTE.length] : NONE}));
    s.replaceChildren(svg);
  });
}

function drawGraph(graph, colourBy) {
  document.getElementById("graph-note").textContent = "Showing " + graph.note + ".";
  document.getElementById("colour-by").textContent = colourBy ? `coloured by current answer to ${colourBy}` : "";
  const svg = document.getElementById("graph");
  const nodes = [];
  for (const [a, b] of graph.edges) {
    const p = graph.dots[a], q = graph.dots[b];
    nodes.push(el("svg:line", {x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: "#bbb", "stroke-width": 1}));
  }
  for (const d of graph.dots) {
    const dot = el("svg:circle", {cx: d.x, cy: d.y, r: d.r, class: "dot",
      fill: d.c >= 0 ? PALETTE[d.c % PALETTE.length] : NONE, stroke: "#fff"});
    dot.append(el("svg:title", {}, d.title));
    if (d.agent !== null) {
      const link = el("svg:a", {href: `/runs/${encodeURIComponent(runId)}/agents/${d.agent}`});
      link.append(dot);
      nodes.push(link);
    } else {
      nodes.push(dot);
    }
  }
  svg.replaceChildren(...nodes);
  const legend = document.getElementById("legend");
  legend.replaceChildren(...[...graph.categories, "no answer yet"].map((c, k) => {
    const item = el("li");
    item.append(el("span", {class: "swatch", "data-colour": k < graph.categories.length ? k : -1}), el("span", {}, c));
    return item;
  }));
  colourSwatches(legend);
}

function agentLink(id) {
  return el("a", {href: `/runs/${encodeURIComponent(runId)}/agents/${id}`}, `agent ${id}`);
}

function drawFeed(feed) {
  replaceChildren(document.getElementById("feed"), feed.map((f) => {
    const item = el("li", {class: f.kind});
    item.append(el("span", {class: "muted"}, `step ${f.step + 1} · `), agentLink(f.agent),
      el("span", {class: "muted"}, ` ${f.kind}: `), el("span", {class: "text"}, f.text));
    return item;
  }));
}

function drawFailures(failures) {
  document.getElementById("failure-count").textContent = `(${fmt(failures.total)})`;
  replaceChildren(document.getElementById("failure-kinds"),
    Object.entries(failures.by_kind).map(([k, n]) => el("li", {}, `${k}: ${fmt(n)}`)));
  replaceChildren(document.getElementById("failures"), failures.latest.map((f) => {
    const item = el("li");
    item.append(el("span", {class: "muted"}, `step ${f.step + 1} · `), agentLink(f.agent),
      el("span", {}, ` ${f.kind}: `), el("span", {class: "text"}, f.message));
    return item;
  }));
}

function draw(s) {
  const r = s.run;
  document.getElementById("status").textContent = r.status;
  document.getElementById("step").textContent = r.step;
  document.getElementById("calls").textContent = fmt(r.calls);
  document.getElementById("tokens").textContent = fmt(r.tokens);
  document.getElementById("progress").value = r.step;
  document.getElementById("updated").textContent = `last step committed ${r.updated} (UTC)`;
  drawFigures(s.figures);
  drawShares(s.shares);
  drawGraph(s.graph, s.colour_by);
  drawFeed(s.feed);
  drawFailures(s.failures);
}

async function poll() {
  try {
    const response = await fetch(base + "/live", {credentials: "same-origin"});
    if (response.ok) {
      const snapshot = await response.json();
      const version = JSON.stringify([snapshot.run.step, snapshot.run.status, snapshot.run.updated]);
      if (version !== lastVersion) {
        lastVersion = version;
        draw(snapshot);
        root.dataset.loaded = "1";
      }
      document.getElementById("report-link").hidden = !snapshot.report;
      const status = snapshot.run.status;
      if (status !== "running") {
        // A completed run can only still get its report (written after the last step): wait
        // for it, less often, while the server expects it, then stop. A failed or interrupted
        // run may be resumed (`sandbox resume`): look in now and then, as the runs list does.
        if (status !== "completed" || snapshot.report_pending) setTimeout(poll, pollMs * IDLE);
        return;
      }
    }
  } catch (e) {
    document.getElementById("updated").textContent = "server unreachable; retrying";
  }
  setTimeout(poll, pollMs);
}

document.getElementById("survey-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const status = document.getElementById("survey-status");
  status.textContent = "asking…";
  const options = form.options.value.split(",").map((o) => o.trim()).filter(Boolean);
  const data = await postJSON(base + "/survey", {question: form.question.value, options,
    sample: Number(form.sample.value)});
  if (data.error) { status.textContent = data.error; return; }
  status.textContent = `${data.asked} asked, ${data.answered} answered, ${data.failed} failed`;
  replaceChildren(document.querySelector("#survey-result tbody"), data.answers.map((a) => {
    const row = el("tr");
    row.append(el("th", {}, a.answer), el("td", {}, a.count),
      el("td", {}, (100 * a.share).toFixed(0) + "%"));
    return row;
  }));
});

poll();
