// Live updates (console/live.py): one EventSource on /live per page. The server pushes only
// ids and kinds; the page then asks for what changed, in place:
// - every element with data-live gets htmx's "live" event (its hx-trigger), or only those
//   whose data-live-conversation is one of the conversations the events are about;
// - on a conversation page ([data-live-panels] containers), the page is fetched again and
//   each child section whose markup changed since it was rendered is swapped for the new one
//   (an unchanged one is kept, with whatever the reader typed in it), down into its parts
//   with an id (a new reply awaiting approval does not wipe the edit of another); children
//   marked data-live-keep stay as they are (the timeline: its reply states and its new
//   items come from its own live element, #live-status, which asks with the version the
//   page is at: each answer appends what is new and says the version it brings).
// A busy fleet routes many messages a second: one element fetches at most once a second
// (and once more after the last event), whatever the rate of events.
// The browser reconnects by itself and sends the last event's id: nothing is missed.
(function () {
  "use strict";
  var body = document.body;
  if (!body || body.dataset.liveSince === undefined || !window.EventSource) {
    return;
  }
  var rendered = new WeakMap(); // a panel section -> its markup as the server sent it
  var containers = [];
  function remember(el, depth, first) {
    if (!first || !rendered.has(el)) { rendered.set(el, el.outerHTML); }
    if (depth < 4) {
      Array.prototype.forEach.call(el.children, function (child) {
        remember(child, depth + 1, first);
      });
    }
  }
  // The panels to follow; again when the inbox's pane shows another conversation
  // (static/inbox.js sends "kartabl:pane"): those are new, as the server sent them. Their
  // markup is taken as soon as htmx has put them in (htmx:afterSwap), before its settling
  // runs their behaviours (canned.js marks the composer up on htmx:load): a part taken
  // after that would never equal the server's and be swapped away, typed text and all.
  var generation = 0; // counts the pane's changes: an answer asked for before one is stale
  function scan() {
    generation++;
    containers = Array.prototype.slice.call(document.querySelectorAll("[data-live-panels]"));
    containers.forEach(function (c) {
      Array.prototype.forEach.call(c.children, function (el) { remember(el, 1, true); });
    });
  }
  scan();
  document.addEventListener("kartabl:pane", scan);
  document.addEventListener("htmx:afterSwap", function (e) {
    var el = e.target;
    if (el && el.querySelector && el.querySelector("[data-live-panels]")) { scan(); }
  });
  var pending = [];
  var timer = null;
  var refreshing = false;
  var again = false;
  var EVERY_MS = 1000;
  var last = new WeakMap(); // element -> when it was last told to fetch
  var later = new WeakMap(); // element -> its trailing timer

  // A conversation page also hears who comes and goes on it (presence.js): the stream is
  // opened with ?conversation=<id> (the server sends its presence only if the reader may
  // see it). In the inbox, the pane's conversation changes: the stream is opened again for
  // the new one, from the last event this page had (?since=: nothing is missed meanwhile).
  var source = null;
  var follows = null; // the conversation the stream was opened with ("" for none)
  var since = body.dataset.liveSince;
  function shown() {
    var open = document.getElementById("conversation");
    return open && open.dataset.conversationId ? open.dataset.conversationId : "";
  }
  function connect() {
    var id = shown();
    if (source !== null && id === follows) { return; }
    if (source !== null) {
      source.close();
      if (body.dataset.liveLast) { since = body.dataset.liveLast; }
      delete body.dataset.liveOpen;
    }
    follows = id;
    var query = since ? ["since=" + encodeURIComponent(since)] : [];
    if (id) { query.push("conversation=" + encodeURIComponent(id)); }
    source = new EventSource("/live" + (query.length ? "?" + query.join("&") : ""));
    listen(source, id);
  }
  function listen(src, id) {
    src.addEventListener("kartabl", function (msg) {
      var e;
      try { e = JSON.parse(msg.data); } catch (err) { return; }
      pending.push(e);
      heard++;
      body.dataset.liveLast = msg.lastEventId; // for the tests, and a reopening: what arrived
      // A burst (a router batch) becomes one refresh.
      if (timer === null) { timer = window.setTimeout(flush, 100); }
    });
    src.addEventListener("open", function () {
      if (src !== source) { return; }
      body.dataset.liveOpen = "1";
      body.dataset.liveFollows = id; // for the tests: the conversation it carries presence of
    });
    // Who is on this conversation changed (console/live.py presence_note): presence.js asks.
    src.addEventListener("presence", function (msg) {
      var e;
      try { e = JSON.parse(msg.data); } catch (err) { return; }
      document.dispatchEvent(new CustomEvent("kartabl:presence", { detail: e }));
    });
    // Too much was missed (a laptop back after hours): everything on the page is fetched again.
    src.addEventListener("reset", function () {
      pending.push({ reset: true });
      heard++;
      if (timer === null) { timer = window.setTimeout(flush, 100); }
    });
  }
  connect();
  document.addEventListener("kartabl:pane", connect);

  // The inbox's pane is rendered by the server at one moment and swapped in later: an event
  // that came in between went to the old pane's elements, and the new pane would show what
  // was true at its render until the next event, perhaps for good (CI met a reply shown
  // "sent" after it was delivered). So a new pane asks once for what changed, when any
  // event came since its request left (static/inbox.js says "kartabl:pane-loading"), or
  // when that is unknown (a page put back from history).
  var heard = 0; // events received by this page
  var heardAtLoad = null;
  document.addEventListener("kartabl:pane-loading", function () { heardAtLoad = heard; });
  document.addEventListener("kartabl:pane", function () {
    var missed = heardAtLoad === null || heard !== heardAtLoad;
    heardAtLoad = null;
    var pane = document.getElementById("inbox-pane");
    if (!missed || !pane) { return; }
    pane.querySelectorAll("[data-live]").forEach(throttled);
    if (containers.length) { refreshPanels(); }
  });

  // #live-status (console/pages/conversation.py status): ask with the version the last
  // answer brought (its #live-version), so what it appended is not appended again.
  document.addEventListener("htmx:configRequest", function (e) {
    var el = e.target;
    if (!el || el.id !== "live-status" || !el.dataset.version) { return; }
    e.detail.path = e.detail.path.replace(/([?&]v=)[^&]*/,
      "$1" + encodeURIComponent(el.dataset.version));
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var el = document.getElementById("live-status");
    var mark = document.getElementById("live-version");
    if (el && mark && el.contains(mark)) { el.dataset.version = mark.dataset.version; }
  });

  function flush() {
    var events = pending;
    pending = [];
    timer = null;
    var about = {};
    var all = false;
    events.forEach(function (e) {
      if (e.reset) { all = true; }
      if (e.conversation) { about[e.conversation] = true; }
    });
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var only = el.dataset.liveConversation;
      if (only && !about[only] && !all) { return; }
      throttled(el);
    });
    var page = document.getElementById("conversation");
    if (page && (all || about[page.dataset.conversationId]) && containers.length) {
      refreshPanels();
    }
    document.dispatchEvent(new CustomEvent("kartabl:live", { detail: events }));
  }

  function throttled(el) {
    if (!el.isConnected) { return; } // swapped away meanwhile (the inbox's pane)
    var wait = (last.get(el) || 0) + EVERY_MS - Date.now();
    // Still fetching (a slow answer on a busy server): its hx-sync would abort that request
    // for a new one; ask again once it is done instead.
    if (el.classList.contains("htmx-request")) { wait = Math.max(wait, 250); }
    if (wait <= 0) {
      last.set(el, Date.now());
      if (window.htmx) { window.htmx.trigger(el, "live"); }
    } else if (!later.get(el)) {
      later.set(el, window.setTimeout(function () {
        later.delete(el);
        throttled(el);
      }, wait));
    }
  }

  function refreshPanels() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    // The page's own address: its ?done= message stays (it was the reader's own step). In
    // the inbox, the pane's conversation page (data-panels-url, static/inbox.js).
    var page = document.getElementById("conversation");
    var holder = page && page.closest("[data-panels-url]");
    var url = holder ? holder.dataset.panelsUrl : window.location.pathname + window.location.search;
    var id = page ? page.dataset.conversationId : "";
    var asked = generation;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html && asked === generation) { swapPanels(html, id); } })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refreshPanels(); }
      });
  }

  function swapPanels(html, id) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var page = document.getElementById("conversation");
    var fresh = doc.getElementById("conversation");
    // The pane moved to another conversation meanwhile: this answer is not about it.
    if (!page || !fresh || page.dataset.conversationId !== id
        || fresh.dataset.conversationId !== id) { return; }
    containers.forEach(function (c) {
      var fresh = c.id ? doc.getElementById(c.id) : null;
      if (!fresh) { return; }
      var next = merged(c, fresh, 0);
      var changed = next.filter(function (n) { return n.parentNode !== c; });
      c.replaceChildren.apply(c, next);
      changed.forEach(function (n) { if (window.htmx) { window.htmx.process(n); } });
    });
  }

  // The children ``fresh`` (the new markup) should have inside ``current`` (on the page):
  // a child unchanged since it was rendered is the one on the page; a changed one that has
  // parts with an id is rebuilt around those parts, each kept the same way (3 levels deep).
  function merged(current, fresh, depth) {
    var old = {};
    Array.prototype.forEach.call(current.children, function (el) {
      if (el.id) { old[el.id] = el; }
    });
    return Array.prototype.map.call(fresh.children, function (el) {
      var mine = el.id ? old[el.id] : null;
      var markup = el.outerHTML;
      if (mine && (mine.hasAttribute("data-live-keep") || rendered.get(mine) === markup)) {
        return mine;
      }
      var node;
      if (mine && depth < 3 && el.querySelector(":scope > [id]")) {
        node = document.importNode(el, false);
        node.replaceChildren.apply(node, merged(mine, el, depth + 1));
        rendered.set(node, markup);
      } else {
        node = document.importNode(el, true);
        remember(node, depth + 1); // as the server sent it, parts included
      }
      return node;
    });
  }
}());
