"""Managing connectors: the CLI and admin API contract, secrets shown once and stored only
sealed, stats per connector, deletion, and bounded retention of the bookkeeping."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from archive.connectors import store as connector_store
from archive.tables import ConnectorDelivery, ConnectorDraft, ConnectorThread, ConversationKey, LedgerEntry
from tests.cli import run_cli
from tests.connectors import compact, payload
from tests.test_connectors_http import (
    CHATWOOT_SECRET,
    ROCKETCHAT_TOKEN,
    chatwoot_headers,
    connector,
    push,
    rocketchat_body,
    stats,
)
from tests.test_no_plaintext import _database_bytes


async def test_cli_create_prints_the_contracts_four_fields_and_the_secret_works(client, tenant):
    done = await run_cli("connectors", "create", "--tenant", tenant.slug, "--platform", "rocketchat",
                         "--public-url", "https://parley.example.com", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert set(created) == {"id", "platform", "webhook_url", "secret"} and created["platform"] == "rocketchat"
    assert created["webhook_url"] == f"https://parley.example.com/v1/connectors/{created['id']}/events"
    assert len(created["secret"]) >= 32
    response = await client.post(f"/v1/connectors/{created['id']}/events", content=rocketchat_body(),
                                 headers={"X-RocketChat-Livechat-Token": created["secret"]})
    assert response.status_code == 200 and response.json()["status"] == "archived", response.text


async def test_cli_list_never_shows_a_secret_or_token_and_delete_removes_the_connector_at_once(client, tenant):
    done = await run_cli("connectors", "create", "--tenant", tenant.slug, "--platform", "chatwoot", "--secret", "cw-secret-from-chatwoot",
                         "--api-url", "https://chat.example.com/app/accounts/3", "--api-token", "cw-api-token-xyz", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    headers = chatwoot_headers(body, "d-1", secret="cw-secret-from-chatwoot")
    assert (await client.post(f"/v1/connectors/{created['id']}/events", content=body, headers=headers)).status_code == 202
    listed = await run_cli("connectors", "list", "--tenant", tenant.slug, "--json")
    assert listed.returncode == 0 and "cw-secret-from-chatwoot" not in listed.stdout and "cw-api-token-xyz" not in listed.stdout
    [shown] = json.loads(listed.stdout)
    assert (shown["id"], shown["api_url"], shown["api_token"]) == (created["id"], "https://chat.example.com/app/accounts/3", True)
    removed = await run_cli("connectors", "delete", created["id"])  # another process: this one hears of it by signal
    assert removed.returncode == 0, removed.stderr
    headers = chatwoot_headers(body, "d-2", secret="cw-secret-from-chatwoot")
    assert (await client.post(f"/v1/connectors/{created['id']}/events", content=body, headers=headers)).status_code == 404
    assert json.loads((await run_cli("connectors", "list", "--tenant", tenant.slug, "--json")).stdout) == []


async def test_a_platform_that_makes_its_own_secret_needs_it_given(client, tenant):
    done = await run_cli("connectors", "create", "--tenant", tenant.slug, "--platform", "chatwoot")
    assert done.returncode == 1 and "secret" in done.stderr and "Chatwoot shows the webhook's secret" in done.stderr
    response = await client.post("/v1/admin/connectors", json={"platform": "intercom", "secret": "client-secret-1"},
                                 headers=tenant.headers("admin"))
    assert response.status_code == 422 and [e["path"] for e in response.json()["errors"]] == ["api_token"]


async def test_fetching_files_needs_an_allowlist(client, tenant):
    response = await client.post("/v1/admin/connectors", json={"platform": "rocketchat", "files": {"fetch": True}},
                                 headers=tenant.headers("admin"))
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "files.hosts"
    bad = await client.post("/v1/admin/connectors", json={"platform": "rocketchat", "files": {"fetch": True, "hosts": ["a.example/x"]}},
                            headers=tenant.headers("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "files.hosts[0]"


async def test_connectors_are_managed_by_admins_of_their_own_tenant(client, tenant, other_tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    assert (await client.get("/v1/admin/connectors", headers=tenant.headers("compliance"))).status_code == 403
    assert (await client.get(f"/v1/admin/connectors/{created['id']}/stats", headers=other_tenant.headers("admin"))).status_code == 404
    assert (await client.delete(f"/v1/admin/connectors/{created['id']}", headers=other_tenant.headers("admin"))).status_code == 404
    listed = (await client.get("/v1/admin/connectors", headers=tenant.headers("admin"))).json()
    assert [c["id"] for c in listed] == [created["id"]] and "secret" not in listed[0]


async def test_creating_and_deleting_connectors_is_ledgered(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    assert (await client.delete(f"/v1/admin/connectors/{created['id']}", headers=tenant.headers("admin"))).status_code == 204
    actions = [r["action"] for r in await LedgerEntry.select(LedgerEntry.action).where(
        (LedgerEntry.tenant == tenant.id) & (LedgerEntry.subject == created["id"]))]
    assert actions == ["connector.create", "connector.delete"]


async def test_secrets_tokens_and_pending_drafts_are_not_readable_in_the_database(client, tenant, data_dir):
    marker = secrets.token_hex(6)
    secret, token = f"whsec-{marker}-chatwoot", f"apitoken-{marker}"
    created = await connector(client, tenant, "chatwoot", secret=secret, api_url="https://chat.example.com/app/accounts/7", api_token=token)
    body = payload("chatwoot", "message_created_incoming.json")
    body["content"] = f"Pending words zanzibar{marker}"
    raw = compact(body)
    assert (await push(client, created, raw, chatwoot_headers(raw, "d-1", secret=secret))).status_code == 202
    stored = await _database_bytes(data_dir)
    for needle in (secret, token, f"zanzibar{marker}"):
        assert needle.encode() not in stored and needle.encode().hex().encode() not in stored


async def test_a_deleted_connectors_pending_drafts_go_with_it_and_their_reserved_key_is_destroyed(client, tenant):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    receipt = (await push(client, created, body, chatwoot_headers(body, "d-1"))).json()
    assert await ConversationKey.count().where(ConversationKey.conversation == receipt["conversation"]) == 1
    response = await client.delete(f"/v1/admin/connectors/{created['id']}", headers=tenant.headers("admin"))
    assert response.status_code == 204
    assert await ConnectorDraft.count().where(ConnectorDraft.conversation == receipt["conversation"]) == 0
    assert await ConversationKey.count().where(ConversationKey.conversation == receipt["conversation"]) == 0


async def test_delivery_keys_and_threads_that_never_closed_are_kept_for_a_bounded_time(client, tenant, runtime):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    receipt = (await push(client, created, body, chatwoot_headers(body, "d-1"))).json()
    now = runtime.clock.now()
    soon = await connector_store.expire(now + timedelta(days=connector_store.DELIVERY_DAYS - 1))
    assert soon["stale_threads"] == 0 and await ConnectorDelivery.count().where(ConnectorDelivery.connector == created["id"]) == 1
    before = await stats(client, tenant, created)
    later = await connector_store.expire(now + timedelta(days=connector_store.STALE_THREAD_DAYS + 1))
    assert later["stale_threads"] >= 1 and later["delivery_keys"] >= 1
    assert await ConnectorDelivery.count().where(ConnectorDelivery.connector == created["id"]) == 0
    after = await stats(client, tenant, created)  # the expired deliveries' counts live on in the counters
    assert (after["received"], after["accepted"], after["last_received_at"]) == (1, 1, before["last_received_at"])
    assert await ConnectorThread.count().where(ConnectorThread.connector == created["id"]) == 0
    assert await ConversationKey.count().where(ConversationKey.conversation == receipt["conversation"]) == 0


async def test_a_thread_of_an_archived_conversation_outlives_the_stale_cutoff(client, tenant, runtime):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    await push(client, created, body, chatwoot_headers(body, "d-1"))
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    archived = (await push(client, created, resolved, chatwoot_headers(resolved, "r-1"))).json()
    await connector_store.expire(runtime.clock.now() + timedelta(days=connector_store.STALE_THREAD_DAYS + 1))
    assert await ConnectorDraft.count().where(ConnectorDraft.conversation == archived["conversation"]) == 1
    assert (await stats(client, tenant, created))["archived"] == 1


async def test_a_secret_shorter_than_8_characters_is_refused_saying_how_to_get_a_longer_one(client, tenant):
    response = await client.post("/v1/admin/connectors", json={"platform": "rocketchat", "secret": "abc123"}, headers=tenant.headers("admin"))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["path"] == "secret" and "at least 8" in error["message"] and "Secret Token" in error["message"]


async def test_a_rocketchat_secret_token_of_any_characters_from_8_on_is_accepted(client, tenant):
    token = "my shop #1 token!"  # free text the admin typed into Rocket.Chat (sent as a header: ASCII)
    response = await client.post("/v1/admin/connectors", json={"platform": "rocketchat", "secret": token}, headers=tenant.headers("admin"))
    assert response.status_code == 201 and response.json()["secret"] == token
    pushed = await client.post(f"/v1/connectors/{response.json()['id']}/events", content=rocketchat_body(),
                               headers={"X-RocketChat-Livechat-Token": token})
    assert pushed.status_code == 200 and pushed.json()["status"] == "archived", pushed.text
