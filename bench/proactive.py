"""The engagement engine: intake over HTTP against a bare endpoint, in-process evaluation with 100
rules and 50k visitors, tick cost at 10k and 100k visitors with 1k due timers, memory per visitor;
and, against a live server, how fast decisions reach browsers: waiting visitors served after a
capacity report, conditions that become true on an event (collect response) or on time (stream).

Latencies are measured by the client on the same machine. For time conditions the due instant is
exact: the engine decides a timer as of its due time, so an invitation's ``expires_at`` minus the
rule's ``expires`` is when it came due, on the same clock the client reads at arrival.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import statistics
import time
import tracemalloc
import uuid
from datetime import datetime
from typing import Any

from bench.harness import Row, Server, Table, bench_tenant

RULE = {
    "name": "r", "site": "shop",
    "when": {"all": [
        {"field": "page.url", "op": "glob", "value": "*/pricing*"},
        {"field": "page.time_on_page", "op": "gte", "value": "30s"},
        {"field": "session.pageviews", "op": "gte", "value": 3},
        {"count": "product_view", "within": "10m", "op": "gte", "value": 2},
        {"not": {"field": "chat.active", "op": "eq", "value": True}},
    ]},
    "invite": {"message": "Hi"},
    "caps": {"per_session": 1},
}
# The same rule reading the targeting fields (issue 17): attributes, a funnel over the visit's
# pages, languages, viewport, search keyword, agents online, country and region, a schedule with
# an overnight window, and a URL goal with first-touch attribution.
TARGETED = {
    **RULE,
    "when": {"all": [
        *RULE["when"]["all"],
        {"field": "visitor.attributes.plan", "op": "iin", "value": ["PRO", "Team"]},
        {"field": "session.pages", "op": "steps", "value": ["/product*", "/pricing*"]},
        {"field": "page.language", "op": "istarts_with", "value": "EN"},
        {"field": "visitor.viewport_width", "op": "gte", "value": 320},
        {"not": {"field": "session.search_keyword", "op": "icontains", "value": "jobs"}},
        {"field": "agents.online", "op": "ne", "value": False},
        {"field": "visitor.country", "op": "in", "value": ["GB", "IE", "NO", "SE", "US"]},
        {"not": {"field": "visitor.region", "op": "eq", "value": "US-AK"}},
    ]},
    "schedule": {"days": "mon-sun", "windows": ["00:00-12:00", "12:00-24:00", "22:00-02:00"]},
    "goal": {"url": "/order/thank-you*", "within": "1h", "attribution": "first"},
}
ORIGIN = "https://shop.example.com"
TIMED_EXPIRES = 120.0


def _engine_with_rules(n_rules: int, clock: Any = time.time, template: dict[str, Any] = RULE) -> Any:
    from proactive.engine import Engine, RuleEntry
    from proactive.rules import compile_rule

    engine = Engine(clock=clock, pace=False, journal=False)
    entries = []
    for i in range(n_rules):
        rule, problems = compile_rule({**template, "name": f"r{i}",
                                       "when": {"all": [*template["when"]["all"], {"field": "cart.value", "op": "gte", "value": i}]}})
        assert rule is not None, problems
        entries.append(RuleEntry(str(uuid.uuid4()), "tenant", "site", rule))
    engine.set_rules("site", entries)
    return engine


def _event(rng: random.Random, now: float) -> dict[str, Any]:
    kind = rng.choice(["pageview", "pageview", "heartbeat", "scroll", "custom"])
    return {"type": kind, "at_epoch": now, "url": f"https://shop.example.com/{rng.choice(['pricing', 'a', 'b', 'product'])}",
            "title": None, "referrer": None, "name": "product_view" if kind == "custom" else None,
            "props": {"depth": 50} if kind == "scroll" else {}, "tab": "t"}


def evaluation_rate(visitors: int, events: int) -> tuple[float, float]:
    """Events/s through the engine, and (the same-run baseline) through the rule language alone:
    the same events applied to the same visitor states and the same 100 conditions evaluated, with
    no episodes, waits, memory, journal or timers."""
    from proactive.rules import evaluate_timed

    engine = _engine_with_rules(100)
    rng = random.Random(1)
    now = time.time()
    batch = [_event(rng, now) for _ in range(1000)]
    states = [engine.state_for("tenant", "site", f"h{i}") for i in range(visitors)]
    started = time.perf_counter()
    for i in range(events):
        engine.apply_events(states[i % visitors], [batch[i % 1000]])
    full = events / (time.perf_counter() - started)

    language = _engine_with_rules(100)
    conditions = [entry.rule.when for entry in language.rules["site"]]
    states = [language.state_for("tenant", "site", f"h{i}") for i in range(visitors)]
    started = time.perf_counter()
    for i in range(events):
        state, at = states[i % visitors], time.time()
        state.apply(batch[i % 1000], at)

        def get(field: str, state: Any = state, at: float = at) -> Any:
            return state.field(field, at)

        def count(event: str, within: float, state: Any = state, at: float = at) -> int:
            return int(state.count(event, within, at))

        def expiry(event: str, within: float, state: Any = state, at: float = at) -> float | None:
            return state.count_expiry(event, within, at)  # type: ignore[no-any-return]

        memo: dict[Any, tuple[bool, float | None]] = {}
        for when in conditions:
            evaluate_timed(when, at, get, count, state.grows_at, expiry, memo)
    return full, events / (time.perf_counter() - started)


def targeting_rate(visitors: int, events: int) -> tuple[float, float]:
    """Events/s through the engine with 100 rules reading the targeting fields, and (the same-run
    baseline) with today's 100 rules, on the same events — which carry what the snippet now sends
    (device, languages, viewport, search keyword), the country and region the server adds, a
    goal page now and then, and the visitors' attributes. Measured
    interleaved, four times each, best of each, in process CPU time: both sides cost the same per
    event in a profile, yet single wall-clock runs on this machine spread ±10 % either way (garbage
    collection and cache placement), which is the size of the target itself."""
    best: dict[str, float] = {}
    for name, template in [("today", RULE), ("targeted", TARGETED)] * 4:
        engine = _engine_with_rules(100, template=template)
        rng = random.Random(1)
        now = time.time()
        batch = []
        for _ in range(1000):
            event = _event(rng, now)
            if event["type"] == "pageview":
                event["props"] = {"device": "desktop", "language": "en-GB", "viewport": 1280, "page_language": "en", "search": "tents",
                                  "country": rng.choice(["GB", "US", "DE"]), "region": "GB-ENG"}
                if rng.random() < 0.05:
                    event["url"] = f"{ORIGIN}/order/thank-you"
            batch.append(event)
        states = [engine.state_for("tenant", "site", f"h{i}") for i in range(visitors)]
        for i, state in enumerate(states):
            state.identify({"plan": "pro" if i % 2 else "free"}, trusted=True)
        gc.collect()
        started = time.process_time()
        for i in range(events):
            engine.apply_events(states[i % visitors], [batch[i % 1000]])
        best[name] = max(best.get(name, 0.0), events / (time.process_time() - started))
    return best["targeted"], best["today"]


def tick_cost(visitors: int, due: int) -> float:
    clock = [time.time()]
    engine = _engine_with_rules(10, lambda: clock[0])
    rng = random.Random(2)
    pricing = [{**_event(rng, clock[0]), "type": "pageview", "url": f"https://shop.example.com/p{j}"} for j in range(2)]
    pricing.append({**pricing[0], "url": "https://shop.example.com/pricing"})
    products = [{**_event(rng, clock[0]), "type": "custom", "name": "product_view"} for _ in range(2)]
    for i in range(visitors):
        # Everything but the 30 s on the pricing page holds: each visitor waits on a timer. They
        # arrive a millisecond apart, so their timers come due one after the other.
        clock[0] += 0.001
        engine.apply_events(engine.state_for("tenant", "site", f"h{i}"), products + pricing)
    # Make exactly `due` of the visitors' timers due now: time moves to just after the first
    # `due` of them (they all come due 30 s after their pageview, in arrival order).
    dues = sorted(engine._scheduled.values())
    clock[0] = dues[due - 1]
    # A collection the set-up's allocations made due would land in the one measured tick (once:
    # 185 ms instead of 36 ms): it is the set-up's cost, not the tick's.
    gc.collect()
    started = time.perf_counter()
    fired = engine.tick()
    elapsed = (time.perf_counter() - started) * 1000
    assert fired >= due, fired
    return elapsed


def memory_per_visitor(visitors: int) -> float:
    from proactive.engine import Engine

    engine = Engine(pace=False, journal=False)
    rng = random.Random(3)
    now = time.time()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(visitors):
        engine.apply_events(engine.state_for("tenant", "site", f"{i:064x}"), [_event(rng, now) for _ in range(10)])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / visitors


class LiveSite:
    """A tenant with a site, its keys, and rules, in the bench database."""

    def __init__(self, site_key: str, site_id: str, keys: dict[str, str]) -> None:
        self.site_key = site_key
        self.site_id = site_id
        self.keys = keys

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


async def _live_site(name: str) -> LiveSite:
    from archive.tenancy import create_api_key, create_site

    runtime, tenant, _ = await bench_tenant(name)
    keys = {role: (await create_api_key(tenant.id, role)).key for role in ("marketing", "ingest", "admin")}
    site = await create_site(tenant.id, "shop", [ORIGIN])
    await runtime.stop()
    return LiveSite(site.site_key, str(site.id), keys)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _collect(http: Any, url: str, site: LiveSite, visitor: str, *events: dict[str, Any]) -> Any:
    body = {"site_key": site.site_key, "visitor_id": visitor, "session_id": "t", "events": list(events)}
    response = await http.post(f"{url}/v1/collect", content=json.dumps(body),
                               headers={"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0"})
    response.raise_for_status()
    return response.json()


async def _listen(http: Any, url: str, site: LiveSite, visitor: str, arrivals: dict[str, float], ready: asyncio.Event,
                  due: dict[str, float] | None = None, notify: asyncio.Queue[str] | None = None) -> None:
    params = {"site_key": site.site_key, "visitor_id": visitor}
    async with http.stream("GET", f"{url}/v1/invitations/stream", params=params, headers={"origin": ORIGIN}) as response:
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                arrivals[visitor] = time.perf_counter() if due is None else time.time()
                if due is not None:
                    expires_at = json.loads(line[5:])["expires_at"]
                    due[visitor] = datetime.fromisoformat(expires_at).timestamp() - TIMED_EXPIRES
                if notify is not None:
                    notify.put_nowait(visitor)
                return


async def _streams(http: Any, url: str, site: LiveSite, visitors: list[str], arrivals: dict[str, float],
                   due: dict[str, float] | None = None, notify: asyncio.Queue[str] | None = None) -> list[asyncio.Task[None]]:
    tasks, events = [], []
    for visitor in visitors:
        ready = asyncio.Event()
        events.append(ready)
        tasks.append(asyncio.create_task(_listen(http, url, site, visitor, arrivals, ready, due, notify)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
    return tasks


async def _import(http: Any, url: str, site: LiveSite, rules: list[dict[str, Any]]) -> None:
    """The rules, on a site paced far above what the bench sends (pacing is not what is measured)."""
    response = await http.post(f"{url}/v1/rules/import", json={"rules": rules}, headers=site.headers("marketing"))
    response.raise_for_status()
    paced = await http.patch(f"{url}/v1/admin/sites/{site.site_id}/engagement", json={"pacing_per_minute": 10_000}, headers=site.headers("admin"))
    paced.raise_for_status()


async def queue_latency(url: str, site: LiveSite, waiting: int = 200, step: int = 20) -> tuple[list[float], list[float], bool]:
    """``waiting`` visitors held back for capacity (half of them for a higher-priority rule), then
    slots freed ``step`` at a time: how long from each report to each invitation on its stream, how
    long the report's own round trip took (the same-run baseline), and whether they were served
    best first."""
    import httpx

    rules = [
        {"name": "vip", "site": "shop", "priority": 5, "url": "*/pricing/vip*", "when": {"field": "session.pageviews", "op": "gte", "value": 1},
         "invite": {"message": "Hello VIP", "group": "sales", "expires": "10m"}},
        {"name": "regular", "site": "shop", "priority": 1, "url": "*/pricing*", "when": {"field": "session.pageviews", "op": "gte", "value": 1},
         "invite": {"message": "Hello", "group": "sales", "expires": "10m"}},
    ]
    visitors = [f"q{i:03d}" for i in range(waiting)]
    vip = set(visitors[1::2])
    arrivals: dict[str, float] = {}
    limits = httpx.Limits(max_connections=waiting + 20, max_keepalive_connections=waiting + 20)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await _import(http, url, site, rules)
        groups = {"sales": {"online_agents": 0, "max_chats_per_agent": 1, "active_chats": 0}}
        (await http.put(f"{url}/v1/agents/capacity", json={"groups": groups}, headers=site.headers("ingest"))).raise_for_status()
        notify: asyncio.Queue[str] = asyncio.Queue()
        streams = await _streams(http, url, site, visitors, arrivals, notify=notify)
        for visitor in visitors:
            await _collect(http, url, site, visitor, {"type": "pageview", "url": f"{ORIGIN}/pricing/{'vip' if visitor in vip else 'basic'}"})
        latencies: list[float] = []
        round_trips: list[float] = []
        served_order: list[str] = []
        for online in range(step, waiting + 1, step):
            groups["sales"]["online_agents"] = online
            reported = time.perf_counter()
            (await http.put(f"{url}/v1/agents/capacity", json={"groups": groups}, headers=site.headers("ingest"))).raise_for_status()
            round_trips.append((time.perf_counter() - reported) * 1000)
            fresh = [await asyncio.wait_for(notify.get(), 10) for _ in range(step)]
            latencies.extend((arrivals[v] - reported) * 1000 for v in fresh)
            served_order.extend(sorted(fresh))
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    # Best first: every VIP before any regular visitor, each group in the order it qualified.
    expected = sorted(vip) + sorted(set(visitors) - vip)
    return latencies, round_trips, served_order == expected and len(latencies) == waiting


async def condition_latency(url: str, site: LiveSite, visitors: int = 100) -> tuple[list[float], list[float], list[float]]:
    """Condition true on an event → invitation in that collect response (baseline: the same collect
    on a page no rule targets); condition true on time (2 s on a page) → invitation on the stream,
    measured against when it came due."""
    import httpx

    rules = [
        {"name": "instant", "site": "shop", "url": "*/instant*", "when": {"field": "session.pageviews", "op": "gte", "value": 1},
         "invite": {"message": "Now"}},
        {"name": "timed", "site": "shop", "url": "*/timed*", "when": {"field": "page.time_on_page", "op": "gte", "value": "2s"},
         "invite": {"message": "Two seconds in", "expires": f"{TIMED_EXPIRES:g}s"}},
    ]
    responses: list[float] = []
    plain: list[float] = []
    lateness: list[float] = []
    arrivals: dict[str, float] = {}
    names = [f"c{i:03d}" for i in range(visitors)]
    limits = httpx.Limits(max_connections=visitors + 20, max_keepalive_connections=visitors + 20)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await _import(http, url, site, rules)
        for visitor in names:
            started = time.perf_counter()
            body = await _collect(http, url, site, f"i-{visitor}", {"type": "pageview", "url": f"{ORIGIN}/instant"})
            assert body["invitations"], body
            responses.append((time.perf_counter() - started) * 1000)
            # The baseline: the same collect by a new visitor on a page no rule targets.
            started = time.perf_counter()
            body = await _collect(http, url, site, f"p-{visitor}", {"type": "pageview", "url": f"{ORIGIN}/elsewhere"})
            assert not body["invitations"], body
            plain.append((time.perf_counter() - started) * 1000)
        due: dict[str, float] = {}
        streams = await _streams(http, url, site, names, arrivals, due)
        for visitor in names:  # spread over ~2 s, so timers come due one by one, not in a burst
            await _collect(http, url, site, visitor, {"type": "pageview", "url": f"{ORIGIN}/timed"})
            await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*streams, return_exceptions=True), 15)
        lateness = [(arrivals[v] - due[v]) * 1000 for v in names if v in arrivals]
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    assert len(lateness) == visitors, f"{len(lateness)} of {visitors} timed invitations arrived"
    return responses, plain, lateness


def _wrk_post(url: str, body: str, seconds: int) -> float:
    import re
    import subprocess
    import tempfile

    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\nwrk.body = ' + json.dumps(body) + '\nwrk.headers["Content-Type"] = "text/plain"\n'
                 'wrk.headers["Origin"] = "https://shop.example.com"\nwrk.headers["User-Agent"] = "Mozilla/5.0"\n')
    script.close()
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def rich_events(n: int) -> list[dict[str, Any]]:
    """What a real shop page sends: titles, referrers with queries, props the engine reads and
    props it does not, custom events — everything intake redacts and seals (issue 23)."""
    events: list[dict[str, Any]] = []
    for i in range(n):
        if i % 3 == 2:
            events.append({"type": "custom", "name": f"compare_plans_{i}", "props": {"plan": "pro", "seats": 12}})
        else:
            events.append({"type": "pageview", "url": f"https://shop.example.com/products/sku-{1000 + i}?utm_source=news&ref=abc{i}",
                           "title": f"Trail running shoe model {i} — Example Shop", "referrer": "https://www.google.com/search?q=trail+shoes",
                           "props": {"product_id": f"SKU-2024-{i}", "device": "mobile", "language": "nb", "colour": "blue"}})
    return events


def redaction_cost(events: int) -> tuple[float, float]:
    """µs per event for what intake does to a checked event before storing it (redaction with
    the transcript detectors, sealing), and the same-run baseline: checking the event alone."""
    from uuid import uuid4

    from archive.crypto import TenantCrypto
    from archive.redaction import RedactionOptions, Redactor
    from proactive.events import EventIn, as_stored, check_event
    from proactive.store import seal_payloads

    class _Keys:
        active = 1

        def key(self, version: int) -> bytes:
            return b"k" * 32

    tenant = uuid4()
    crypto = TenantCrypto(_Keys(), tenant, *TenantCrypto.new_tenant_secret(_Keys(), tenant))  # type: ignore[arg-type]
    raw = [EventIn(**e) for e in rich_events(30)] * (events // 30)
    now = time.time()
    started = time.perf_counter()
    checked = [check_event(e, now) for e in raw]
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    redactor = Redactor(RedactionOptions())
    stored = [as_stored(c, redactor) for c in checked if isinstance(c, dict)]
    seal_payloads(crypto, "0" * 64, stored)
    cost = time.perf_counter() - started
    return cost / len(raw) * 1e6, baseline / len(raw) * 1e6


def run(table: Table, quick: bool) -> None:
    seconds = 3 if quick else 8
    site = asyncio.run(_live_site("engage"))
    env = {"PARLEY_SCHEDULER": "false", "PARLEY_COLLECT_PER_IP_PER_MINUTE": "100000000", "PARLEY_COLLECT_PER_SITE_PER_SECOND": "100000000"}

    def body(n: int, rich: bool = False) -> str:
        events = rich_events(n) if rich else [{"type": "pageview", "url": f"https://shop.example.com/p{i}"} for i in range(n)]
        return json.dumps({"site_key": site.site_key, "visitor_id": "bench-v", "session_id": "s1", "events": events})

    with Server("bench.bare_app:create", "granian") as bare:
        _wrk_post(bare.url + "/echo", body(10), 1)
        bare_rps = _wrk_post(bare.url + "/echo", body(10), seconds)
    with Server("api.asgi:create", "granian", env) as parley:
        _wrk_post(parley.url + "/v1/collect", body(10), 1)
        batch_rps = _wrk_post(parley.url + "/v1/collect", body(10), seconds)
        single_rps = _wrk_post(parley.url + "/v1/collect", body(1), seconds)
        rich_rps = _wrk_post(parley.url + "/v1/collect", body(10, rich=True), seconds)
    table.add(Row("intake over HTTP, batches of 10", batch_rps * 10, "events/s", bare_rps * 10, target=">= 5,000 events/s",
                  passed=batch_rps * 10 >= 5000, note="baseline: bare Litestar POST parsing the same body"))
    table.add(Row("intake over HTTP, single events", single_rps, "events/s", bare_rps))
    table.add(Row("intake over HTTP, batches of 10 shop events (titles, referrers, props)", rich_rps * 10, "events/s", batch_rps * 10,
                  target=">= 5,000 events/s", passed=rich_rps * 10 >= 5000,
                  note="all redacted and sealed; baseline: the plain batches of 10 above"))
    cost, checking = redaction_cost(3000 if quick else 30000)
    table.add(Row("intake redaction + sealing of a shop event", cost, "µs/event", checking,
                  note="transcript detectors on every text, AES-GCM per event; baseline: checking the event alone"))

    queue_site, timing_site = asyncio.run(_live_site("queue")), asyncio.run(_live_site("timing"))
    with Server("api.asgi:create", "granian", env) as parley:
        served, round_trips, in_order = asyncio.run(queue_latency(parley.url, queue_site))
        responses, plain, lateness = asyncio.run(condition_latency(parley.url, timing_site, 50 if quick else 100))
    p95 = _percentile(served, 0.95)
    table.add(Row("waiting visitor invited after a freeing capacity report, p95", p95, "ms", _percentile(round_trips, 0.95),
                  target="<= 500 ms, best first", passed=p95 <= 500 and in_order,
                  note=f"200 waiting, slots freed 20 at a time; served best first: {'yes' if in_order else 'NO'}; "
                       "baseline: the report's own round trip, p95"))
    p95 = _percentile(responses, 0.95)
    table.add(Row("condition true on an event → invitation in the collect response, p95", p95, "ms", _percentile(plain, 0.95),
                  target="<= 300 ms", passed=p95 <= 300, note="baseline: the same collect on a page no rule targets, p95"))
    p95 = _percentile(lateness, 0.95)
    table.add(Row("condition true on time → invitation on the stream, lateness p95", p95, "ms", target="<= 20 ms", passed=p95 <= 20,
                  note=f"median {statistics.median(lateness):.1f} ms; due = pageview sent + 2 s (an upper bound)"))

    rate, language_only = evaluation_rate(visitors=50_000 if not quick else 10_000, events=100_000 if not quick else 20_000)
    table.add(Row("in-process evaluation, 100 rules", rate, "events/s", language_only, target=">= 20,000 events/s", passed=rate >= 20_000,
                  note="baseline: the same events and conditions through the rule language alone (no waits, memory, timers)"))
    targeted, today = targeting_rate(visitors=50_000 if not quick else 10_000, events=100_000 if not quick else 20_000)
    table.add(Row("in-process evaluation, 100 rules using the targeting fields", targeted, "events/s", today,
                  target="within 10 % of today's rules", passed=targeted >= 0.9 * today,
                  note="baseline: today's 100 rules (no targeting fields) on the same events, same run"))
    for visitors in (10_000, 100_000):
        cost = tick_cost(visitors, 1000)
        table.add(Row(f"tick with 1k due timers, {visitors:,} visitors", cost, "ms", target="<= 50 ms", passed=cost <= 50))
    per_visitor = memory_per_visitor(20_000)
    table.add(Row("memory per active visitor", per_visitor, "bytes", target="<= 2,048 bytes", passed=per_visitor <= 2048))
