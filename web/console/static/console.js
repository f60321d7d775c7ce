// The console's few live parts, in plain JavaScript (no build step).
"use strict";

// Forms with data-confirm ask before they post (erase, cancel, pause...).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// POST JSON to a console endpoint with the page's CSRF token; resolves to the parsed answer.
window.consolePost = async function consolePost(url, body) {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
    body: JSON.stringify(body),
  });
  return {status: response.status, body: await response.json()};
};
