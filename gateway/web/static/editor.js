// The template editor's live preview (templates/admin/edit.html), in a file of its own:
// the admin pages' Content-Security-Policy runs no inline script. The form carries the
// preview's address (data-preview), the session's CSRF token (data-csrf) and what to show
// when the preview cannot be had (data-failed).
"use strict";
(function () {
  const form = document.getElementById("editor");
  const shown = document.getElementById("preview");
  if (!form || !shown) {
    return;
  }
  let asked = 0;
  let timer = null;

  async function preview() {
    const mine = ++asked;
    let text;
    try {
      const response = await fetch(form.dataset.preview, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"X-CSRF-Token": form.dataset.csrf}});
      const answer = await response.json();
      text = answer.error ? "⚠ " + answer.error
        : (answer.subject ? answer.subject + "\n\n" : "") + answer.body;
    } catch (error) {
      text = "⚠ " + form.dataset.failed;
    }
    if (mine === asked) {  // an older, slower answer never overwrites a newer one
      shown.textContent = text;
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  document.getElementById("preview-button").addEventListener("click", preview);
  document.getElementById("body").addEventListener("input", soon);
  document.getElementById("subject").addEventListener("input", soon);
})();
