"""Hostile input: every finding of the attack passes, one test each (issue 23).

Each test is a bad input that once reached a 500, unbounded memory, a leaked file mode or a broken
export; it now gets a problem+json naming what to change. Add a test here for every new finding.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from api.stores import BoundedMemoryStore
from archive.models import StoredConversation
from retention.exports import _eml
from tests.factories import conversation
from tests.servers import Deployment

PROBLEM = "application/problem+json"


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def assert_problem(response, status: int | tuple[int, ...], path: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    if path is not None:
        assert path in {e["path"] for e in body.get("errors", [])}, body
    return body


@pytest.fixture
async def site(client, tenant):
    created = await client.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": ["https://shop.example.com"]},
                                headers=tenant.headers("admin"))
    assert created.status_code == 201, created.text
    tenant.site = created.json()
    return tenant


# --- JSON nested 1,000 deep (RecursionError) -------------------------------------------------------

@pytest.mark.parametrize("method,path,role", [
    ("POST", "/v1/transcripts", "ingest"),
    ("POST", "/v1/search", "compliance"),
    ("POST", "/v1/holds", "compliance"),
    ("POST", "/v1/rules/validate", "marketing"),
    ("POST", "/v1/rules/import", "marketing"),
    ("POST", "/v1/rules", "marketing"),
    ("PUT", "/v1/agents/capacity", "ingest"),
])
async def test_json_nested_a_thousand_deep_is_a_400_naming_the_depth_limit(client, tenant, method, path, role):
    response = await client.request(method, path, content=deep_json(1000),
                                    headers={**tenant.headers(role), "content-type": "application/json"})
    body = assert_problem(response, 400)
    assert "nested" in body["detail"], body


async def test_json_nested_a_thousand_deep_inside_a_conversation_is_refused(client, tenant):
    item = conversation()
    raw = json.dumps(item).encode().replace(b'"pro"', deep_json(1000), 1)
    response = await client.post("/v1/transcripts", content=raw, headers={**tenant.headers("ingest"), "content-type": "application/json"})
    assert_problem(response, 400)


async def test_a_collect_batch_nested_a_thousand_deep_is_refused(client):
    response = await client.post("/v1/collect", content=deep_json(1000), headers={"content-type": "text/plain"})
    assert_problem(response, 400)


# --- YAML nested 500 deep ----------------------------------------------------------------------------

YAML_TOO_DEEP = "rules: " + "[" * 500 + "]" * 500


def billion_laughs() -> str:
    """A few lines that expand into 10^10 nodes through aliases."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcdefghi", "bcdefghij"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join([*lines, "rules: []"])


