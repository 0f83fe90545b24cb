"""Envelope encryption: each conversation its own key, bound to its tenant and row; rotation
re-wraps keys without touching payloads."""

from __future__ import annotations

import base64
import secrets
import uuid

import pytest

from archive.crypto import DecryptionError, TenantCrypto
from archive.keyring import KeyringError, MasterKeyring, parse_env_keyring
from archive.tables import Conversation, ConversationKey
from tests.factories import conversation


def _keyring(*versions: int) -> MasterKeyring:
    return MasterKeyring(active=max(versions), keys={v: secrets.token_bytes(32) for v in versions}, source="test")


def _crypto(keyring: MasterKeyring, tenant_id: uuid.UUID) -> TenantCrypto:
    wrapped, version = TenantCrypto.new_tenant_secret(keyring, tenant_id)
    return TenantCrypto(keyring, tenant_id, wrapped, version)


def test_seal_and_open_round_trip_with_a_fresh_key_each_time():
    crypto = _crypto(_keyring(1), uuid.uuid4())
    conversation_id = uuid.uuid4()
    a, b = crypto.seal(conversation_id, b"hello"), crypto.seal(conversation_id, b"hello")
    assert a.ciphertext != b.ciphertext and a.wrapped_key != b.wrapped_key
    assert crypto.open(conversation_id, a.ciphertext, a.wrapped_key, a.master_version) == b"hello"


def test_ciphertext_moved_to_another_conversation_or_tenant_fails():
    keyring = _keyring(1)
    tenant = uuid.uuid4()
    crypto = _crypto(keyring, tenant)
    sealed = crypto.seal(uuid.uuid4(), b"secret")
    with pytest.raises(DecryptionError):
        crypto.open(uuid.uuid4(), sealed.ciphertext, sealed.wrapped_key, 1)
    other = _crypto(keyring, uuid.uuid4())
    with pytest.raises(DecryptionError):
        other.open(uuid.uuid4(), sealed.ciphertext, sealed.wrapped_key, 1)


def test_identity_hashes_are_keyed_per_tenant():
    keyring = _keyring(1)
    a, b = _crypto(keyring, uuid.uuid4()), _crypto(keyring, uuid.uuid4())
    assert a.identity_hash("visitor-1") == a.identity_hash("visitor-1") != b.identity_hash("visitor-1")


def test_master_key_variable_accepts_versions_and_rejects_short_keys():
    k1, k2 = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    ring = parse_env_keyring(f"1:{k1},2:{k2}")
    assert ring.active == 2 and set(ring.keys) == {1, 2}
    with pytest.raises(KeyringError, match="32 bytes"):
        parse_env_keyring(base64.b64encode(b"short").decode())
    with pytest.raises(KeyringError, match="base64"):
        parse_env_keyring("not base64!")


async def test_swapping_ciphertexts_between_rows_makes_both_unreadable(client, tenant):
    first = (await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))).json()["id"]
    second = (await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))).json()["id"]
    rows = {r["id"]: r["ciphertext"] for r in await Conversation.select(Conversation.id, Conversation.ciphertext).where(Conversation.tenant == tenant.id)}
    keys = {r["conversation"]: r["wrapped_key"] for r in await ConversationKey.select().where(ConversationKey.tenant == tenant.id)}
    await Conversation.update({Conversation.ciphertext: rows[uuid.UUID(second)]}).where(Conversation.id == uuid.UUID(first))
    await ConversationKey.update({ConversationKey.wrapped_key: keys[uuid.UUID(second)]}).where(ConversationKey.conversation == uuid.UUID(first))
    response = await client.get(f"/v1/transcripts/{first}", headers=tenant.headers("compliance"))
    assert response.status_code == 500  # a server-side integrity failure, never someone else's text
    assert "zanzibar" not in response.text and response.json()["request_id"]


async def test_rotation_rewraps_data_keys_without_touching_payloads(client, tenant, runtime):
    from api.composition import build_runtime
    from archive.rotation import rotate_master

    created = (await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))).json()
    conversation_id = uuid.UUID(created["id"])
    before_key = await ConversationKey.select().where(ConversationKey.conversation == conversation_id).first()
    before_payload = await Conversation.select(Conversation.ciphertext).where(Conversation.id == conversation_id).first()
    assert before_key["master_version"] == 1

    # PARLEY_MASTER_KEY holds versions 1 and 2; rotation re-wraps everything to the newest.
    rotating = build_runtime(runtime.settings, keyring=parse_env_keyring(runtime.settings.master_key), database=runtime.database)
    report = await rotate_master(rotating)
    assert report.active_version == 2 and report.data_keys_rewrapped >= 1

    after_key = await ConversationKey.select().where(ConversationKey.conversation == conversation_id).first()
    after_payload = await Conversation.select(Conversation.ciphertext).where(Conversation.id == conversation_id).first()
    assert after_key["master_version"] == 2 and after_key["wrapped_key"] != before_key["wrapped_key"]
    assert after_payload["ciphertext"] == before_payload["ciphertext"]
    read = await client.get(f"/v1/transcripts/{created['id']}", headers=tenant.headers("compliance"))
    assert read.status_code == 200 and read.json()["content_sha256"] == created["content_sha256"]
    rotations = await client.get("/v1/audit", params={"action": "key.rotate"}, headers=tenant.headers("compliance"))
    assert rotations.json()[0]["details"]["active_version"] == 2


def test_key_file_is_created_private_and_versions_can_be_added_and_retired(tmp_path):
    from archive.keyring import FileKeyProvider

    provider = FileKeyProvider(tmp_path, create=True)
    ring = provider.load()
    assert ring.active == 1 and (provider.path.stat().st_mode & 0o777) == 0o600
    assert provider.add_version() == 2
    provider.retire(1)
    ring = provider.load()
    assert ring.active == 2 and set(ring.keys) == {2}
    with pytest.raises(KeyringError, match="active"):
        provider.retire(2)
