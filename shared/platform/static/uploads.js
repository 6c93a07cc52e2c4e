// Forms that post a file straight to S3 (the s3_upload macro in _forms.html). The presigned policy
// was signed before the file was chosen, so it leaves the type and file-name fields open: fill them
// from the chosen file, and refuse a file over the limit before sending it (S3 and the server check again).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-s3-upload]")) return;
  var input = form.querySelector("input[type=file]");
  var file = input && input.files && input.files[0];
  if (!file) return;
  var error = form.querySelector(".error");
  var max = parseInt(form.getAttribute("data-max-bytes") || "0", 10);
  if (max && file.size > max) {
    event.preventDefault();
    if (error) { error.textContent = form.getAttribute("data-too-large"); error.hidden = false; }
    input.setAttribute("aria-invalid", "true");
    return;
  }
  // Windows types .csv files as Excel's; the server checks the content either way
  var type = /\.csv$/i.test(file.name) ? "text/csv" : (file.type || "application/octet-stream");
  form.querySelector("input[name='Content-Type']").value = type;
  form.querySelector("input[name='x-amz-meta-filename']").value = encodeURIComponent(file.name);
});
