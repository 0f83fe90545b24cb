"""Migrations create the schema on an empty database of either engine, and are idempotent."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tests.cli import run_cli
from tests.conftest import ENGINE, _admin_sql, _postgres_url

EXPECTED_TABLES = {"tenant", "api_key", "site", "conversation", "conversation_key", "ledger_entry", "ledger_head", "ledger_checkpoint"}


@pytest.fixture
async def empty_database(tmp_path):
    """A brand-new database of the engine under test, and the environment pointing at it."""
    env = {"PARLEY_DATA_DIR": str(tmp_path)}
    if ENGINE == "postgres":
        name = f"parley_migrate_{secrets.token_hex(4)}"
        await _admin_sql(f'CREATE DATABASE "{name}"')
        env["PARLEY_DATABASE_URL"] = _postgres_url(name)
        yield env
        await _admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    else:
        env["PARLEY_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        yield env


async def _tables(env: dict[str, str]) -> set[str]:
    if ENGINE == "postgres":
        import asyncpg

        conn = await asyncpg.connect(env["PARLEY_DATABASE_URL"])
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {r["tablename"] for r in rows}
    import sqlite3

    path = env["PARLEY_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_migrate_builds_the_schema_on_an_empty_database(empty_database):
    env = {**empty_database, "PARLEY_MASTER_KEY": ""}  # no key from the suite: migrate makes the key file
    first = await run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "migrations not yet run" in first.stdout
    assert (Path(empty_database["PARLEY_DATA_DIR"]) / "master.keyring").stat().st_mode & 0o077 == 0
    assert EXPECTED_TABLES <= await _tables(empty_database)
    again = await run_cli("migrate", env=env)
    assert again.returncode == 0 and "No migrations need to be run" in again.stdout


async def test_cli_keys_work_against_the_api_after_fresh_setup(empty_database, client):
    """tenants create → keys create --json on a fresh database, then the key is usable."""
    env = {**os.environ, **empty_database}
    created = await run_cli("tenants", "create", "fresh-co", "--json", env=env)
    assert created.returncode == 0, created.stderr
    key = await run_cli("keys", "create", "--tenant", "fresh-co", "--role", "admin", "--json", env=env)
    assert key.returncode == 0, key.stderr
    import json

    body = json.loads(key.stdout)
    assert set(body) >= {"id", "key", "role", "tenant"} and body["role"] == "admin" and body["tenant"] == "fresh-co"
    listed = await run_cli("keys", "list", "--tenant", "fresh-co", env=env)
    assert body["key"] not in listed.stdout and body["key"][:12] in listed.stdout


async def test_an_index_file_of_an_older_version_asks_for_a_rebuild_until_the_cli_rebuilds_it(empty_database):
    env = {**empty_database, "PARLEY_SEARCH_BACKEND": "sqlite"}
    assert (await run_cli("migrate", env=env)).returncode == 0
    index = apsw.Connection(str(Path(env["PARLEY_DATA_DIR"]) / "search.sqlite3"))  # as version 3 left it
    index.execute("CREATE VIRTUAL TABLE search_prefix USING fts5(p_visitor)")
    index.execute("PRAGMA user_version = 3")
    index.close()
    upgraded = await run_cli("index", "status", env=env)
    assert upgraded.returncode == 0 and "upgraded from schema 3: run `parley index rebuild`" in upgraded.stdout
    rebuilt = await run_cli("index", "rebuild", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt the sqlite index from the store" in rebuilt.stdout
    after = await run_cli("index", "status", env=env)
    assert after.returncode == 0 and "upgraded" not in after.stdout


def test_a_second_database_in_the_same_process_is_migrated_too(tmp_path: Path) -> None:
    # Piccolo's own migration table kept the engine it saw first: the second database was taken
    # for migrated and left without tables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    done = subprocess.run([sys.executable, "-m", "tests.two_databases", str(tmp_path / "one"), str(tmp_path / "two")],
                          env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'conversation'" in done.stdout and "'signing_key'" in done.stdout and "'migration'" in done.stdout
