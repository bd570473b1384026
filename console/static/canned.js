/* Canned responses in the reply composer: type "/" and a shortcut, pick with the arrows,
   Enter or Tab inserts the response in the customer's language (the server picks the
   variant and fills its variables: POST /api/v1/conversations/{id}/canned/expand).

   A textarea opts in with data-canned-list (GET, ?q=<prefix>) and data-canned-expand
   (POST) URLs. Suggestions are built with textContent only (a response's name is never
   markup). After inserting, an "input" event lets htmx refresh the preview. No inline
   script (the CSP forbids it), no library. */
(function () {
  "use strict";

  var TOKEN = /(^|\s)\/([a-z0-9_-]{0,40})$/;
  var seq = 0;

  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  // The "/prefix" right before the caret, or null.
  function tokenAt(ta) {
    var pos = ta.selectionStart;
    if (pos !== ta.selectionEnd) return null;
    var m = TOKEN.exec(ta.value.slice(0, pos));
    if (!m) return null;
    return { start: pos - m[2].length - 1, end: pos, prefix: m[2] };
  }

  function setup(ta) {
    var box = document.createElement("ul");
    box.className = "canned-suggestions";
    box.id = ta.id + "-canned";
    box.setAttribute("role", "listbox");
    box.setAttribute("aria-label", ta.dataset.cannedLabel || "");
    box.hidden = true;
    ta.insertAdjacentElement("afterend", box);
    ta.setAttribute("aria-autocomplete", "list");
    ta.setAttribute("aria-controls", box.id);
    var items = [];
    var active = -1;

    function close() {
      seq++; // a suggestion still on its way must not open the list again
      box.hidden = true;
      box.textContent = "";
      items = [];
      active = -1;
      ta.removeAttribute("aria-activedescendant");
    }

    function highlight(i) {
      active = i;
      items.forEach(function (it, j) {
        it.el.setAttribute("aria-selected", j === i ? "true" : "false");
      });
      if (items[i]) ta.setAttribute("aria-activedescendant", items[i].el.id);
    }

    function show(rows) {
      box.textContent = "";
      items = [];
      if (!rows.length) {
        var none = document.createElement("li");
        none.className = "muted canned-none";
        none.textContent = ta.dataset.cannedNone || "";
        box.appendChild(none);
      }
      rows.forEach(function (row, i) {
        var li = document.createElement("li");
        li.id = box.id + "-" + row.id;
        li.className = "canned-option";
        li.setAttribute("role", "option");
        li.dataset.cannedId = String(row.id);
        li.dataset.shortcut = row.shortcut;
        var code = document.createElement("bdi");
        code.className = "canned-shortcut";
        code.dir = "ltr";
        code.textContent = "/" + row.shortcut;
        var name = document.createElement("bdi");
        name.className = "canned-name";
        name.textContent = row.name;
        li.appendChild(code);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(name);
        li.addEventListener("mousedown", function (ev) {
          ev.preventDefault(); // keep the textarea's focus and caret
          expand(i);
        });
        box.appendChild(li);
        items.push({ el: li, row: row });
      });
      box.hidden = false;
      highlight(items.length ? 0 : -1);
    }

    function suggest() {
      var tok = tokenAt(ta);
      if (!tok) {
        close();
        return;
      }
      var mine = ++seq;
      var url = ta.dataset.cannedList + "?limit=8&q=" + encodeURIComponent(tok.prefix);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.ok ? r.json() : [];
        })
        .then(function (rows) {
          if (mine === seq && tokenAt(ta)) show(rows);
        })
        .catch(close);
    }

    function expand(i) {
      var item = items[i];
      if (!item) return;
      var mine = ++seq;
      fetch(ta.dataset.cannedExpand, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json",
                   "X-CSRF-Token": csrf() },
        body: JSON.stringify({ canned_id: item.row.id })
      })
        .then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          return r.json();
        })
        .then(function (out) {
          if (mine !== seq) return;
          var tok = tokenAt(ta);
          var start = tok ? tok.start : ta.selectionStart;
          var end = tok ? tok.end : ta.selectionEnd;
          ta.value = ta.value.slice(0, start) + out.text + ta.value.slice(end);
          var caret = start + out.text.length;
          ta.setSelectionRange(caret, caret);
          ta.dataset.cannedLanguage = out.language;
          close();
          ta.focus();
          ta.dispatchEvent(new Event("input", { bubbles: true }));
        })
        .catch(function () {
          close();
          var li = document.createElement("li");
          li.className = "error canned-failed";
          li.setAttribute("role", "alert");
          li.textContent = ta.dataset.cannedFailed || "";
          box.appendChild(li);
          box.hidden = false;
        });
    }

    ta.addEventListener("input", function (ev) {
      if (ev.isTrusted !== false) suggest();
    });
    ta.addEventListener("click", suggest);
    ta.addEventListener("blur", function () {
      window.setTimeout(close, 150);
    });
    ta.addEventListener("keydown", function (ev) {
      if (box.hidden || !items.length) {
        if (ev.key === "Escape") close();
        return;
      }
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        var step = ev.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + items.length) % items.length);
      } else if (ev.key === "Enter" || ev.key === "Tab") {
        if (ev.shiftKey || ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) return;
        ev.preventDefault();
        expand(active < 0 ? 0 : active);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        close();
      }
    });
  }

  function init(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("textarea[data-canned-expand]") : [];
    Array.prototype.forEach.call(found, function (ta) {
      if (ta.dataset.cannedReady) return;
      ta.dataset.cannedReady = "1";
      setup(ta);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
  });
  // Content htmx swaps in (a re-rendered panel) gets the composer behaviour too.
  document.addEventListener("htmx:load", function (ev) {
    init(ev.target || document);
  });
})();
