"""Authenticated GET of a cheap endpoint vs. a bare Litestar handler, on granian and uvicorn."""

from __future__ import annotations

import asyncio

from bench.harness import Row, Server, Table, bench_tenant, wrk

GOAL = 0.6


async def _make_key() -> str:

    runtime, _, key = await bench_tenant("http", "compliance")
    await runtime.stop()
    return key.key


def run(table: Table, seconds: int) -> None:
    key = asyncio.run(_make_key())
    env = {"PARLEY_SCHEDULER": "false"}  # access logging stays on: it is part of the real cost
    results: dict[str, tuple[float, float]] = {}
    for server in ("granian", "uvicorn"):
        with Server("bench.bare_app:create", server) as bare:
            wrk(bare.url + "/ping", 1)  # warm-up
            bare_rps = wrk(bare.url + "/ping", seconds)
        with Server("api.asgi:create", server, env) as parley:
            headers = {"Authorization": f"Bearer {key}"}
            wrk(parley.url + "/v1/whoami", 1, headers=headers)
            parley_rps = wrk(parley.url + "/v1/whoami", seconds, headers=headers)
        results[server] = (parley_rps, bare_rps)
        table.add(Row(f"authenticated GET /v1/whoami ({server})", parley_rps, "req/s", bare_rps,
                      target=f"ratio >= {GOAL}", passed=parley_rps / bare_rps >= GOAL,
                      note=f"baseline: bare Litestar /ping on {server}"))
