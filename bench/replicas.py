"""Engine replicas on PostgreSQL (issue 19): collect intake with two ``parley serve`` processes
against one (same run, same load generators), and how long a tenant goes undecided when its
owner dies (kill -9: the pid is known dead at once on this host) or hangs (SIGSTOP: the lease
must run out, as for an owner on another host).

The load spreads batches over the tenants' sites and both processes, as a load balancer would:
with two processes half of the batches reach a process that does not own their site and are
handed off through the database. Targets: >= 1.7x with two processes; failover <= 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from bench.harness import POSTGRES_ADMIN, VENV_BIN, Row, Table, free_port, postgres_admin

TENANTS = 8
ORIGIN = "https://shop.example.com"
RULE = {"name": "pricing", "site": "shop", "when": {"field": "page.url", "op": "glob", "value": "*/pricing*"},
        "invite": {"message": "Questions?"}}


async def _sql(url: str, query: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def _setup() -> list[str]:
    """In a process of its own (Piccolo binds one engine per process): the tenants and sites."""
    from api.composition import build_runtime
    from archive.tenancy import create_site, create_tenant
    from config.settings import load_settings
    from proactive import service
    from proactive.rules import compile_all
    from proactive.tables import MarketingRule

    runtime = build_runtime(load_settings(), create_keyring=True)
    await runtime.start()
    keys = []
    for i in range(TENANTS):
        tenant = await create_tenant(runtime, f"bench-replicas-{i}")
        site = await create_site(tenant.id, "shop", [ORIGIN])
        compile_all([RULE])
        await MarketingRule.insert(MarketingRule(tenant=tenant.id, site=site.id, name=RULE["name"], definition=json.dumps(RULE)))
        keys.append(site.site_key)
    await service.load_all_rules(runtime)
    await runtime.stop()
    return keys


class Replica:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(VENV_BIN / "parley"), "serve"], env={**env, "PARLEY_PORT": str(self.port)},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("parley serve did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def owns(self, holder: str) -> bool:
        try:
            return os.getpgid(int(holder.split(":")[1])) == self.proc.pid
        except (ProcessLookupError, ValueError, IndexError):
            return False


def _holders(url: str) -> dict[str, str]:
    rows = asyncio.run(_sql(url, "SELECT tenant::text, holder FROM operation_lease WHERE operation = 'engagement'"
                                 " AND released_at IS NULL AND expires_at > now()"))
    return {r[0]: r[1] for r in rows}


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(groups: set[int]) -> tuple[float, float]:
    """CPU seconds used so far by the processes of these process groups (the replicas and their
    workers), and by PostgreSQL's processes (the replicas' pooled connections live as long as they
    do, so a difference over a load is theirs)."""
    parley = postgres = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue  # exited meanwhile
        comm, fields = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if int(fields[2]) in groups:
            parley += ticks
        elif comm.startswith("postgres"):
            postgres += ticks
    return parley / _TICKS, postgres / _TICKS


def _wait_for(predicate: Any, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.05)
    return time.monotonic() - started


def _script(site_keys: list[str]) -> str:
    """wrk: each request a batch of 10 pageviews for a random visitor of a random site."""
    keys = ", ".join(json.dumps(k) for k in site_keys)
    return f"""