@pytest.mark.parametrize("text,words", [(YAML_TOO_DEEP, "at most 64 levels"), (billion_laughs(), "nodes")])
async def test_hostile_yaml_is_refused_by_import_before_it_is_built(client, tenant, text, words):
    response = await client.post("/v1/rules/import", content=text.encode(), headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
    body = assert_problem(response, 400, "$")
    assert words in body["errors"][0]["message"], body


@pytest.mark.parametrize("text,words", [(YAML_TOO_DEEP, "at most 64 levels"), (billion_laughs(), "nodes")])
async def test_hostile_yaml_is_reported_invalid_by_validate(client, tenant, text, words):
    response = await client.post("/v1/rules/validate", content=text.encode(), headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
    assert response.status_code == 200 and response.json()["valid"] is False, response.text
    assert words in response.json()["errors"][0]["message"], response.json()


# --- Invalid UTF-8 bodies ----------------------------------------------------------------------------

INVALID_UTF8 = b'{"name": "\xff\xfe", "reason": "x"}'


@pytest.mark.parametrize("method,path,role", [
    ("POST", "/v1/holds", "compliance"),
    ("POST", "/v1/exports", "compliance"),
    ("POST", "/v1/erasure", "compliance"),
    ("POST", "/v1/admin/keys", "admin"),
    ("POST", "/v1/admin/sites", "admin"),
    ("PUT", "/v1/admin/settings", "admin"),
    ("POST", "/v1/rules", "marketing"),
    ("POST", "/v1/rules/validate", "marketing"),
    ("POST", "/v1/rules/import", "marketing"),
    ("PUT", "/v1/agents/capacity", "ingest"),
    ("POST", "/v1/search", "compliance"),
    ("POST", "/v1/transcripts", "ingest"),
    ("PUT", "/v1/retention/policies", "compliance"),
    ("POST", "/v1/admin/connectors", "admin"),
])
async def test_a_body_that_is_not_utf8_is_a_400(client, tenant, method, path, role):
    response = await client.request(method, path, content=INVALID_UTF8, headers={**tenant.headers(role), "content-type": "application/json"})
    body = assert_problem(response, 400)
    assert "UTF-8" in body["detail"], body


async def test_a_collect_batch_that_is_not_utf8_is_a_400(client):
    response = await client.post("/v1/collect", content=b'{"site_key": "\xff"}', headers={"content-type": "text/plain"})
    assert_problem(response, 400)


# --- Dates at the ends of the calendar ---------------------------------------------------------------

CALENDAR_ENDS = ["date:9999-12-31", "date:>=0001-01-01T00:00:00+01:00", "date:<=9999-12-31T23:59:59-01:00",
                 "date:0001-01-01", "date:0001-01-01..9999-12-31"]


@pytest.mark.parametrize("q", CALENDAR_ENDS)
async def test_search_dates_at_the_ends_of_the_calendar_are_refused_naming_q(client, tenant, q):
    response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, "q")


@pytest.mark.parametrize("name,value", [("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:59:59-01:00"),
                                        ("from", "9999-12-31T23:59:59+00:00")])
async def test_search_filters_at_the_ends_of_the_calendar_are_refused(client, tenant, name, value):
    response = await client.post("/v1/search", json={"filters": {name: value}}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, f"filters.{name}")


@pytest.mark.parametrize("criteria,path", [
    ({"q": "date:9999-12-31"}, "criteria.q"),
    ({"q": "date:>=0001-01-01T00:00:00+01:00"}, "criteria.q"),
    ({"from": "0001-01-01T00:00:00+01:00"}, "criteria.from"),
    ({"to": "9999-12-31T23:59:59-01:00"}, "criteria.to"),
    ({"filters": {"from": "0001-01-01T00:00:00+01:00"}}, "criteria.filters.from"),
])
async def test_hold_criteria_at_the_ends_of_the_calendar_are_refused(client, tenant, criteria, path):
    response = await client.post("/v1/holds", json={"name": "h", "reason": "r", "criteria": criteria}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, path)


@pytest.mark.parametrize("body,path", [
    ({"q": "date:9999-12-31"}, "q"),
    ({"q": "date:>=0001-01-01T00:00:00+01:00"}, "q"),
    ({"filters": {"to": "9999-12-31T23:59:59-01:00"}}, "filters.to"),
])
async def test_export_queries_at_the_ends_of_the_calendar_are_refused(client, tenant, body, path):
    response = await client.post("/v1/exports", json=body, headers=tenant.headers("compliance"))
    assert_problem(response, 422, path)


# --- Query-language depth and term count -------------------------------------------------------------

@pytest.mark.parametrize("q", ["NOT " * 100 + "a", "(" * 100 + "a" + ")" * 100, " OR ".join(f"w{i}" for i in range(150)),
                               "-" * 500 + "a"])
async def test_a_query_too_deep_or_too_long_is_refused_naming_q(client, tenant, q):
    response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
    body = assert_problem(response, 422, "q")
    assert "at most" in " ".join(e["message"] for e in body["errors"]), body


async def test_a_hold_query_too_deep_is_refused(client, tenant):
    response = await client.post("/v1/holds", json={"name": "h", "reason": "r", "criteria": {"q": "NOT " * 100 + "a"}},
                                 headers=tenant.headers("compliance"))
    assert_problem(response, 422, "criteria.q")


# --- Cursors -----------------------------------------------------------------------------------------

def _cursor(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("payload", [{"offset": 2**63}, {"offset": 2**64 + 5}, {"offset": -1}, {"offset": 10**40},
                                     {"started_at": "9999-12-31T23:59:59.999999Z", "conversation": "x"}])
async def test_a_forged_cursor_is_refused_naming_cursor(client, tenant, payload):
    response = await client.post("/v1/search", json={"q": "", "sort": "newest", "cursor": _cursor(payload)}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, "cursor")
    response = await client.post("/v1/search", json={"q": "order", "cursor": _cursor(payload)}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, "cursor")


# --- Audit -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params,path", [
    ({"after_seq": str(2**63)}, "after_seq"),
    ({"after_seq": str(10**30)}, "after_seq"),
    ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
    ({"to": "9999-12-31T23:59:59-01:00"}, "to"),
    ({"from": "0001-01-01T00:00:00"}, "from"),
])
async def test_audit_filters_out_of_range_are_a_400_naming_the_parameter(client, tenant, params, path):
    response = await client.get("/v1/audit", params=params, headers=tenant.headers("compliance"))
    assert_problem(response, 400, path)


