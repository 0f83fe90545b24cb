/* Parley snippet: behaviour events and the invitation widget. Dependency-free; see docs/snippet.md. */
(function (w, d) {
  "use strict";
  var me = d.currentScript || d.querySelector("script[data-site]");
  if (!me || w.__parley) return;
  w.__parley = 1;
  var cfg = me.dataset, site = cfg.site, base = new URL(me.src, location.href).origin;
  var ls = w.localStorage, nav = navigator;
  var queue = [], outbox = [], sending = 0, parked = {}, handlers = {}, shown = {}, lastActive = Date.now(), idleSent = 0, maxScroll = 0, es, flushTimer;
  var consentNeeded = cfg.consent === "required";
  var consent = !consentNeeded;
  var privacy = cfg.dnt !== "ignore" && (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl === true);

  function rid() { return (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2)).replace(/[^A-Za-z0-9-]/g, ""); }
  var tab = rid(); // this page in this tab: the server joins a visitor's tabs into one visit
  function store(s, k, make) { try { var v = s.getItem(k); if (!v) { v = make(); s.setItem(k, v); } return v; } catch (e) { return make(); } }
  function vid() { return store(ls, "parley_vid", rid); }
  function active() { return consent && !privacy; }

  function track(type, extra) {
    if (!active()) return;
    var e = { type: type, at: Date.now(), url: location.href };
    for (var k in extra) e[k] = extra[k];
    queue.push(e);
    if (queue.length >= 10) flush(); else if (!flushTimer) flushTimer = setTimeout(flush, 2000);
  }

  function payload(b) {
    return JSON.stringify({ site_key: site, visitor_id: vid(), session_id: tab, tab_id: tab, batch_id: b.id, events: b.events });
  }

  // A batch keeps its id until the server has it: a retry after a lost answer is applied once.
  function flush(beacon) {
    clearTimeout(flushTimer); flushTimer = 0;
    if (!active()) return;
    if (queue.length) { outbox.push({ id: rid(), events: queue.slice(-50) }); queue = []; outbox = outbox.slice(-5); }
    var url = base + "/v1/collect";
    if (beacon && nav.sendBeacon) {
      while (outbox.length && nav.sendBeacon(url, new Blob([payload(outbox[0])], { type: "text/plain" }))) outbox.shift();
      return;
    }
    if (sending || !outbox.length) return;
    sending = 1;
    var b = outbox[0];
    fetch(url, { method: "POST", body: payload(b), keepalive: true, headers: { "Content-Type": "text/plain" }, credentials: "omit" })
      .then(function (r) { if (r.status >= 500 || r.status === 429) throw r; if (outbox[0] === b) outbox.shift(); sending = 0; flush(); return r.json(); })
      .then(function (r) { (r.invitations || []).forEach(show); })
      .catch(function () { sending = 0; setTimeout(flush, 5000); });
  }

  // What rules may read of the device and page: its class, languages, viewport width, and the
  // search keyword in a search engine's referrer (its query string is never sent).
  function about() {
    var u = nav.userAgent, q = null;
    try { q = new URL(d.referrer).searchParams; q = q.get("q") || q.get("p") || q.get("text") || q.get("wd"); } catch (e) {}
    return { device: /iPad|Tablet/.test(u) || /Android/.test(u) && !/Mobi/.test(u) ? "tablet" : /Mobi|iPhone/.test(u) ? "mobile" : "desktop",
      language: nav.language, viewport: w.innerWidth, page_language: d.documentElement.lang || null, search: q || null };
  }
  function pageview() { lastActive = Date.now(); maxScroll = 0; track("pageview", { title: d.title, referrer: d.referrer, props: about() }); }
  function wrap(name) {
    var orig = history[name];
    history[name] = function () { var r = orig.apply(this, arguments); setTimeout(pageview, 0); return r; };
  }

  function listen() {
    wrap("pushState"); wrap("replaceState");
    w.addEventListener("popstate", pageview);
    w.addEventListener("hashchange", pageview);
    w.addEventListener("pageshow", function (e) { if (e.persisted) pageview(); });
    ["mousemove", "keydown", "scroll", "touchstart", "click"].forEach(function (t) {
      w.addEventListener(t, function () { lastActive = Date.now(); idleSent = 0; }, { passive: true });
    });
    w.addEventListener("scroll", function () {
      var h = d.documentElement, depth = Math.round(100 * (h.scrollTop + w.innerHeight) / Math.max(h.scrollHeight, 1));
      if (depth >= maxScroll + 25 || (depth >= 100 && maxScroll < 100)) { maxScroll = Math.min(100, depth); track("scroll", { props: { depth: maxScroll } }); }
    }, { passive: true });
    d.addEventListener("mouseout", function (e) { if (!e.relatedTarget && e.clientY <= 0 && !("ontouchstart" in w)) track("exit_intent"); });
    d.addEventListener("click", function (e) {
      var el = e.target && e.target.closest && e.target.closest("[data-parley-track]");
      if (el) track("custom", { name: el.getAttribute("data-parley-track") });
    });
    setInterval(function () {
      if (d.visibilityState !== "visible") return;
      if (Date.now() - lastActive > 3e4 && !idleSent) { idleSent = 1; track("idle"); }
      track("heartbeat");
    }, 15000);
    // Whether anyone is looking: the server invites only visitors with a visible tab.
    function seen(state) { track("visibility", { props: { state: state } }); }
    w.addEventListener("pagehide", function () { seen("hidden"); flush(true); });
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState === "hidden") { seen("hidden"); flush(true); return; }
      seen("visible"); flush();
      for (var id in parked) { show(parked[id]); delete parked[id]; }
    });
  }

  function stream() {
    if (es || !w.EventSource || !active()) return;
    es = new EventSource(base + "/v1/invitations/stream?site_key=" + encodeURIComponent(site) + "&visitor_id=" + encodeURIComponent(vid()));
    es.addEventListener("invitation", function (m) { try { show(JSON.parse(m.data)); } catch (e) {} });
  }

  var CSS = ":host{all:initial!important;display:block!important}.p{position:fixed;z-index:2147483647;right:16px;bottom:16px;max-width:min(360px,calc(100vw - 32px));box-sizing:border-box;" +
    "background:#fff;color:#1a1a1a;font:15px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;border-radius:12px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.25);padding:16px;animation:i .25s ease-out}p{margin:0 0 12px}" +
    ".b{display:flex;gap:8px;justify-content:flex-end}button{font:inherit;border-radius:8px;padding:8px 14px;cursor:pointer;border:1px solid #1a56db}" +
    ".a{background:#1a56db;color:#fff}.x{background:#fff;color:#1a56db}button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    "@keyframes i{from{opacity:0;transform:translateY(12px)}}@media (prefers-reduced-motion:reduce){.p{animation:none}}" +
    "@media (max-width:480px){.p{left:8px;right:8px;bottom:8px;max-width:none}}";

  // Shown once, in a tab the visitor is looking at: every tab of the visitor hears of it.
  function done(id, mark) {
    try { var l = JSON.parse(ls.getItem("parley_inv") || "[]"); if (mark) ls.setItem("parley_inv", JSON.stringify(l.concat(id).slice(-20))); return l.indexOf(id) >= 0; } catch (e) { return false; }
  }
  function show(inv) {
    if (!inv || shown[inv.id] || done(inv.id) || new Date(inv.expires_at) < new Date()) return;
    if (d.visibilityState === "hidden") { parked[inv.id] = inv; return; }
    shown[inv.id] = 1; done(inv.id, 1);
    var host = d.createElement("parley-invitation"), root = host.attachShadow({ mode: "open" }), prev = d.activeElement;
    host.setAttribute("data-parley-widget", "");
    root.innerHTML = "<style>" + CSS + "</style><div class=p role=dialog aria-modal=false aria-labelledby=m aria-live=polite>" +
      "<p id=m></p><div class=b><button class=x type=button></button><button class=a type=button></button></div></div>";
    root.getElementById("m").textContent = inv.message;
    var yes = root.querySelector(".a"), no = root.querySelector(".x");
    yes.textContent = cfg.acceptLabel || "Chat now"; no.textContent = cfg.dismissLabel || "No thanks";
    no.setAttribute("aria-label", "Dismiss: " + no.textContent);
    function close(type) {
      clearTimeout(timer); host.remove();
      track(type, { props: { invitation_id: inv.id, rule: inv.rule, variant: inv.variant } }); flush();
      if (prev && prev.focus) try { prev.focus(); } catch (e) {}
    }
    yes.onclick = function () {
      close("invitation_accepted");
      var fns = handlers.accept || [];
      if (fns.length) fns.forEach(function (f) { f(inv); }); else if (cfg.chatUrl) w.open(cfg.chatUrl, "_blank", "noopener");
    };
    no.onclick = function () { close("invitation_dismissed"); (handlers.dismiss || []).forEach(function (f) { f(inv); }); };
    root.addEventListener("keydown", function (e) { if (e.key === "Escape") no.onclick(); });
    var timer = setTimeout(function () { host.remove(); }, Math.max(0, new Date(inv.expires_at) - new Date()));
    (d.body || d.documentElement).appendChild(host);
    yes.focus({ preventScroll: true });
    track("invitation_shown", { props: { invitation_id: inv.id, rule: inv.rule, variant: inv.variant } });
    (handlers.show || []).forEach(function (f) { f(inv); });
  }

  function api(cmd, a, b) {
    if (cmd === "track") track("custom", { name: a, props: b || {} });
    else if (cmd === "goal") track("goal", { name: a, props: b || {} });
    else if (cmd === "cart") track("cart", { props: a || {} });
    else if (cmd === "identify") track("identify", { props: a || {} });
    else if (cmd === "trigger") { track("trigger", { name: a }); flush(); }
    else if (cmd === "on") (handlers[a] = handlers[a] || []).push(b);
    else if (cmd === "consent") {
      consent = !!a;
      if (consent && !privacy) { pageview(); stream(); }
      else { queue = []; outbox = []; if (es) { es.close(); es = 0; } try { ls.removeItem("parley_vid"); } catch (e) {} }
    } else if (cmd === "flush") flush();
  }

  var pending = (w.parley && w.parley.q) || [];
  w.parley = function () { api.apply(null, arguments); };
  w.parley.identify = function (a) { api("identify", a); };
  w.parley.trigger = function (a) { api("trigger", a); };
  listen();
  if (active()) { pageview(); stream(); }
  pending.forEach(function (args) { api.apply(null, args); });
})(window, document);
