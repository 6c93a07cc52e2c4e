// KRDS modals on the native <dialog> (the modal macro in _components.html): a button with
// data-opens-dialog="<id>" opens the dialog as a modal (focus moves into it, Esc closes it, the page behind
// cannot be reached); any [data-closes-dialog] inside closes it and focus returns to the button that opened it.
(function () {
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-opens-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-opens-dialog"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.returnFocusTo = opener;
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest && event.target.closest("[data-closes-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) { event.preventDefault(); open.close(); }
    }
  });
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.returnFocusTo) { dialog.returnFocusTo.focus(); dialog.returnFocusTo = null; }
  }, true);
})();
