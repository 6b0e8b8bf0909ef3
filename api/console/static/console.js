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

  var liveUrl = body.getAttribute("data-live-url");
  var ticketId = body.getAttribute("data-ticket-id");
  var reloadOnChange = body.getAttribute("data-reload-on-change");
  var region = document.getElementById("live-region");
  var indicator = document.querySelector(".live-indicator");
  if (!window.EventSource || (!(liveUrl && region) && !reloadOnChange)) { return; }

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
        body.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next event or reconnect refreshes again */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }
  function schedule() {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; refresh(); }, 150);
  }

  var source = new EventSource("/console/events");
  source.addEventListener("hello", function (e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { /* an older server */ }
    setState(data.bridge !== "down");
    // Anything that happened while (re)connecting.
    if (liveUrl && region) { schedule(); }
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
