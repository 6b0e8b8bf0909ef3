// Switchboard console: live updates over server-sent events, and a few keyboard conveniences.
// No inline scripts anywhere (the pages are served with a strict Content-Security-Policy); everything the
// server sends back is already-escaped HTML rendered by its templates.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var body = document.body;

  // Presence: while a console page is open the agent is online (automatic assignment gives work only to them).
  var heartbeatUrl = body.getAttribute("data-heartbeat-url");
  if (heartbeatUrl) {
    var beat = function () {
      fetch(heartbeatUrl, { method: "POST", credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", "X-CSRF-Token": body.getAttribute("data-csrf") || "" } })
        .catch(function () { /* offline for a moment: the next beat tries again */ });
    };
    beat();
    window.setInterval(beat, 25000);
  }

  // A phone: the inbox's filters and bulk actions fold away (unless a filter is in use), the list comes first.
  if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details.fold[data-fold-narrow=fold]").forEach(function (d) { d.open = false; });
  }

  // Submit the language switch as soon as a language is chosen.
  document.querySelectorAll("form.js-autosubmit select").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  // Canned responses: insert the rendered text at the cursor of the reply box.
  var insert = document.getElementById("canned-insert");
  var select = document.getElementById("canned-select");
  var reply = document.getElementById("reply-text");
  function insertCanned() {
    var opt = select.options[select.selectedIndex];
    if (!opt || !opt.value) { return; }
    var text = opt.getAttribute("data-text") || "";
    var start = reply.selectionStart || 0, end = reply.selectionEnd || 0;
    reply.value = reply.value.slice(0, start) + text + reply.value.slice(end);
    reply.focus();
    reply.selectionStart = reply.selectionEnd = start + text.length;
    select.selectedIndex = 0;
  }
  if (insert && select && reply) {
    insert.addEventListener("click", insertCanned);
    select.addEventListener("change", insertCanned);
  }

  // Ctrl/Cmd+Enter sends the reply or note being written.
  document.querySelectorAll("textarea").forEach(function (ta) {
    ta.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && ta.form) { e.preventDefault(); ta.form.requestSubmit(); }
    });
  });

  // "/" focuses the inbox search (unless typing somewhere already).
  document.addEventListener("keydown", function (e) {
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag)) {
      var search = document.querySelector("input[type=search]");
      if (search) { e.preventDefault(); search.focus(); }
    }
  });

  // Destructive forms ask first (deleting an intent, rolling a model back).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });

  // A training job's page: poll the job row until it has finished, then reload to show the report.
  var jobUrl = body.getAttribute("data-job-status-url");
  if (jobUrl) {
    var box = document.getElementById("job-progress");
    var bar = box && box.querySelector("svg.progress");
    var live = document.getElementById("job-live");
    if (live) { live.hidden = false; }
    var pollJob = function () {
      fetch(jobUrl, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { setTimeout(pollJob, 2000); return; }
          var f = Math.max(0, Math.min(1, job.progress || 0));
          if (bar) {
            var width = parseFloat(bar.getAttribute("width")) || 320;
            bar.querySelectorAll("rect")[1].setAttribute("width", String(width * f));
            bar.setAttribute("aria-valuenow", String(Math.round(f * 100)));
          }
          document.getElementById("job-percent").textContent = Math.floor(f * 100) + " %";
          document.getElementById("job-stage").textContent = job.stage || "";
          if (box) { box.setAttribute("data-state", job.state); }
          if (job.finished) { window.location.reload(); return; }
          setTimeout(pollJob, 400);
        })
        .catch(function () { setTimeout(pollJob, 2000); });
    };
    setTimeout(pollJob, 300);
  }

  // SLA countdowns (inbox rows, the ticket's SLA panel): the time left to each due time, ticking; a due time
  // that passes turns the badge red. The texts are the page's own ({n} min, {h} h {m} min, {d} d {h} h).
  function slaText(seconds, holder) {
    var left = Math.abs(seconds), minutes = Math.floor(left / 60), text;
    var tpl = function (name) { return (holder && holder.getAttribute("data-sla-" + name)) || ""; };
    if (minutes < 60) { text = tpl("min").replace("{n}", String(minutes)); }
    else if (minutes < 1440) { text = tpl("hour").replace("{h}", String(Math.floor(minutes / 60))).replace("{m}", String(minutes % 60)); }
    else { text = tpl("day").replace("{d}", String(Math.floor(minutes / 1440))).replace("{h}", String(Math.floor(minutes / 60) % 24)); }
    return (seconds < 0 ? "\u2212" : "") + text;
  }
  function tickSla() {
    document.querySelectorAll("[data-sla-due]").forEach(function (badge) {
      var due = Date.parse(badge.getAttribute("data-sla-due"));
      if (isNaN(due)) { return; }
      var seconds = Math.round((due - Date.now()) / 1000);
      var out = badge.querySelector(".sla-countdown");
      if (out) { out.textContent = slaText(seconds, badge.closest("[data-sla-min]")); }
      if (seconds < 0 && badge.getAttribute("data-sla-state") !== "breached") {
        badge.setAttribute("data-sla-state", "breached");
        badge.className = badge.className.replace(/\bsla-(ok|warning)\b/, "sla-breached");
      }
    });
  }
  tickSla();
  setInterval(tickSla, 15000);


  // --- keyboard: "?" the sheet, j/k through the inbox, a/r/n/s/u on a ticket, "/" canned responses in a reply ---
  function typingIn(el) {
    var tag = (el && el.tagName) || "";
    return /INPUT|TEXTAREA|SELECT/.test(tag) || (el && el.isContentEditable);
  }
  var sheet = document.getElementById("shortcuts");
  var sheetButton = document.getElementById("shortcuts-open");
  function openSheet() {
    if (!sheet || sheet.open) { return; }
    if (sheet.showModal) { sheet.showModal(); } else { sheet.setAttribute("open", ""); }
  }
  if (sheetButton) { sheetButton.addEventListener("click", openSheet); }

  // The inbox's selected row (j/k): remembered across live refreshes by ticket number.
  var selectedTicket = null;
  function inboxRows() { return Array.prototype.slice.call(document.querySelectorAll("table.inbox-table tbody tr[data-ticket]")); }
  function selectRow(row) {
    inboxRows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { selectedTicket = null; return; }
    row.classList.add("selected"); row.setAttribute("aria-selected", "true");
    selectedTicket = row.getAttribute("data-ticket");
    var link = row.querySelector("a.ticket-link");
    if (link) { link.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }
  function moveSelection(step) {
    var rows = inboxRows();
    if (!rows.length) { return; }
    var at = rows.findIndex(function (r) { return r.getAttribute("data-ticket") === selectedTicket; });
    selectRow(rows[at < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.max(0, Math.min(rows.length - 1, at + step))]);
  }
  function focusField(id) {
    var el = document.getElementById(id);
    if (!el) { return false; }
    el.focus(); el.scrollIntoView({ block: "center" });
    return true;
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typingIn(document.activeElement)) { return; }
    if (sheet && sheet.open) { return; }
    var key = e.key, done = true;
    if (key === "?") { openSheet(); }
    else if (key === "j") { moveSelection(1); }
    else if (key === "k") { moveSelection(-1); }
    else if ((key === "o" || key === "Enter") && selectedTicket && document.activeElement === body) {
      window.location.href = "/console/tickets/" + encodeURIComponent(selectedTicket);
    } else if (key === "o" && selectedTicket) { window.location.href = "/console/tickets/" + encodeURIComponent(selectedTicket); }
    else if (key === "x" && selectedTicket) {
      var box = document.querySelector('tr[data-ticket="' + selectedTicket + '"] .bulk-pick');
      if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); } else { done = false; }
    }
    else if (key === "u" && body.getAttribute("data-page") !== "inbox") { window.location.href = "/console/inbox"; }
    else if (key === "a" && document.getElementById("take-button")) { document.getElementById("take-button").click(); }
    else if (key === "r") { done = focusField("reply-text"); }
    else if (key === "n") { done = focusField("note-text"); }
    else if (key === "s") { done = focusField("reply-status"); }
    else { done = false; }
    if (done) { e.preventDefault(); }
  });

  // "/" in the reply box (at its start or after a space) lists the canned responses; typing filters them by
  // shortcut or title, arrows move, Enter or Tab inserts the text in place of "/word", Escape closes.
  var cannedMenu = document.getElementById("canned-menu");
  var replyBox = document.getElementById("reply-text");
  var cannedSelect = document.getElementById("canned-select");
  if (cannedMenu && replyBox && cannedSelect) {
    var canned = Array.prototype.slice.call(cannedSelect.options).filter(function (o) { return o.value; }).map(function (o) {
      return { id: o.value, text: o.getAttribute("data-text") || "", shortcut: o.getAttribute("data-shortcut") || "",
               label: o.textContent };
    });
    var menuAt = -1, menuStart = -1, menuItems = [];
    var closeMenu = function () { cannedMenu.hidden = true; menuStart = -1; menuItems = []; replyBox.removeAttribute("aria-activedescendant"); };
    var slashWord = function () {
      var upto = replyBox.value.slice(0, replyBox.selectionStart || 0);
      var m = /(^|\s)\/([^\s\/]{0,40})$/.exec(upto);
      return m ? { start: upto.length - m[2].length - 1, word: m[2].toLowerCase() } : null;
    };
    var drawMenu = function () {
      cannedMenu.textContent = "";
      if (!menuItems.length) {
        var none = document.createElement("li"); none.className = "muted"; none.textContent = cannedMenu.getAttribute("data-empty");
        cannedMenu.appendChild(none);
      }
      menuItems.forEach(function (c, i) {
        var li = document.createElement("li");
        li.id = "canned-option-" + c.id; li.setAttribute("role", "option"); li.setAttribute("data-canned-id", c.id);
        li.setAttribute("aria-selected", i === menuAt ? "true" : "false");
        li.textContent = c.label;  // text, never markup
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); menuAt = i; pick(); });
        cannedMenu.appendChild(li);
      });
      if (menuAt >= 0 && menuItems[menuAt]) { replyBox.setAttribute("aria-activedescendant", "canned-option-" + menuItems[menuAt].id); }
      cannedMenu.hidden = false;
    };
    var pick = function () {
      var c = menuItems[menuAt], found = slashWord();
      if (!c || !found) { closeMenu(); return; }
      var end = replyBox.selectionStart || 0;
      replyBox.value = replyBox.value.slice(0, found.start) + c.text + replyBox.value.slice(end);
      replyBox.selectionStart = replyBox.selectionEnd = found.start + c.text.length;
      closeMenu(); replyBox.focus();
      replyBox.dispatchEvent(new Event("input", { bubbles: true }));
    };
    replyBox.addEventListener("input", function () {
      var found = slashWord();
      if (!found) { closeMenu(); return; }
      menuStart = found.start;
      menuItems = canned.filter(function (c) {
        return !found.word || c.shortcut.toLowerCase().indexOf(found.word) === 0 || c.label.toLowerCase().indexOf(found.word) >= 0;
      }).slice(0, 8);
      menuAt = menuItems.length ? 0 : -1;
      drawMenu();
    });
    replyBox.addEventListener("keydown", function (e) {
      if (cannedMenu.hidden) { return; }
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (menuItems.length) { menuAt = (menuAt + (e.key === "ArrowDown" ? 1 : menuItems.length - 1)) % menuItems.length; drawMenu(); }
      } else if ((e.key === "Enter" || e.key === "Tab") && !e.ctrlKey && !e.metaKey && menuItems.length) {
        e.preventDefault(); e.stopImmediatePropagation(); pick();
      } else if (e.key === "Escape") { e.preventDefault(); closeMenu(); }
    });
    replyBox.addEventListener("blur", function () { setTimeout(closeMenu, 150); });
  }

  // --- bulk actions (supervisors): ticks survive live refreshes; "select all" ticks the page ---
  var bulkForm = document.getElementById("bulk-form");
  var picked = {};
  function bulkCount() {
    var n = Object.keys(picked).length, out = document.getElementById("bulk-count");
    if (out) { out.textContent = n ? String(n) : ""; }
    body.setAttribute("data-picked", String(n));
  }
  function restorePicks() {
    document.querySelectorAll(".bulk-pick").forEach(function (box) { box.checked = !!picked[box.value]; });
    var all = document.getElementById("bulk-all"), boxes = document.querySelectorAll(".bulk-pick");
    if (all) { all.checked = boxes.length > 0 && Array.prototype.every.call(boxes, function (b) { return b.checked; }); }
    bulkCount();
  }
  if (bulkForm) {
    document.addEventListener("change", function (e) {
      var t = e.target;
      if (t.classList && t.classList.contains("bulk-pick")) {
        if (t.checked) { picked[t.value] = true; } else { delete picked[t.value]; }
        restorePicks();
      } else if (t.id === "bulk-all") {
        document.querySelectorAll(".bulk-pick").forEach(function (box) {
          box.checked = t.checked;
          if (t.checked) { picked[box.value] = true; } else { delete picked[box.value]; }
        });
        bulkCount();
      }
    });
    bulkForm.addEventListener("submit", function (e) {
      // Ticks of rows a live refresh moved off the page still count: they go as hidden fields.
      bulkForm.querySelectorAll("input.bulk-hidden").forEach(function (n) { n.remove(); });
      var shown = {};
      document.querySelectorAll(".bulk-pick:checked").forEach(function (b) { shown[b.value] = true; });
      Object.keys(picked).forEach(function (number) {
        if (shown[number]) { return; }
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "ticket"; hidden.value = number; hidden.className = "bulk-hidden";
        bulkForm.appendChild(hidden);
      });
      if (!Object.keys(picked).length) {
        e.preventDefault();
        var out = document.getElementById("bulk-count");
        if (out) { out.textContent = bulkForm.getAttribute("data-none-text"); }
      }
    });
  }

  // --- notifications: a customer wrote on my ticket or in my queue (the server's "notify" event) ---
  // While the page is hidden or not focused, the title counts the tickets with news, an optional sound plays and,
  // when allowed, a desktop notification says which ticket; looking at the page again clears the count.
  var baseTitle = document.title, news = {};
  var controls = document.getElementById("notify-controls");
  var store = {
    get: function (k) { try { return window.localStorage.getItem("switchboard.console." + k); } catch (err) { return null; } },
    set: function (k, v) { try { window.localStorage.setItem("switchboard.console." + k, v); } catch (err) { /* private mode */ } }
  };
  var notifyButton = document.getElementById("notify-toggle"), soundButton = document.getElementById("sound-toggle");
  var audio = null;
  function showToggles() {
    var desktop = store.get("desktop") === "on" && window.Notification && Notification.permission === "granted";
    if (notifyButton) { notifyButton.setAttribute("aria-pressed", desktop ? "true" : "false"); }
    if (soundButton) { soundButton.setAttribute("aria-pressed", store.get("sound") === "on" ? "true" : "false"); }
  }
  function showNewsCount() {
    var n = Object.keys(news).length;
    document.title = n ? "(" + n + ") " + baseTitle : baseTitle;
    body.setAttribute("data-news", String(n));
  }
  function looking() { return document.visibilityState === "visible" && document.hasFocus(); }
  function clearNews() { if (looking()) { news = {}; showNewsCount(); } }
  window.addEventListener("focus", clearNews);
  document.addEventListener("visibilitychange", clearNews);
  if (notifyButton) {
    // Permission is asked only here, on a click (browsers refuse a request that no gesture started).
    notifyButton.addEventListener("click", function () {
      if (!window.Notification) { return; }
      if (store.get("desktop") === "on" && Notification.permission === "granted") { store.set("desktop", "off"); showToggles(); return; }
      Promise.resolve(Notification.requestPermission()).then(function (answer) {
        store.set("desktop", answer === "granted" ? "on" : "off");
        if (answer === "denied" && controls) { notifyButton.title = controls.getAttribute("data-denied"); }
        showToggles();
      });
    });
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      var on = store.get("sound") !== "on";
      store.set("sound", on ? "on" : "off"); showToggles();
      if (on) { beep(); }  // the click unlocks audio, and lets the agent hear what it will sound like
    });
  }
  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    try {
      audio = audio || new Ctx();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.08;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.15);
      body.setAttribute("data-sounds", String(Number(body.getAttribute("data-sounds") || 0) + 1));
    } catch (err) { /* no audio device: the title count still tells */ }
  }
  function onNews(data) {
    if (looking() && (!ticketId || String(data.ticket_id) === ticketId)) { return; }
    if (looking() && body.getAttribute("data-page") === "inbox") { return; }  // the list shows it already
    var number = data.number || String(data.ticket_id);
    news[number] = true; showNewsCount();
    if (store.get("sound") === "on") { beep(); }
    if (store.get("desktop") === "on" && window.Notification && Notification.permission === "granted" && controls) {
      var text = controls.getAttribute(data.kind === "assigned" ? "data-text-given" : "data-text").replace("{number}", number);
      try {
        var shown = new Notification(text, { tag: "switchboard-" + number });
        shown.onclick = function () { window.focus(); window.location.href = "/console/tickets/" + encodeURIComponent(number); };
      } catch (err) { /* some browsers allow notifications only from a service worker */ }
    }
  }
  showToggles();

  var liveUrl = body.getAttribute("data-live-url");
  var ticketId = body.getAttribute("data-ticket-id");
  var reloadOnChange = body.getAttribute("data-reload-on-change");
  var region = document.getElementById("live-region");
  var indicator = document.querySelector(".live-indicator");
  // Every signed-in page listens (notifications); only pages with a live part re-fetch it.
  if (!window.EventSource || (!(liveUrl && region) && !reloadOnChange && !heartbeatUrl)) { return; }

  function setState(live) {
    if (!indicator) { return; }
    indicator.setAttribute("data-live-state", live ? "live" : "offline");
    indicator.textContent = indicator.getAttribute(live ? "data-label-live" : "data-label-offline");
  }

  var pending = null, inFlight = false, again = false;
  function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch(liveUrl, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        // Keep open <details> (an intent correction being typed) open across the refresh.
        var open = Array.prototype.map.call(region.querySelectorAll("details[open]"), function (d) {
          var li = d.closest("[data-message-id]");
          return (li ? li.getAttribute("data-message-id") : "") + ":" + d.className;
        });
        region.innerHTML = html;
        open.forEach(function (key) {
          var parts = key.split(":");
          var li = region.querySelector('[data-message-id="' + parts[0] + '"]');
          var d = li && li.querySelector("details." + parts[1].split(" ")[0]);
          if (d) { d.open = true; }
        });
        restorePicks();
        var kept = selectedTicket && document.querySelector('table.inbox-table tr[data-ticket="' + selectedTicket + '"]');
        if (kept) { kept.classList.add("selected"); kept.setAttribute("aria-selected", "true"); }
        body.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next event or reconnect refreshes again */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }
  function schedule() {
    if (!liveUrl || !region) { return; }
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; refresh(); }, 150);
  }

  // Who else is on this ticket. The page says "viewing" when opened, every 15 s while visible, and "left" when
  // hidden or closed; "typing" (of the reply, of the note) at most every 3 s each while its user types. Nothing
  // is stored: a viewer not heard from for 40 s is forgotten, a typist after 6 s. (A user with two tabs on one
  // ticket who closes one may vanish from the others' pages until the other tab's next "viewing".)
  var presenceBox = ticketId ? document.getElementById("presence") : null;
  var presenceUrl = presenceBox && presenceBox.getAttribute("data-url");
  var csrf = body.getAttribute("data-csrf") || "";
  var others = {};  // user id -> {name, until, typing: "reply"|"note"|null, typingUntil}
  var lastTyping = { reply: 0, note: 0 }, viewingTimer = null;
  function announce(state, what) {
    if (!presenceUrl) { return; }
    var form = new FormData();
    form.append("csrf_token", csrf); form.append("state", state);
    if (what) { form.append("what", what); }
    if (state === "left" && navigator.sendBeacon) { navigator.sendBeacon(presenceUrl, form); return; }
    fetch(presenceUrl, { method: "POST", body: form, credentials: "same-origin", keepalive: state === "left",
                         headers: { "X-Requested-With": "fetch" } }).catch(function () { /* the next one tells */ });
  }
  function announceViewing() {
    if (document.visibilityState === "hidden") { return; }
    announce("viewing");
  }
  function renderPresence() {
    if (!presenceBox) { return; }
    var now = Date.now(), items = [];
    Object.keys(others).forEach(function (id) {
      var o = others[id];
      if (o.until < now) { delete others[id]; return; }
      var typing = o.typing && o.typingUntil >= now ? o.typing : null;
      var text = presenceBox.getAttribute(typing ? "data-text-" + typing : "data-text-viewing") || "{name}";
      items.push({ id: id, text: text.replace("{name}", o.name), state: typing ? "typing" : "viewing" });
    });
    presenceBox.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.setAttribute("data-user-id", item.id); li.setAttribute("data-state", item.state);
      li.textContent = item.text;  // names are text, never markup
      presenceBox.appendChild(li);
    });
    presenceBox.hidden = items.length === 0;
  }
  if (presenceUrl) {
    // The first "viewing" goes out once this page's stream is open ("hello"), so it hears the answers.
    viewingTimer = setInterval(function () { announceViewing(); renderPresence(); }, 15000);
    setInterval(renderPresence, 1000);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { announce("left"); } else { announceViewing(); }
    });
    window.addEventListener("pagehide", function () { clearInterval(viewingTimer); announce("left"); });
    [["reply-text", "reply"], ["note-text", "note"]].forEach(function (pair) {
      var box = document.getElementById(pair[0]);
      if (!box) { return; }
      box.addEventListener("input", function () {
        if (Date.now() - lastTyping[pair[1]] < 3000) { return; }
        lastTyping[pair[1]] = Date.now(); announce("typing", pair[1]);
      });
    });
  }

  var source = new EventSource("/console/events" + (presenceUrl ? "?ticket=" + encodeURIComponent(ticketId) : ""));
  source.addEventListener("hello", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { /* an older server */ }
    setState(data.bridge !== "down");
    // Anything that happened while (re)connecting.
    if (liveUrl && region) { schedule(); }
    // Now this page hears the others: say it is here (again, after a reconnect: others may have come meanwhile).
    if (presenceUrl) { announceViewing(); }
  });
  source.addEventListener("notify", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    onNews(data);
  });
  source.addEventListener("presence", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    var id = String(data.user_id), now = Date.now();
    if (data.state === "left") { delete others[id]; renderPresence(); return; }
    var known = others[id];
    var o = known || { name: data.name, typing: null, typingUntil: 0 };
    o.name = data.name || o.name; o.until = now + 40000;
    if (data.state === "typing") { o.typing = data.what; o.typingUntil = now + 6000; }
    others[id] = o;
    renderPresence();
    // A newcomer: say this page is here too, at once, rather than at its next 15 s turn (they know this page
    // then, so this never goes back and forth).
    if (!known && data.state === "viewing") { announceViewing(); }
  });
  function reloadBoard() {
    // The board has no form in progress worth keeping unless one has focus.
    var active = document.activeElement;
    if (!active || active === body || !active.closest("form")) { clearTimeout(pending); pending = setTimeout(function () { window.location.reload(); }, 1500); }
  }
  source.addEventListener("change", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    if (reloadOnChange) { reloadBoard(); return; }
    if (ticketId && String(data.ticket_id) !== ticketId) { return; }
    schedule();
  });
  // A rising-problem alert was raised or resolved (supervisors only): the board shows the active ones.
  source.addEventListener("problem", function () {
    if (reloadOnChange) { reloadBoard(); }
  });
  // Someone took a ticket this agent held (a take-over or a reassignment): say so on whatever page is open.
  source.addEventListener("takeover", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    var template = body.getAttribute("data-takeover-text") || "{number}";
    var notice = document.createElement("div");
    notice.className = "flash flash-error takeover-notice";
    notice.setAttribute("role", "alert");
    notice.textContent = template.replace("{number}", data.number || "").replace("{name}", data.assignee_name || "—");
    var main = document.getElementById("main");
    if (main) { main.parentNode.insertBefore(notice, main); }
  });
  // An SLA warning or breach on a ticket this user holds, or in the queue they supervise: a notice on any page.
  source.addEventListener("sla", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    var targets = {};
    try { targets = JSON.parse(body.getAttribute("data-sla-targets") || "{}"); } catch (err) { /* keep keys */ }
    var template = body.getAttribute(data.level === "breach" ? "data-sla-breach-text" : "data-sla-warning-text") || "{number}";
    var notice = document.createElement("div");
    notice.className = "flash sla-notice sla-notice-" + (data.level === "breach" ? "breach" : "warning");
    notice.setAttribute("role", "alert");
    notice.setAttribute("data-ticket", data.number || "");
    notice.textContent = template.replace("{number}", data.number || "").replace("{target}", targets[data.target] || data.target || "");
    var main = document.getElementById("main");
    if (main) { main.parentNode.insertBefore(notice, main); }
    setTimeout(function () { if (notice.parentNode) { notice.parentNode.removeChild(notice); } }, 30000);
  });
  // Changes may have been missed (the servers' live bridge was down, or is): refresh whatever is shown.
  source.addEventListener("resync", function () {
    body.setAttribute("data-live-resyncs", String(Number(body.getAttribute("data-live-resyncs") || 0) + 1));
    if (reloadOnChange) { reloadBoard(); return; }
    if (liveUrl && region) { schedule(); }
  });
  source.addEventListener("bridge", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    setState(data.state !== "down");
  });
  source.addEventListener("error", function () { setState(false); });
})();
