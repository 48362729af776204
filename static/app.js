// Progressive enhancement for pyblogd pages. Everything works without this file:
// a link marked data-opens-dialog="ID" goes to its own confirmation page, and with
// JavaScript it opens the <dialog id="ID"> on the same page instead.
"use strict";

document.addEventListener("click", (event) => {
  const trigger = event.target.closest("[data-opens-dialog]");
  if (!trigger) return;
  const dialog = document.getElementById(trigger.dataset.opensDialog);
  if (!dialog || typeof dialog.showModal !== "function") return;
  event.preventDefault();
  dialog.showModal();
});

// A click on the backdrop (outside the dialog's box) closes it, like Escape does.
document.addEventListener("click", (event) => {
  const dialog = event.target;
  if (!(dialog instanceof HTMLDialogElement) || !dialog.open) return;
  const box = dialog.getBoundingClientRect();
  const inside =
    event.clientX >= box.left && event.clientX <= box.right &&
    event.clientY >= box.top && event.clientY <= box.bottom;
  if (!inside) dialog.close();
});

// Code blocks and tables scroll sideways when wider than the column; a tab stop lets
// keyboard users scroll them too (axe-core's scrollable-region-focusable). Chromium and
// Firefox already make such scrollers focusable without JavaScript.
for (const region of document.querySelectorAll(".prose pre, .prose table")) {
  if (!region.hasAttribute("tabindex")) region.tabIndex = 0;
}
