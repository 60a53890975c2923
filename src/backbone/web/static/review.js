// The clerical review's keys: s = same, d = different, k = skip. Each presses the
// form's button, so a key posts exactly what a click would (CSRF token included).
// Keys typed into a field, or with a modifier held, are left alone.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("review-form");
  if (!form) return;
  const buttons = {
    s: document.getElementById("decide-same"),
    d: document.getElementById("decide-different"),
    k: document.getElementById("decide-skip"),
  };
  let sent = false;
  form.addEventListener("submit", () => { sent = true; });
  document.addEventListener("keydown", (ev) => {
    if (sent || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    const target = ev.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
    const button = buttons[ev.key.toLowerCase()];
    if (!button) return;
    ev.preventDefault();
    button.click();
  });
});
