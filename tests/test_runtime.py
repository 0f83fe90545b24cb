"""The runtime: what one process holds, how other processes' changes reach it, and what it keeps
off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, AsyncIterator, Callable

from api.composition import build_runtime
from archive import tenancy
from archive.runtime import Runtime
from archive.signals import KEY_REVOKED, TENANT_CHANGED, Signals
from archive.workers import Workers
from tests.factories import conversation


def _sibling(runtime: Runtime, settings: Any, **parts: Any) -> Runtime:
    """Another process's runtime: its own caches and signal watcher, the same database."""
    return build_runtime(settings, keyring=runtime.keyring, database=runtime.database, search=runtime.search, **parts)


async def test_settings_changed_by_another_process_apply_here_at_once(runtime, settings, tenant):
    other = _sibling(runtime, settings)
    await other.start(migrate=False)
    try:
        before = await runtime.tenants.context(tenant.id)
        assert before.settings.redact_email is True
        changed = msgspec_replace(before.settings, redact_email=False)
        async with _signalled(runtime, TENANT_CHANGED):
            await tenancy.put_tenant_settings(other, tenant.id, changed)
        after = await runtime.tenants.context(tenant.id)
        assert after.settings.redact_email is False
    finally:
        await other.stop()


async def test_a_key_revoked_by_another_process_stops_working_here_at_once(runtime, settings, tenant, client):
    headers = tenant.headers("compliance")
    assert (await client.get("/v1/whoami", headers=headers)).status_code == 200
    other = _sibling(runtime, settings)
    await other.start(migrate=False)
    try:
        async with _signalled(runtime, KEY_REVOKED):
            await tenancy.revoke_api_key(other, tenant.keys["compliance"].id)
        assert (await client.get("/v1/whoami", headers=headers)).status_code == 401
    finally:
        await other.stop()


class CountingWorkers(Workers):
    def __init__(self) -> None:
        super().__init__(2)
        self.calls: list[str] = []
        self.seen_threads: set[int] = set()

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls.append(getattr(func, "__name__", repr(func)))

        def in_thread(*a: Any, **k: Any) -> Any:
            self.seen_threads.add(threading.get_ident())
            return func(*a, **k)

        return await super().run(in_thread, *args, **kwargs)


async def test_a_large_ingest_body_is_redacted_and_encrypted_off_the_event_loop(runtime, settings, tenant):
    from archive.ingest import ingest_body
    from archive.tenancy import Principal

    workers = CountingWorkers()
    off_loop = _sibling(runtime, settings, workers=workers)
    body = conversation(None, *(["Kortet mitt er 4111 1111 1111 1111. " * 40] * 50), ended_at="2026-11-01T11:00:00Z")
    principal = Principal(key_id=tenant.id, key_prefix="test", tenant_id=tenant.id, tenant_slug=tenant.slug, role="ingest")
    results, _ = await ingest_body(off_loop, principal, __import__("msgspec").json.encode(body))
    assert results[0].status == "created" and results[0].redactions["card"] == 50 * 40
    assert "prepare_all" in workers.calls and threading.get_ident() not in workers.seen_threads


async def test_a_small_ingest_body_stays_on_the_loop(runtime, settings, tenant):
    from archive.ingest import ingest_body
    from archive.tenancy import Principal

    workers = CountingWorkers()
    inline = _sibling(runtime, settings, workers=workers)
    principal = Principal(key_id=tenant.id, key_prefix="test", tenant_id=tenant.id, tenant_slug=tenant.slug, role="ingest")
    await ingest_body(inline, principal, __import__("msgspec").json.encode(conversation()))
    assert "prepare_all" not in workers.calls


def test_signals_reach_another_watcher_of_the_same_data_directory(tmp_path, runtime):
    if not runtime.database.is_sqlite:
        return  # PostgreSQL fan-out is LISTEN/NOTIFY, covered by the revocation test above
    here = Signals(tmp_path)
    seen: list[str] = []
    here.subscribe("tenant_changed", seen.append)
    (tmp_path / "signals").write_text("tenant_changed:t-1\n")  # what another process's announce appends
    here.poll()
    assert seen == ["t-1"]
    here.poll()
    assert seen == ["t-1"]  # each announcement is dispatched once


async def test_a_lost_signal_listener_comes_back_and_hears_again(tmp_path, runtime):
    """A database restart or a terminated session drops the LISTEN connection. The process drops
    its caches, connects again, drops them once more for what it may have missed, and hears the
    next announcement (before this, it fell back to cache TTLs until restarted)."""
    if runtime.database.is_sqlite:
        return  # SQLite's signals are a file: nothing to lose
    import asyncpg

    listening = Signals(tmp_path)
    heard, lost, back = asyncio.Event(), asyncio.Event(), asyncio.Event()
    listening.subscribe(TENANT_CHANGED, lambda arg: heard.set() if arg == "t-after" else None)
    # The caches are dropped when the connection goes, and again once it is back.
    listening.on_reset(lambda: back.set() if lost.is_set() else lost.set())
    await listening.listen(runtime.settings.effective_database_url)
    try:
        admin = await asyncpg.connect(runtime.settings.effective_database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", listening._listener.get_server_pid())
        finally:
            await admin.close()

        await asyncio.wait_for(back.wait(), 15)
        assert listening.listening
        await runtime.signals.announce(TENANT_CHANGED, "t-after")
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        await listening.stop()
    assert not listening.listening


def msgspec_replace(struct: Any, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(struct, **changes)


@contextlib.asynccontextmanager
async def _signalled(runtime: Runtime, kind: str) -> AsyncIterator[None]:
    """Run the block, then wait until ``runtime`` has received a ``kind`` signal from elsewhere
    (PostgreSQL's NOTIFY arrives asynchronously; SQLite's file is read on the next poll)."""
    arrived = asyncio.Event()
    runtime.signals.subscribe(kind, lambda _arg: arrived.set())
    yield
    runtime.signals.poll()
    await asyncio.wait_for(arrived.wait(), 5)
