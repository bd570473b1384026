// Notifications on every page (console/pages/notifications.py):
// - the header's unread count (#notify-count) and the page title's "(3) " follow the feed
//   without a reload: live.js passes every pushed event on as a "kartabl:live" document
//   event, and a "notification.created" one (pushed to its recipient alone, console/live.py)
//   makes this script ask /notifications/unread for the count and the newest unread ones;
// - desktop notifications (the browser's Notification API), asked for only when the reader
//   ticks "desktop notifications" (#notify-desktop), and a short beep (#notify-sound, off by
//   default). Both choices are this browser's, kept in localStorage.
(function () {
  "use strict";
  var KEY_DESKTOP = "kartabl.notify.desktop";
  var KEY_SOUND = "kartabl.notify.sound";
  var KEY_LAST = "kartabl.notify.last"; // the newest notification shown on the desktop
  var hasApi = "Notification" in window;

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function store(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: no memory */ }
  }
  function desktopOn() {
    return hasApi && stored(KEY_DESKTOP) === "1" && window.Notification.permission === "granted";
  }
  function soundOn() { return stored(KEY_SOUND) === "1"; }

  var audio = null;
  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    try {
      audio = audio || new Ctx();
      if (audio.state === "suspended") { audio.resume(); }
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* no sound is no harm */ }
  }

  function showCount(data) {
    var badge = document.getElementById("notify-count");
    if (badge) {
      badge.textContent = data.digits || "";
      badge.dataset.count = String(data.count);
      badge.hidden = !data.count;
    }
    var bare = document.title.replace(/^\([^)]*\)\s*/, "");
    document.title = data.count ? "(" + data.digits + ") " + bare : bare;
    document.body.dataset.notifyCount = String(data.count); // for the tests: what arrived
  }

  function announce(items) {
    var known = stored(KEY_LAST);
    var last = parseInt(known || "0", 10) || 0;
    var fresh = items.filter(function (n) { return n.id > last; });
    store(KEY_LAST, String(Math.max.apply(null, [last].concat(items.map(function (n) {
      return n.id;
    })))));
    // The first look in this browser only sets where "new" starts: no burst of old ones.
    if (known === null || !fresh.length) { return; }
    if (soundOn()) { beep(); }
    if (!desktopOn()) { return; }
    fresh.slice(0, 3).forEach(function (n) {
      var body = [n.subject, n.comment].filter(Boolean).join("\n");
      try {
        var shown = new window.Notification(n.text, { body: body, tag: "kartabl-" + n.id,
                                                      lang: document.documentElement.lang,
                                                      dir: "auto" });
        shown.onclick = function () { window.focus(); window.location.assign(n.url); };
      } catch (e) { /* a browser that wants a service worker for this: the badge still shows */ }
    });
  }

  var asking = false;
  var again = false;
  function refresh() {
    if (asking) { again = true; return; }
    asking = true;
    fetch("/notifications/unread", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        showCount(data);
        announce(data.items || []);
      })
      .catch(function () { /* the next event asks again */ })
      .then(function () {
        asking = false;
        if (again) { again = false; refresh(); }
      });
  }

  document.addEventListener("kartabl:live", function (ev) {
    var events = ev.detail || [];
    if (events.some(function (e) { return e.reset || e.kind === "notification.created"; })) {
      refresh();
    }
  });

  function settings() {
    var box = document.getElementById("notify-settings");
    if (!box) { return; }
    box.hidden = false; // without this script the controls would do nothing: hidden then
    var desktop = document.getElementById("notify-desktop");
    var sound = document.getElementById("notify-sound");
    var denied = document.getElementById("notify-denied");
    if (!hasApi) {
      desktop.disabled = true;
      document.getElementById("notify-unsupported").hidden = false;
    } else {
      desktop.checked = desktopOn();
      denied.hidden = window.Notification.permission !== "denied";
    }
    desktop.addEventListener("change", function () {
      if (!desktop.checked) { store(KEY_DESKTOP, "0"); return; }
      // Asked here only: the reader has just clicked, which browsers require anyway.
      window.Notification.requestPermission().then(function (answer) {
        var ok = answer === "granted";
        store(KEY_DESKTOP, ok ? "1" : "0");
        desktop.checked = ok;
        denied.hidden = ok;
        if (ok) { refresh(); } // sets where "new" starts
      });
    });
    sound.checked = soundOn();
    sound.addEventListener("change", function () {
      store(KEY_SOUND, sound.checked ? "1" : "0");
      if (sound.checked) { beep(); refresh(); } // the click lets the page play sound
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", settings);
  } else {
    settings();
  }
  if (desktopOn() || soundOn()) { refresh(); } // where "new" starts for this browser
}());
