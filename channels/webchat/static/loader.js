/* Kartabl website chat: the loader. Draws the launcher; loads chat.js on the first click.
   No inline script or style in the host page: everything lives in a shadow root. */
(function () {
  "use strict";
  var C = __KARTABL_WIDGET__;
  var me = document.currentScript;
  if (!me || window.__kartablChat) return;
  var base = new URL(me.src).origin;
  var lang = (me.getAttribute("data-lang") || document.documentElement.lang || "fa").slice(0, 2) === "en" ? "en" : "fa";
  var host = document.createElement("div");
  host.setAttribute("data-kartabl-chat", C.id);
  var root = host.attachShadow({ mode: "open" });
  var css = ":host{all:initial}.l{position:fixed;bottom:20px;" + (lang === "fa" ? "left" : "right") +
    ":20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;z-index:2147483000;" +
    "box-shadow:0 2px 10px rgba(0,0,0,.3);display:flex;align-items:center;justify-content:center}";
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  root.adoptedStyleSheets = [sheet];
  var b = document.createElement("button");
  b.className = "l";
  b.type = "button";
  b.setAttribute("aria-label", lang === "fa" ? "گفتگو با پشتیبانی" : "Chat with support");
  b.style.background = C.color;
  b.style.color = C.text_color;
  // a speech bubble, drawn (no emoji font, no image: nothing the host's CSP must allow)
  var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "26");
  svg.setAttribute("height", "26");
  svg.setAttribute("aria-hidden", "true");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  svg.appendChild(path);
  b.appendChild(svg);
  root.appendChild(b);
  var state = { loaded: false, pending: false };
  window.__kartablChat = { C: C, base: base, lang: lang, root: root, launcher: b,
    identity: me.getAttribute("data-identity") || "", identity_hmac: me.getAttribute("data-identity-hmac") || "" };
  b.addEventListener("click", function () {
    if (state.loaded) { window.__kartablChat.toggle(); return; }
    if (state.pending) return;
    state.pending = true;
    var s = document.createElement("script");
    s.src = base + "/widget/" + encodeURIComponent(C.id) + "/chat.js";
    s.async = true;
    s.onload = function () { state.loaded = true; window.__kartablChat.toggle(); };
    s.onerror = function () { state.pending = false; };
    document.head.appendChild(s);
  });
  (document.body || document.documentElement).appendChild(host);
})();
