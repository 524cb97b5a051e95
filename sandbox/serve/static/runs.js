// The runs list refreshes itself: it fetches this same page again and swaps in its runs block
// when that changed (a new run, a committed step, new calls, a finished run). The block comes
// from the same autoescaped template as the first load, so the rows are drawn in one place; a
// document made by DOMParser runs no script, and the page's content policy still applies.
"use strict";
const listing = document.getElementById("listing");
const note = document.getElementById("listing-note");
const pollMs = Number(listing.dataset.poll) || 1000;
const IDLE = 5;  // with no run going, poll this many times less often: only a new run can change it

async function refresh() {
  try {
    const response = await fetch(window.location.pathname, {credentials: "same-origin"});
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("listing");
      if (fresh && fresh.innerHTML !== listing.innerHTML) {
        listing.replaceChildren(...fresh.childNodes);  // inserting adopts them
      }
      note.textContent = "";
    }
  } catch (e) {
    note.textContent = "server unreachable; retrying";
  }
  const going = listing.querySelector(".status-running") !== null;
  setTimeout(refresh, going ? pollMs : pollMs * IDLE);
}

setTimeout(refresh, pollMs);
