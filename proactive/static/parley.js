/* Parley snippet: behaviour events and the invitation widget, hardened for hostile pages (docs/snippet.md). */
(function (w, d) {
  "use strict";
  try {
  var me = d.currentScript, old = w.parley, O = Object, D = Date, loc = location, u;
  if (!(me && me.dataset && me.dataset.site)) me = d.querySelector("script[data-site]");
  if (!me || old && old.loaded) return;
  var cfg = me.dataset, site = cfg.site, base = /^[^:]+:\/\/[^/?#]+/.exec(me.src)[0], url = base + "/v1/collect";
  var ls, memVid, nav = navigator, T = "parley-invitation";
  var queue = [], outbox = [], sending = 0, xhr = 0, parked = O.create(null), handlers = O.create(null), shown = O.create(null);
  var lastActive = now(), idleSent = 0, maxScroll = 0, es, flushTimer, viewed, warned;
  var consent = cfg.consent !== "required";
  var privacy = cfg.dnt !== "ignore" && (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl);
  try { ls = w.localStorage; } catch (e) {}

  function guard(f) { return function () { try { return f.apply(this, arguments); } catch (e) {} }; }
  function each(a, f) { for (var i = 0; a && i < a.length; i++) f(a[i]); }
  function on(t, type, f) { t.addEventListener(type, guard(f), { passive: true }); }
  function now() { return +new D(); }
  function rid() { return (crypto.randomUUID ? crypto.randomUUID() : now().toString(36) + Math.random().toString(36).slice(2)); }
  var tab = rid();
  function vid() { if (!memVid) try { memVid = ls.getItem("parley_vid") || rid(); ls.setItem("parley_vid", memVid); } catch (e) { memVid = memVid || rid(); } return memVid; }
  function active() { return consent && !privacy; }

  function plain(p) {
    var o = { toJSON: u }, k, v;
    try { for (k in p) { v = p[k]; if (v === null || /^(string|number|boolean)$/.test(typeof v)) o[k] = v; } } catch (e) {}
    return o;
  }
  function here() {
    var q = "", m, r = /[?&](utm_\w+=[^&#]*)/g;
    while ((m = r.exec(loc.search))) q += (q ? "&" : "?") + m[1];
    return loc.protocol + "//" + loc.host + loc.pathname + q;
  }
  function track(type, props, name, page) {
    if (!active()) return;
    var e = { toJSON: u, type: type, at: now(), url: here(), props: plain(props), name: name };
    if (page) { e.title = d.title; e.referrer = /^[^?#]*/.exec(d.referrer)[0]; }
    queue.push(e);
    if (queue.length >= 10) flush(); else if (!flushTimer) flushTimer = setTimeout(guard(flush), 2000);
  }

  function payload(b) {
    var s = "", i, e = b.events;
    for (i = 0; i < e.length; i++) s += (i ? "," : "") + JSON.stringify(e[i]);
    return '{"events":[' + s + "]," + JSON.stringify({ toJSON: u, site_key: site, visitor_id: vid(), session_id: tab, tab_id: tab, batch_id: b.id }).slice(1);
  }

  function post(body, done, fail) {
    if (!xhr) try {
      return fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit" })
        .then(function (r) { return r.json().catch(Object).then(function (j) { done(r.status, j); }); }).then(null, fail);
    } catch (e) {}
    try {
      var x = new XMLHttpRequest();
      x.open("POST", url); x.responseType = "json"; x.onload = guard(function () { done(x.status, x.response); }); x.onerror = x.onabort = x.ontimeout = fail; x.send(body);
    } catch (e) { fail(); }
  }

  function flush(beacon) {
    clearTimeout(flushTimer); flushTimer = 0;
    if (!active()) return;
    if (queue.length) { outbox.push({ id: rid(), events: queue.slice(-50) }); queue = []; outbox = outbox.slice(-5); }
    if (beacon) {
      try { while (outbox.length && nav.sendBeacon(url, payload(outbox[0]))) outbox.shift(); } catch (e) {}
      return each(outbox, function (b) { post(payload(b), Boolean, Boolean); });
    }
    if (sending || !outbox.length) return;
    var b = outbox[0], body;
    try { body = payload(b); } catch (e) { outbox.shift(); return flush(); }
    sending = 1;
    function retry() { sending = 0; xhr ^= 1; setTimeout(guard(flush), 5000); }
    post(body, function (status, answer) {
      if (status >= 500 || status === 429) return retry();
      // A site key or page origin Parley does not accept: say why once, for whoever embeds the tag.
      if ((status === 401 || status === 403) && !warned) { warned = 1; try { w.console.warn("Parley: " + (answer && answer.detail || "HTTP " + status)); } catch (e) {} }
      if (outbox[0] === b) outbox.shift();
      sending = 0; flush();
      each(answer && answer.invitations, guard(show));
    }, retry);
  }

  function about() {
    var ua = nav.userAgent, q = null;
    try {
      q = /^[^:]+:\/\/([^/?#]*)[^?#]*\?([^#]*)/.exec(d.referrer);
      q = q && q[1] != loc.host && /(?:^|&)(?:q|p|text|wd)=([^&]*)/.exec(q[2]); q = q && decodeURIComponent(q[1].replace(/\+/g, " "));
    } catch (e) {}
    return { device: /iPad|Tablet/.test(ua) || /Android/.test(ua) && !/Mobi/.test(ua) ? "tablet" : /Mobi|iPhone/.test(ua) ? "mobile" : "desktop",
      language: nav.language, viewport: w.innerWidth, page_language: d.documentElement.lang || null, search: q || null };
  }
  function pageview() { viewed = loc.href; lastActive = now(); maxScroll = 0; track("pageview", about(), null, 1); }
  function wrap(name) {
    var orig = history[name];
    try { history[name] = function () { var u = location.href, r = orig.apply(this, arguments); if (u != location.href) setTimeout(guard(pageview), 0); return r; }; } catch (e) {}
  }

  function listen() {
    wrap("pushState"); wrap("replaceState");
    function moved() { if (loc.href != viewed) pageview(); }
    on(w, "popstate", moved);
    on(w, "hashchange", moved);
    on(w, "pageshow", function (e) { if (e.persisted) pageview(); });
    each(["mousemove", "keydown", "scroll", "touchstart", "click"], function (t) { on(w, t, function () { lastActive = now(); idleSent = 0; }); });
    on(w, "scroll", function () {
      var h = d.scrollingElement || d.documentElement, depth = Math.round(100 * (h.scrollTop + w.innerHeight) / Math.max(h.scrollHeight, 1));
      if (depth >= maxScroll + 25 || (depth >= 100 && maxScroll < 100)) { maxScroll = Math.min(100, depth); track("scroll", { depth: maxScroll }); }
    });
    on(d, "mouseout", function (e) { if (!e.relatedTarget && e.clientY <= 0 && !("ontouchstart" in w)) track("exit_intent"); });
    on(d, "click", function (e) {
      var p = e.composedPath ? e.composedPath() : [e.target], i, a;
      for (i = 0; i < p.length; i++) if (p[i].getAttribute && (a = p[i].getAttribute("data-parley-track"))) return track("custom", null, a);
    });
    setInterval(guard(function () {
      if (d.visibilityState !== "visible") return;
      if (now() - lastActive > 3e4 && !idleSent) { idleSent = 1; track("idle"); }
      track("heartbeat");
    }), 15000);
    function seen(state) { track("visibility", { state: state }); }
    on(w, "pagehide", function () { seen("hidden"); flush(true); });
    on(d, "visibilitychange", function () {
      if (d.visibilityState === "hidden") { seen("hidden"); flush(true); return; }
      seen("visible"); flush();
      for (var id in parked) { show(parked[id]); delete parked[id]; }
    });
  }

  function stream() {
    if (es || !w.EventSource || !active()) return;
    es = new EventSource(base + "/v1/invitations/stream?site_key=" + encodeURIComponent(site) + "&visitor_id=" + encodeURIComponent(vid()));
    on(es, "invitation", function (m) { new Response(m.data).json().then(guard(show), Object); });
  }

  var CSS = ":host{all:initial!important;display:block!important}.p{position:fixed;z-index:2147483647;right:16px;bottom:16px;max-width:min(360px,calc(100vw - 32px));box-sizing:border-box;" +
    "background:#fff;color:#1a1a1a;font:15px/1.4 system-ui,sans-serif;border-radius:12px;" +
    "box-shadow:0 8px 30px #0004;padding:16px;animation:i .25s ease-out}p{margin:0 0 12px}" +
    ".b{display:flex;gap:8px;justify-content:flex-end}button{font:inherit;border-radius:8px;padding:8px 14px;cursor:pointer;border:1px solid #1a56db}" +
    ".a{background:#1a56db;color:#fff}.x{background:#fff;color:#1a56db}button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    "@keyframes i{from{opacity:0;transform:translateY(12px)}}@media (prefers-reduced-motion:reduce){.p{animation:none}}" +
    "@media (max-width:480px){.p{left:8px;right:8px;bottom:8px;max-width:none}}";

  function done(id, mark) {
    try { var l = ls.getItem("parley_inv") || ""; if (mark) ls.setItem("parley_inv", (l + " " + id).slice(-660)); return l.indexOf(id) >= 0; } catch (e) { return false; }
  }
  function el(tag, parent, cls, text) { var e = d.createElement(tag); e.className = cls; e.textContent = text; parent.appendChild(e); return e; }
  function emit(name, inv) { each(handlers[name], function (f) { try { f(inv); } catch (e) {} }); }
  function show(inv) {
    if (!inv.id || shown[inv.id] || done(inv.id) || !((inv.end = inv.end || now() + (inv.expires_in >= 0 ? inv.expires_in * 1e3 : new D(inv.expires_at) - now())) > now())) return;
    if (d.visibilityState === "hidden") { parked[inv.id] = inv; return; }
    shown[inv.id] = 1; done(inv.id, 1);
    var host = d.createElement(w.customElements && customElements.get(T) ? "div" : T), root = host.attachShadow({ mode: "open" }), prev = d.activeElement,
      unfocused = !prev || prev === d.body || prev === d.documentElement;
    host.setAttribute("data-parley-widget", "");
    try { var sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); root.adoptedStyleSheets = [sheet]; } catch (e) { el("style", root, "", CSS); }
    var box = el("div", root, "p", ""), bar, yes, no, props = { invitation_id: inv.id, rule: inv.rule, variant: inv.variant };
    box.setAttribute("role", "dialog"); box.setAttribute("aria-modal", "false"); box.setAttribute("aria-labelledby", "m"); box.setAttribute("aria-live", "polite");
    var m = el("p", box, "", unfocused ? inv.message : "");
    m.id = "m";
    bar = el("div", box, "b", "");
    no = el("button", bar, "x", cfg.dismissLabel || "No thanks"); yes = el("button", bar, "a", cfg.acceptLabel || "Chat now");
    no.type = yes.type = "button";
    no.setAttribute("aria-label", "Dismiss: " + no.textContent);
    function close(type) {
      var inside = root.activeElement;
      clearTimeout(timer); host.remove();
      track(type, props); flush();
      if (inside) try { prev.focus(); } catch (e) {}
    }
    yes.onclick = guard(function () {
      close("invitation_accepted");
      if (handlers.accept) emit("accept", inv); else if (cfg.chatUrl) w.open(cfg.chatUrl, "_blank", "noopener");
    });
    no.onclick = guard(function () { close("invitation_dismissed"); emit("dismiss", inv); });
    on(root, "keydown", function (e) { if (e.key === "Escape") no.onclick(); });
    var timer = setTimeout(function () { host.remove(); }, inv.end - now());
    d.documentElement.appendChild(host);
    if (unfocused) yes.focus({ preventScroll: true });
    else setTimeout(function () { m.textContent = inv.message; }, 150);
    track("invitation_shown", props);
    emit("show", inv);
  }

  var api = guard(function (cmd, a, b) {
    if (cmd === "track" || cmd === "goal") track(cmd === "goal" ? cmd : "custom", b, a);
    else if (cmd === "cart" || cmd === "identify") track(cmd, a);
    else if (cmd === "trigger") { track("trigger", null, a); flush(); }
    else if (cmd === "on") (handlers[a] = handlers[a] || []).push(b);
    else if (cmd === "consent") {
      consent = !!a;
      if (active()) { pageview(); stream(); }
      else { queue = []; outbox = []; memVid = 0; if (es) { es.close(); es = 0; } try { ls.removeItem("parley_vid"); } catch (e) {} }
    } else if (cmd === "flush") flush();
  });
  api.identify = function (a) { api("identify", a); };
  api.trigger = function (a) { api("trigger", a); };
  api.loaded = 1;
  try { w.parley = api; } catch (e) {}
  guard(listen)();
  if (active()) { guard(pageview)(); guard(stream)(); }
  each(old && old.q, function (args) { api.apply(null, args); });
  } catch (e) {}
})(window, document);
