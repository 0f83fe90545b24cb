"""Signing keys: the Ed25519 keys that sign ledger checkpoints and exports, with a history of their own.

Parley once derived its signing key from the master key. That tied every past signature to a
master version, and retiring the version (destroying its material, which is what retiring means)
made every checkpoint and export it had signed unverifiable. Signatures must stay verifiable
forever, so signing keys are now keys of their own:

* Each is a random Ed25519 key with a version. Its public half is stored and never deleted; its
  private half is wrapped under the active master version (``rotate-master`` re-wraps it) and
  destroyed when the key is superseded, so a retired signing key can never sign again.
* Every row carries an attestation: an HMAC, under a key derived from the master key, over its
  version, public key, origin and start of validity. Someone who can rewrite the tables but holds
  no master key therefore cannot slip in a key of their own and re-sign a forged chain — the
  ledger's promise. ``rotate-master`` re-attests, so no master version is needed forever.
* Keys that signed before this history existed were derived from a master version. The first
  start after the upgrade records their public halves ("master-derived") while those versions
  are still in the keyring; from then on they verify without it.

``GET /v1/audit/public-key`` and every export manifest publish the whole history, with validity
periods, so anyone can verify offline and pin the keys outside Parley.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from piccolo.querystring import QueryString

from archive import db
from archive.clock import Clock
from archive.crypto import (
    DecryptionError,
    attest,
    attestation_ok,
    legacy_signing_key,
    new_signing_key,
    public_key_bytes,
    unwrap_signing_key,
    wrap_signing_key,
)
from archive.keyring import KeyringError, Keys
from archive.tables import LedgerCheckpoint, SigningKey, Tenant

log = structlog.get_logger(__name__)

ALGORITHM = "Ed25519"
GENERATED = "generated"
MASTER_DERIVED = "master-derived"


class PublishedKey(msgspec.Struct, kw_only=True):
    """One signing key as published: what it is, and when it signed."""

    version: int
    public_key: str  # hex of the raw 32-byte Ed25519 public key
    origin: str  # "generated" | "master-derived"
    valid_from: datetime
    valid_until: datetime | None = None  # None: the key signing now


class Signature(msgspec.Struct, kw_only=True):
    key_version: int
    public_key: str
    signature: str  # hex


def _record(version: int, public_key: str, origin: str, valid_from: datetime) -> bytes:
    """What an attestation covers (valid_until changes when a key is superseded; it is not covered)."""
    moment = valid_from.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return f"parley-signing-key/v1|{version}|{public_key}|{origin}|{moment}".encode()


def _published(row: dict[str, Any]) -> PublishedKey:
    return PublishedKey(
        version=row["version"], public_key=row["public_key"], origin=row["origin"],
        valid_from=row["valid_from"], valid_until=row["valid_until"],
    )


class Signer:
    def __init__(self, version: int, public_key: str, key: Ed25519PrivateKey) -> None:
        self.version = version
        self.public_key = public_key
        self._key = key

    def sign(self, message: bytes) -> Signature:
        return Signature(key_version=self.version, public_key=self.public_key, signature=self._key.sign(message).hex())


class Verifier:
    """Checks signatures against the attested history, loaded once per verification run."""

    def __init__(self, rows: list[dict[str, Any]], keys: Keys) -> None:
        self._public: dict[int, Ed25519PublicKey] = {}
        self._problems: dict[int, str] = {}
        for row in rows:
            version = row["version"]
            try:
                genuine = attestation_ok(
                    keys.key(row["attested_by"]), _record(version, row["public_key"], row["origin"], row["valid_from"]),
                    row["attestation"],
                )
            except KeyringError:
                self._problems[version] = (
                    f"signing key {version} is attested by master version {row['attested_by']}, which is not in the keyring"
                )
                continue
            if not genuine:
                self._problems[version] = f"signing key {version} is not attested by the master key: the key history was altered"
                continue
            self._public[version] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(row["public_key"]))

    def problem(self, version: int, message: bytes, signature_hex: str) -> str | None:
        """None when ``signature_hex`` is signing key ``version``'s signature of ``message``."""
        if version in self._problems:
            return self._problems[version]
        public = self._public.get(version)
        if public is None:
            return f"signing key {version} is not in the signing key history"
        try:
            public.verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return "the signature does not verify"
        return None


