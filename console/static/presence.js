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
// - The inbox's pane (static/inbox.js) swaps the conversation in by htmx, which runs this
//   file again with each swap: it runs once per page (the first run stays) and follows the
//   #presence now on the page at each swap ("kartabl:pane", htmx:afterSettle): another
//   conversation's is beaten, the previous one is left ("left" at once, not by expiry).
(function () {
  "use strict";
  if (!window.fetch || window.__kartablPresence) { return; } // once per page
  window.__kartablPresence = true;
  var FIELDS = "#draft-body, .edit-form textarea, .approve-form textarea";
  var REPLY_STEPS = { "reply.drafted": true, "reply.edited": true, "reply.submitted": true };
  var box = null; // the #presence followed
  var cid = ""; // its conversation
  var url = "";
  var csrf = "";
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

  // The answer is shown only in the box of the conversation it is about, still on the page.
  function shower(about) {
    return function (html) {
      if (html === null || gone || about !== cid || !box) { return; }
      box.innerHTML = html; // the server's partial, escaped there
      var list = box.firstElementChild;
      var every = list ? parseInt(list.dataset.beatMs || "", 10) : NaN;
      if (every > 0) { beatMs = every; }
      box.dataset.state = state; // for the tests: what this page last said
    };
  }

  function answer(r) { return r.ok && r.status === 200 ? r.text() : null; }

  function beat() {
    window.clearTimeout(timer);
    timer = null;
    if (!box || gone || document.visibilityState === "hidden") { return; }
    timer = window.setTimeout(beat, beatMs);
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: "state=" + encodeURIComponent(state)
    }).then(answer).then(shower(cid)).catch(function () { /* the next beat tries again */ });
  }

  // A push: ask who is there (one request at a time, once more if pushed meanwhile).
  function ask() {
    if (!box) { return; }
    if (asking) { again = true; return; }
    asking = true;
    fetch(url, { credentials: "same-origin" }).then(answer).then(shower(cid))
      .catch(function () { /* the next beat shows it */ })
      .then(function () {
        asking = false;
        if (again) { again = false; ask(); }
      });
  }

  // "left" for the conversation followed until now: its others see it go at once.
  function leave(beacon) {
    if (!url) { return; }
    if (beacon) {
      var form = new FormData();
      form.append("state", "left");
      form.append("csrf_token", csrf);
      if (navigator.sendBeacon) { navigator.sendBeacon(url, form); }
      return;
    }
    fetch(url, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: "state=left"
    }).catch(function () { /* the expiry forgets it */ });
  }

  // The #presence on the page now: the same conversation (its pane again after a post, or
  // the page's own, kept) goes on; another one is left and the new one beaten.
  function follow() {
    var now = document.getElementById("presence");
    if (now === box) { return; }
    var id = now ? now.dataset.conversationId || "" : "";
    if (id !== cid) {
      window.clearTimeout(timer);
      timer = null;
      leave(false);
      asking = false;
      again = false;
    }
    box = now;
    cid = id;
    url = box ? "/conversations/" + cid + "/presence" : "";
    csrf = box ? box.dataset.csrf || "" : "";
    if (box) {
      state = drafting() ? "drafting" : "viewing";
      beat();
    }
  }

  document.addEventListener("input", function (e) {
    if (!box || !e.target.matches || !e.target.matches(FIELDS)) { return; }
    var now = drafting() ? "drafting" : "viewing";
    if (now !== state) { state = now; beat(); }
  });
  document.addEventListener("kartabl:presence", function (e) {
    if (box && String(e.detail && e.detail.conversation) === cid) { ask(); }
  });
  document.addEventListener("kartabl:live", function (e) {
    if (state !== "drafting" || !box) { return; }
    var news = (e.detail || []).some(function (ev) {
      return String(ev.conversation) === cid && REPLY_STEPS[ev.kind];
    });
    if (news) { ask(); }
  });
  document.addEventListener("kartabl:pane", follow);
  document.addEventListener("htmx:afterSettle", follow);
  document.addEventListener("htmx:historyRestore", follow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { beat(); }
  });
  window.addEventListener("pagehide", function () {
    gone = true;
    window.clearTimeout(timer);
    leave(true);
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) { gone = false; beat(); } // back from the back/forward cache
  });
  follow();
}());
