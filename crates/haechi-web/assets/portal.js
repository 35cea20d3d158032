// Haechi portal: progressive enhancement only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Move focus to the first error so screen readers announce it after a failed submit.
  const error = document.querySelector("[role=alert]");
  if (error) {
    error.setAttribute("tabindex", "-1");
    error.focus();
  }
});

// Chart readout: the hovered (or focused) day's value in words, for keyboards and screens alike.
document.addEventListener("DOMContentLoaded", () => {
  const readout = document.getElementById("chart-readout");
  if (!readout) return;
  const won = new Intl.NumberFormat(document.documentElement.lang === "ko" ? "ko-KR" : "en-US");
  document.querySelectorAll("[data-chart=equity] rect.hover").forEach((rect) => {
    const show = () => {
      readout.textContent = `${rect.dataset.date} · ₩${won.format(Number(rect.dataset.equity))}`;
    };
    rect.addEventListener("mouseenter", show);
    rect.addEventListener("focus", show);
  });
});

// Live run progress over the API's event stream; the page reloads into the report when done.
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("run-live");
  if (!live || !window.EventSource) return;
  const id = Number(live.dataset.run);
  const bar = document.getElementById("run-progress");
  const events = new EventSource("/api/v1/runs/events");
  events.addEventListener("run", (e) => {
    const run = JSON.parse(e.data);
    if (run.id !== id) return;
    bar.value = Math.round((run.progress ?? 0) * 100);
    const label = document.getElementById("run-state");
    if (run.state === "running" && label) label.textContent = label.dataset.running;
    if (run.state === "succeeded" || run.state === "failed" || run.state === "cancelled") {
      events.close();
      window.location.reload();
    }
  });
});

// Scenario form: show only the settings the chosen strategy uses. Hidden groups are still
// posted and ignored by the server, which reads only the chosen strategy's fields.
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("f-strategy-type");
  if (!select) return;
  const groups = document.querySelectorAll("#scenario-form [data-shown-for]");
  const update = () => {
    groups.forEach((g) => {
      // A group holding a problem stays visible, whatever the strategy.
      g.hidden = !g.dataset.shownFor.split(" ").includes(select.value) && !g.querySelector(".invalid");
    });
  };
  select.addEventListener("change", update);
  update();
});
