"""Shared bench plumbing: servers in subprocesses, wrk runs, the results table."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


@dataclass
class Row:
    bench: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.bench}: {row.value:,.1f} {row.unit}" + (f" (ratio {row.ratio:.2f})" if row.ratio else ""), flush=True)

    def render(self) -> str:
        lines = [
            "| bench | value | unit | baseline (same run) | ratio | target | ok | note |",
            "|---|---:|---|---:|---:|---|---|---|",
        ]
        for r in self.rows:
            ok = "" if r.passed is None else ("yes" if r.passed else "NO")
            lines.append(
                f"| {r.bench} | {r.value:,.1f} | {r.unit} | "
                f"{'' if r.baseline is None else f'{r.baseline:,.1f}'} | {'' if r.ratio is None else f'{r.ratio:.2f}'} | {r.target} | {ok} | {r.note} |"
            )
        return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An ASGI app factory served by granian or uvicorn in a subprocess on loopback."""

    def __init__(self, factory: str, server: str = "granian", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if server == "granian":
            cmd = [str(VENV_BIN / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1", "--no-log", factory]
        else:
            cmd = [str(VENV_BIN / "uvicorn"), "--factory", "--host", "127.0.0.1", "--port", str(self.port),
                   "--no-access-log", "--log-level", "warning", factory]
        self.log = tempfile.TemporaryFile()
        # Its own session, so the server's worker processes go with it (never outliving the bench).
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    self.log.seek(0)
                    raise RuntimeError(f"server exited: {self.log.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        raise RuntimeError("server did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


async def bench_tenant(name: str, role: str | None = None) -> Any:
    """A fresh tenant in the bench database (migrated), and an API key of ``role`` if asked for.
    Returns a started runtime; callers that own the loop stop it with ``await runtime.stop()``."""
    from api.composition import build_runtime
    from archive.tenancy import create_api_key, create_tenant
    from config.settings import load_settings

    runtime = build_runtime(load_settings(), create_keyring=True)
    await runtime.start()
    tenant = await create_tenant(runtime, f"bench-{name}-{os.getpid()}-{time.monotonic_ns() % 100000}")
    key = await create_api_key(tenant.id, role) if role else None
    return runtime, tenant, key


def wrk(url: str, seconds: int = 5, connections: int = 32, headers: dict[str, str] | None = None) -> float:
    """Requests per second from wrk (one thread: the other core serves)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it from Debian packages)")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


# The PostgreSQL cluster benches create their databases in (.ci/postgres-start starts one here).
POSTGRES_ADMIN = os.environ.get("PARLEY_BENCH_POSTGRES_URL", "postgresql://parley@127.0.0.1:55432/postgres")


async def postgres_admin(statement: str) -> None:
    """One statement on the admin connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
