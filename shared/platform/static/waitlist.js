// Waitlist pages (reqsys and childsys): loaded with <script src defer>, no inline code (CSP).
// 1. The error summary at the top of a refused form gets the focus, so it is read out and in view.
// 2. A form with data-confirm="<dialog id>" asks first: the submit opens that <dialog> (the design
//    system's modal); its [data-confirms] button sends the form with confirmed=yes, [data-closes-dialog]
//    or Esc closes it and nothing is sent. Without this script (or <dialog>) the form posts without
//    confirmed=yes, and a staff action answers with a confirmation page instead of acting.
// 3. After an action the server sends the page back to the card acted on (#anchor): the message that
//    says what happened moves into that card, where the parent or staff member is looking.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  ready(function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();

    var target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    var card = target && target.closest && target.closest("[data-keeps-messages], .application, .card");
    var flashes = document.querySelector(".flashes");
    if (card && flashes && !summary) {
      var heading = card.querySelector("h1, h2");
      if (heading && heading.parentNode === card) heading.insertAdjacentElement("afterend", flashes);
      else card.insertBefore(flashes, card.firstChild);
      if (target === card) card.scrollIntoView({block: "start"});
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-confirm]")) return;
    if (form.getAttribute("data-confirmed") === "yes") return;
    var dialog = document.getElementById(form.getAttribute("data-confirm"));
    if (!dialog || typeof dialog.showModal !== "function") return; // the server asks instead
    if (!form.checkValidity()) return; // a missing reason: the server's answer shows it beside its field
    event.preventDefault();
    dialog.querySelectorAll("[data-shows]").forEach(function (node) {
      var source = form.elements[node.getAttribute("data-shows")];
      node.textContent = source ? source.value : "";
    });
    dialog.returnValue = "";
    dialog._form = form;
    dialog.showModal();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirms], [data-closes-dialog]");
    if (!button) return;
    var dialog = button.closest("dialog");
    if (!dialog) return;
    if (button.hasAttribute("data-closes-dialog")) {
      dialog.close("cancel");
      return;
    }
    var form = dialog._form || document.querySelector("form[data-confirm='" + dialog.id + "']");
    if (!form) return;
    var copy = dialog.querySelector("[data-copies]"); // e.g. an override reason typed in the dialog
    if (copy && form.elements[copy.getAttribute("data-copies")]) {
      form.elements[copy.getAttribute("data-copies")].value = copy.value;
    }
    var field = form.querySelector("input[name=confirmed]");
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "confirmed";
      form.appendChild(field);
    }
    field.value = "yes";
    form.setAttribute("data-confirmed", "yes");
    button.disabled = true;
    dialog.close("confirm");
    form.submit();
  });
})();
