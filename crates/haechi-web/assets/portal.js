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

// Forms that ask before they act (resetting a mock account).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });
});

// A mock account's page follows its event stream: when the account changes (a fill, an
// expiry, a halt) or its value moves, the page reloads, unless the user is typing an order.
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("paper-live");
  if (!live || !window.EventSource) return;
  const version = Number(live.dataset.version);
  const won = new Intl.NumberFormat(document.documentElement.lang === "ko" ? "ko-KR" : "en-US");
  const events = new EventSource(`/api/v1/accounts/${live.dataset.account}/events`);
  events.addEventListener("account", (e) => {
    const a = JSON.parse(e.data);
    const equity = document.getElementById("paper-equity-value");
    if (equity) equity.textContent = `₩${won.format(a.equity)}`;
    const profit = document.getElementById("paper-profit");
    if (profit) {
      const sign = a.profit > 0 ? "+" : "";
      profit.textContent = `${sign}${won.format(a.profit)} (${a.return_pct >= 0 ? "+" : ""}${a.return_pct.toFixed(2)}%)`;
      profit.className = a.profit > 0 ? "up" : a.profit < 0 ? "down" : "";
    }
    const typing = document.activeElement && document.activeElement.closest("form");
    if (a.version !== version && !typing) window.location.reload();
  });
});
