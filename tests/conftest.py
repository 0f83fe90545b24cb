"""Shared fixtures. They start the real engines: SQLite by default, PostgreSQL when
PARLEY_TEST_DATABASE=postgres (``make test`` runs the whole suite once on each).

The environment is prepared here, before any Parley module is imported, because Piccolo binds
its engine when ``config.piccolo_conf`` is first imported. Tests share one database per run and
isolate themselves by tenant: every test gets fresh tenants, which is also what production does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

ENGINE = os.environ.get("PARLEY_TEST_DATABASE", "sqlite")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATA_DIR = Path(tempfile.mkdtemp(prefix="parley-test-"))
POSTGRES_ADMIN_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL", "postgresql://parley@127.0.0.1:55432/postgres")
TEST_DB_NAME = f"parley_test_{secrets.token_hex(4)}"

for name in list(os.environ):
    if name.startswith("PARLEY_") and not name.startswith("PARLEY_TEST_"):
        del os.environ[name]
os.environ["PARLEY_DATA_DIR"] = str(DATA_DIR)
# Two master versions exist; the suite's runtime writes with version 1 (see the runtime fixture),
# so the rotation test can move everything to version 2 without stranding other tests.
MASTER_KEYS = {1: secrets.token_bytes(32), 2: secrets.token_bytes(32)}
os.environ["PARLEY_MASTER_KEY"] = ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in MASTER_KEYS.items())
os.environ["PARLEY_SCHEDULER"] = "false"
os.environ["PARLEY_DEMO"] = "false"
# Long enough that only the revocation signal, never the TTL, can make a revocation visible.
os.environ["PARLEY_AUTH_CACHE_SECONDS"] = "30"
os.environ["PICCOLO_CONF"] = "config.piccolo_conf"


def _postgres_url(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def _admin_sql(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if ENGINE == "postgres":
    try:
        asyncio.run(_admin_sql(f'CREATE DATABASE "{TEST_DB_NAME}"'))
    except Exception as exc:
        pytest.exit(
            f"PARLEY_TEST_DATABASE=postgres but PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}); "
            "start it with .ci/postgres-start or run 'make test'",
            returncode=3,
        )
    os.environ["PARLEY_DATABASE_URL"] = _postgres_url(TEST_DB_NAME)

import httpx  # noqa: E402

from api.app import create_app  # noqa: E402
from api.composition import build_runtime  # noqa: E402
from archive.keyring import MasterKeyring, parse_env_keyring  # noqa: E402
from archive.runtime import Runtime  # noqa: E402
from archive.tenancy import create_api_key, create_tenant  # noqa: E402
from config.log import configure_logging  # noqa: E402
from config.settings import Settings, load_settings  # noqa: E402

LOG_STREAM = io.StringIO()


def pytest_report_header(config: pytest.Config) -> str:
    return f"parley test database: {ENGINE}" + (f" ({TEST_DB_NAME})" if ENGINE == "postgres" else f" ({DATA_DIR})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if ENGINE == "postgres":
        try:
            asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)'))
        except Exception:
            pass
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    configure_logging(settings, stream=LOG_STREAM)
    keys = parse_env_keyring(settings.master_key).keys
    built = build_runtime(settings, keyring=MasterKeyring(active=1, keys=keys, source="tests"))
    await built.start()
    yield built
    await built.stop()


@contextlib.asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a started app, in the test's own event loop.

    Litestar's AsyncTestClient runs the app in a portal thread with its own loop; the asyncpg
    pool would then be shared by two loops, because tests also call domain functions directly.
    The lifespan runs in a task of its own: its cancel scopes must be entered and exited in the
    same task, which a fixture's setup and teardown do not guarantee.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await asyncio.wait([asyncio.ensure_future(started.wait()), lifespan], return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        lifespan.result()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as http:
            yield http
    finally:
        stop.set()
        await lifespan


@pytest.fixture(scope="session")
async def client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, runtime)) as http:
        yield http


class TenantFixture:
    """A fresh tenant with one key per role; ``headers(role)`` gives the Authorization header."""

    def __init__(self, slug: str, tenant_id: Any, keys: dict[str, Any]) -> None:
        self.slug = slug
        self.id = tenant_id
        self.keys = keys

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role].key}"}


async def make_tenant(runtime: Runtime) -> TenantFixture:
    slug = f"t-{secrets.token_hex(5)}"
    tenant = await create_tenant(runtime, slug)
    keys = {role: await create_api_key(tenant.id, role, f"{role} key") for role in ("admin", "compliance", "marketing", "ingest")}
    return TenantFixture(slug, tenant.id, keys)


@pytest.fixture
async def tenant(client: httpx.AsyncClient, runtime: Runtime) -> TenantFixture:
    return await make_tenant(runtime)


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient, runtime: Runtime) -> TenantFixture:
    return await make_tenant(runtime)


@pytest.fixture(params=["sqlite", "opensearch", "memory"])
async def search_backend(request: pytest.FixtureRequest, runtime: Runtime, client: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Each search test runs against every index backend: FTS5, OpenSearch on osmem-server, and
    the in-memory evaluator supervision policies use (so a policy match means a search hit)."""
    from archive.search import indexing

    if request.param == "sqlite":
        await indexing.drain_all(runtime)
        yield runtime.search
        return
    if request.param == "memory":
        async with memory_backend(runtime) as backend:
            yield backend
        return
    async with opensearch_backend(request, runtime) as backend:
        yield backend


@contextlib.asynccontextmanager
async def memory_backend(runtime: Runtime) -> AsyncIterator[Any]:
    """The runtime's index swapped for an empty in-memory one, for one test."""
    from archive.search import indexing
    from archive.search.memory import MemoryBackend

    await indexing.drain_all(runtime)  # what other tests left goes to the embedded index
    backend = MemoryBackend()
    embedded = runtime.swap_search(backend)
    try:
        yield backend
    finally:
        await indexing.drain_all(runtime)
        runtime.swap_search(embedded)


@contextlib.asynccontextmanager
async def opensearch_backend(request: pytest.FixtureRequest, runtime: Runtime) -> AsyncIterator[Any]:
    """The runtime's index (and behaviour-event mirror) on a fresh osmem-server clone, for one test."""
    from archive.search import indexing
    from archive.search.opensearch import OpenSearchBackend
    from proactive.sink import IndexEventSink

    clone = request.getfixturevalue("osmem_clone")  # a fresh, writable copy of the osmem cluster per test
    backend = OpenSearchBackend(clone.url, prefix=f"t{secrets.token_hex(4)}")
    await backend.open()
    await indexing.drain_all(runtime)  # what other tests left goes to the embedded index
    embedded, events = runtime.swap_search(backend), runtime.events
    runtime.events = IndexEventSink(backend)
    try:
        yield backend
    finally:
        await runtime.events.drain()
        await indexing.drain_all(runtime)
        runtime.swap_search(embedded)
        runtime.events = events
        await backend.close()


@pytest.fixture
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture
def log_stream() -> io.StringIO:
    return LOG_STREAM
