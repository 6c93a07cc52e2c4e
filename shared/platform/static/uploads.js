// Forms that post a file straight to S3 (the s3_upload macro in _forms.html). The presigned policy
// was signed before the file was chosen, so it leaves the type and file-name fields open: fill them
// from the chosen file, and refuse a file over the limit, or of a type the input does not accept
// (when the form carries data-wrong-type), before sending it (S3 and the server check again). A
// refusal shows beside the file box, scrolled into view, as soon as the file is chosen.
(function () {
  "use strict";

  function accepted(input, file) {
    var accept = (input.getAttribute("accept") || "").split(",").map(function (s) { return s.trim().toLowerCase(); })
      .filter(Boolean);
    if (!accept.length) return true;
    var name = file.name.toLowerCase(), type = (file.type || "").toLowerCase();
    return accept.some(function (rule) {
      if (rule.charAt(0) === ".") return name.slice(-rule.length) === rule;
      if (rule.slice(-2) === "/*") return type.indexOf(rule.slice(0, -1)) === 0;
      return type === rule;
    });
  }

  function problem(form, input, file) {
    var max = parseInt(form.getAttribute("data-max-bytes") || "0", 10);
    if (form.hasAttribute("data-wrong-type") && !accepted(input, file)) return form.getAttribute("data-wrong-type");
    if (max && file.size > max) return form.getAttribute("data-too-large");
    return null;
  }

  function show(form, input, message) {
    var error = form.querySelector(".error");
    if (error) { error.textContent = message || ""; error.hidden = !message; }
    if (message) {
      input.setAttribute("aria-invalid", "true");
      if (error) {
        var box = error.getBoundingClientRect();
        if (box.top < 0 || box.bottom > window.innerHeight) error.scrollIntoView({block: "center"});
      }
    } else {
      input.removeAttribute("aria-invalid");
    }
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = input.form;
    if (!form || input.type !== "file" || !form.matches("form[data-s3-upload]")) return;
    var file = input.files && input.files[0];
    show(form, input, file ? problem(form, input, file) : null);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-s3-upload]")) return;
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) return;
    var refused = problem(form, input, file);
    if (refused) {
      event.preventDefault();
      show(form, input, refused);
      input.focus({preventScroll: true});
      return;
    }
    // Windows types .csv files as Excel's; the server checks the content either way
    var type = /\.csv$/i.test(file.name) ? "text/csv" : (file.type || "application/octet-stream");
    form.querySelector("input[name='Content-Type']").value = type;
    form.querySelector("input[name='x-amz-meta-filename']").value = encodeURIComponent(file.name);
  });
})();