class SigningKeys:
    """The runtime's signing part. Signing reads the active key's row every time (another process
    may have rotated it) and keeps only the unwrapped private key of that version in memory."""

    def __init__(self, keys: Keys, clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        self._private: tuple[int, int, Ed25519PrivateKey] | None = None  # (version, wrap version, key)

    # --- start-up ------------------------------------------------------------------------------

    async def ensure(self) -> None:
        """Give the deployment its first signing key, recording the master-derived keys that
        signed before (only on the first start after the upgrade; later master versions never
        signed anything and are not recorded)."""
        if await SigningKey.exists():
            return
        async with db.write_transaction():
            await _lock_history()  # two processes starting at once: one creates, the other sees it
            if await SigningKey.exists():
                return
            now = self.clock.now()
            version = 1
            if await _anything_signed():
                recorded = await self._record_legacy(now)
                version = max(recorded, default=0) + 1
            await self._insert_generated(version, now)
        log.info("signing_key_created", version=version)

    async def _record_legacy(self, now: datetime) -> list[int]:
        ring = self.keys.current
        used = {r["key_version"] for r in await LedgerCheckpoint.select(LedgerCheckpoint.key_version).distinct()}
        lost = sorted(used - set(ring.keys))
        if lost:
            log.error("legacy_signing_keys_lost", master_versions=lost,
                      advice="checkpoints signed with these versions cannot be verified: their keys were destroyed earlier")
        start = await _archive_start(now)
        recorded = []
        for master_version in sorted(ring.keys):
            first = (
                await LedgerCheckpoint.select(LedgerCheckpoint.signed_at)
                .where(LedgerCheckpoint.key_version == master_version)
                .order_by(LedgerCheckpoint.signed_at)
                .first()
            )
            valid_from = first["signed_at"] if first else start
            public = public_key_bytes(legacy_signing_key(ring.key(master_version))).hex()
            await SigningKey.insert(SigningKey(
                version=master_version, public_key=public, origin=MASTER_DERIVED, wrapped_private=None, wrap_version=None,
                valid_from=valid_from, valid_until=now, **self._attestation(master_version, public, MASTER_DERIVED, valid_from),
            ))
            recorded.append(master_version)
        log.info("legacy_signing_keys_recorded", versions=recorded)
        return recorded

    def _attestation(self, version: int, public: str, origin: str, valid_from: datetime) -> dict[str, Any]:
        active = self.keys.active
        return {"attestation": attest(self.keys.key(active), _record(version, public, origin, valid_from)), "attested_by": active}

    async def _insert_generated(self, version: int, now: datetime) -> PublishedKey:
        key = new_signing_key()
        public = public_key_bytes(key).hex()
        active = self.keys.active
        row = SigningKey(
            version=version, public_key=public, origin=GENERATED,
            wrapped_private=wrap_signing_key(self.keys.key(active), version, key), wrap_version=active,
            valid_from=now, valid_until=None, **self._attestation(version, public, GENERATED, now),
        )
        await SigningKey.insert(row)
        return PublishedKey(version=version, public_key=public, origin=GENERATED, valid_from=now)

    # --- signing and verifying ----------------------------------------------------------------

    async def _active_row(self) -> dict[str, Any]:
        row = await SigningKey.select().where(SigningKey.valid_until.is_null()).first()
        if row is None:
            await self.ensure()
            row = await SigningKey.select().where(SigningKey.valid_until.is_null()).first()
        assert row is not None, "ensure() creates the active signing key"
        return row

    async def signer(self) -> Signer:
        """The active key, ready to sign synchronously (in a worker thread, say)."""
        row = await self._active_row()
        version, wrap_version = row["version"], row["wrap_version"]
        cached = self._private
        if cached is None or cached[:2] != (version, wrap_version):
            key = unwrap_signing_key(self.keys.key(wrap_version), version, row["wrapped_private"])
            self._private = cached = (version, wrap_version, key)
        return Signer(version, row["public_key"], cached[2])

    async def sign(self, message: bytes) -> Signature:
        return (await self.signer()).sign(message)

    async def active_version(self) -> int:
        return int((await self._active_row())["version"])

    async def history(self) -> list[PublishedKey]:
        """Every key that ever signed, oldest first."""
        return [_published(r) for r in await SigningKey.select().order_by(SigningKey.version)]

    async def verifier(self) -> Verifier:
        return Verifier(await SigningKey.select().order_by(SigningKey.version), self.keys)

    # --- operations ---------------------------------------------------------------------------

    async def rotate(self) -> PublishedKey:
        """A new signing key; the old one stops signing (its private half is destroyed) and
        stays in the history for verification."""
        async with db.write_transaction():
            await _lock_history()
            current = await SigningKey.select().where(SigningKey.valid_until.is_null()).first()
            latest = await SigningKey.select(SigningKey.version).order_by(SigningKey.version, ascending=False).first()
            now = self.clock.now()
            if current is not None:
                await SigningKey.update(
                    {SigningKey.valid_until: now, SigningKey.wrapped_private: None, SigningKey.wrap_version: None}
                ).where(SigningKey.version == current["version"])
            created = await self._insert_generated((latest["version"] if latest else 0) + 1, now)
        self._private = None
        return created

    async def rewrap(self) -> int:
        """Re-wrap the active private key and re-attest every row under the active master version
        (part of ``rotate-master``). Returns the rows changed."""
        active = self.keys.active
        changed = 0
        async with db.write_transaction():
            await _lock_history()
            for row in await SigningKey.select().order_by(SigningKey.version):
                values: dict[Any, Any] = {}
                if row["attested_by"] != active:
                    values.update({
                        SigningKey.attestation: attest(self.keys.key(active), _record(row["version"], row["public_key"], row["origin"], row["valid_from"])),
                        SigningKey.attested_by: active,
                    })
                if row["wrapped_private"] is not None and row["wrap_version"] != active:
                    try:
                        key = unwrap_signing_key(self.keys.key(row["wrap_version"]), row["version"], row["wrapped_private"])
                    except DecryptionError:
                        log.error("signing_key_unreadable", version=row["version"])
                        continue
                    values.update({SigningKey.wrapped_private: wrap_signing_key(self.keys.key(active), row["version"], key),
                                   SigningKey.wrap_version: active})
                if values:
                    await SigningKey.update(values).where(SigningKey.version == row["version"])
                    changed += 1
        return changed

    async def dependents(self, master_version: int) -> list[str]:
        """What in the signing key history still needs ``master_version`` (for retire-master)."""
        found = []
        for row in await SigningKey.select(SigningKey.version, SigningKey.wrap_version, SigningKey.attested_by):
            if row["wrap_version"] == master_version:
                found.append(f"the private half of signing key {row['version']}")
            if row["attested_by"] == master_version:
                found.append(f"the attestation of signing key {row['version']}")
        return found


async def _lock_history() -> None:
    """Changes to the history serialise (PostgreSQL; SQLite's write transaction already does)."""
    if not db.is_sqlite():
        await db.engine().run_querystring(QueryString("LOCK TABLE signing_key IN EXCLUSIVE MODE"))


async def _anything_signed() -> bool:
    """Checkpoints or exports exist: the master-derived keys signed them."""
    if await LedgerCheckpoint.exists():
        return True
    # The export table belongs to retention (which depends on archive, not the other way round);
    # only whether it has rows matters here.
    rows = await db.engine().run_querystring(QueryString("SELECT 1 AS found FROM export LIMIT 1"))
    return bool(rows)


async def _archive_start(now: datetime) -> datetime:
    first = await Tenant.select(Tenant.created_at).order_by(Tenant.created_at).first()
    return first["created_at"] if first else now
