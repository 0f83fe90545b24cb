/* Parley snippet: behaviour events and the invitation widget. Dependency-free; see docs/snippet.md. */
(function (w, d) {
  "use strict";
  var me = d.currentScript || d.querySelector("script[data-site]");
  if (!me || w.__parley) return;
  w.__parley = 1;
  var cfg = me.dataset, site = cfg.site, base = new URL(me.src, location.href).origin;
  var ls = w.localStorage, ss = w.sessionStorage, nav = navigator;
  var queue = [], retry = [], handlers = {}, shown = {}, lastActive = Date.now(), idleSent = 0, maxScroll = 0, es, flushTimer;
  var consentNeeded = cfg.consent === "required";
  var consent = !consentNeeded;
  var privacy = cfg.dnt !== "ignore" && (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl === true);

  function rid() { return (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2)).replace(/[^A-Za-z0-9-]/g, ""); }
  function store(s, k, make) { try { var v = s.getItem(k); if (!v) { v = make(); s.setItem(k, v); } return v; } catch (e) { return make(); } }
  function ids() {
    var now = Date.now(), last = +(store(ss, "parley_seen", function () { return "" + now; }));
    if (now - last > 18e5) try { ss.removeItem("parley_sid"); } catch (e) {}
    try { ss.setItem("parley_seen", "" + now); } catch (e) {}
    return { v: store(ls, "parley_vid", rid), s: store(ss, "parley_sid", rid) };
  }
  function active() { return consent && !privacy; }

  function track(type, extra) {
    if (!active()) return;
    var e = { type: type, at: Date.now(), url: location.href };
    for (var k in extra) e[k] = extra[k];
    queue.push(e);
    if (queue.length >= 10) flush(); else if (!flushTimer) flushTimer = setTimeout(flush, 2000);
  }

  function payload(events) {
    var i = ids();
    return JSON.stringify({ site_key: site, visitor_id: i.v, session_id: i.s, events: events });
  }

  function flush(beacon) {
    clearTimeout(flushTimer); flushTimer = 0;
    if (!active()) return;
    var events = retry.concat(queue).slice(-50);
    retry = []; queue = [];
    if (!events.length) return;
    var body = payload(events), url = base + "/v1/collect";
    if (beacon && nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" }, credentials: "omit" })
      .then(function (r) { if (r.status >= 500 || r.status === 429) throw r; return r.json(); })
      .then(function (r) { (r.invitations || []).forEach(show); })
      .catch(function () { retry = events.concat(retry).slice(-50); setTimeout(flush, 5000); });
  }

  function pageview() { lastActive = Date.now(); maxScroll = 0; track("pageview", { title: d.title, referrer: d.referrer }); }
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
    w.addEventListener("pagehide", function () { flush(true); });
    d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(true); });
  }

  function stream() {
    if (es || !w.EventSource || !active()) return;
    es = new EventSource(base + "/v1/invitations/stream?site_key=" + encodeURIComponent(site) + "&visitor_id=" + encodeURIComponent(ids().v));
    es.addEventListener("invitation", function (m) { try { show(JSON.parse(m.data)); } catch (e) {} });
  }

  var CSS = ":host{all:initial!important;display:block!important}.p{position:fixed;z-index:2147483647;right:16px;bottom:16px;max-width:min(360px,calc(100vw - 32px));box-sizing:border-box;" +
    "background:#fff;color:#1a1a1a;font:15px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;border-radius:12px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.25);padding:16px;animation:i .25s ease-out}p{margin:0 0 12px}" +
    ".b{display:flex;gap:8px;justify-content:flex-end}button{font:inherit;border-radius:8px;padding:8px 14px;cursor:pointer;border:1px solid #1a56db}" +
    ".a{background:#1a56db;color:#fff}.x{background:#fff;color:#1a56db}button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    "@keyframes i{from{opacity:0;transform:translateY(12px)}}@media (prefers-reduced-motion:reduce){.p{animation:none}}" +
    "@media (max-width:480px){.p{left:8px;right:8px;bottom:8px;max-width:none}}";

  function show(inv) {
    if (!inv || shown[inv.id] || new Date(inv.expires_at) < new Date()) return;
    shown[inv.id] = 1;
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
    else if (cmd === "on") (handlers[a] = handlers[a] || []).push(b);
    else if (cmd === "consent") {
      consent = !!a;
      if (consent && !privacy) { pageview(); stream(); }
      else { queue = []; retry = []; if (es) { es.close(); es = 0; } try { ls.removeItem("parley_vid"); ss.removeItem("parley_sid"); } catch (e) {} }
    } else if (cmd === "flush") flush();
  }

  var pending = (w.parley && w.parley.q) || [];
  w.parley = function () { api.apply(null, arguments); };
  listen();
  if (active()) { pageview(); stream(); }
  pending.forEach(function (args) { api.apply(null, args); });
})(window, document);
