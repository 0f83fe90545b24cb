"""The engagement engine: intake over HTTP against a bare endpoint, in-process evaluation with
100 rules and 50k visitors, tick cost at 10k and 100k visitors with 1k due timers, memory per
visitor."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
import tracemalloc
import uuid

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


def _engine_with_rules(n_rules: int):
    from proactive.engine import Engine, RuleEntry
    from proactive.rules import compile_rule

    engine = Engine(pace=False)
    entries = []
    for i in range(n_rules):
        rule, _ = compile_rule({**RULE, "name": f"r{i}", "when": {"all": [*RULE["when"]["all"], {"field": "cart.value", "op": "gte", "value": i}]}})
        entries.append(RuleEntry(str(uuid.uuid4()), "tenant", "site", rule))
    engine.set_rules("site", entries)
    return engine


def _event(rng: random.Random, now: float) -> dict:
    kind = rng.choice(["pageview", "pageview", "heartbeat", "scroll", "custom"])
    return {"type": kind, "at_epoch": now, "url": f"https://shop.example.com/{rng.choice(['pricing', 'a', 'b', 'product'])}",
            "title": None, "referrer": None, "name": "product_view" if kind == "custom" else None,
            "props": {"depth": 50} if kind == "scroll" else {}, "session_id": "s"}


def evaluation_rate(visitors: int, events: int) -> float:
    engine = _engine_with_rules(100)
    rng = random.Random(1)
    now = time.time()
    states = [engine.state_for("tenant", "site", f"v{i}", f"h{i}") for i in range(visitors)]
    batch = [_event(rng, now) for _ in range(1000)]
    started = time.perf_counter()
    for i in range(events):
        engine.apply_events(states[i % visitors], [batch[i % 1000]])
    return events / (time.perf_counter() - started)


def tick_cost(visitors: int, due: int) -> float:
    engine = _engine_with_rules(10)
    clock = [time.time()]
    engine.clock = lambda: clock[0]
    rng = random.Random(2)
    pricing = [{**_event(rng, clock[0]), "type": "pageview", "url": f"https://shop.example.com/p{j}"} for j in range(2)]
    pricing.append({**pricing[0], "url": "https://shop.example.com/pricing"})
    products = [{**_event(rng, clock[0]), "type": "custom", "name": "product_view"} for _ in range(2)]
    for i in range(visitors):
        # Everything but the 30 s on the pricing page holds: each visitor waits on a timer.
        state = engine.state_for("tenant", "site", f"v{i}", f"h{i}")
        engine.apply_events(state, products + pricing)
    # Every visitor has a pending timer; make exactly `due` of them due now.
    for i, key in enumerate(list(engine._scheduled)):
        engine._scheduled[key] = clock[0] + (0 if i < due else 3600)
    import heapq

    engine._timers = [(d, i, k) for i, (k, d) in enumerate(engine._scheduled.items())]
    heapq.heapify(engine._timers)
    started = time.perf_counter()
    engine.tick()
    return (time.perf_counter() - started) * 1000


def memory_per_visitor(visitors: int) -> float:
    from proactive.engine import Engine

    engine = Engine(pace=False)
    rng = random.Random(3)
    now = time.time()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(visitors):
        state = engine.state_for("tenant", "site", f"visitor-{i:08d}", f"{i:064x}")
        engine.apply_events(state, [_event(rng, now) for _ in range(10)])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / visitors


async def _site_key() -> str:
    from archive.tenancy import create_site

    runtime, tenant, _ = await bench_tenant("engage")
    site = await create_site(tenant.id, "shop", ["https://shop.example.com"])
    await runtime.stop()
    return site.site_key


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
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run(table: Table, quick: bool) -> None:
    seconds = 3 if quick else 8
    site_key = asyncio.run(_site_key())
    env = {"PARLEY_SCHEDULER": "false", "PARLEY_COLLECT_PER_IP_PER_MINUTE": "100000000", "PARLEY_COLLECT_PER_SITE_PER_SECOND": "100000000"}

    def body(n: int) -> str:
        return json.dumps({"site_key": site_key, "visitor_id": "bench-v", "session_id": "s1",
                           "events": [{"type": "pageview", "url": f"https://shop.example.com/p{i}"} for i in range(n)]})

    with Server("bench.bare_app:create", "granian") as bare:
        _wrk_post(bare.url + "/echo", body(10), 1)
        bare_rps = _wrk_post(bare.url + "/echo", body(10), seconds)
    with Server("api.asgi:create", "granian", env) as parley:
        _wrk_post(parley.url + "/v1/collect", body(10), 1)
        batch_rps = _wrk_post(parley.url + "/v1/collect", body(10), seconds)
        single_rps = _wrk_post(parley.url + "/v1/collect", body(1), seconds)
    table.add(Row("intake over HTTP, batches of 10", batch_rps * 10, "events/s", bare_rps * 10, target=">= 5,000 events/s",
                  passed=batch_rps * 10 >= 5000, note="baseline: bare Litestar POST parsing the same body"))
    table.add(Row("intake over HTTP, single events", single_rps, "events/s", bare_rps))
    rate = evaluation_rate(visitors=50_000 if not quick else 10_000, events=100_000 if not quick else 20_000)
    table.add(Row("in-process evaluation, 100 rules", rate, "events/s", target=">= 20,000 events/s", passed=rate >= 20_000))
    for visitors in (10_000, 100_000):
        cost = tick_cost(visitors, 1000)
        table.add(Row(f"tick with 1k due timers, {visitors:,} visitors", cost, "ms", target="<= 50 ms", passed=cost <= 50))
    per_visitor = memory_per_visitor(20_000)
    table.add(Row("memory per active visitor", per_visitor, "bytes", target="<= 2,048 bytes", passed=per_visitor <= 2048))
