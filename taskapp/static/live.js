/* Pages that follow work in the background (a job, a report, the lists of them): while the region
   marked data-live-busy is waiting, ask its data-live-url (JSON: busy, html, announce) every few
   seconds, put the new HTML in place and say what changed in the page's aria-live="polite" region
   (#live-status). Stops once nothing is waiting, after repeated failures, or when the tab is left
   for long. No page reload, so the reader keeps their place. */
(function () {
  "use strict";

  var DELAY = 3000;
  var MAX_FAILURES = 5;
  var MAX_POLLS = 400;  // about 20 minutes

  function follow(region) {
    var url = region.getAttribute("data-live-url");
    var status = document.getElementById("live-status");
    var failures = 0;
    var polls = 0;
    var said = "";

    function schedule(delay) {
      window.setTimeout(poll, delay);
    }

    function poll() {
      polls += 1;
      if (polls > MAX_POLLS) return;
      if (document.hidden) { schedule(DELAY); return; }
      fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          if (typeof data.html === "string") {
            region.innerHTML = data.html;
          }
          if (status && data.announce && data.announce !== said) {
            said = data.announce;
            status.textContent = data.announce;
          }
          if (data.busy) {
            schedule(DELAY);
          } else {
            region.removeAttribute("data-live-busy");
          }
        })
        .catch(function () {
          failures += 1;
          if (failures < MAX_FAILURES) schedule(DELAY * (failures + 1));
        });
    }

    schedule(DELAY);
  }

  function init() {
    document.querySelectorAll("[data-live-url][data-live-busy]").forEach(follow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
