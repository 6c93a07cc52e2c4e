// Forms marked data-autosubmit are sent as soon as the page is read (the upload-arrived page: a GET
// that changes nothing hands over to a POST with the CSRF token). Without script, the user presses the button.
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) { form.submit(); });
