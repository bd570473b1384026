// Collision notices (console/pages/presence.py): who else has this conversation open, and
// who is drafting a reply.
// - While the page is visible it beats POST /conversations/{id}/presence with its state
//   (every data-beat-ms, as the server says), and at once when the state changes. The answer
//   is the list of the others, put in #presence; so each beat also drops who went quiet.
// - Drafting: a reply field (the composer, an edit of one's draft, an approver's edit) holds
//   text other than what the page was rendered with; emptied or put back: viewing again.
// - On leaving (pagehide) a beacon says "left": the others see it at once.
// - live.js passes on the stream's "presence" pushes (someone came, went or started
//   drafting) and its events; a reply saved by someone else matters while one drafts.
(function () {
  "use strict";
  var box = document.getElementById("presence");
  if (!box || !window.fetch || box.dataset.started) { return; } // once per page
  box.dataset.started = "1";
  var url = "/conversations/" + box.dataset.conversationId + "/presence";
  var csrf = box.dataset.csrf || "";
  var FIELDS = "#draft-body, .edit-form textarea, .approve-form textarea";
  var REPLY_STEPS = { "reply.drafted": true, "reply.edited": true, "reply.submitted": true };
  var beatMs = 15000;
  var state = "viewing";
  var timer = null;
  var asking = false;
  var again = false;
  var gone = false;

  function drafting() {
    return Array.prototype.some.call(document.querySelectorAll(FIELDS), function (el) {
      return el.value.trim() !== "" && el.value !== el.defaultValue;
    });
  }

  function show(html) {
    if (html === null || gone) { return; }
    box.innerHTML = html; // the server's partial, escaped there
    var list = box.firstElementChild;
    var every = list ? parseInt(list.dataset.beatMs || "", 10) : NaN;
    if (every > 0) { beatMs = every; }
    box.dataset.state = state; // for the tests: what this page last said
  }

  function answer(r) { return r.ok && r.status === 200 ? r.text() : null; }

  function beat() {
    window.clearTimeout(timer);
    timer = null;
    if (gone || document.visibilityState === "hidden") { return; }
    timer = window.setTimeout(beat, beatMs);
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: "state=" + encodeURIComponent(state)
    }).then(answer).then(show).catch(function () { /* the next beat tries again */ });
  }

  // A push: ask who is there (one request at a time, once more if pushed meanwhile).
  function ask() {
    if (asking) { again = true; return; }
    asking = true;
    fetch(url, { credentials: "same-origin" }).then(answer).then(show)
      .catch(function () { /* the next beat shows it */ })
      .then(function () {
        asking = false;
        if (again) { again = false; ask(); }
      });
  }

  document.addEventListener("input", function (e) {
    if (!e.target.matches || !e.target.matches(FIELDS)) { return; }
    var now = drafting() ? "drafting" : "viewing";
    if (now !== state) { state = now; beat(); }
  });
  document.addEventListener("kartabl:presence", function (e) {
    if (String(e.detail && e.detail.conversation) === box.dataset.conversationId) { ask(); }
  });
  document.addEventListener("kartabl:live", function (e) {
    if (state !== "drafting") { return; }
    var news = (e.detail || []).some(function (ev) {
      return String(ev.conversation) === box.dataset.conversationId && REPLY_STEPS[ev.kind];
    });
    if (news) { ask(); }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { beat(); }
  });
  window.addEventListener("pagehide", function () {
    gone = true;
    window.clearTimeout(timer);
    var form = new FormData();
    form.append("state", "left");
    form.append("csrf_token", csrf);
    if (navigator.sendBeacon) { navigator.sendBeacon(url, form); }
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) { gone = false; beat(); } // back from the back/forward cache
  });
  state = drafting() ? "drafting" : "viewing";
  beat();
}());
