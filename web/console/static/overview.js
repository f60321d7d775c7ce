// The overview's workers answering Celery's ping, asked after the page has rendered
// (the ping waits for answers; the page should not).
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("pinged");
  if (!box) { return; }
  const status = document.getElementById("pinged-status");
  const list = document.getElementById("pinged-pools");
  try {
    const response = await fetch(box.dataset.url, {credentials: "same-origin"});
    const body = await response.json();
    if (!response.ok) { status.textContent = body.error || "The workers could not be asked."; return; }
    const pools = Object.entries(body.pools);
    const count = pools.reduce((n, [, names]) => n + names.length, 0);
    status.textContent = count ? `${count.toLocaleString()} worker(s) answered:` :
      "No worker answered: start the Procfile's worker_* processes.";
    for (const [pool, names] of pools) {
      const item = document.createElement("li");
      item.textContent = `${pool}: ${names.join(", ")}`;
      list.appendChild(item);
    }
  } catch (error) {
    status.textContent = "The workers could not be asked.";
  }
});
