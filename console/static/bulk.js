// The queue page's bulk selection (no inline script: the CSP allows only our own files).
// - the header checkbox selects every row of the page;
// - the live refresh of the rows (static/live.js fires "live" on #queue-live) waits while
//   anything is selected, so a selection is never wiped in the middle of choosing; once
//   nothing is selected any more, the refresh it skipped runs.
(function () {
  "use strict";
  var skipped = false;
  function live() { return document.getElementById("queue-live"); }
  function anySelected() { return !!document.querySelector(".bulk-pick:checked"); }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.id === "bulk-pick-all") {
      document.querySelectorAll(".bulk-pick").forEach(function (b) { b.checked = t.checked; });
    }
    if (t && (t.id === "bulk-pick-all" || t.classList.contains("bulk-pick"))
        && skipped && !anySelected() && live() && window.htmx) {
      skipped = false;
      window.htmx.trigger(live(), "live");
    }
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.target === live() && anySelected()) {
      skipped = true;
      e.preventDefault();
    }
  });
})();
