"""Attachment files a connector fetches: only from allowed hosts, within a size cap, sealed under
the conversation's key, readable (ledgered), exported, and deleted with their conversation; and
queued work that the platform's API fails is retried later with backoff."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest

from api.composition import build_runtime
from archive.clock import ManualClock
from archive.connectors import service
from archive.search import indexing
from archive.tables import ConnectorJob, ConversationFile
from retention import exports
from tests.connectors import compact, payload, raw, servers
from tests.test_connectors_http import INTERCOM_SECRET, INTERCOM_TOKEN, ROCKETCHAT_TOKEN, connector, intercom_headers, push, stats
from tests.test_no_plaintext import _database_bytes

INVOICE = b"%PDF-1.7 faktura oktober " + bytes(range(256)) * 8
FILE_PATH = "/file-upload/y8FqW2nR5tJ7kL9mC/faktura-oktober.png"


def rocketchat_with_relative_file() -> bytes:
    """The fixture chat, its file named only by Rocket.Chat's relative link (resolved against the API URL)."""
    body = payload("rocketchat", "livechat_session_closed.json")
    for message in body["messages"]:
        message.pop("fileUpload", None)
    return compact(body)


async def archived_with_file(client, tenant, runtime, files_api, **file_settings) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = {"fetch": True, "hosts": [files_api.url], **file_settings}
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN, api_url=files_api.url,
                              api_token="rc-user-id:rc-auth-token", files=settings)
    response = await push(client, created, rocketchat_with_relative_file(), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert response.status_code == 200 and response.json()["status"] == "queued", response.text
    assert await service.run_jobs(runtime) == 1
    return created, response.json()


async def read(client, tenant, conversation_id):
    return (await client.get(f"/v1/transcripts/{conversation_id}", headers=tenant.headers("compliance"))).json()


def attachment_of(conversation: dict[str, Any]) -> dict[str, Any]:
    [attachment] = [a for m in conversation["messages"] for a in m.get("attachments", [])]
    return attachment


async def test_a_fetched_file_is_archived_sealed_and_readable_by_its_sha256(client, tenant, runtime, data_dir):
    async with servers.files({FILE_PATH: INVOICE}) as files_api:
        created, receipt = await archived_with_file(client, tenant, runtime, files_api)
    [request] = files_api.requests
    assert (request["headers"]["X-User-Id"], request["headers"]["X-Auth-Token"]) == ("rc-user-id", "rc-auth-token")
    attachment = attachment_of(await read(client, tenant, receipt["conversation"]))
    digest = hashlib.sha256(INVOICE).hexdigest()
    assert (attachment["sha256"], attachment["size"]) == (digest, len(INVOICE))
    got = await client.get(f"/v1/transcripts/{receipt['conversation']}/files/{digest}", headers=tenant.headers("compliance"))
    assert got.status_code == 200 and got.content == INVOICE
    assert "faktura-oktober.png" in got.headers["content-disposition"]
    assert INVOICE[:40] not in await _database_bytes(data_dir)
    assert (await stats(client, tenant, created))["files"] == {"stored": 1}


async def test_a_file_on_a_host_that_is_not_allowed_is_not_fetched(client, tenant, runtime):
    async with servers.files({FILE_PATH: INVOICE}) as files_api:
        created, receipt = await archived_with_file(client, tenant, runtime, files_api, hosts=["files.example.com"])
    assert files_api.requests == []
    assert "sha256" not in attachment_of(await read(client, tenant, receipt["conversation"]))
    assert (await stats(client, tenant, created))["files"] == {"not_allowed": 1}


async def test_a_file_larger_than_the_cap_is_not_stored(client, tenant, runtime):
    async with servers.files({FILE_PATH: INVOICE}) as files_api:
        created, receipt = await archived_with_file(client, tenant, runtime, files_api, max_bytes=1024)
    assert await ConversationFile.count().where(ConversationFile.conversation == receipt["conversation"]) == 0
    assert (await stats(client, tenant, created))["files"] == {"too_large": 1}


async def test_redirects_are_followed_only_to_allowed_hosts(client, tenant, runtime):
    async with servers.files({FILE_PATH: INVOICE}) as storage:
        async with servers.files({}, redirects={"/to-storage": f"{storage.url}{FILE_PATH}", "/back": FILE_PATH}) as chat:
            body = payload("rocketchat", "livechat_session_closed.json")
            [message] = [m for m in body["messages"] if "fileUpload" in m]
            message["fileUpload"]["publicFilePath"] = f"{chat.url}/to-storage"
            refused = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN, files={"fetch": True, "hosts": [chat.url]})
            allowed = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN, files={"fetch": True, "hosts": [chat.url, storage.url]})
            for room, created in (("room-refused", refused), ("room-allowed", allowed)):
                response = await push(client, created, compact({**body, "_id": room}), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
                assert await service.run_jobs(runtime) == 1 and response.json()["status"] == "queued"
                assert (await stats(client, tenant, created))["archived"] == 1
    assert (await stats(client, tenant, refused))["files"] == {"not_allowed": 1}
    assert (await stats(client, tenant, allowed))["files"] == {"stored": 1}
    assert len(storage.requests) == 1


@pytest.mark.parametrize("fmt", ["jsonl", "eml"])
async def test_exports_carry_the_stored_files(client, tenant, runtime, tmp_path, fmt):
    async with servers.files({FILE_PATH: INVOICE}) as files_api:
        _, receipt = await archived_with_file(client, tenant, runtime, files_api)
    await indexing.drain_all(runtime)
    created = await client.post("/v1/exports", json={"q": "faktura-oktober", "format": fmt}, headers=tenant.headers("compliance"))
    await exports.run_pending(runtime, tenant_id=tenant.id)
    download = await client.get(f"/v1/exports/{created.json()['id']}/download", headers=tenant.headers("compliance"))
    path = tmp_path / "export.zip"
    path.write_bytes(download.content)
    digest = hashlib.sha256(INVOICE).hexdigest()
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        if fmt == "jsonl":
            name = f"attachments/{receipt['conversation']}/{digest}"
            assert archive.read(name) == INVOICE and manifest["files"][name] == digest
            [line] = [json.loads(x) for x in archive.read("transcripts.jsonl").splitlines()]
            assert line["files"] == {digest: name}
        else:
            [eml] = [archive.read(n) for n in archive.namelist() if n.endswith(".eml")]
            assert b'filename="faktura-oktober.png"' in eml and b"kari.hansen@example.com" in eml


async def test_erasing_the_conversation_deletes_its_files(client, tenant, runtime):
    async with servers.files({FILE_PATH: INVOICE}) as files_api:
        _, receipt = await archived_with_file(client, tenant, runtime, files_api)
    erased = await client.post("/v1/erasure", json={"visitor_id": "kQcAtPbhHw9u4uZfA"}, headers=tenant.headers("compliance"))
    assert erased.status_code == 200 and [d["id"] for d in erased.json()["deleted"]] == [receipt["conversation"]]
    assert await ConversationFile.count().where(ConversationFile.conversation == receipt["conversation"]) == 0


async def test_a_fetch_back_the_api_fails_is_retried_with_backoff_then_archived(runtime, settings, client, tenant):
    clock = ManualClock()
    later = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await later.start(migrate=False)
    try:
        async with servers.intercom(INTERCOM_TOKEN) as api:
            created = await connector(client, tenant, "intercom", secret=INTERCOM_SECRET, api_url=api.url, api_token=INTERCOM_TOKEN)
        body = raw("intercom", "notification_conversation_admin_closed.json")
        receipt, _ = await service.answer(later, created["id"], body, intercom_headers(body))
        assert receipt.status == "queued"
        assert await service.run_jobs(later) == 0  # the API is gone: retried later
        [job] = await ConnectorJob.select().where(ConnectorJob.id == receipt.job)
        assert (job["status"], job["attempts"], job["last_error"].split(":")[0]) == ("queued", 1, "unreachable")
        async with servers.intercom(INTERCOM_TOKEN) as api:
            await _point(created["id"], api.url)
            assert await service.run_jobs(later) == 0  # not due yet
            clock.advance(timedelta(seconds=31))
            assert await service.run_jobs(later) == 1
        assert await ConnectorJob.count().where(ConnectorJob.id == receipt.job) == 0
        assert (await read(client, tenant, receipt.conversation))["external_id"] == "intercom:215468932547901"
    finally:
        await later.stop()


async def test_a_fetch_back_that_keeps_failing_is_given_up_and_counted(runtime, settings, client, tenant):
    clock = ManualClock()
    later = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await later.start(migrate=False)
    try:
        async with servers.intercom("another-token") as api:
            created = await connector(client, tenant, "intercom", secret=INTERCOM_SECRET, api_url=api.url, api_token=INTERCOM_TOKEN)
            body = raw("intercom", "notification_conversation_admin_closed.json")
            receipt, _ = await service.answer(later, created["id"], body, intercom_headers(body))
            for _ in range(service.MAX_ATTEMPTS):
                await service.run_jobs(later)
                clock.advance(timedelta(seconds=service.MAX_RETRY_SECONDS + 1))
        [job] = await ConnectorJob.select().where(ConnectorJob.id == receipt.job)
        assert (job["status"], job["attempts"]) == ("failed", service.MAX_ATTEMPTS)
        counted = await stats(client, tenant, created)
        assert (counted["queued"], counted["failed"], counted["failures"]) == (0, 1, {"unauthorized": 1})
    finally:
        await later.stop()


async def _point(connector_id: str, api_url: str) -> None:
    """The platform's API moved (a test server's new port)."""
    from archive.tables import Connector

    await Connector.update({Connector.api_url: api_url}).where(Connector.id == connector_id)
