// Proof documents go straight to S3: check the chosen file here (type, size) before anything is sent,
// ask reqsys for a presigned POST, send the file with a progress bar, then submit the form, whose `key`
// the server checks (size, type, content) before recording it. Every refusal, here or from the server
// (which sends the page back to this criterion with the message), is shown beside the file box.
// Without this script the form still posts, and the server asks for a file.
(function () {
  "use strict";

  var EXTENSIONS = {"application/pdf": /\.pdf$/i, "image/jpeg": /\.(jpe?g)$/i, "image/png": /\.png$/i};

  function problemOf(form, file) {
    if (!file) return form.dataset.choose;
    var types = (form.dataset.types || "").split(",");
    var type = (file.type || "").toLowerCase();
    var byName = types.some(function (t) { return EXTENSIONS[t] && EXTENSIONS[t].test(file.name); });
    if (type ? types.indexOf(type === "image/jpg" ? "image/jpeg" : type) < 0 : !byName) return form.dataset.wrongType;
    var max = parseInt(form.dataset.maxBytes || "0", 10);
    if (max && file.size > max) return form.dataset.tooLarge;
    if (file.size < 1) return form.dataset.choose;
    return null;
  }

  function show(form, message) {
    var input = form.querySelector("input[type=file]");
    var error = form.querySelector(".error");
    var group = input.closest(".form-group");
    error.textContent = message || "";
    error.hidden = !message;
    if (group) group.classList.toggle("has-error", !!message);
    if (message) {
      input.setAttribute("aria-invalid", "true");
      var box = error.getBoundingClientRect();
      if (box.top < 0 || box.bottom > window.innerHeight) error.scrollIntoView({block: "center"});
      input.focus({preventScroll: true});
    } else {
      input.removeAttribute("aria-invalid");
    }
  }

  function progress(form, fraction) {
    var bar = form.querySelector(".upload-progress");
    if (!bar) return;
    bar.hidden = fraction === null;
    if (fraction === undefined) bar.removeAttribute("value"); // indeterminate
    else if (fraction !== null) bar.value = Math.round(fraction * 100);
  }

  function send(url, data, onProgress) {
    // XMLHttpRequest reports upload progress (the bucket allows the page's origin by CORS);
    // if the request cannot be read back (no CORS), send it blind and let reqsys judge what arrived
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.upload.addEventListener("progress", function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); });
      xhr.addEventListener("load", function () { resolve(xhr.status >= 200 && xhr.status < 400 ? "sent" : "refused"); });
      xhr.addEventListener("error", function () { resolve("unknown"); });
      xhr.send(data);
    }).then(function (result) {
      if (result !== "unknown") return result;
      onProgress(undefined);
      return fetch(url, {method: "POST", body: data, mode: "no-cors"}).then(function () { return "sent"; });
    });
  }

  document.querySelectorAll("form.proof-upload").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    var status = form.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    input.addEventListener("change", function () {
      status.textContent = "";
      show(form, input.files[0] ? problemOf(form, input.files[0]) : null);
    });
    form.addEventListener("submit", function (event) {
      if (form.elements.key.value) return; // uploaded: let the form go to the server
      event.preventDefault();
      var file = input.files[0];
      var problem = problemOf(form, file);
      if (problem) { show(form, problem); return; }
      show(form, null);
      button.disabled = true;
      status.textContent = form.dataset.busy;
      progress(form, 0);
      fetch(form.dataset.uploadUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRFToken": form.elements.csrf_token.value},
        body: JSON.stringify({content_type: file.type || "application/octet-stream", filename: file.name})
      }).then(function (answer) {
        if (!answer.ok) throw new Error(answer.status === 400 ? "type" : "refused");
        return answer.json();
      }).then(function (upload) {
        var data = new FormData();
        Object.keys(upload.fields).forEach(function (name) { data.append(name, upload.fields[name]); });
        data.append("file", file);
        return send(upload.url, data, function (fraction) { progress(form, fraction); }).then(function (result) {
          if (result === "refused") throw new Error("refused");
          form.elements.key.value = upload.key;
          status.textContent = form.dataset.checking;
          progress(form, 1);
          form.submit();
        });
      }).catch(function (err) {
        progress(form, null);
        status.textContent = "";
        show(form, err.message === "type" ? form.dataset.wrongType : form.dataset.error);
        button.disabled = false;
      });
    });
  });
})();
