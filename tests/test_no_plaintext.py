"""Nothing readable at rest: the raw database holds none of the words, names or e-mails ingested,
and the logs hold neither transcript text nor API keys."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from piccolo.querystring import QueryString

from archive import db
from tests.factories import conversation


def _markers() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {
        "text": f"zanzibarquokka{tag}",
        "cyrillic": f"пельменизавод{tag}",
        "name": f"Bartholomew Quixote{tag}",
        "email": f"quixote{tag}@example.org",
        "agent": f"Agentina Marvel{tag}",
        "metadata": f"loyaltyplatinum{tag}",
        "card": "4111111111111111",
    }


def _body(m: dict[str, str]) -> dict:
    body = conversation(None, f"Hello {m['text']} and {m['cyrillic']}", f"Card {m['card']} please")
    body["visitor"] = {"id": "v-plain", "name": m["name"], "email": m["email"]}
    body["agents"] = [{"id": "agent-7", "name": m["agent"]}]
    body["metadata"] = {"tier": m["metadata"]}
    return body


def _needles(m: dict[str, str]) -> list[bytes]:
    needles = []
    for value in m.values():
        raw = value.encode()
        needles += [raw, raw.hex().encode()]  # PostgreSQL renders bytea as hex in text dumps
    return needles


async def _database_bytes(data_dir: Path) -> bytes:
    engine = db.engine()
    if engine.engine_type == "sqlite":
        path = Path(engine.path)  # type: ignore[attr-defined]
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    await engine.run_querystring(QueryString("CHECKPOINT"))
    tables = await engine.run_querystring(
        QueryString("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    )
    dump = []
    for row in tables:
        rows = await engine.run_querystring(QueryString(f'SELECT t::text AS line FROM "{row["tablename"]}" t'))
        dump += [r["line"] for r in rows]
    raw = "\n".join(dump).encode()
    datadir = os.environ.get("PARLEY_TEST_POSTGRES_DATADIR")
    if datadir:  # the cluster's files on disk, WAL included
        raw += b"".join(_readable_files(Path(datadir)))
    return raw


def _readable_files(root: Path) -> list[bytes]:
    """Every file under ``root`` that is still there when read: another database of the same
    cluster may be dropped while we walk it (developers run suites side by side)."""
    contents = []
    for folder, _, names in os.walk(root):  # os.walk skips folders that vanish under it
        for name in names:
            path = Path(folder) / name
            try:
                if path.stat().st_size < 64 << 20:
                    contents.append(path.read_bytes())
            except FileNotFoundError:
                continue
    return contents


async def test_raw_database_holds_no_ingested_words_names_or_emails(client, tenant, data_dir):
    m = _markers()
    response = await client.post("/v1/transcripts", json=_body(m), headers=tenant.headers("ingest"))
    assert response.status_code == 201
    read = await client.get(f"/v1/transcripts/{response.json()['id']}", headers=tenant.headers("compliance"))
    assert m["text"] in read.text and m["name"] in read.text  # it is all there, encrypted
    raw = await _database_bytes(data_dir)
    found = [needle for needle in _needles(m) if needle in raw]
    assert found == []


async def test_logs_hold_no_transcript_text_or_keys(client, tenant, log_stream):
    m = _markers()
    await client.post("/v1/transcripts", json=_body(m), headers=tenant.headers("ingest"))
    bad = _body(m)
    bad["messages"][0]["sender"]["role"] = "robot"
    await client.post("/v1/transcripts", json=bad, headers=tenant.headers("ingest"))
    await client.get("/v1/whoami", headers={"Authorization": f"Bearer {tenant.keys['admin'].key}x"})
    logs = log_stream.getvalue()
    assert "request" in logs  # the access log is being captured
    for value in m.values():
        assert value not in logs
    for key in tenant.keys.values():
        assert key.key not in logs


async def test_a_key_pasted_into_a_url_is_scrubbed_from_the_access_line(client, tenant, log_stream):
    import json

    key = tenant.keys["compliance"].key
    response = await client.get(f"/v1/transcripts/{key}", headers=tenant.headers("compliance"))
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if response.headers["x-request-id"] in line]
    assert [line["event"] for line in lines] == ["request"]
    line = lines[0]
    assert key not in json.dumps(line) and line["path"] == "/v1/transcripts/prl_<scrubbed>"
    assert line["status"] == response.status_code and line["method"] == "GET"
    assert line["key_prefix"] == key.split("_")[1] and line["level"] == "info" and line["timestamp"].endswith("Z")


async def test_a_visitor_id_in_a_path_is_left_out_of_the_access_line(client, tenant, log_stream):
    import json

    for method, path in (("GET", "/v1/visitors/jane.doe@example.com/explain"), ("POST", "/v1/visitors/jane.doe@example.com/attributes")):
        response = await client.request(method, path, json={}, headers=tenant.headers("marketing"))
        lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if response.headers["x-request-id"] in line]
        assert [line["path"] for line in lines if line["event"] == "request"] == [path.replace("jane.doe@example.com", "<visitor>")]
    assert "jane.doe" not in log_stream.getvalue()


async def test_saved_searches_and_exports_keep_a_visitor_filter_sealed_and_still_find_the_visitor(client, tenant, runtime, data_dir):
    """A visitor id is kept only keyed or sealed wherever it is stored: the conversation, a search's
    ledger entry, a hold's criteria — and a case's saved search and an export's criteria, which must
    still find that visitor's conversations when run."""
    import io
    import zipfile

    from archive.search import indexing
    from retention import exports

    visitor = f"ann.quixote{secrets.token_hex(4)}@example.org"
    body = conversation(None, "Where is my parcel?", "On its way.")
    body["visitor"] = {"id": visitor, "name": "Ann"}
    body["messages"][0]["sender"]["id"] = visitor
    assert (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).status_code == 201
    await indexing.drain_all(runtime)
    headers = tenant.headers("compliance")
    case = (await client.post("/v1/cases", json={"name": "parcel"}, headers=headers)).json()
    saved = await client.post(f"/v1/cases/{case['id']}/searches", json={"name": "ann", "filters": {"visitor": visitor}}, headers=headers)
    assert saved.status_code == 201 and saved.json()["filters"] == {"visitor": visitor}
    ran = await client.post(f"/v1/cases/{case['id']}/searches/{saved.json()['id']}/run", json={}, headers=headers)
    assert ran.json()["total"] == 1
    export = await client.post("/v1/exports", json={"filters": {"visitor": visitor}}, headers=headers)
    assert export.status_code == 202
    case_export = await client.post(f"/v1/cases/{case['id']}/exports", json={"search": saved.json()["id"]}, headers=headers)
    assert case_export.status_code == 202

    raw = await _database_bytes(data_dir)
    assert [n for n in (visitor.encode(), visitor.encode().hex().encode()) if n in raw] == []

    assert await exports.run_pending(runtime, tenant_id=tenant.id) == 2
    download = await client.get(f"/v1/exports/{export.json()['id']}/download", headers=headers)
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert sum(1 for line in archive.read("transcripts.jsonl").splitlines() if line) == 1
        assert b'"visitor": "' + visitor.encode() in archive.read("manifest.json")