local keys = {{{keys}}}
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["Origin"] = "{ORIGIN}"
wrk.headers["User-Agent"] = "Mozilla/5.0"
request = function()
  local key = keys[math.random(#keys)]
  local visitor = "v" .. math.random(1, 5000)
  local events = {{}}
  for i = 1, 10 do events[i] = '{{"type":"pageview","url":"{ORIGIN}/p' .. i .. '"}}' end
  local body = '{{"site_key":"' .. key .. '","visitor_id":"' .. visitor .. '","session_id":"s","events":[' .. table.concat(events, ",") .. ']}}'
  return wrk.format(nil, "/v1/collect", nil, body)
end
"""


def _load(urls: list[str], script: str, seconds: int) -> float:
    """Two wrk processes (one connection pool each) for ``seconds``: accepted events/s in total."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    runs = [subprocess.Popen(["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", fh.name, urls[i % len(urls)]], stdout=subprocess.PIPE, text=True)
            for i in range(2)]
    total = 0.0
    for run in runs:
        out, _ = run.communicate(timeout=seconds + 60)
        if "Non-2xx" in out:
            raise RuntimeError(out)
        rate = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
        total += float(rate.split()[1]) * 10
    return total


def _measure(env_one: dict[str, str], env_two: dict[str, str], keys_one: list[str], keys_two: list[str], seconds: int,
             rounds: int) -> dict[str, float]:
    """One process on one database and two on another, all up at once; the loads alternate between
    them (``rounds`` each), so a change in the machine's other load hits both alike. Medians."""
    url_two = env_two["PARLEY_DATABASE_URL"]
    out: dict[str, float] = {}
    one = Replica(env_one)
    pair = [Replica(env_two), Replica(env_two)]
    try:
        def split() -> bool:
            holders = _holders(url_two)
            return len(holders) == TENANTS and all(any(r.owns(h) for h in holders.values()) for r in pair)

        _wait_for(lambda: len(_holders(env_one["PARLEY_DATABASE_URL"])) == TENANTS)
        _wait_for(split)
        script_one, script_two = _script(keys_one), _script(keys_two)
        _load([one.url], script_one, 2)
        _load([r.url for r in pair], script_two, 2)
        ones, twos = [], []
        cpu: dict[str, list[tuple[float, float]]] = {"one": [], "two": []}

        def measured(name: str, replicas: list[Replica], script: str) -> float:
            groups = {r.proc.pid for r in replicas}
            before = _cpu_seconds(groups)
            rate = _load([r.url for r in replicas], script, seconds)
            after = _cpu_seconds(groups)
            thousands = rate * seconds / 1000
            cpu[name].append(((after[0] - before[0]) / thousands, (after[1] - before[1]) / thousands))
            return rate

        for _ in range(rounds):
            ones.append(measured("one", [one], script_one))
            twos.append(measured("two", pair, script_two))
            print(f"    replicas round: one process {ones[-1]:,.0f} events/s, two {twos[-1]:,.0f}", flush=True)
        out["one"], out["two"] = statistics.median(ones), statistics.median(twos)
        for name, samples in cpu.items():
            out[f"cpu_{name}"] = statistics.median(p for p, _ in samples)
            out[f"pg_{name}"] = statistics.median(g for _, g in samples)
        backlog = asyncio.run(_sql(url_two, "SELECT count(*) FROM engagement_handoff"))[0][0]
        out["backlog"] = float(backlog)
        out["drain"] = _wait_for(lambda: asyncio.run(_sql(url_two, "SELECT count(*) FROM engagement_handoff"))[0][0] == 0)
        one.kill()
        for how, sig in (("hang", signal.SIGSTOP), ("kill", signal.SIGKILL)):
            holders = _holders(url_two)
            victim = next(r for r in pair if any(r.owns(h) for h in holders.values()))
            theirs = [t for t, h in holders.items() if victim.owns(h)]
            survivor = next(r for r in pair if r is not victim)
            os.killpg(victim.proc.pid, sig)
            out[how] = _wait_for(lambda theirs=theirs, survivor=survivor: all(survivor.owns(_holders(url_two).get(t, "")) for t in theirs))
            if sig == signal.SIGSTOP:
                os.killpg(victim.proc.pid, signal.SIGCONT)
                _wait_for(split)  # the paused process is back: the tenants are shared again
    finally:
        for replica in [one, *pair]:
            replica.kill()
    return out


def _database(name: str) -> dict[str, str]:
    """A fresh database, migrated, with the bench's tenants; its environment for ``parley serve``."""
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"PARLEY_DATABASE_URL": POSTGRES_ADMIN.rpartition("/")[0] + f"/{name}",
                "PARLEY_DATA_DIR": tempfile.mkdtemp(prefix="parley-bench-replicas-"),
                "PARLEY_ENGAGEMENT_REPLICAS": "true", "PARLEY_SCHEDULER": "false", "PARLEY_DEMO": "false", "PARLEY_LOG_LEVEL": "warning",
                "PARLEY_COLLECT_PER_IP_PER_MINUTE": "100000000", "PARLEY_COLLECT_PER_SITE_PER_SECOND": "100000000",
                "PICCOLO_CONF": "config.piccolo_conf"})
    subprocess.run([str(VENV_BIN / "parley"), "migrate"], env=env, check=True, capture_output=True)
    return env


def _site_keys(env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "bench.replicas", "setup"], env=env, capture_output=True, text=True, check=True)
    keys: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return keys


def run(table: Table, quick: bool = False) -> None:
    seconds, rounds = (3, 2) if quick else (8, 3)
    names = [f"parley_bench_replicas_{os.getpid()}_{n}" for n in (1, 2)]
    try:
        envs = [_database(name) for name in names]
    except Exception as exc:
        for name in names:
            with contextlib.suppress(Exception):
                asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        table.add(Row("engine replicas", 0.0, "events/s", note=f"PostgreSQL at {POSTGRES_ADMIN} not usable ({type(exc).__name__})",
                      passed=False))
        return
    try:
        result = _measure(envs[0], envs[1], _site_keys(envs[0]), _site_keys(envs[1]), seconds, rounds)
    finally:
        for name in names:
            asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    load = os.getloadavg()[0]
    table.add(Row(f"replicas: collect intake, 2 processes vs 1, {TENANTS} tenants, batches of 10", result["two"], "events/s", result["one"],
                  target=">= 1.7x", passed=result["two"] >= 1.7 * result["one"],
                  note=f"PostgreSQL; half the batches handed off; medians of {rounds} alternating runs; load {load:.1f}"))
    # The capacity plan's inputs (docs/replicas.md): CPU per 1,000 events in the engine processes
    # and in PostgreSQL; the two-process figure includes the hand-off of half the batches.
    table.add(Row("replicas: engine CPU per 1,000 events, 2 processes (half handed off)", result["cpu_two"] * 1000, "ms",
                  result["cpu_one"] * 1000, note="baseline: one process owning every tenant; the ratio is the hand-off's cost"))
    table.add(Row("replicas: PostgreSQL CPU per 1,000 events, 2 processes", result["pg_two"] * 1000, "ms", result["pg_one"] * 1000,
                  note="baseline: one process; every other process on the machine idle"))
    table.add(Row("replicas: hand-off backlog applied after the load stops", result["drain"], "s",
                  note=f"{result['backlog']:,.0f} batches waited for their owner when the last load ended"))
    table.add(Row("replicas: failover after kill -9 of an owner", result["kill"], "s", target="<= 10 s", passed=result["kill"] <= 10.0,
                  note="dead pid seen at once on this host"))
    table.add(Row("replicas: failover after an owner hangs (SIGSTOP)", result["hang"], "s", target="<= 10 s", passed=result["hang"] <= 10.0,
                  note="lease runs out, as for an owner on another host"))


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        print(json.dumps(asyncio.run(_setup())))
