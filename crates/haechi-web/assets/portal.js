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
