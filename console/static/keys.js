// Keyboard shortcuts (the list: _keys.html, its "?" help dialog; README "Keyboard shortcuts").
// j / k move along the queue's rows (the focus: its ring shows the row), Enter or o opens the
// row in the inbox's pane, a assigns to me (or goes to the hand-over panel), h goes to the
// hand-over panel, r to the reply, c closes (through the real close form, after a
// confirmation), / to the search (the page's own, else the header's), g then i / t / m to the queues, ?
// shows the help, Escape closes it (the dialog's own).
// - Never while typing: a key in an input, a textarea (the composer's "/" is its canned
//   responses'), a select or an editable element is the field's; never with Ctrl, Alt or
//   Meta (the browser's and the system's shortcuts).
// - Letters are matched by their physical key (event.code): with the Persian layout on, the
//   key of "j" types "ت" but is still "next".
// - Every action is what a click would do (the same link, button or form), so it is audited,
//   CSRF-signed and post/redirect/get like the click.
(function () {
  "use strict";
  var gPending = 0; // when "g" was pressed: the next key within 1.5 s navigates

  function typing(el) {
    if (!el || el === document.body) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function letter(e) {
    var m = /^Key([A-Z])$/.exec(e.code || "");
    if (m) { return m[1].toLowerCase(); }
    return (e.key || "").length === 1 ? e.key.toLowerCase() : "";
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-rows .queue-row"));
  }

  function rowOf(el) { return el && el.closest ? el.closest("#queue-rows .queue-row") : null; }

  function focusRow(row) {
    var link = row && row.querySelector("a.row-link");
    if (!link) { return; }
    link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var here = rowOf(document.activeElement) || document.querySelector(
      "#queue-rows .queue-row[aria-current='true']");
    var i = here ? all.indexOf(here) : -1;
    var next = i < 0 ? (step > 0 ? 0 : all.length - 1)
      : Math.min(all.length - 1, Math.max(0, i + step));
    focusRow(all[next]);
  }

  function openRow() {
    var row = rowOf(document.activeElement) || document.querySelector(
      "#queue-rows .queue-row[aria-current='true']") || rows()[0];
    var link = row && row.querySelector("a.row-link");
    if (link) {
      link.focus({ preventScroll: true });
      link.click(); // htmx opens it in the pane (or, without the inbox, its page)
    }
  }

  function press(id) {
    var b = document.getElementById(id);
    if (b && !b.disabled) { b.click(); return true; }
    return false;
  }

  function focusField(selector) {
    var el = document.querySelector(selector);
    if (!el) { return false; }
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
    return true;
  }

  function closeConversation(help) {
    var form = document.getElementById("close-form");
    var button = document.getElementById("close-button");
    if (!form || !button) { return; }
    // The form's own submission (its CSRF token, its post/redirect/get; in the inbox the
    // pane's), after a confirmation: one key must not close by accident.
    if (window.confirm(help ? help.dataset.closeConfirm : "")) {
      form.requestSubmit(button);
    }
  }

  function snoozeField() {
    var panel = document.getElementById("snooze-panel");
    if (!panel) { return false; }
    panel.open = true;
    return focusField("#snooze-until");
  }

  function go(where) {
    var to = { i: "/queues", t: "/queues?queue=triage", m: "/queues?queue=mine",
               w: "/queues?queue=waiting", s: "/queues?queue=snoozed" }[where];
    if (to) { window.location.assign(to); }
  }

  function showHelp(help) {
    if (!help || help.open) { return; }
    help.returnFocus = document.activeElement;
    help.showModal(); // modal: the page behind is inert, Escape closes it
    var close = document.getElementById("keys-close");
    if (close) { close.focus(); }
  }

  document.addEventListener("keydown", function (e) {
    var help = document.getElementById("keys-help");
    if (e.defaultPrevented || e.ctrlKey || e.altKey || e.metaKey || e.isComposing) { return; }
    if (help && help.open) { return; } // the dialog's own keys (Escape, Tab, its button)
    if (typing(e.target)) { return; }
    var question = e.key === "?" || e.key === "؟" || (e.code === "Slash" && e.shiftKey);
    if (question) {
      e.preventDefault();
      showHelp(help);
      return;
    }
    if (e.shiftKey) { return; }
    if (e.code === "Slash" || e.key === "/") {
      e.preventDefault();
      // the page's own search box when it has one, else the header's message search
      focusField("#customer-q") || focusField("#search-page-q") || focusField("#search-q");
      return;
    }
    var k = letter(e);
    if (gPending && Date.now() - gPending < 1500) {
      gPending = 0;
      e.preventDefault();
      go(k);
      return;
    }
    gPending = 0;
    var done = true;
    switch (k) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o": openRow(); break;
      case "a":
        if (!press("assign-me-button")) { done = focusField("#handover-person"); }
        break;
      case "h": done = focusField("#handover-person"); break;
      case "r": done = focusField("#draft-body, #my-drafts textarea"); break;
      case "c": closeConversation(help); break;
      // issue 15: w sets it waiting on the customer (the page's own form), s opens the
      // snooze form at its date field
      case "w": done = press("waiting-button"); break;
      case "s": done = snoozeField(); break;
      case "g": gPending = Date.now(); break;
      default: done = false;
    }
    if (done) { e.preventDefault(); }
  });

  document.addEventListener("click", function (e) {
    if (e.target && e.target.closest && e.target.closest("#keys-open")) {
      showHelp(document.getElementById("keys-help"));
    }
  });

  document.addEventListener("close", function (e) {
    // The dialog closed (Escape, its button): the focus goes back where it was.
    // (The event comes a moment after; a focus already moved on since is left alone.)
    var help = e.target;
    if (!help || help.id !== "keys-help") { return; }
    var now = document.activeElement;
    var lost = !now || now === document.body || help.contains(now);
    if (lost && help.returnFocus && help.returnFocus.focus) {
      help.returnFocus.focus({ preventScroll: true });
    }
    help.returnFocus = null;
  }, true);

  // The list comes again on a live event: the row that had the focus gets it back.
  var focused = "";
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.target && e.target.id === "queue-live") {
      var row = rowOf(document.activeElement);
      focused = row ? row.dataset.conversationId : "";
    }
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && e.target.id === "queue-live" && focused) {
      var row = document.querySelector(
        "#queue-rows .queue-row[data-conversation-id='" + focused + "']");
      if (row) { focusRow(row); }
      focused = "";
    }
  });
}());
