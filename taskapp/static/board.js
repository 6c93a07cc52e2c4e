/* The task board: drag a card to another column, or use the "move to" control under it (Tab to it,
   choose, Enter). Either way the new status is posted with the CSRF token and the version the card
   shows; the card moves without a page load and the change is announced. A stale version (409) says
   so and leaves the card where it was. Without JavaScript the same control is a plain form. */
(function () {
  "use strict";

  function init() {
    var board = document.querySelector("[data-board]");
    if (!board) return;
    var live = document.getElementById("board-status");
    var alertBox = document.getElementById("board-error");
    var dragged = null;

    function columnOf(status) {
      return board.querySelector('[data-column="' + status + '"]');
    }

    function say(text) {
      live.textContent = "";
      window.setTimeout(function () { live.textContent = text; }, 50);
    }

    function showError(text) {
      alertBox.textContent = text;
      alertBox.hidden = false;
    }

    function refreshColumn(column) {
      var list = column.querySelector("[data-drop]");
      var cards = list.querySelectorAll(".task-card");
      column.querySelector("[data-count]").textContent = String(cards.length);
      var empty = list.querySelector(".empty");
      if (cards.length && empty) empty.remove();
      if (!cards.length && !empty) {
        var li = document.createElement("li");
        li.className = "empty muted";
        li.textContent = board.getAttribute("data-empty");
        list.appendChild(li);
      }
    }

    function refreshCard(card, status, version) {
      card.setAttribute("data-status", status);
      card.setAttribute("data-version", String(version));
      card.querySelector('input[name="version"]').value = String(version);
      var select = card.querySelector('select[name="status"]');
      var suggested = {TODO: "IN_PROGRESS", IN_PROGRESS: "DONE", DONE: "IN_PROGRESS"}[status];
      while (select.firstChild) select.removeChild(select.firstChild);
      board.querySelectorAll("[data-column]").forEach(function (column) {
        var value = column.getAttribute("data-column");
        if (value === status) return;
        var option = document.createElement("option");
        option.value = value;
        option.textContent = column.getAttribute("data-label");
        option.selected = value === suggested;
        select.appendChild(option);
      });
    }

    function move(card, status, focusAfter) {
      var from = card.getAttribute("data-status");
      if (!status || status === from) return;
      var form = card.querySelector("form.move-form");
      var body = new FormData(form);
      body.set("status", status);
      body.set("version", card.getAttribute("data-version"));
      alertBox.hidden = true;
      card.classList.add("saving");
      fetch(card.getAttribute("data-move-url"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"Accept": "application/json"}
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          return {ok: response.ok, status: response.status, data: data};
        });
      }).then(function (answer) {
        card.classList.remove("saving");
        if (!answer.ok) {
          var error = answer.data && answer.data.error;
          showError(error && error.message ? error.message : board.getAttribute("data-failed"));
          if (answer.status === 409) card.classList.add("stale");
          return;
        }
        var task = answer.data.task;
        var target = columnOf(task.status);
        target.querySelector("[data-drop]").appendChild(card);
        refreshCard(card, task.status, task.version);
        refreshColumn(columnOf(from));
        refreshColumn(target);
        say(answer.data.message || "");
        if (focusAfter) card.querySelector('select[name="status"]').focus();
      }).catch(function () {
        card.classList.remove("saving");
        showError(board.getAttribute("data-failed"));
      });
    }

    board.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.classList.contains("move-form")) return;
      event.preventDefault();
      var card = form.closest(".task-card");
      move(card, form.querySelector('select[name="status"]').value, true);
    });

    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest && event.target.closest(".task-card");
      if (!card) return;
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-task-id"));
    });

    board.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("dragging");
      dragged = null;
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    });

    board.querySelectorAll("[data-column]").forEach(function (column) {
      column.addEventListener("dragover", function (event) {
        if (!dragged || dragged.getAttribute("data-status") === column.getAttribute("data-column")) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        column.classList.add("drop-target");
      });
      column.addEventListener("dragleave", function (event) {
        if (!column.contains(event.relatedTarget)) column.classList.remove("drop-target");
      });
      column.addEventListener("drop", function (event) {
        event.preventDefault();
        column.classList.remove("drop-target");
        if (dragged) move(dragged, column.getAttribute("data-column"), false);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
