// PromoPilot dashboard: the "Acting as" picker (demo), htmx glue, export links that follow
// the board's filter, and refusals shown in the page. No build step; plain ES2019.
(function () {
  "use strict";
  var LIMIT = 2000;

  function cookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; samesite=lax";
  }

  function flash(text, ok) {
    var box = document.getElementById("flash");
    if (!box) return;
    var div = document.createElement("div");
    div.className = "flash " + (ok ? "ok" : "refused");
    div.setAttribute("role", ok ? "status" : "alert");
    div.textContent = text;
    box.replaceChildren(div);
  }

  // The demo's picker: the same person as the console's "Acting as" (localStorage pp-as).
  var picker = document.getElementById("as");
  if (picker) {
    picker.addEventListener("change", function () {
      cookie("pp_as", picker.value);
      try { localStorage.setItem("pp-as", picker.value); } catch (e) { /* private mode */ }
      location.reload();
    });
    try { localStorage.setItem("pp-as", picker.value); } catch (e) { /* private mode */ }
  }

  // Export links carry the board's current filter.
  function syncExport() {
    var form = document.getElementById("filters");
    if (!form) return;
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (value) params.append(key, value); });
    document.querySelectorAll("[data-base]").forEach(function (a) {
      var q = params.toString();
      a.href = a.dataset.base + (q ? "&" + q : "");
    });
  }
  syncExport();
  document.addEventListener("change", function (e) {
    if (e.target.closest && e.target.closest("#filters")) syncExport();
  });
  document.addEventListener("keyup", function (e) {
    if (e.target.closest && e.target.closest("#filters")) syncExport();
  });

  // A reason typed in htmx's prompt goes in the form body (not a header: no length or
  // encoding limit there), and its limit is said before anything is sent.
  document.body.addEventListener("htmx:configRequest", function (e) {
    var answer = e.detail.headers["HX-Prompt"];
    if (answer === undefined) return;
    delete e.detail.headers["HX-Prompt"];  // (htmx encodes headers later, so it is as typed)
    if (answer.length > LIMIT) {
      e.preventDefault();
      flash((document.body.dataset.tooLong || "").replace("{n}", answer.length) || ("> " + LIMIT), false);
      return;
    }
    e.detail.parameters["comment"] = answer;
  });

  // A refusal that comes back as an error status (422, 403 …) is shown, not swallowed.
  document.body.addEventListener("htmx:responseError", function (e) {
    var text = e.detail.xhr.statusText;
    try { text = JSON.parse(e.detail.xhr.responseText).detail.message || text; } catch (err) { /* plain */ }
    flash(text, false);
  });
  document.body.addEventListener("htmx:sendError", function () {
    flash(document.body.dataset.offline || "…", false);
  });

  // Filters on the calendar page re-load the events instead of the board.
  var form = document.getElementById("filters");
  if (form && document.body.dataset.page === "calendar") {
    form.addEventListener("change", function () { document.dispatchEvent(new CustomEvent("pp-filters")); });
    form.addEventListener("submit", function (e) { e.preventDefault(); document.dispatchEvent(new CustomEvent("pp-filters")); });
  }
})();