async def test_an_invitation_id_that_is_not_an_id_is_not_copied_into_the_clear_metrics(client, tenant, data_dir):
    """The KPI table keeps a conversation's invitation id in clear to join it to the invitation;
    a platform field of that name holding words is metadata like any other: encrypted only."""
    from archive.metrics.compute import invitation_id

    words = f"bitte rückruf wegen erstattung {secrets.token_hex(4)}"
    body = conversation(None, "Hello", "Hi")
    body["metadata"] = {"invitation_id": words, "plan": "pro"}
    assert (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).status_code == 201
    raw = await _database_bytes(data_dir)
    assert [n for n in (words.encode(), words.encode().hex().encode()) if n in raw] == []
    assert invitation_id({"invitation_id": "4111 11** **** 1111"}) is None
    assert invitation_id({"invitation_id": "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6"}) == "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6"
    assert invitation_id({"field.invitation_id": "inv-a2"}) == "inv-a2"


async def test_card_numbers_and_addresses_pasted_into_cases_and_holds_are_masked_as_ingest_masks_them(client, tenant, data_dir):
    """Staff free text is stored in clear for everyone who may read it: a case's name and
    description, a hold's name and reason, a closing reason. What a transcript would have masked is
    masked there too; the words around it are kept."""
    card, email = "4111 1111 1111 1111", f"pasted{secrets.token_hex(4)}@example.org"
    headers = tenant.headers("compliance")
    case = await client.post("/v1/cases", json={"name": f"Chargeback {card}", "description": f"customer wrote from {email}"},
                             headers=headers)
    assert case.status_code == 201, case.text
    assert card not in case.text and email not in case.text and "Chargeback" in case.json()["name"]
    hold = await client.post("/v1/holds", json={"name": "Chargeback hold", "reason": f"card {card} disputed", "criteria": {"q": "refund"}},
                             headers=headers)
    assert hold.status_code == 201, hold.text
    assert card not in hold.text and "disputed" in hold.json()["reason"]
    released = await client.post(f"/v1/holds/{hold.json()['id']}/release", json={"reason": f"settled with {email}"}, headers=headers)
    assert released.status_code == 200, released.text
    closed = await client.patch(f"/v1/cases/{case.json()['id']}", json={"status": "closed", "reason": f"refunded to {card}"}, headers=headers)
    assert closed.status_code == 200, closed.text
    raw = await _database_bytes(data_dir)
    for needle in (card.encode(), card.replace(" ", "").encode(), email.encode()):
        assert needle not in raw and needle.hex().encode() not in raw
