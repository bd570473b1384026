/* Kartabl website chat: the chat panel, loaded by loader.js on the first click.
   Transport: POST with a client-made id per message (a retry is stored once), and
   server-sent events with resume (every event has a sequence number; a reconnect sends
   the last one seen and gets everything after it). Events are shown once, in order. */
(function () {
  "use strict";
  var K = window.__kartablChat;
  if (!K || K.toggle) return;
  var C = K.C, base = K.base, fa = K.lang === "fa", root = K.root;
  var api = base + "/widget/" + encodeURIComponent(C.id) + "/";
  var storeKey = "kartabl-visitor-" + C.id;
  var T = fa ? {
    title: "پشتیبانی", send: "ارسال", ph: "پیام خود را بنویسید…", phone: "شماره موبایل",
    email: "ایمیل", preparing: "پاسخ شما در حال آماده شدن است…", closed: "گفتگو بسته شد.",
    failed: "ارسال نشد؛ دوباره تلاش می‌کنیم…", refused: "این پیام پذیرفته نشد.", close: "بستن",
    need: "خارج از ساعت کاری هستیم؛ پاسخ را به این شماره یا ایمیل می‌فرستیم.",
    rate: "از پاسخ‌گویی راضی بودید؟", comment: "نظر شما (اختیاری)", thanks: "از نظر شما سپاسگزاریم."
  } : {
    title: "Support", send: "Send", ph: "Write your message…", phone: "Mobile number",
    email: "Email", preparing: "Your answer is being prepared…", closed: "The conversation was closed.",
    failed: "Not sent yet; retrying…", refused: "This message was refused.", close: "Close",
    need: "We are outside working hours; the answer will go to this number or email.",
    rate: "How satisfied were you?", comment: "Your comment (optional)", thanks: "Thank you for your feedback."
  };
  var digits = "۰۱۲۳۴۵۶۷۸۹";
  function num(s) { return fa ? String(s).replace(/[0-9]/g, function (d) { return digits[+d]; }) : String(s); }
  var css = [
    ".p{position:fixed;bottom:86px;" + (fa ? "left" : "right") + ":20px;width:340px;max-width:calc(100vw - 40px);",
    "height:480px;max-height:calc(100vh - 110px);display:none;flex-direction:column;background:#fff;color:#222;",
    "border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.25);z-index:2147483000;overflow:hidden;",
    "font:14px/1.6 Tahoma,Vazirmatn,'Segoe UI',sans-serif}",
    ".p.o{display:flex}.h{padding:10px 14px;font-weight:bold;display:flex;justify-content:space-between}",
    ".h button{background:none;border:0;color:inherit;font-size:18px;cursor:pointer}",
    ".g{padding:8px 14px;color:#555;font-size:13px}.log{flex:1;overflow-y:auto;padding:8px 12px}",
    ".m{margin:6px 0;padding:6px 10px;border-radius:10px;max-width:80%;white-space:pre-wrap;word-wrap:break-word;unicode-bidi:isolate}",
    ".v{background:#e8f0fe;margin-inline-start:auto}.r{background:#f1f1f1}.q{opacity:.6}",
    ".n{color:#777;font-size:12px;text-align:center;margin:6px 0}.t{display:block;font-size:11px;color:#888}",
    "form{display:flex;flex-direction:column;border-top:1px solid #ddd;padding:8px;gap:6px}",
    "input,textarea{font:inherit;border:1px solid #ccc;border-radius:6px;padding:6px}",
    "textarea{resize:none;height:56px}.row{display:flex;gap:6px}.row textarea{flex:1}",
    "form button{border:0;border-radius:6px;padding:0 14px;cursor:pointer}",
    ".hp{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}"
  ].join("");
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  root.adoptedStyleSheets = root.adoptedStyleSheets.concat([sheet]);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  var panel = el("div", "p");
  panel.setAttribute("dir", fa ? "rtl" : "ltr");
  panel.setAttribute("lang", K.lang);
  panel.setAttribute("role", "dialog");
  var head = el("div", "h");
  head.style.background = C.color;
  head.style.color = C.text_color;
  head.appendChild(el("span", "", T.title));
  var x = el("button", "", "×");
  x.type = "button";
  x.setAttribute("aria-label", T.close);
  head.appendChild(x);
  panel.appendChild(head);
  var greet = (C.greeting && C.greeting[K.lang]) || "";
  var g = el("div", "g", greet);
  g.setAttribute("dir", "auto");
  g.hidden = !greet;
  panel.appendChild(g);
  var logEl = el("div", "log");
  logEl.setAttribute("aria-live", "polite");
  var outEl = el("div", "");
  var note = el("div", "n");
  note.hidden = true;
  logEl.appendChild(outEl);
  logEl.appendChild(note);
  panel.appendChild(logEl);
  var form = el("form", "");
  // the pre-chat contact: shown when the widget asks for one, and always while the team is
  // outside its hours (then required: the answer can only go there)
  var contact = el("input", "");
  contact.type = C.ask_email && !C.ask_phone ? "email" : "tel";
  contact.placeholder = C.ask_phone && C.ask_email ? T.phone + " / " + T.email : (C.ask_email ? T.email : T.phone);
  contact.name = "contact";
  contact.hidden = !(C.ask_phone || C.ask_email);
  form.appendChild(contact);
  var needContact = false;
  var hp = el("input", "hp");  // the honeypot: hidden from people, filled by bots
  hp.name = "website";
  hp.tabIndex = -1;
  hp.autocomplete = "off";
  hp.setAttribute("aria-hidden", "true");
  form.appendChild(hp);
  var row = el("div", "row");
  var ta = el("textarea", "");
  ta.placeholder = T.ph;
  ta.setAttribute("dir", "auto");
  var send = el("button", "", T.send);
  send.type = "submit";
  send.style.background = C.color;
  send.style.color = C.text_color;
  row.appendChild(ta);
  row.appendChild(send);
  form.appendChild(row);
  panel.appendChild(form);
  root.appendChild(panel);

  var token = "";
  try { token = localStorage.getItem(storeKey) || ""; } catch (e) { /* storage blocked */ }
  var lastSeq = 0, shown = {}, pending = {}, queue = [], sending = false, es = null, opened = false;
  K.seen = [];  // the sequence numbers shown, in order (for tests and debugging)

  function headers() {
    var h = { "Content-Type": "application/json" };
    if (token) h["X-Kartabl-Visitor"] = token;
    return h;
  }
  function post(what, body) {
    return fetch(api + what, { method: "POST", mode: "cors", credentials: "include",
      headers: headers(), body: JSON.stringify(body) });
  }
  function scroll() { logEl.scrollTop = logEl.scrollHeight; }
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function time(iso) {
    var d = new Date(iso);
    return num(("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2));
  }
  function show(e) {
    if (shown[e.seq] || e.seq <= lastSeq) return;  // once, in order
    shown[e.seq] = 1;
    lastSeq = e.seq;
    K.seen.push(e.seq);
    if (e.kind === "message" || e.kind === "reply") {
      var m = el("div", "m " + (e.kind === "message" ? "v" : "r"), e.text);
      m.setAttribute("dir", "auto");
      m.setAttribute("data-seq", e.seq);
      m.appendChild(el("span", "t", time(e.at)));
      logEl.insertBefore(m, outEl);
      if (e.kind === "message" && pending[e.client_id]) {
        pending[e.client_id].el.remove();
        delete pending[e.client_id];
      }
      if (e.kind === "reply") note.hidden = true;
    } else if (e.kind === "preparing" || e.kind === "closed") {
      note.textContent = e.kind === "preparing" ? T.preparing : T.closed;
      note.hidden = false;
      if (e.kind === "closed") rating(e.seq);
    }
    scroll();
  }
  // satisfaction at close: 1-5 and an optional comment, once per conversation
  function rating(seq) {
    var box = el("div", "n"), score = 0, btns = [];
    box.setAttribute("data-rate", seq);
    box.appendChild(el("div", "", T.rate));
    var stars = el("div", "row");
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", "", num(n));
      b.type = "button";
      b.setAttribute("data-score", n);
      b.addEventListener("click", function () {
        score = n;
        btns.forEach(function (o, i) { o.style.background = i < n ? C.color : ""; o.style.color = i < n ? C.text_color : ""; });
      });
      btns.push(b);
      stars.appendChild(b);
    });
    box.appendChild(stars);
    var cm = el("textarea", "");
    cm.placeholder = T.comment;
    cm.maxLength = 1000;
    cm.setAttribute("dir", "auto");
    box.appendChild(cm);
    var ok = el("button", "", T.send);
    ok.type = "button";
    ok.addEventListener("click", function () {
      if (!score) return;
      post("rating", { seq: seq, score: score, comment: cm.value.trim() }).then(function (r) {
        if (r.ok || r.status === 409) box.replaceChildren(el("div", "", T.thanks));
      });
    });
    box.appendChild(ok);
    logEl.insertBefore(box, outEl);
  }
  function onEvent(ev) {
    try { show(JSON.parse(ev.data)); } catch (e) { /* not ours */ }
  }
  function connect() {
    if (es) es.close();
    // The first connect names the last event seen in the URL; EventSource's own reconnects
    // send it as Last-Event-ID, which the server prefers.
    es = new EventSource(api + "events?visitor=" + encodeURIComponent(token) +
      "&last_event_id=" + lastSeq, { withCredentials: true });
    ["message", "reply", "preparing", "closed"].forEach(function (k) { es.addEventListener(k, onEvent); });
    es.onerror = function () {
      // refused (the token is no longer ours, say): a session again, then the stream
      if (es && es.readyState === 2) { es.close(); es = null; setTimeout(start, 2000); }
    };
  }
  K.reconnect = connect;  // a forced disconnect: resumes from the last event shown
  function start() {
    return post("session", { locale: K.lang, identity: K.identity, identity_hmac: K.identity_hmac })
      .then(function (r) { if (!r.ok) throw new Error("session " + r.status); return r.json(); })
      .then(function (j) {
        if (token && j.visitor !== token) { lastSeq = 0; shown = {}; }  // a new chat
        token = j.visitor;
        if (j.offline) {  // outside hours: the offline text, and a contact insisted on
          var off = (C.offline && C.offline[K.lang]) || T.need;
          g.textContent = off;
          g.hidden = false;
          K.offline = true;
          needContact = !j.has_contact;
          contact.hidden = false;
          contact.required = needContact;
        }
        try { localStorage.setItem(storeKey, token); } catch (e) { /* storage blocked */ }
        connect();
        pump();
      })
      .catch(function () { setTimeout(start, 3000); });
  }
  function pump() {
    if (sending || !token || !queue.length) return;
    sending = true;
    var item = queue[0];
    post("messages", item.body).then(function (r) {
      if (r.status === 401) { sending = false; start(); return; }  // renew the token, then retry
      if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429)) {
        queue.shift();
        if (!r.ok) { item.el.textContent = item.body.text + " — " + T.refused; delete pending[item.body.client_id]; }
        item.delay = 0;
        sending = false;
        pump();
        return;
      }
      throw new Error("status " + r.status);
    }).catch(function () {  // not stored, or not known: the same client id again
      item.delay = Math.min(10000, (item.delay || 250) * 2);
      sending = false;
      setTimeout(pump, item.delay);
    });
  }
  K.send = function (text) {
    text = String(text).trim();
    if (!text) return;
    var body = { client_id: clientId(), text: text, website: hp.value };
    if (contact.value.trim()) body.contact = contact.value.trim();
    else if (needContact) { contact.focus(); return false; }
    needContact = false;
    var p = el("div", "m v q", text);
    p.setAttribute("dir", "auto");
    outEl.appendChild(p);
    var item = { body: body, el: p };
    pending[body.client_id] = item;
    queue.push(item);
    scroll();
    pump();
  };
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (K.send(ta.value) !== false) ta.value = "";
  });
  ta.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  x.addEventListener("click", function () { K.toggle(); });
  K.toggle = function () {
    panel.classList.toggle("o");
    if (!opened) { opened = true; start(); }
    if (panel.classList.contains("o")) ta.focus();
  };
})();