@pytest.mark.parametrize("params,path", [
    ({"from": "1700000000"}, "from"),
    ({"from": "-1"}, "from"),
    ({"to": "0.5"}, "to"),
    ({"to": "1e10"}, "to"),
    ({"from": "2026-11-01T10:00:00"}, "from"),
])
async def test_audit_filters_that_are_not_rfc3339_with_an_offset_are_a_400_naming_the_parameter(client, tenant, params, path):
    """Found by schemathesis (``to=0.5`` answered 200): a number was read as seconds since 1970 and
    a time without an offset as UTC, so the filter silently covered another range."""
    response = await client.get("/v1/audit", params=params, headers=tenant.headers("compliance"))
    assert_problem(response, 400, path)
    fine = await client.get("/v1/audit", params={"from": "2026-11-01T10:00:00+01:00", "to": "2999-01-01T00:00:00Z"}, headers=tenant.headers("compliance"))
    assert fine.status_code == 200, fine.text


# --- Ingest ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,path", [
    ({"started_at": "0001-01-01T00:00:00Z", "ended_at": "0001-01-01T00:30:00Z"}, "started_at"),
    ({"started_at": "0001-01-01T00:00:00+01:00"}, "started_at"),
    ({"ended_at": "9999-12-31T23:59:59-01:00"}, "ended_at"),
])
async def test_conversations_dated_at_the_ends_of_the_calendar_are_refused(client, tenant, overrides, path):
    response = await client.post("/v1/transcripts", json=conversation(**overrides), headers=tenant.headers("ingest"))
    assert_problem(response, 422, path)


async def test_a_message_dated_at_the_ends_of_the_calendar_is_refused(client, tenant):
    item = conversation()
    item["messages"][0]["at"] = "0001-01-01T00:00:00+01:00"
    response = await client.post("/v1/transcripts", json=item, headers=tenant.headers("ingest"))
    assert_problem(response, 422, "messages[0].at")


# --- Engagement --------------------------------------------------------------------------------------

