// Forms: after a refused submit, move focus to the error summary (it is announced: role=alert), and make its
// links focus the field, not only scroll to it. Forms with data-confirm="question" ask before they submit.
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-error-summary] a[href^='#']");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    var group = field.closest(".form-group, fieldset") || field;
    group.scrollIntoView({block: "start"});
    field.focus({preventScroll: true});
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
