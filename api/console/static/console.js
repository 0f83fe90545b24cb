/* Parley console: the keyboard, the CSRF header on htmx requests, and the session heartbeat.
   No inline handlers anywhere (the CSP allows scripts from files only); pages work without this
   file, only slower to drive. */
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]');
  const token = csrf ? csrf.content : "";

  // Every htmx request that changes something carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    if (token) event.detail.headers["X-CSRF-Token"] = token;
  });
  // Screen readers and sighted users see that a region is loading.
  document.addEventListener("htmx:beforeRequest", function (event) {
    const target = event.detail.target;
    if (target && target.id) target.setAttribute("aria-busy", "true");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const target = event.detail.target;
    if (target) target.removeAttribute("aria-busy");
  });

  // --- the query box: the syntax error and where it is -----------------------------------------
  function syntaxState(moveCaret) {
    const input = document.getElementById("q");
    const box = document.getElementById("q-error");
    if (!input || !box) return;
    const error = box.querySelector(".syntax-error");
    if (error) {
      input.setAttribute("aria-invalid", "true");
      if (moveCaret) {
        const at = Number(error.dataset.position || 0);
        let end = at;
        while (end < input.value.length && !/\s/.test(input.value[end])) end++;
        input.focus();
        input.setSelectionRange(at, Math.max(end, at));
      }
    } else {
      input.removeAttribute("aria-invalid");
    }
  }
  // A check of text since changed (or already submitted) says nothing about the query now.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const input = document.getElementById("q");
    if (!input || !event.detail.target || event.detail.target.id !== "q-error") return;
    const checked = new URL(event.detail.xhr.responseURL).searchParams.get("q") || "";
    if (checked !== input.value) event.detail.shouldSwap = false;
  });
  // On the swap itself (not after settling): the field and its error never disagree, even for a moment.
  document.addEventListener("htmx:afterSwap", function (event) {
    const id = event.detail.target && event.detail.target.id;
    if (id === "q-error") syntaxState(false);
    if (id === "results") syntaxState(true);
  });
  document.addEventListener("DOMContentLoaded", function () { syntaxState(true); });

  // --- keyboard -------------------------------------------------------------------------------
  function typing(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function items() {
    const links = Array.from(document.querySelectorAll("[data-item]"));
    if (links.length) return links;
    return Array.from(document.querySelectorAll(".item-link, .messages > .message"));
  }

  function move(step) {
    const list = items();
    if (!list.length) return;
    const active = document.activeElement;
    let index = list.findIndex(function (el) { return el === active || el.contains(active); });
    index = index < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, index + step));
    const el = list[index];
    list.forEach(function (x) { x.classList.remove("current"); });
    el.classList.add("current");
    if (!el.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT)$/.test(el.tagName)) el.setAttribute("tabindex", "-1");
    el.focus();
    el.scrollIntoView({ block: "nearest" });
  }

  function press(selector) {
    const el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  // --- the review queue: one item at a time -------------------------------------------------
  function queueRows() { return Array.from(document.querySelectorAll("[data-queue] > .queue-row")); }
  function currentRow() { return document.querySelector("[data-queue] > .queue-row.selected"); }
  function select(row) {
    queueRows().forEach(function (r) {
      r.classList.remove("selected");
      const link = r.querySelector(".item-link");
      if (link) link.removeAttribute("aria-current");
    });
    row.classList.add("selected");
    row.querySelector(".item-link").setAttribute("aria-current", "true");
    row.scrollIntoView({ block: "nearest" });
  }
  function openRow(row) {
    if (!row) return false;
    select(row);
    row.querySelector(".item-link").click();
    return true;
  }
  function step(delta) {
    const rows = queueRows();
    const index = rows.indexOf(currentRow());
    return openRow(rows[index < 0 ? 0 : index + delta]);
  }
  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("[data-queue] .item-link");
    if (link) select(link.closest(".queue-row"));
    const all = event.target.closest && event.target.closest("[data-select-all]");
    if (all) queueRows().forEach(function (r) { r.querySelector("input[type=checkbox]").checked = all.checked; });
  });
  // An item that left the queue (resolved, false positive, escalated): the next one opens.
  document.addEventListener("reviewDone", function (event) {
    const row = document.getElementById("row-" + event.detail.value);
    const rows = queueRows();
    const next = rows.slice(rows.indexOf(row) + 1).find(function (r) { return r.classList.contains("status-open") || r.classList.contains("status-claimed"); });
    if (!openRow(next)) {
      const title = document.getElementById("item-title");
      if (title) title.insertAdjacentHTML("afterend", '<p class="notice" role="status">That was the last item listed here.</p>');
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id === "item") {
      const title = document.getElementById("item-title");
      if (title) title.focus({ preventScroll: true });
    }
    // After an action the head is new; htmx keeps the focus in the note field, where the action
    // keys would type letters. The focus goes back to the item unless the note needs fixing.
    const invalid = document.querySelector("#item-head textarea[aria-invalid=true]");
    if (invalid) invalid.focus();
    else if (document.activeElement && document.activeElement.id === "note" && event.detail.requestConfig &&
             event.detail.requestConfig.verb === "post") {
      const title = document.getElementById("item-title");
      if (title) title.focus({ preventScroll: true });
    }
  });

  let pendingG = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "note") {
      event.preventDefault();
      press("[data-comment]");
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const dialog = document.getElementById("shortcuts");
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target)) return;
    const key = event.key;
    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      const link = document.querySelector('a[data-key="g ' + key + '"]');
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (key === "g") { pendingG = Date.now(); return; }
    if (key === "?") {
      if (!dialog) return;
      event.preventDefault();
      if (dialog.open) dialog.close(); else dialog.showModal();
      return;
    }
    if (dialog && dialog.open) return;
    if (key === "/") {
      const box = document.querySelector('input[type="search"]');
      if (box) { event.preventDefault(); box.focus(); box.select(); }
      return;
    }
    if (queueRows().length && (key === "j" || key === "k")) { event.preventDefault(); step(key === "j" ? 1 : -1); return; }
    if (key === "x" && currentRow()) {
      const box = currentRow().querySelector("input[type=checkbox]");
      event.preventDefault();
      box.checked = !box.checked;
      return;
    }
    if (key === "j") { event.preventDefault(); move(1); return; }
    if (key === "k") { event.preventDefault(); move(-1); return; }
    if (key === "o") {
      const current = document.querySelector(".item-link.current, .hit.current .item-link");
      if (current) { event.preventDefault(); current.click(); }
      return;
    }
    if (key === "u" || key === "[" || key === "]") { if (press('a[data-key="' + key + '"]')) event.preventDefault(); return; }
    // Page-specific keys (the review queue's actions) are buttons that name their key.
    const button = document.querySelector('[data-shortcut="' + key + '"]:not([disabled])');
    if (button) { event.preventDefault(); button.click(); }
  });

  // Keys pressed while an item is loading or an action is under way wait for it: a fast "r r r"
  // clears three items, each on the item it was meant for, never on a half-swapped page.
  const waiting = [];
  function busy() { return document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling") !== null; }
  document.addEventListener("keydown", function (event) {
    if (!busy() || typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!/^[jkcrfenx]$/.test(event.key) || !queueRows().length) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    waiting.push(event.key);
  }, true);
  function replay() {
    if (!waiting.length || busy()) return;
    const key = waiting.shift();
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key: key, bubbles: true }));
  }
  // After the swap has settled and whatever it triggered (the next item) has started.
  document.addEventListener("htmx:afterSettle", function () { window.setTimeout(replay, 0); });

  // --- the session ----------------------------------------------------------------------------
  // A session revoked or expired elsewhere takes the page with it within a minute: the heartbeat
  // does not count as activity, and a redirect means the session is gone.
  if (token) {
    window.setInterval(function () {
      // HX-Current-URL: after signing in again, the browser comes back to this page.
      fetch("/console/session", { headers: { "HX-Request": "true", "HX-Current-URL": window.location.href }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          const to = response.headers.get("HX-Redirect");
          if (to) window.location.assign(to);
        })
        .catch(function () { /* offline for a moment: the next beat tries again */ });
    }, 60000);
  }
})();
