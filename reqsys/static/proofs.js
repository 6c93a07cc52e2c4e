// Proof documents go straight to S3: ask reqsys for a presigned POST, post the file to S3, then
// submit the form, whose `key` the server checks (size, type, content) before recording it.
// Without this script the form still posts, and the server asks for a file.
document.querySelectorAll("form.proof-upload").forEach((form) => {
  const status = form.querySelector(".upload-status");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    const file = form.querySelector("input[type=file]").files[0];
    if (form.elements.key.value) return; // uploaded: let the form go to the server
    event.preventDefault();
    if (!file) { status.textContent = form.dataset.choose; return; }
    button.disabled = true;
    status.textContent = form.dataset.busy;
    try {
      const answer = await fetch(form.dataset.uploadUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRFToken": form.elements.csrf_token.value},
        body: JSON.stringify({content_type: file.type || "application/octet-stream", filename: file.name}),
      });
      if (!answer.ok) throw new Error("refused");
      const {url, fields, key} = await answer.json();
      const data = new FormData();
      Object.entries(fields).forEach(([name, value]) => data.append(name, value));
      data.append("file", file);
      // the answer is S3's (another origin): whether the file is right is checked by reqsys next
      await fetch(url, {method: "POST", body: data, mode: "no-cors"});
      form.elements.key.value = key;
      form.submit();
    } catch (err) {
      status.textContent = form.dataset.error;
      button.disabled = false;
    }
  });
});