@pytest.mark.parametrize("at", [int("9" * 400), -int("9" * 400), "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_collect_event_at_out_of_range_is_rejected_and_the_rest_kept(client, site, at):
    """Collect answers per event (one bad event must not lose the others): the bad one is named."""
    events = [{"type": "heartbeat", "at": at}, {"type": "heartbeat"}]
    body = {"site_key": site.site["site_key"], "visitor_id": "v", "session_id": "s", "events": events}
    response = await client.post("/v1/collect", content=json.dumps(body), headers={"content-type": "text/plain", "origin": "https://shop.example.com"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [{"index": 0, "reason": "at is out of range"}], response.json()


@pytest.mark.parametrize("prop", ["value", "items", "depth", "product_id"])
async def test_a_collect_prop_beyond_64_bits_is_kept_as_the_number_a_browser_holds(client, site, prop):
    """A browser's numbers are doubles: a 20-digit integer in props is kept as the double it is.
    It was kept as an integer the visitor's memory cannot encode (msgpack: 64 bits), so the commit
    failed outside its error handling and the request waited forever for a write that never came."""
    headers = {"content-type": "text/plain", "origin": "https://shop.example.com"}

    async def send(visitor: str, value: Any) -> httpx.Response:
        body = {"site_key": site.site["site_key"], "visitor_id": visitor, "session_id": "s", "events": [{"type": "cart", "props": {prop: value}}]}
        return await asyncio.wait_for(client.post("/v1/collect", content=json.dumps(body), headers=headers), 30)

    response = await send("v-big", 2**64)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == []
    assert (await send("v-big", 3)).status_code == 200
    assert (await send("v-other", 3)).status_code == 200


async def test_a_collect_prop_beyond_any_double_rejects_its_event_only(client, site):
    headers = {"content-type": "text/plain", "origin": "https://shop.example.com"}
    events = [{"type": "cart", "props": {"value": int("9" * 400)}}, {"type": "heartbeat"}]
    body = {"site_key": site.site["site_key"], "visitor_id": "v", "session_id": "s", "events": events}
    response = await asyncio.wait_for(client.post("/v1/collect", content=json.dumps(body), headers=headers), 30)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [{"index": 0, "reason": "props numbers must be within ±1.7e308"}]


async def test_a_rule_in_with_a_nested_list_is_refused_naming_the_value(client, tenant):
    doc = {"rules": [{"name": "r", "site": "shop", "when": {"field": "page.url", "op": "in", "value": [["x"]]}, "invite": {"message": "hi"}}]}
    response = await client.post("/v1/rules/validate", json=doc, headers=tenant.headers("marketing"))
    assert response.status_code == 200 and response.json()["valid"] is False, response.text
    assert response.json()["errors"][0]["path"] == "rules[0].when.value"


# --- Unauthenticated memory growth -------------------------------------------------------------------

def _rss_bytes(group: int) -> int:
    """Resident memory of every process in the server's process group (Granian serves the app
    from a worker process under a supervisor)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            status = (stat.parent / "status").read_text()
        except OSError:
            continue  # the process ended while being read
        if int(fields[2]) == group:  # fields after the command name: state, ppid, pgrp, ...
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    assert total, f"no process in group {group}"
    return total


async def _hostile_unauthenticated(http: httpx.AsyncClient, n: int) -> Counter[int]:
    """``n`` requests no key authorises, in five shapes; answers counted by status."""
    statuses: Counter[int] = Counter()
    huge_key = "ps_" + "k" * 2_000_000  # the attack pass's 2 MB site key

    async def one(i: int) -> None:
        junk = secrets.token_urlsafe(40)
        shape = i % 5
        if shape == 0:
            body = json.dumps({"site_key": huge_key + junk, "visitor_id": "v", "session_id": "s", "events": []})
            response = await http.post("/v1/collect", content=body, headers={"content-type": "text/plain"})
        elif shape == 1:
            body = json.dumps({"visitor_id": "v", "session_id": "s", "events": [{"type": "heartbeat"}]})
            response = await http.post("/v1/collect", content=body, headers={"content-type": "text/plain", "x-parley-site": f"ps_{junk}"})
        elif shape == 2:
            response = await http.get("/v1/invitations/stream", params={"site_key": f"ps_{junk}" * 100, "visitor_id": "v"})
        elif shape == 3:
            response = await http.get("/v1/whoami", headers={"Authorization": f"Bearer prl_{junk[:8]}_{junk}"})
        else:
            response = await http.post(f"/v1/connectors/{uuid.uuid4()}/events", content=b'{"event": "' + junk.encode() * 1000 + b'"}',
                                       headers={"content-type": "application/json"})
        statuses[response.status_code] += 1

    for start in range(0, n, 8):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
    return statuses


async def test_a_thousand_hostile_unauthenticated_requests_grow_the_server_by_at_most_10_mb(tmp_path):
    deployed = Deployment(tmp_path / "deployment", scheduler=False)
    await deployed.create()
    try:
        await deployed.start()
        assert deployed.process is not None
        async with httpx.AsyncClient(base_url=deployed.url, timeout=30) as http:
            await _hostile_unauthenticated(http, 200)  # warm-up: code paths, pools, allocator arenas
            before = _rss_bytes(deployed.process.pid)
            statuses = await _hostile_unauthenticated(http, 1000)
            after = _rss_bytes(deployed.process.pid)
        print(f"RSS before {before / 2**20:.1f} MiB, after 1,000 hostile requests {after / 2**20:.1f} MiB, growth {(after - before) / 2**20:.2f} MiB")
        assert set(statuses) <= {400, 401, 403, 404, 413, 422}, statuses
        assert after - before <= 10 * 2**20, (before, after)
    finally:
        await deployed.drop()


async def test_rate_limit_counters_are_bounded():
    store = BoundedMemoryStore(max_keys=100)
    for i in range(1000):
        await store.set(f"site:{i}", b"1", expires_in=60)
    assert len(store) <= 100
    assert await store.get("site:999") == b"1"  # the newest are kept


# --- Files are private -------------------------------------------------------------------------------

async def _until(check, what: str, seconds: float = 60.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if (result := await check()) is not None:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_data_directory_is_0700_and_every_file_0600_database_index_and_exports_included(tmp_path):
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        keys = await deployed.tenant("files")
        await deployed.start()
        async with httpx.AsyncClient(base_url=deployed.url, timeout=30) as http:
            ingested = await http.post("/v1/transcripts", json=conversation(), headers={"Authorization": f"Bearer {keys['ingest']}"})
            assert ingested.status_code == 201, ingested.text
            compliance = {"Authorization": f"Bearer {keys['compliance']}"}
            export = (await http.post("/v1/exports", json={"q": ""}, headers=compliance)).json()

            async def done():
                state = (await http.get(f"/v1/exports/{export['id']}", headers=compliance)).json()
                return state if state["status"] == "done" else None

            await _until(done, "the export")
        files = [p for p in deployed.data_dir.rglob("*") if p.is_file() and p.name != "server.log"]
        assert any(p.suffix == ".sqlite3" for p in files) or deployed.database, files
        assert any("export" in str(p) for p in files), files  # the sealed export is among them
        # The harness made the directory itself (see the next test for one Parley creates).
        loose = {str(p.relative_to(deployed.data_dir)): oct(p.stat().st_mode & 0o777)
                 for p in deployed.data_dir.rglob("*") if p.name != "server.log" and p.stat().st_mode & 0o077}
        assert loose == {}, loose
    finally:
        await deployed.drop()


async def test_a_data_directory_parley_creates_is_0700(tmp_path):
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        fresh = tmp_path / "fresh" / "data"
        deployed.env["PARLEY_DATA_DIR"] = str(fresh)
        result = await deployed.cli("migrate")
        assert result.returncode == 0, result.stderr
        assert oct(fresh.stat().st_mode & 0o777) == oct(0o700)
        assert {oct(p.stat().st_mode & 0o777) for p in fresh.rglob("*") if p.is_file()} <= {oct(0o600)}
    finally:
        await deployed.drop()


async def test_start_up_warns_when_the_data_files_were_made_readable_by_others(tmp_path):
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        deployed.data_dir.chmod(0o755)
        deployed.env["PARLEY_LOG_LEVEL"] = "info"
        result = await deployed.cli("tenants", "list")
        assert result.returncode == 0, result.stderr
        assert "data_files_not_private" in result.stderr and str(deployed.data_dir) in result.stderr, result.stderr
        assert "chmod -R go-rwx" in result.stderr
    finally:
        await deployed.drop()


# --- Names in e-mail headers -------------------------------------------------------------------------

@pytest.mark.parametrize("where,value", [
    ("visitor.name", "Ola\r\nBcc: everyone@example.com"),
    ("visitor.id", "v\n1"),
    ("agents[0].name", "Kari\x00"),
    ("external_id", "conv\r\nX-Injected: 1"),
    ("messages[0].sender.name", "Tab\tbed"),
])
async def test_names_with_control_characters_are_refused_at_ingest_naming_the_field(client, tenant, where, value):
    item = conversation()
    target = {"visitor.name": (item["visitor"], "name"), "visitor.id": (item["visitor"], "id"), "agents[0].name": (item["agents"][0], "name"),
              "external_id": (item, "external_id"), "messages[0].sender.name": (item["messages"][0]["sender"], "name")}[where]
    target[0][target[1]] = value
    response = await client.post("/v1/transcripts", json=item, headers=tenant.headers("ingest"))
    body = assert_problem(response, 422, where)
    assert "control characters" in next(e["message"] for e in body["errors"] if e["path"] == where)


def _stored(**visitor: Any) -> StoredConversation:
    raw = conversation("conv\r\nX-Injected: 1", agents=[{"id": "a\n7", "name": "Kari\r\nBcc: all@example.com", "email": "kari@example.com"}],
                       visitor={"id": "v-1", **visitor})
    return msgspec.convert(raw, StoredConversation, strict=False)


@pytest.mark.parametrize("visitor", [
    {"name": "Ola\r\nBcc: everyone@example.com", "email": "ola@example.no"},
    {"name": "Åse Ødegård-Þórsdóttir 王小明", "email": "not an address\r\nX-Injected: 1"},
    {"name": None, "email": None},
])
def test_eml_headers_are_one_line_each_and_rfc_2047_encoded(visitor):
    """Conversations archived before ingest refused control characters must still export."""
    raw = _eml(uuid.uuid4(), _stored(**visitor), "0" * 64, 1, {})
    head = raw.split(b"\n\n", 1)[0]
    assert head.isascii()  # non-ASCII names are encoded words, never raw bytes
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    names = {line.split(b":", 1)[0] for line in head.splitlines() if not line.startswith((b" ", b"\t"))}
    assert names <= {b"From", b"To", b"Subject", b"Date", b"Message-ID", b"X-Parley-Conversation-Id", b"X-Parley-Revision",
                     b"X-Parley-Content-SHA256", b"Content-Type", b"Content-Transfer-Encoding", b"MIME-Version"}, names
    sender = parsed["From"].addresses[0]
    assert sender.display_name == " ".join((visitor["name"] or "v-1").replace("\r\n", " ").split())
    assert sender.addr_spec == (visitor["email"] if visitor["email"] == "ola@example.no" else "v-1@visitor.invalid")
    assert parsed["To"].addresses[0].addr_spec == "kari@example.com"


# --- Server-level errors -----------------------------------------------------------------------------

async def test_a_url_over_the_limit_is_a_414_problem(client, tenant):
    response = await client.get("/v1/audit", params={"actor": "a" * 9000}, headers=tenant.headers("compliance"))
    body = assert_problem(response, 414)
    assert body["type"] == "/problems/uri-too-long" and "8192" in body["detail"]


async def test_headers_over_the_limit_are_a_431_problem(client, tenant):
    response = await client.get("/v1/whoami", headers={**tenant.headers("admin"), "x-padding": "p" * 20_000})
    body = assert_problem(response, 431)
    assert body["type"] == "/problems/headers-too-large"


async def test_an_unauthenticated_oversized_request_is_still_a_problem_not_a_401(client):
    response = await client.get("/v1/whoami", params={"x": "a" * 9000})
    assert_problem(response, 414)


# --- Exports -----------------------------------------------------------------------------------------

async def test_a_failed_export_says_why_in_words(client, tenant, runtime, monkeypatch):
    from retention import exports

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a header with content the writer refused")

    requested = await client.post("/v1/exports", json={"q": "", "format": "eml"}, headers=tenant.headers("compliance"))
    assert requested.status_code == 202, requested.text
    monkeypatch.setattr(exports, "build_export", broken)
    # This export only: other tests' queued exports must not meet the broken builder.
    row = await exports.Export.select().where(exports.Export.id == uuid.UUID(requested.json()["id"])).first()
    await exports.run_one(runtime, row)
    state = (await client.get(f"/v1/exports/{requested.json()['id']}", headers=tenant.headers("compliance"))).json()
    assert state["status"] == "failed"
    assert "could not be built (ValueError)" in state["error"] and requested.json()["id"] in state["error"]
    assert "header with content" not in state["error"]  # the exception's text may quote content: log only


async def test_an_export_killed_mid_run_is_built_by_the_restarted_server(tmp_path):
    """The attack pass left 3 of 3 exports killed mid-run ``running`` for ever (download: 409)."""
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        keys = await deployed.tenant("exp")
        compliance = {"Authorization": f"Bearer {keys['compliance']}"}
        await deployed.start()
        async with httpx.AsyncClient(base_url=deployed.url, timeout=30) as http:
            for start in range(0, 400, 100):
                batch = [conversation(f"exp-{start + i}", "a refund for order 1234", "done") for i in range(100)]
                created = await http.post("/v1/transcripts", json={"conversations": batch}, headers={"Authorization": f"Bearer {keys['ingest']}"})
                assert created.status_code == 201, created.text
            requested: list[str] = []

            async def one_running() -> bool | None:
                states = [(await http.get(f"/v1/exports/{e}", headers=compliance)).json()["status"] for e in requested]
                if "running" in states:
                    return True
                if all(s == "done" for s in states):  # built between two looks (or none yet): ask for another
                    again = await http.post("/v1/exports", json={"q": "", "format": "eml"}, headers=compliance)
                    assert again.status_code == 202, again.text
                    requested.append(again.json()["id"])
                return None

            killed: list[str] = []
            for _ in range(5):  # the run may finish between the look and the kill: then kill again
                await _until(one_running, "an export run")
                deployed.kill()
                killed = [e for e in requested if (await deployed.sql("SELECT status FROM export WHERE id = $1", uuid.UUID(e)))[0][0] == "running"]
                await deployed.start()
                if killed:
                    break
            assert killed, "no kill landed while an export was running"

            async def all_settled() -> list[dict[str, Any]] | None:
                states = [(await http.get(f"/v1/exports/{e}", headers=compliance)).json() for e in requested]
                return states if all(s["status"] in ("done", "failed") for s in states) else None

            states = await _until(all_settled, "the killed export being built again", seconds=90)
            assert [s["status"] for s in states] == ["done"] * len(states), states
            download = await http.get(f"/v1/exports/{killed[0]}/download", headers=compliance)
            assert download.status_code == 200 and download.content[:2] == b"PK"
    finally:
        await deployed.drop()


# --- Supervision (found after the merge of issue 22's supervision) -----------------------------------

@pytest.mark.parametrize("path,name", [
    ("/v1/reviews", "from"), ("/v1/reviews", "to"),
    ("/v1/supervision/reports/activity", "from"), ("/v1/supervision/reports/ageing", "to"),
])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_supervision_filters_at_the_ends_of_the_calendar_are_refused(client, tenant, path, name, value):
    response = await client.get(path, params={name: value}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, name)


@pytest.mark.parametrize("body,path", [({"from": "0001-01-01T00:00:00+01:00"}, "from"), ({"to": "9999-12-31T23:59:59-01:00"}, "to")])
async def test_a_backfill_at_the_ends_of_the_calendar_is_refused(client, tenant, body, path):
    policy = await client.post("/v1/supervision/policies", json={"name": f"p-{secrets.token_hex(3)}", "query": "refund"},
                               headers=tenant.headers("compliance"))
    assert policy.status_code == 201, policy.text
    response = await client.post(f"/v1/supervision/policies/{policy.json()['id']}/backfill", json=body, headers=tenant.headers("compliance"))
    assert_problem(response, 422, path)


@pytest.mark.parametrize("query", ["NOT " * 100 + "a", "date:9999-12-31"])
async def test_a_supervision_policy_query_too_deep_or_out_of_range_is_refused(client, tenant, query):
    response = await client.post("/v1/supervision/policies", json={"name": "p", "query": query}, headers=tenant.headers("compliance"))
    assert_problem(response, 422, "query")


# --- Support reports (found after the merge of issue 18's KPIs) ---------------------------------------

@pytest.mark.parametrize("params,path", [({"to": "9999-12-31"}, "to"), ({"to": "9999-12-31T23:59:59-01:00"}, "to"),
                                         ({"from": "0001-01-01T00:00:00+01:00"}, "from")])
async def test_support_report_ranges_at_the_ends_of_the_calendar_are_refused(client, tenant, params, path):
    response = await client.get("/v1/reports/support", params=params, headers=tenant.headers("compliance"))
    assert_problem(response, 400, path)


# --- NUL characters (PostgreSQL cannot hold them in text: /console/audit?actor=%00 was a 500 there) --

@pytest.mark.parametrize("path", ["/v1/audit?actor=%00", "/v1/reviews?status=open&policy=a%00b"])
async def test_a_nul_in_a_query_parameter_is_a_400_problem(client, tenant, path):
    body = assert_problem(await client.get(path, headers=tenant.headers("admin")), 400)
    assert "NUL" in body["detail"]


async def test_a_nul_in_a_console_query_parameter_is_a_400_page(client, tenant):
    answered = await client.get("/console/audit?actor=%00", headers=tenant.headers("admin"))
    assert answered.status_code == 400, answered.text[:300]


async def test_a_nul_in_a_json_name_is_refused_naming_the_field_and_nothing_is_stored(client, tenant):
    sent = conversation("nul-1", "hei")
    sent["visitor"]["name"] = "Kari\u0000"
    assert_problem(await client.post("/v1/transcripts", json=sent, headers=tenant.headers("ingest")), 422, "visitor.name")
    found = await client.post("/v1/search", json={"q": "hei"}, headers=tenant.headers("compliance"))
    assert "nul-1" not in found.text


async def test_a_nul_in_a_console_form_field_is_a_400(client, tenant):
    from tests.test_console_cases import _signed_in, browser_like  # the console's own sign-in helpers
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        answered = await http.post("/console/cases", data={"_csrf": csrf, "name": "\x00", "description": "x"})
    assert answered.status_code == 400, answered.text[:300]


async def test_a_visitor_memory_that_cannot_be_written_fails_the_request_instead_of_hanging_it(client, site, monkeypatch):
    """Whatever makes a commit fail — the store or encoding a visitor's memory — its waiters are
    told: the request answers 500 (nothing was made durable) and the next one is served."""
    from proactive import journal

    def unencodable(state: Any) -> bytes:
        raise OverflowError("can't serialize ints < -2**63 or > 2**64 - 1")

    headers = {"content-type": "text/plain", "origin": "https://shop.example.com"}
    body = {"site_key": site.site["site_key"], "visitor_id": "v", "session_id": "s", "events": [{"type": "heartbeat"}]}
    with monkeypatch.context() as patched:
        patched.setattr(journal.visitor_state, "dump", unencodable)
        response = await asyncio.wait_for(client.post("/v1/collect", content=json.dumps(body), headers=headers), 30)
    assert response.status_code == 500 and response.headers["content-type"].startswith(PROBLEM), response.text
    again = await asyncio.wait_for(client.post("/v1/collect", content=json.dumps(body), headers=headers), 30)
    assert again.status_code == 200, again.text
