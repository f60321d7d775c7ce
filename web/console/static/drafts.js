// The AI draft page while its draft is written: ask the console for the draft's
// status now and then, and reload the page when it changes (queued -> running ->
// ready or failed). Plain JavaScript, no build step.
"use strict";

(() => {
  const pending = document.querySelector("[data-draft-status]");
  if (!pending) {
    return;
  }
  const url = pending.dataset.draftStatus;
  const shown = pending.dataset.current;
  let delay = 1000;

  async function poll() {
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (response.ok && (response.headers.get("Content-Type") || "").includes("json")) {
        const body = await response.json();
        if (body.status !== shown) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // The network blinked: try again a little later.
    }
    delay = Math.min(delay * 1.5, 10000);
    window.setTimeout(poll, delay);
  }

  window.setTimeout(poll, delay);
})();
