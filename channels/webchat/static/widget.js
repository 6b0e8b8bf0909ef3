/*
 * Switchboard web chat widget. Embed with one tag, no build step:
 *   <script src="https://support.example/channels/webchat/widget.js" async
 *           data-lang="ru|en" data-title="Support"
 *           data-identifier="user-42" data-identifier-hash="<hex HMAC-SHA256(site secret, identifier)>"
 *           data-name="Ivan" data-email="ivan@example.com"></script>
 * Every data- attribute is optional. Messages are sent with a client id and kept until the server acks them,
 * so a dropped connection or a page reload never loses or duplicates a message. Answers that reach the page
 * late (the server catches up after an outage) take their place in the conversation by id, and a reconnect
 * asks for everything after the server's last "sync" cursor, so a message skipped live is fetched then.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__switchboardWidget) { return; }
  window.__switchboardWidget = true;
  var data = script.dataset || {};
  var origin = new URL(script.src, location.href).origin;
  var wsUrl = origin.replace(/^http/, "ws") + "/channels/webchat/ws";
  var lang = (data.lang || navigator.language || "en").toLowerCase().indexOf("ru") === 0 ? "ru" : "en";
  // The server writes the texts of every language here from its message catalog (channels/webchat/widget.py).
  var CATALOG = {};
  var T = CATALOG[lang] || CATALOG.en || {};
  var KEY = "switchboard.webchat." + origin + "." + (data.identifier || "anon");
  var store = {
    get: function (k, d) { try { var v = localStorage.getItem(KEY + "." + k); return v ? JSON.parse(v) : d; } catch (e) { return d; } },
    set: function (k, v) { try { localStorage.setItem(KEY + "." + k, JSON.stringify(v)); } catch (e) { /* private mode */ } }
  };

  var css = [
    ".sbw-btn{position:fixed;right:24px;bottom:24px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;",
    "background:#0b5cad;color:#fff;font:600 15px/1 system-ui,sans-serif;box-shadow:0 6px 20px rgba(0,0,0,.25);cursor:pointer}",
    ".sbw-panel{position:fixed;right:24px;bottom:24px;z-index:2147483001;width:360px;max-width:calc(100vw - 32px);",
    "height:520px;max-height:calc(100vh - 48px);display:none;flex-direction:column;background:#fff;border-radius:14px;",
    "box-shadow:0 12px 40px rgba(0,0,0,.3);overflow:hidden;font:14px/1.4 system-ui,sans-serif;color:#1d2733}",
    ".sbw-panel.sbw-open{display:flex}",
    ".sbw-file{font-size:12px;opacity:.8;margin-top:4px;overflow-wrap:anywhere}",
    ".sbw-head{background:#0b5cad;color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}",
    ".sbw-head b{flex:1;font-size:15px}.sbw-dot{width:9px;height:9px;border-radius:50%;background:#9aa5b1}",
    ".sbw-dot.sbw-on{background:#3ddc84}.sbw-x{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}",
    ".sbw-notice{background:#fff4d6;color:#6b4e00;padding:8px 12px;font-size:13px;display:none}",
    ".sbw-log{flex:1;overflow-y:auto;padding:12px;background:#f4f6f9;display:flex;flex-direction:column;gap:8px}",
    ".sbw-msg{max-width:80%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".sbw-customer{align-self:flex-end;background:#0b5cad;color:#fff;border-bottom-right-radius:4px}",
    ".sbw-customer.sbw-pending{opacity:.6}",
    ".sbw-bot,.sbw-agent,.sbw-system{align-self:flex-start;background:#fff;border:1px solid #dde3ea;border-bottom-left-radius:4px}",
    ".sbw-agent{border-color:#7fb3e6}.sbw-who{display:block;font-size:11px;color:#6b7785;margin-bottom:2px}",
    ".sbw-quick{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start}",
    ".sbw-quick button{border:1px solid #0b5cad;background:#fff;color:#0b5cad;border-radius:14px;padding:5px 11px;cursor:pointer}",
    ".sbw-stars button{border:0;background:none;color:#c98a00;font-size:24px;padding:0 2px}",
    ".sbw-stars button:hover,.sbw-stars button:hover~button{color:#c98a00}",
    ".sbw-typing{font-size:12px;color:#6b7785;padding:0 14px 4px;min-height:16px;background:#f4f6f9}",
    ".sbw-form{display:flex;border-top:1px solid #dde3ea}",
    ".sbw-form textarea{flex:1;border:0;padding:10px;resize:none;font:inherit;height:44px;outline:none}",
    ".sbw-form button{border:0;background:#fff;color:#0b5cad;font-weight:600;padding:0 14px;cursor:pointer}",
    ".sbw-err{align-self:center;font-size:12px;color:#b3261e}",
    // Unread replies while the chat is closed: a count on the button and the latest one's first words above it.
    ".sbw-badge{display:none;position:absolute;top:-6px;right:-6px;min-width:22px;height:22px;padding:0 6px;box-sizing:border-box;",
    "border-radius:11px;background:#d93025;color:#fff;font:700 12px/22px system-ui,sans-serif;text-align:center}",
    ".sbw-badge.sbw-has{display:block}",
    ".sbw-preview{position:fixed;right:24px;bottom:84px;z-index:2147483000;max-width:280px;display:none;text-align:left;",
    "background:#fff;color:#1d2733;border:1px solid #dde3ea;border-radius:12px;padding:10px 12px;cursor:pointer;",
    "box-shadow:0 6px 20px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif;overflow-wrap:anywhere}",
    ".sbw-preview.sbw-has{display:block}.sbw-preview .sbw-who{margin-bottom:2px}",
    ".sbw-btn:focus-visible,.sbw-preview:focus-visible,.sbw-panel button:focus-visible,.sbw-form textarea:focus-visible",
    "{outline:3px solid #f5a623;outline-offset:2px}",
    // A phone: the open chat takes the whole screen (no clipped floating card), the button stays inside it.
    "@media (max-width:600px){.sbw-panel{top:0;left:0;right:0;bottom:0;width:100%;max-width:none;height:100%;",
    "max-height:none;border-radius:0}.sbw-btn{right:16px;bottom:16px}.sbw-preview{right:16px;left:16px;bottom:76px;",
    "max-width:none}.sbw-form textarea{font-size:16px}}"
  ].join("");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  var style = el("style"); style.textContent = css; document.head.appendChild(style);
  var button = el("button", "sbw-btn", T.open); button.type = "button";
  button.setAttribute("aria-haspopup", "dialog"); button.setAttribute("aria-expanded", "false");
  var badge = el("span", "sbw-badge"); badge.setAttribute("aria-hidden", "true"); button.appendChild(badge);
  var preview = el("button", "sbw-preview"); preview.type = "button";
  var panel = el("div", "sbw-panel"); panel.setAttribute("role", "dialog"); panel.setAttribute("aria-label", data.title || T.title);
  panel.id = "sbw-panel"; button.setAttribute("aria-controls", panel.id);
  var head = el("div", "sbw-head"); var dot = el("span", "sbw-dot"); dot.title = T.offline;
  var title = el("b", "", data.title || T.title); var closeBtn = el("button", "sbw-x", "×"); closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", T.close);
  head.appendChild(dot); head.appendChild(title); head.appendChild(closeBtn);
  var notice = el("div", "sbw-notice");
  var log = el("div", "sbw-log"); log.setAttribute("aria-live", "polite");
  var typing = el("div", "sbw-typing");
  var form = el("form", "sbw-form"); var input = el("textarea"); input.placeholder = T.placeholder; input.maxLength = 4000;
  input.setAttribute("aria-label", T.placeholder);
  var send = el("button", "", T.send); send.type = "submit";
  form.appendChild(input); form.appendChild(send);
  [head, notice, log, typing, form].forEach(function (n) { panel.appendChild(n); });
  document.body.appendChild(preview); document.body.appendChild(button); document.body.appendChild(panel);

  var shown = {};        // server message id -> true
  var byClient = {};     // client id -> bubble element
  var pending = store.get("pending", []);  // [{client_id, type, text, payload, title}] not yet acked
  var lastSeen = 0;      // highest server id shown on this page
  var synced = 0;        // the server has sent every message up to this id (its "sync" cursor)
  var ws = null, ready = false, retry = 0, waitSeconds = 0, typingTimer = null, quickBox = null;
  var isOpen = false;
  // Replies the visitor has not seen: read up to `readUpTo` (kept across reloads); each later bot or agent message
  // that arrives while the chat is closed counts, the latest one is previewed.
  var readUpTo = store.get("read", 0);
  var unread = {};       // server message id -> true
  var latestUnread = null;

  function showUnread() {
    var n = Object.keys(unread).length;
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.classList.toggle("sbw-has", n > 0);
    button.setAttribute("aria-label", n ? T.open + ". " + T.unread.replace("{n}", n) : T.open);
    preview.textContent = "";
    if (n && latestUnread) {
      preview.appendChild(el("span", "sbw-who", latestUnread.who));
      var text = latestUnread.text.replace(/\s+/g, " ").trim();
      preview.appendChild(document.createTextNode(text.length > 90 ? text.slice(0, 89) + "\u2026" : text));
      preview.setAttribute("aria-label", T.unread.replace("{n}", n) + ". " + latestUnread.who + ": " + text);
    }
    preview.classList.toggle("sbw-has", n > 0 && !isOpen);
  }
  function markRead() {
    if (lastSeen > readUpTo) { readUpTo = lastSeen; store.set("read", readUpTo); }
    unread = {}; latestUnread = null; showUnread();
  }
  function noteUnread(m, who) {
    if (isOpen) { markRead(); return; }
    if (m.author === "customer" || m.id <= readUpTo) { return; }
    unread[m.id] = true;
    if (!latestUnread || m.id >= latestUnread.id) { latestUnread = { id: m.id, who: who, text: m.text || "" }; }
    showUnread();
  }

  function scroll() { log.scrollTop = log.scrollHeight; }
  // "Anna is typing…": shown while the agent types; the console repeats it every few seconds while they do, so
  // it goes away by itself when no repeat comes (the agent stopped, or their page closed).
  var typingShown = null;
  function showTyping(active, name) {
    if (typingShown) { clearTimeout(typingShown); typingShown = null; }
    typing.textContent = active ? (name ? T.typing_named.replace("{name}", name) : T.typing) : "";
    if (active) { typingShown = setTimeout(function () { typing.textContent = ""; typingShown = null; }, 8000); }
  }
  function clearQuick() { if (quickBox) { quickBox.remove(); quickBox = null; } }

  function bubble(author, text, who) {
    var node = el("div", "sbw-msg sbw-" + author);
    if (who) { node.appendChild(el("span", "sbw-who", who)); }
    node.appendChild(document.createTextNode(text));
    log.appendChild(node); scroll();
    return node;
  }

  // A message older than one already shown (a catch-up) goes before the first later one.
  function place(node, id) {
    var later = null;
    log.querySelectorAll(".sbw-msg[data-id]").forEach(function (n) {
      if (!later && n !== node && Number(n.dataset.id) > id) { later = n; }
    });
    if (later) { log.insertBefore(node, later); }
  }

  function render(m, live) {
    if (shown[m.id]) { return; }
    shown[m.id] = true;
    var older = m.id < lastSeen;
    if (m.id > lastSeen) { lastSeen = m.id; }
    if (m.client_id && byClient[m.client_id]) {
      byClient[m.client_id].classList.remove("sbw-pending");
      byClient[m.client_id].dataset.id = m.id;
      return;
    }
    // An agent's reply carries the agent's display name (author_name); an older server sends none.
    var who = m.author === "agent" ? (m.author_name || T.agent) : (m.author === "bot" ? T.bot : "");
    var node = bubble(m.author, m.text, who);
    node.dataset.id = m.id;
    if (older) { place(node, m.id); }
    // Files are shown by name and size only (text nodes, never markup); stored files are for agents only.
    (m.attachments || []).forEach(function (a) {
      var label = "\uD83D\uDCCE " + (a.filename || "file") + (a.size ? " (" + Math.max(1, Math.round(a.size / 1024)) + " KB)" : "");
      node.appendChild(el("div", "sbw-file", label));
    });
    if (m.client_id) { byClient[m.client_id] = node; }
    noteUnread(m, who);
    if (m.author !== "customer" && !older) { showTyping(false); clearQuick(); }
    if (live !== false && !older) { showQuick(m); }
  }

  // The buttons of the bot's latest answer, as long as nobody wrote after it (live, and again after a reload).
  function showQuick(m) {
    clearQuick();
    if (!m || m.author === "customer" || !m.quick_replies || !m.quick_replies.length) { return; }
    quickBox = el("div", m.csat ? "sbw-quick sbw-stars" : "sbw-quick");
    m.quick_replies.forEach(function (q, i) {
      // A satisfaction survey: five stars, the n-th sends "/csat n" and says it as n stars.
      var title = m.csat ? new Array(i + 2).join("\u2605") : q.title;
      var b = el("button", "", m.csat ? "\u2606" : q.title); b.type = "button";
      if (m.csat) { b.setAttribute("aria-label", q.title + "/5"); b.setAttribute("data-score", q.title); }
      b.addEventListener("click", function () { clearQuick(); submit({ type: "quick_reply", payload: q.payload, title: title }, title); });
      quickBox.appendChild(b);
    });
    log.appendChild(quickBox); scroll();
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID().replace(/-/g, ""); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function transmit(item) {
    if (!ws || !ready || ws.readyState !== 1) { return; }
    var frame = { type: item.type, client_id: item.client_id };
    if (item.type === "quick_reply") { frame.payload = item.payload; frame.title = item.title; } else { frame.text = item.text; }
    ws.send(JSON.stringify(frame));
  }

  function submit(item, text) {
    item.client_id = newId();
    item.text = item.text || text;
    pending.push(item); store.set("pending", pending);
    var node = bubble("customer", text); node.classList.add("sbw-pending");
    byClient[item.client_id] = node;
    transmit(item);
  }

  function acked(clientId, id) {
    pending = pending.filter(function (p) { return p.client_id !== clientId; });
    store.set("pending", pending);
    var node = byClient[clientId];
    if (node) { node.classList.remove("sbw-pending"); node.dataset.id = id; }
    shown[id] = true;
    if (id > lastSeen) { lastSeen = id; }
  }

  function connect() {
    ready = false;
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      var auth = { type: "auth", lang: lang, last_seen_id: synced || lastSeen };
      if (data.identifier) { auth.identifier = data.identifier; auth.identifier_hash = data.identifierHash || ""; }
      else { var tok = store.get("token", null); if (tok) { auth.token = tok; } }
      if (data.name) { auth.name = data.name; }
      if (data.email) { auth.email = data.email; }
      // Where the visitor opened the chat, for a readable name in the console: host and path only (a query
      // string or fragment may hold personal data), and the browser's time zone for the hours of notices.
      var page = (location.host + location.pathname).slice(0, 200);
      if (location.host) { auth.page = page; }
      try { var tz = Intl.DateTimeFormat().resolvedOptions().timeZone; if (tz) { auth.tz = tz; } } catch (e) { /* no Intl */ }
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = function (event) {
      var f; try { f = JSON.parse(event.data); } catch (e) { return; }
      if (f.type === "ready") {
        ready = true; retry = 0;
        if (f.session_token) { store.set("token", f.session_token); }
        dot.classList.toggle("sbw-on", !!f.online);
        notice.textContent = f.notice || ""; notice.style.display = f.notice ? "block" : "none";
      } else if (f.type === "history") {
        var page = f.messages || [];
        page.forEach(function (m) { render(m, false); });
        if (f.cursor > synced) { synced = f.cursor; }
        if (page.length && !pending.length && f.complete !== false) { showQuick(page[page.length - 1]); }
        if (!lastSeen && !pending.length && !(f.messages || []).length) { bubble("system", T.hello); }
        // Whatever the server has not acknowledged yet goes again, with the same client ids.
        pending.forEach(function (p) {
          if (!byClient[p.client_id]) { var n = bubble("customer", p.text || p.title); n.classList.add("sbw-pending"); byClient[p.client_id] = n; }
          transmit(p);
        });
        if (f.complete === false && page.length) { ws.send(JSON.stringify({ type: "history", after: page[page.length - 1].id })); }
      } else if (f.type === "ack") {
        acked(f.client_id, f.id);
      } else if (f.type === "message") {
        render(f, true);
      } else if (f.type === "sync") {
        if (f.cursor > synced) { synced = f.cursor; }
      } else if (f.type === "typing") {
        showTyping(f.active, f.author);
      } else if (f.type === "error") {
        if (f.code === "too_many_connections" || (f.code === "rate_limited" && !f.client_id)) {
          // The server closes this socket next; say why in the visitor's language and wait as asked.
          waitSeconds = Math.max(1, f.retry_after || 1);
          var b = el("div", "sbw-err", f.code === "too_many_connections" ? T.busy.replace("{n}", waitSeconds) : T.flood);
          b.setAttribute("data-code", f.code); log.appendChild(b); scroll();
        } else if (f.code === "rate_limited" && f.client_id) {
          var p = pending.filter(function (x) { return x.client_id === f.client_id; })[0];
          if (p) { setTimeout(function () { transmit(p); }, Math.max(500, (f.retry_after || 1) * 1000)); }
        } else if (f.client_id) {
          pending = pending.filter(function (x) { return x.client_id !== f.client_id; }); store.set("pending", pending);
          var e = el("div", "sbw-err", T.error + f.message); log.appendChild(e); scroll();
        } else { var e2 = el("div", "sbw-err", f.message); log.appendChild(e2); scroll(); }
      }
    };
    ws.onclose = function (event) {
      ready = false; dot.classList.remove("sbw-on");
      if (event.code === 4403 || event.code === 4401) { return; }  // a wrong identity: retrying cannot help
      retry = Math.min(retry + 1, 6);
      var delay = Math.min(30000, 500 * Math.pow(2, retry)) * (0.5 + Math.random() / 2);
      if (waitSeconds) { delay = Math.max(delay, waitSeconds * 1000 * (1 + Math.random() / 4)); waitSeconds = 0; }
      setTimeout(connect, delay);
    };
  }

  function open(state, fromKeyboard) {
    var was = isOpen;
    isOpen = state;
    panel.classList.toggle("sbw-open", state); button.style.display = state ? "none" : "block";
    button.setAttribute("aria-expanded", state ? "true" : "false");
    store.set("open", state);
    if (state) { markRead(); input.focus(); scroll(); } else { showUnread(); }
    if (!state && was && fromKeyboard !== false) { button.focus(); }
  }
  button.addEventListener("click", function () { open(true); });
  preview.addEventListener("click", function () { open(true); });
  closeBtn.addEventListener("click", function () { open(false); });
  // Keyboard: Escape closes and gives the focus back to the button; Tab stays inside the open chat.
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); open(false); return; }
    if (event.key !== "Tab") { return; }
    var items = Array.prototype.filter.call(panel.querySelectorAll("button, textarea"), function (n) {
      return !n.disabled && n.offsetParent !== null;
    });
    if (!items.length) { return; }
    var first = items[0], last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim(); if (!text) { return; }
    input.value = ""; clearQuick(); submit({ type: "message" }, text);
    if (ws && ready) { ws.send(JSON.stringify({ type: "typing", active: false })); }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });
  input.addEventListener("input", function () {
    if (!ws || !ready || typingTimer) { return; }
    ws.send(JSON.stringify({ type: "typing", active: true }));
    typingTimer = setTimeout(function () { typingTimer = null; }, 3000);
  });
  window.addEventListener("online", function () { if (!ws || ws.readyState > 1) { connect(); } });
  window.SwitchboardChat = { open: function () { open(true); }, close: function () { open(false); } };
  open(!!store.get("open", false) || data.open === "true", false);
  connect();
})();
