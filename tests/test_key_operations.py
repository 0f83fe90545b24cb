"""Key operations on a live system: rotation reaches every process without a restart, retirement
refuses while anything needs the version, and nothing signed in the past stops verifying."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from api.app import create_app
from api.composition import build_runtime
from archive import ledger, rotation
from archive.crypto import attest, legacy_signing_key, public_key_bytes
from archive.keyring import KeyringError, Keys, MasterKeyring
from archive.tables import LedgerCheckpoint, SigningKey
from tests.conftest import app_client
from tests.factories import conversation
from tests.servers import Deployment


def _ring(active: int, **versions: bytes) -> MasterKeyring:
    return MasterKeyring(active=active, keys={int(v[1:]): k for v, k in versions.items()}, source="test")


# --- the live keyring ------------------------------------------------------------------------


def test_a_missing_version_reloads_the_keyring_once_before_failing():
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    rings = iter([_ring(1, v1=k1), _ring(2, v1=k1, v2=k2)])
    keys = Keys(lambda: next(rings))
    assert keys.active == 1
    assert keys.key(2) == k2 and keys.active == 2  # another process rotated: found on the first miss
    with pytest.raises(KeyringError, match="master key version 3 is not in this process's keyring"):
        keys.key(3)


def test_a_changed_key_file_is_read_before_the_next_use(tmp_path):
    from archive.keyring import FileKeyProvider, load_keyring

    provider = FileKeyProvider(tmp_path, create=True)
    keys = Keys(lambda: load_keyring("", tmp_path), initial=provider.load(), stamp=provider.stamp)
    assert keys.active == 1
    FileKeyProvider(tmp_path).add_version()  # as 'parley keys rotate-master' in another process
    assert keys.active == 2


def test_the_keyring_changed_signal_reloads(tmp_path):
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    rings = iter([_ring(1, v1=k1), _ring(2, v1=k1, v2=k2)])
    keys = Keys(lambda: next(rings))
    keys.on_changed("2")
    assert keys.current.active == 2


async def test_a_keyring_change_announced_anywhere_reloads_every_process(runtime):
    """The fan-out revocations use: PostgreSQL NOTIFY, or the signal file on SQLite."""
    from archive.signals import KEYRING_CHANGED, Signals

    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    rings = [_ring(1, v1=k1), _ring(2, v1=k1, v2=k2)]
    reloaded = asyncio.Event()

    def load() -> MasterKeyring:
        ring = rings.pop(0) if len(rings) > 1 else rings[0]
        if ring.active == 2:
            reloaded.set()
        return ring

    keys = Keys(load)
    other_process = Signals(runtime.settings.data_path)
    if not runtime.database.is_sqlite:
        await other_process.listen(runtime.settings.effective_database_url)
    other_process.subscribe(KEYRING_CHANGED, keys.on_changed)
    try:
        await runtime.signals.announce(KEYRING_CHANGED, "2")
        other_process.poll()  # what it does before trusting a cache (SQLite; a no-op when listening)
        await asyncio.wait_for(reloaded.wait(), timeout=10)
    finally:
        await other_process.stop()
    assert keys.current.active == 2


# --- readiness -------------------------------------------------------------------------------


async def test_readyz_fails_when_this_process_cannot_unwrap_what_the_store_holds(settings, runtime, client, tenant):
    from datetime import datetime, timezone
    from uuid import uuid4

    from proactive import state as visitor_state
    from proactive.engine import Engine
    from proactive.tables import VisitorMemory

    await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    # A visitor the engine reads back at start-up, its memory sealed under a key this process lacks:
    # the process must still start (and say it is not ready), not fail to start.
    crypto = (await runtime.tenants.context(tenant.id)).crypto
    site = uuid4()
    memory = visitor_state.dump(Engine().new_visitor(tenant.id, site, "v-readyz"))
    await VisitorMemory.insert(VisitorMemory(tenant=tenant.id, site=site, visitor_hash="v-readyz", last_seen=datetime.now(timezone.utc),
                                             next_due=None, state=visitor_state.seal(crypto, "v-readyz", memory)))
    lacking = build_runtime(settings, keyring=MasterKeyring(active=2, keys={2: runtime.keyring.key(2)}, source="test"),
                            database=runtime.database, search=runtime.search)
    status = await lacking.key_check.status()
    assert not status.ok and "master version 1 is not in this process's keyring" in status.detail
    wrong = build_runtime(settings, keyring=MasterKeyring(active=1, keys={1: secrets.token_bytes(32), 2: runtime.keyring.key(2)}, source="test"),
                          database=runtime.database, search=runtime.search)
    status = await wrong.key_check.status()
    assert not status.ok and "does not unwrap" in status.detail
    async with app_client(create_app(settings, lacking)) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["keyring"]["ok"] is False
    await VisitorMemory.delete().where(VisitorMemory.visitor_hash == "v-readyz")
    ok = await client.get("/readyz")
    assert ok.status_code == 200 and ok.json()["checks"]["keyring"]["ok"] is True


async def test_one_damaged_row_alone_under_an_old_version_warns_and_two_fail_readiness(settings, runtime, client, tenant):
    """A version other than the active one whose only item does not unwrap: a damaged row that a
    rotation left behind, or a wrong key — readiness cannot tell, and failing it on every process
    for one row would take the service out, so it says so and stays ready. Two such items, or
    any on the active version, fail it: that is what a wrong key looks like."""
    from archive.tables import Tenant

    keyring = MasterKeyring(active=runtime.keyring.active, keys={**runtime.keyring.keys, 9: secrets.token_bytes(32)}, source="test")
    checked = build_runtime(settings, keyring=keyring, database=runtime.database, search=runtime.search)
    damaged = [Tenant(id=uuid.uuid4(), slug=f"damaged-{n}", name="", wrapped_secret=secrets.token_bytes(60), secret_version=9) for n in range(2)]
    try:
        await Tenant.insert(damaged[0])
        status = await checked.key_check.status()
        assert status.ok and "master version 9: the one item wrapped under it does not unwrap" in status.detail
        await Tenant.insert(damaged[1])
        checked.key_check.invalidate()
        status = await checked.key_check.status()
        assert not status.ok and "master version 9 in the keyring does not unwrap" in status.detail
    finally:
        await Tenant.delete().where(Tenant.slug.is_in([t.slug for t in damaged]))


# --- retirement ------------------------------------------------------------------------------


async def test_retire_master_refuses_and_names_what_still_depends_on_the_version(settings, runtime, client, tenant, tmp_path):
    await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    from archive.keyring import FileKeyProvider

    # A key file with versions 1 and 2 (the numbers the suite's store uses); refused before anything is destroyed.
    provider = FileKeyProvider(tmp_path, create=True)
    provider.load()
    provider.add_version()
    retiring = build_runtime(msgspec.structs.replace(settings, master_key="", data_dir=str(tmp_path)),
                             database=runtime.database, search=runtime.search)
    with pytest.raises(Exception) as refused:
        await rotation.retire_master(retiring, 1)
    detail = getattr(refused.value, "detail", "")
    assert refused.value.status == 409, detail
    assert "master key version 1 still protects" in detail and "conversation key(s) (t-" in detail and "tenant secret(s) (t-" in detail
    assert "parley keys rotate-master" in detail
    assert set(FileKeyProvider(tmp_path).load().keys) == {1, 2}  # nothing was destroyed
    with pytest.raises(KeyringError, match="does not exist"):
        await rotation.retire_master(retiring, 7)
    with pytest.raises(KeyringError, match="is active"):
        await rotation.retire_master(retiring, 2)


# --- signing keys ----------------------------------------------------------------------------


async def test_checkpoints_signed_by_a_superseded_signing_key_still_verify(client, tenant, runtime):
    await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    first = (await client.post("/v1/audit/checkpoints", headers=tenant.headers("admin"))).json()
    rotated = await runtime.signing.rotate()
    await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    second = (await client.post("/v1/audit/checkpoints", headers=tenant.headers("admin"))).json()
    assert second["key_version"] == rotated.version != first["key_version"]
    report = (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()
    assert report["ok"] and report["checkpoints_verified"] == 2
    published = (await client.get("/v1/audit/public-key")).json()
    assert published["active_version"] == rotated.version
    old = next(k for k in published["history"] if k["version"] == first["key_version"])
    assert old["valid_until"] is not None and published["keys"][str(first["key_version"])] == old["public_key"]
    row = await SigningKey.select(SigningKey.wrapped_private).where(SigningKey.version == first["key_version"]).first()
    assert row["wrapped_private"] is None  # a superseded key can never sign again


async def test_a_signing_key_slipped_into_the_table_without_the_master_key_does_not_verify(client, tenant, runtime):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    forger = Ed25519PrivateKey.generate()
    latest = await SigningKey.select(SigningKey.version).order_by(SigningKey.version, ascending=False).first()
    version = latest["version"] + 1
    head = (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["head_seq"]
    entry = (await ledger.list_entries(tenant.id, after_seq=head - 1, limit=1))[0]
    signed_at = datetime.now(timezone.utc)
    message = ledger._checkpoint_message(tenant.id, entry.seq, entry.hash, signed_at)
    await SigningKey.insert(SigningKey(
        version=version, public_key=public_key_bytes(forger).hex(), origin="generated", wrapped_private=None, wrap_version=None,
        valid_from=signed_at, valid_until=signed_at, attestation=attest(secrets.token_bytes(32), b"guess"), attested_by=1,
    ))
    try:
        await LedgerCheckpoint.insert(LedgerCheckpoint(tenant=tenant.id, seq=entry.seq, hash=entry.hash, signed_at=signed_at,
                                                       key_version=version, signature=forger.sign(message).hex()))
        report = (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()
        assert report["ok"] is False and "not attested by the master key" in report["problem"]
    finally:
        await SigningKey.delete().where(SigningKey.version == version)


# --- on a running server ---------------------------------------------------------------------


@pytest.fixture
async def deployment(tmp_path):
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        yield deployed
    finally:
        await deployed.drop()


class Load:
    """Ingest, read and search in a loop, as chat platforms and officers would; counts answers."""

    def __init__(self, base_url: str, keys: dict[str, str]) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.keys = keys
        self.ids: list[str] = []
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self.stop = asyncio.Event()
        self.reached = asyncio.Event()
        self.target = 0

    def _headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def _record(self, what: str, response: httpx.Response) -> None:
        self.statuses.append(response.status_code)
        if self.target and len(self.statuses) >= self.target:
            self.reached.set()
        if response.status_code >= 300:
            self.failures.append(f"{what}: {response.status_code} {response.text[:200]}")

    async def worker(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            created = await self.http.post("/v1/transcripts", json=conversation(f"load-{n}-{i}", "my invoice 4 refund"),
                                           headers=self._headers("ingest"))
            await self._record("ingest", created)
            if created.status_code < 300:
                self.ids.append(created.json()["id"])
            if self.ids:
                await self._record("read", await self.http.get(f"/v1/transcripts/{self.ids[(n * 7 + i) % len(self.ids)]}",
                                                                headers=self._headers("compliance")))
            await self._record("search", await self.http.post("/v1/search", json={"q": "refund"}, headers=self._headers("compliance")))

    async def run(self, workers: int = 3) -> asyncio.Task[Any]:
        return asyncio.ensure_future(asyncio.gather(*[self.worker(n) for n in range(workers)]))


async def _download_export(http: httpx.AsyncClient, headers: dict[str, str], path: Path) -> dict[str, Any]:
    created = await http.post("/v1/exports", json={"q": "refund"}, headers=headers)
    assert created.status_code == 202, created.text
    for _ in range(400):  # the export job runs every few seconds
        state = (await http.get(f"/v1/exports/{created.json()['id']}", headers=headers)).json()
        if state["status"] == "done":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "done", state
    content = (await http.get(f"/v1/exports/{created.json()['id']}/download", headers=headers)).content
    await asyncio.to_thread(path.write_bytes, content)
    with zipfile.ZipFile(path) as archive:
        signature: dict[str, Any] = json.loads(archive.read("signature.json"))
    return signature


async def test_rotation_and_retirement_under_load_lose_no_request_and_keep_every_signature_verifiable(deployment, tmp_path, capsys):
    keys = await deployment.tenant("acme")
    await deployment.start()
    compliance = {"Authorization": f"Bearer {keys['compliance']}"}
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        seeded = await http.post("/v1/transcripts", json={"conversations": [conversation(f"seed-{i}", "refund please") for i in range(20)]},
                                 headers={"Authorization": f"Bearer {keys['ingest']}"})
        assert seeded.status_code == 201
        checkpoint = (await http.post("/v1/audit/checkpoints", headers={"Authorization": f"Bearer {keys['admin']}"})).json()
        before = tmp_path / "before-rotation.zip"
        signature = await _download_export(http, compliance, before)

        load = Load(deployment.url, keys)
        running = await load.run()
        rotated = await deployment.cli("keys", "rotate-master")
        assert rotated.returncode == 0, rotated.stderr
        retired = await deployment.cli("keys", "retire-master", "1")
        for _ in range(3):  # an ingest that began before the rotation may still have used version 1
            if retired.returncode == 0 or "still protects" not in retired.stderr:
                break
            await deployment.cli("keys", "rotate-master")
            retired = await deployment.cli("keys", "retire-master", "1")
        assert retired.returncode == 0, retired.stderr
        load.target = len(load.statuses) + 30  # keep the load on the retired keyring for a while
        await load.reached.wait()
        load.stop.set()
        await running
        await load.http.aclose()

        with capsys.disabled():
            print(f"\n[key rotation under load] {len(load.statuses)} requests, {len(load.failures)} errors")
        assert load.failures == [] and len(load.statuses) > 50

        ready = (await http.get("/readyz")).json()
        assert ready["ready"] and ready["checks"]["keyring"]["detail"].startswith("active version 2")
        published = (await http.get("/v1/audit/public-key")).json()
        assert published["keys"][str(signature["key_version"])] == signature["public_key"]
        assert published["keys"][str(checkpoint["key_version"])]
        for cid in load.ids[:5] + [r["id"] for r in seeded.json()["results"][:5]]:
            assert (await http.get(f"/v1/transcripts/{cid}", headers=compliance)).status_code == 200

    verified = await deployment.cli("ledger", "verify")
    assert verified.returncode == 0 and "acme: ok" in verified.stdout and "1 signed checkpoints verified" in verified.stdout, verified.stdout
    export_ok = await deployment.cli("export", "verify", str(before), "--public-key", published["keys"][str(signature["key_version"])])
    assert export_ok.returncode == 0, export_ok.stdout


async def test_cli_verbs_exit_non_zero_naming_an_unknown_tenant_key_or_id(deployment):
    await deployment.cli_many(["tenants", "create", "acme"])
    unknown = str(uuid.uuid4())
    cases = [
        (("keys", "list", "--tenant", "nope"), "no tenant 'nope'"),
        (("keys", "create", "--tenant", "nope", "--role", "admin"), "no tenant 'nope'"),
        (("keys", "revoke", unknown), f"no API key {unknown}"),
        (("sites", "list", "--tenant", "nope"), "no tenant 'nope'"),
        (("sites", "create", "--tenant", "nope", "--name", "shop"), "no tenant 'nope'"),
        (("ledger", "verify", "--tenant", "nope"), "no tenant 'nope'"),
        (("retention", "sweep", "--tenant", "nope"), "no tenant 'nope'"),
        (("tenants", "create", "acme"), "tenant 'acme' already exists"),
        (("export", "verify", str(deployment.data_dir / "missing.zip")), "not a readable zip"),
    ]
    # Key verbs take the rotation lease: those run one after the other, the rest at once.
    serial = [
        (("keys", "retire-master", "9"), "master key version 9 does not exist"),
        (("keys", "retire-master", "1"), "master key version 1 is active"),
    ]
    results = await asyncio.gather(*[deployment.cli(*args) for args, _ in cases])
    results += [await deployment.cli(*args) for args, _ in serial]
    for (args, message), result in zip(cases + serial, results):
        assert result.returncode != 0, args
        assert message in result.stderr + result.stdout, (args, result.stderr, result.stdout)


async def test_checkpoints_signed_before_signing_keys_had_a_history_verify_after_their_master_version_is_retired(deployment):
    """An archive upgraded from the master-derived signing key: the first start records that key's
    public half, so retiring the master version later strands nothing."""


    await deployment.cli_json("tenants", "create", "old")
    assert (await deployment.cli("ledger", "checkpoint")).returncode == 0
    # Rewind to the state before the upgrade: no signing key history, the checkpoint signed with
    # the key derived from master version 1, as Parley used to.
    master_v1 = base64.b64decode(json.loads((deployment.data_dir / "master.keyring").read_text())["versions"]["1"])
    legacy = legacy_signing_key(master_v1)
    [(tenant_id, seq, head, signed_at)] = await deployment.sql("SELECT tenant, seq, hash, signed_at FROM ledger_checkpoint")
    moment = signed_at if isinstance(signed_at, datetime) else datetime.fromisoformat(signed_at)
    signature = legacy.sign(ledger._checkpoint_message(uuid.UUID(str(tenant_id)), seq, head, moment)).hex()
    await deployment.sql("UPDATE ledger_checkpoint SET signature = $1, key_version = 1", signature)
    await deployment.sql("DELETE FROM signing_key")

    first = await deployment.cli("ledger", "verify")  # the first start after the upgrade
    assert first.returncode == 0 and "1 signed checkpoints verified" in first.stdout, first.stdout + first.stderr
    history = await deployment.cli_json("keys", "signing")
    assert [(k["version"], k["origin"]) for k in history] == [(1, "master-derived"), (2, "generated")]
    assert history[0]["public_key"] == public_key_bytes(legacy).hex() and history[0]["valid_until"]

    assert (await deployment.cli("keys", "rotate-master")).returncode == 0
    retired = await deployment.cli("keys", "retire-master", "1")
    assert retired.returncode == 0, retired.stderr
    after = await deployment.cli("ledger", "verify")
    assert after.returncode == 0 and "1 signed checkpoints verified" in after.stdout, after.stdout + after.stderr


async def test_running_rotate_master_again_finishes_an_interrupted_rotation_instead_of_adding_a_version(deployment):
    from archive.keyring import FileKeyProvider

    await deployment.cli_json("tenants", "create", "acme")
    # What a rotation killed right after adding its version leaves: version 2 active, data under 1.
    FileKeyProvider(deployment.data_dir).add_version()
    resumed = await deployment.cli("keys", "rotate-master")
    assert resumed.returncode == 0 and resumed.stdout.startswith("finished an interrupted rotation: master key version 2 is active")
    assert set(FileKeyProvider(deployment.data_dir).load().keys) == {1, 2}
    fresh = await deployment.cli("keys", "rotate-master")
    assert fresh.returncode == 0 and fresh.stdout.startswith("master key version 3 is active"), fresh.stdout


async def test_a_key_that_does_not_unwrap_does_not_stop_later_rotations_from_adding_a_version(deployment):
    # One damaged conversation key stays under version 1 after a finished rotation. Running the
    # rotation again (after a suspected key compromise, say) must add version 3, not "finish"
    # the finished rotation to 2 over and over.
    from archive.keyring import FileKeyProvider

    await deployment.cli_json("tenants", "create", "acme")
    [(tenant_id,)] = await deployment.sql("SELECT id FROM tenant WHERE slug = 'acme'")
    damaged = uuid.uuid4()
    await deployment.sql("INSERT INTO conversation_key (conversation, tenant, wrapped_key, master_version) VALUES ($1, $2, $3, 1)",
                         damaged, tenant_id, b"\x00" * 60)
    first = await deployment.cli("keys", "rotate-master")
    assert first.returncode == 1 and first.stdout.startswith("master key version 2 is active"), first.stdout + first.stderr
    assert str(damaged) in first.stdout
    again = await deployment.cli("keys", "rotate-master")
    assert again.stdout.startswith("master key version 3 is active"), again.stdout + again.stderr
    assert FileKeyProvider(deployment.data_dir).load().active == 3


async def test_a_tenant_secret_that_does_not_unwrap_is_listed_and_the_rotation_goes_on_for_the_others(deployment):
    await deployment.cli_json("tenants", "create", "acme")
    await deployment.cli_json("tenants", "create", "beta")
    await deployment.sql("UPDATE tenant SET wrapped_secret = $1 WHERE slug = 'beta'", b"\x00" * 60)
    rotated = await deployment.cli("keys", "rotate-master")
    assert rotated.returncode == 1 and "Traceback" not in rotated.stderr, rotated.stderr
    assert rotated.stdout.startswith("master key version 2 is active")
    assert "the tenant secret of beta does not unwrap (tampered row?)" in rotated.stdout
    versions = dict(await deployment.sql("SELECT slug, secret_version FROM tenant WHERE slug IN ('acme', 'beta')"))
    assert versions == {"acme": 2, "beta": 1}


async def test_a_key_wrapped_under_the_old_version_after_a_finished_rotation_is_re_wrapped_without_adding_a_version(deployment):
    # A process that had not heard of the rotation yet wrapped a tenant secret under version 1
    # after the rotation to 2 finished: running the rotation again re-wraps it and stays at 2.
    keyring = deployment.data_dir / "master.keyring"
    await deployment.cli_json("tenants", "create", "acme")
    before = keyring.read_text()
    assert (await deployment.cli("keys", "rotate-master")).returncode == 0
    after = keyring.read_text()
    keyring.write_text(before)  # the late process still knows version 1 only
    await deployment.cli_json("tenants", "create", "late")
    keyring.write_text(after)
    again = await deployment.cli("keys", "rotate-master")
    assert again.returncode == 0 and again.stdout.startswith(
        "finished an interrupted rotation: master key version 2 is active; re-wrapped 0 data keys, 1 tenant secrets"), again.stdout
    assert (await deployment.cli("keys", "retire-master", "1")).returncode == 0
