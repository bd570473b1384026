// The queue page's bulk selection (no inline script: the CSP allows only our own files).
// - the header checkbox selects every row of the page;
// - the live refresh of the rows pauses while anything is selected, so a selection is
//   never wiped by a refresh in the middle of choosing.
(function () {
  "use strict";
  function picks() { return document.querySelectorAll(".bulk-pick"); }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.id === "bulk-pick-all") {
      picks().forEach(function (b) { b.checked = t.checked; });
    }
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var live = document.getElementById("queue-live");
    if (live && e.target === live && document.querySelector(".bulk-pick:checked")) {
      e.preventDefault();
    }
  });
})();
