// The inbox (queues.html): the list, and the open conversation in a pane beside it.
// - A row's link opens its conversation in the pane by htmx (hx-get of the conversation's
//   page, #conversation selected, the inbox's URL ?open=<id> pushed): the list is not
//   touched, so its filter, scroll and selection stay.
// - The conversation's own forms (approve, reject, draft, note, hand over, close, ...) post
//   from the pane as they do on its page, here by fetch: the server's post/redirect/get
//   answers with the conversation's page (?done= or ?failed=), whose #conversation replaces
//   the pane's; the list stays. A form with its own hx-* attributes is htmx's.
// - After each change of the pane: the open row is marked (aria-current), live.js is told
//   (the "kartabl:pane" event: its panels to follow are new) and the panels' address set.
// No inline script (the CSP allows only our own files).
(function () {
  "use strict";
  function pane() { return document.getElementById("inbox-pane"); }

  function openId() {
    var conv = pane() && pane().querySelector("#conversation");
    return conv ? conv.dataset.conversationId : "";
  }

  function markOpen() {
    var id = openId();
    document.querySelectorAll("#queue-rows .queue-row").forEach(function (row) {
      if (id && row.dataset.conversationId === id) {
        row.setAttribute("aria-current", "true");
      } else {
        row.removeAttribute("aria-current");
      }
    });
    var inbox = document.getElementById("inbox");
    if (inbox) { inbox.dataset.open = id; }
  }

  function changed(url) {
    var p = pane();
    if (p && openId()) {
      p.dataset.panelsUrl = url || "/conversations/" + openId();
    }
    markOpen();
    document.dispatchEvent(new CustomEvent("kartabl:pane", { detail: { id: openId() } }));
  }

  document.addEventListener("htmx:afterSettle", function (e) {
    var p = pane();
    if (!p) { return; }
    if (e.target === p) {
      changed(null);
      // A row of "awaiting approval" links to the reply (#reply-<id>): shown as on its page.
      var link = e.detail && e.detail.requestConfig ? e.detail.requestConfig.elt : null;
      var to = link && link.hash ? document.getElementById(link.hash.slice(1)) : null;
      if (to) { to.scrollIntoView({ block: "start" }); }
    } else if (e.target && e.target.id === "queue-live") {
      markOpen(); // the rows came again from the server, which does not know the pane
    }
  });
  // Back and forward: htmx puts the page as it was back; its conversation is a new one.
  document.addEventListener("htmx:historyRestore", function () { changed(null); });

  // A pane is on its way: live.js counts the events that come meanwhile.
  function loading() { document.dispatchEvent(new CustomEvent("kartabl:pane-loading")); }
  // A row's link loads the pane by htmx, which aborts a request when its element leaves the
  // page; the list's live refresh replaces every row, so a click during one opened nothing.
  // The refresh waits for the pane instead, then runs.
  var refreshSkipped = false;
  function rowOpening() { return !!document.querySelector("#queue-rows .row-link.htmx-request"); }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var p = pane();
    if (p && e.detail && e.detail.target === p) { loading(); }
    if (e.target && e.target.id === "queue-live" && rowOpening()) {
      refreshSkipped = true;
      e.preventDefault();
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var live = document.getElementById("queue-live");
    if (refreshSkipped && live && e.target && e.target.classList
        && e.target.classList.contains("row-link") && !rowOpening() && window.htmx) {
      refreshSkipped = false;
      window.htmx.trigger(live, "live");
    }
  });

  function path(url) {
    var u = new URL(url, window.location.href);
    return u.pathname + u.search;
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var p = pane();
    if (!p || !(form instanceof HTMLFormElement) || !p.contains(form) || e.defaultPrevented) {
      return;
    }
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post"
        || form.hasAttribute("hx-post") || !window.fetch || !window.htmx) {
      return;
    }
    e.preventDefault();
    loading();
    var data = new FormData(form, e.submitter || undefined);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; }); // no second post meanwhile
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (html) { return { r: r, html: html }; }); })
      .then(function (got) {
        var doc = new DOMParser().parseFromString(got.html, "text/html");
        var conv = doc.getElementById("conversation");
        if (!conv) {
          // Not the conversation: a page the refusal went to (a GET, shown as without the
          // pane) or an error page answering the post itself (its message, in the pane).
          if (got.r.redirected) {
            window.location.assign(got.r.url);
          } else {
            var main = doc.querySelector("main");
            window.htmx.swap(p, main ? main.innerHTML : "", { swapStyle: "innerHTML" });
          }
          return;
        }
        window.htmx.swap(p, conv.outerHTML, { swapStyle: "innerHTML" });
        changed(path(got.r.url));
        // Say what happened where the reader is: the page's message, read out.
        var said = p.querySelector("#action-error, #flash");
        if (said) {
          said.setAttribute("tabindex", "-1");
          said.focus({ preventScroll: false });
        }
      })
      .catch(function () {
        // The network failed: the form stays as typed, to be sent again by hand.
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }, false);

  document.addEventListener("DOMContentLoaded", markOpen);
}());
