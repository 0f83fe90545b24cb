"""Master key rotation and retirement, and the readiness check that the keyring fits the store.

Rotation adds a version and re-wraps what is wrapped under older ones; payloads are never
re-encrypted. Everything that keeps something wrapped under a master version is a
``MasterKeyUser`` listed in the runtime (conversation keys, tenant secrets, the signing key
history, sealed export files, …): rotation asks each to re-wrap, retirement asks each whether it
still needs the version and refuses, naming them, until none does.

Rotation runs live. The new version is announced (``keyring_changed``) as soon as it exists, so
every process wraps new keys under it; a process that has not heard yet still reads the re-wrapped
keys, because a missing version makes it reload its keyring once before failing (archive/keyring.py).
Re-wrapping runs in batches, one transaction each: an interrupted rotation is resumed by running
it again, since every wrapped key records the master version it is wrapped under.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import msgspec
import structlog
from piccolo.querystring import QueryString

from archive import db, leases, ledger
from archive.crypto import DecryptionError, TenantCrypto
from archive.errors import Conflict
from archive.keyring import FileKeyProvider, KeyringError, Keys, MasterKeyring
from archive.signals import KEYRING_CHANGED
from archive.tables import ConversationKey, LedgerEntry, Tenant

if TYPE_CHECKING:
    from archive.clock import Clock
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

BATCH = 500
ROTATION = "rotate-master"


class MasterKeyUser(Protocol):
    """Something that keeps data wrapped under a master version."""

    name: str

    async def rewrap(self, rt: Runtime) -> Rewrapped:
        """Re-wrap everything under the active version."""

    async def still_using(self, rt: Runtime, version: int) -> list[str]:
        """What still needs ``version``, in words an operator can act on (empty: nothing)."""


class Rewrapped(msgspec.Struct):
    count: int = 0
    per_tenant: dict[UUID, int] = {}
    # Items that no longer unwrap (a row was tampered with or copied): left as they are.
    unreadable: list[str] = []


class RotationReport(msgspec.Struct):
    active_version: int
    data_keys_rewrapped: int
    tenant_secrets_rewrapped: int
    # Keys that no longer unwrap (a row was tampered with or copied): left as they are, listed here.
    unreadable: list[str] = []
    # Tenants (slugs) whose own secret no longer unwraps: left as they are, listed here.
    unreadable_tenant_secrets: list[str] = []
    # Everything else re-wrapped, by user (signing keys, export files, …).
    other_rewrapped: dict[str, int] = {}
    # True when an interrupted rotation was finished instead of a new version being added.
    resumed: bool = False


class TenantSecrets:
    name = "tenant secrets"

    async def rewrap(self, rt: Runtime) -> Rewrapped:
        active = rt.keys.active
        changed = 0
        unreadable: list[str] = []
        for tenant in await Tenant.select(Tenant.id, Tenant.slug, Tenant.wrapped_secret, Tenant.secret_version):
            if tenant["secret_version"] == active:
                continue
            try:
                crypto = TenantCrypto(rt.keys, tenant["id"], tenant["wrapped_secret"], tenant["secret_version"])
                wrapped, version = crypto.rewrap_tenant_secret(tenant["wrapped_secret"], tenant["secret_version"])
            except DecryptionError:  # a tampered row: listed, left as it is; the other tenants go on
                unreadable.append(tenant["slug"])
                continue
            # Only if nobody re-wrapped it meanwhile (a second rotation cannot run: the lease).
            await Tenant.update({Tenant.wrapped_secret: wrapped, Tenant.secret_version: version}).where(
                (Tenant.id == tenant["id"]) & (Tenant.secret_version == tenant["secret_version"])
            )
            changed += 1
        return Rewrapped(count=changed, unreadable=unreadable)

    async def still_using(self, rt: Runtime, version: int) -> list[str]:
        rows = await Tenant.select(Tenant.slug).where(Tenant.secret_version == version).order_by(Tenant.slug)
        if not rows:
            return []
        slugs = [r["slug"] for r in rows]
        return [f"{len(slugs)} tenant secret(s) ({_listed(slugs)})"]


class ConversationKeys:
    name = "conversation keys"

    async def rewrap(self, rt: Runtime) -> Rewrapped:
        active = rt.keys.active
        per_tenant: Counter[UUID] = Counter()
        unreadable: list[str] = []
        cryptos: dict[UUID, TenantCrypto | None] = {}

        def stale() -> Any:
            return ConversationKey.select().where(ConversationKey.master_version != active)

        async for rows in db.keyset_pages(stale, ConversationKey.conversation, BATCH):
            async with db.write_transaction():
                for row in rows:
                    tenant_id = row["tenant"]
                    if tenant_id not in cryptos:
                        t = await Tenant.select().where(Tenant.id == tenant_id).first()
                        if t is None:  # the key's tenant row is gone (foreign keys make this a tampered store)
                            unreadable.append(str(row["conversation"]))
                            continue
                        try:
                            cryptos[tenant_id] = TenantCrypto(rt.keys, tenant_id, t["wrapped_secret"], t["secret_version"])
                        except DecryptionError:  # its tenant secret does not unwrap (reported by TenantSecrets)
                            cryptos[tenant_id] = None
                    crypto = cryptos[tenant_id]
                    if crypto is None:
                        unreadable.append(str(row["conversation"]))
                        continue
                    try:
                        data_key = crypto.unwrap_data_key(row["conversation"], row["wrapped_key"], row["master_version"])
                    except DecryptionError:
                        unreadable.append(str(row["conversation"]))
                        continue
                    await ConversationKey.update(
                        {ConversationKey.wrapped_key: crypto.wrap_data_key(row["conversation"], data_key, active),
                         ConversationKey.master_version: active}
                    ).where((ConversationKey.conversation == row["conversation"]) & (ConversationKey.master_version == row["master_version"]))
                    per_tenant[tenant_id] += 1
        return Rewrapped(count=sum(per_tenant.values()), per_tenant=dict(per_tenant), unreadable=unreadable)

    async def still_using(self, rt: Runtime, version: int) -> list[str]:
        rows = await ConversationKey.raw(
            "SELECT t.slug AS slug, COUNT(*) AS n FROM conversation_key k JOIN tenant t ON t.id = k.tenant "
            "WHERE k.master_version = {} GROUP BY t.slug ORDER BY t.slug", version,
        )
        if not rows:
            return []
        total = sum(int(r["n"]) for r in rows)
        counts = [f"{r['slug']}: {r['n']}" for r in rows]
        return [f"{total} conversation key(s) ({_listed(counts)})"]


class SigningKeyHistory:
    name = "signing keys"

    async def rewrap(self, rt: Runtime) -> Rewrapped:
        return Rewrapped(count=await rt.signing.rewrap())

    async def still_using(self, rt: Runtime, version: int) -> list[str]:
        return await rt.signing.dependents(version)


def _listed(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


async def rotate_master(rt: Runtime, actor: str = "cli") -> RotationReport:
    settings = rt.settings
    async with leases.held(rt, leases.GLOBAL, ROTATION):
        ring = rt.keys.reload()
        # A rotation killed half-way left data under older versions: finish that one first
        # (running the command again then adds the next version).
        resumed = not settings.master_key and bool([v for v in ring.keys if v != ring.active and await still_using(rt, v)])
        done: dict[str, Rewrapped] = {}
        if resumed and await _rotation_finished(ring.active):
            # That rotation ran to its end (it ledgered key.rotate). Left under older versions:
            # keys a process wrapped before it heard of the rotation (re-wrapped here, as for a
            # killed rotation), or rows that do not unwrap. Only the latter: nothing to finish,
            # and "finishing" every time would never add a version, so this run adds one.
            leftovers = {user.name: await user.rewrap(rt) for user in rt.master_key_users}
            resumed = any(result.count for result in leftovers.values())
            done = leftovers if resumed else {}
        if not settings.master_key and not resumed:
            FileKeyProvider(settings.data_path).add_version()
        # With PARLEY_MASTER_KEY the operator adds the new version to the variable of every
        # process first (see docs/operations.md); this re-wraps to it.
        keyring = rt.keys.reload()
        if not done:  # unless the leftovers of a finished rotation were all there was to re-wrap
            await rt.signals.announce(KEYRING_CHANGED, str(keyring.active))
            done = {user.name: await user.rewrap(rt) for user in rt.master_key_users}
        data_keys = done.pop(ConversationKeys.name, Rewrapped())
        tenant_secrets = done.pop(TenantSecrets.name, Rewrapped())
        secrets = tenant_secrets.count
        conversation_keys, unreadable = data_keys.count, data_keys.unreadable
        others = {name: result.count for name, result in done.items()}
        for tenant in await Tenant.select(Tenant.id):
            await ledger.append(
                tenant["id"],
                ledger.Entry(actor=actor, action="key.rotate",
                             details={"active_version": keyring.active, "data_keys_rewrapped": data_keys.per_tenant.get(tenant["id"], 0)}),
            )
    rt.key_check.invalidate()
    log.info("master_key_rotated", active=keyring.active, data_keys=conversation_keys, tenant_secrets=secrets, **others)
    return RotationReport(
        active_version=keyring.active, data_keys_rewrapped=conversation_keys,
        tenant_secrets_rewrapped=secrets, unreadable=unreadable, unreadable_tenant_secrets=tenant_secrets.unreadable,
        other_rewrapped=others, resumed=resumed,
    )


async def _rotation_finished(version: int) -> bool:
    """Did a rotation to ``version`` run to its end? It ledgers ``key.rotate`` in every tenant's
    chain after re-wrapping everything; one tenant having it is enough (a kill can stop the
    appends half-way). One indexed read per tenant until found."""
    for tenant in await Tenant.select(Tenant.id):
        rows = await LedgerEntry.select(LedgerEntry.details).where(
            (LedgerEntry.tenant == tenant["id"]) & (LedgerEntry.action == "key.rotate")
        )
        if any(db.json_column(r["details"]).get("active_version") == version for r in rows):
            return True
    return False


async def still_using(rt: Runtime, version: int) -> list[str]:
    return [line for user in rt.master_key_users for line in await user.still_using(rt, version)]


class RetireReport(msgspec.Struct):
    version: int
    # False with PARLEY_MASTER_KEY: Parley cannot edit the variable; nothing needs the version
    # any more, and the operator removes it from every process's environment.
    destroyed: bool


async def retire_master(rt: Runtime, version: int, actor: str = "cli") -> RetireReport:
    """Destroy an old master version; refused, naming what depends on it, while anything does."""
    from_env = bool(rt.settings.master_key)
    async with leases.held(rt, leases.GLOBAL, ROTATION):
        ring = rt.keys.reload()
        if version == ring.active:
            raise KeyringError(f"master key version {version} is active; run 'parley keys rotate-master' first")
        if version not in ring.keys:
            known = ", ".join(str(v) for v in sorted(ring.keys))
            raise KeyringError(f"master key version {version} does not exist or is already retired; versions in the keyring: {known}")
        needed = await still_using(rt, version)
        if needed:
            raise Conflict(
                f"master key version {version} still protects: {'; '.join(needed)}. "
                "Run 'parley keys rotate-master', which re-wraps everything that still unwraps, then retire again; "
                "what it lists as not unwrapping (a damaged or copied row) it cannot move: restore those rows from a "
                "backup taken before the damage, or erase those conversations, before retiring this version."
            )
        if from_env:
            return RetireReport(version=version, destroyed=False)
        FileKeyProvider(rt.settings.data_path).retire(version)
        rt.keys.reload()
        for tenant in await Tenant.select(Tenant.id):
            await ledger.append(tenant["id"], ledger.Entry(actor=actor, action="key.retire", details={"master_version": version}))
    await rt.signals.announce(KEYRING_CHANGED, f"retired:{version}")
    rt.key_check.invalidate()
    log.info("master_key_retired", version=version)
    return RetireReport(version=version, destroyed=True)


# --- readiness -------------------------------------------------------------------------------

# The distinct master versions of conversation_key, one index probe per version (a loose index
# scan; both engines run it as written).
_VERSIONS_SQL = (
    "WITH RECURSIVE v(x) AS ("
    " SELECT MIN(master_version) FROM conversation_key"
    " UNION ALL"
    " SELECT (SELECT MIN(master_version) FROM conversation_key WHERE master_version > v.x) FROM v WHERE v.x IS NOT NULL"
    ") SELECT x FROM v WHERE x IS NOT NULL"
)


class KeyringStatus(msgspec.Struct):
    ok: bool
    detail: str


class KeyringCheck:
    """Can this process unwrap what the store holds? For ``/readyz``: for every master version
    that conversation keys and tenant secrets are wrapped under, the version is in the keyring
    and one real item of it unwraps. Cached for ``TTL`` seconds and dropped when the keyring
    changes, so readiness costs a few index probes at most every half minute."""

    TTL = 30.0
    SAMPLES = 5

    def __init__(self, keys: Keys, clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        # (when, the keyring it was computed with, the result)
        self._cached: tuple[float, MasterKeyring, KeyringStatus] | None = None

    def invalidate(self, _arg: str = "") -> None:
        self._cached = None

    async def status(self) -> KeyringStatus:
        ring = self.keys.fresh()  # a changed key file is seen here even before its signal
        cached = self._cached
        if cached is not None and cached[1] is ring and self.clock.monotonic() - cached[0] < self.TTL:
            return cached[2]
        status = await self._check()
        self._cached = (self.clock.monotonic(), ring, status)
        return status

    async def _check(self) -> KeyringStatus:
        rows = await db.engine().run_querystring(QueryString(_VERSIONS_SQL))
        data_versions = sorted(int(r["x"]) for r in rows)
        secret_rows = await Tenant.select(Tenant.secret_version).distinct()
        secret_versions = sorted({int(r["secret_version"]) for r in secret_rows})
        problems, warnings = [], []
        for version in sorted(set(data_versions) | set(secret_versions)):
            try:
                self.keys.key(version)
            except KeyringError:
                problems.append(f"master version {version} is not in this process's keyring")
                continue
            problem, warning = await self._unwraps(version)
            problems += [problem] if problem else []
            warnings += [warning] if warning else []
        if problems:
            return KeyringStatus(ok=False, detail="; ".join(problems + warnings))
        used = ", ".join(str(v) for v in sorted(set(data_versions) | set(secret_versions))) or "none yet"
        return KeyringStatus(ok=True, detail="; ".join([f"active version {self.keys.active}; the store uses {used}", *warnings]))

    async def _unwraps(self, version: int) -> tuple[str | None, str | None]:
        """(problem, warning) for ``version``: unwrap a few tenant secrets and data keys of it — a
        wrong key with the right number would pass a presence check and still fail every read.
        One tampered row must not fail readiness, so any one of the samples unwrapping is enough.
        A version other than the active one that holds a single item, which does not unwrap,
        cannot tell a wrong key from a damaged row (typically a row ``rotate-master`` reported
        and left behind): a warning, since failing readiness on every process for it would take
        the whole service out for one row."""
        tried = 0
        for tenant in await Tenant.select().where(Tenant.secret_version == version).limit(self.SAMPLES):
            tried += 1
            try:
                TenantCrypto(self.keys, tenant["id"], tenant["wrapped_secret"], version)
                return None, None
            except DecryptionError:
                continue
        for key in await ConversationKey.select().where(ConversationKey.master_version == version).limit(self.SAMPLES):
            owner = await Tenant.select().where(Tenant.id == key["tenant"]).first()
            if owner is None:
                continue
            tried += 1
            try:
                crypto = TenantCrypto(self.keys, owner["id"], owner["wrapped_secret"], owner["secret_version"])
                crypto.unwrap_data_key(key["conversation"], key["wrapped_key"], version)
                return None, None
            except (DecryptionError, KeyringError):
                continue
        if tried == 0:
            return None, None
        if tried == 1 and version != self.keys.active:
            return None, (f"master version {version}: the one item wrapped under it does not unwrap (a damaged row, or a wrong key "
                          f"for version {version}); `parley keys rotate-master` lists damaged rows")
        return f"master version {version} in the keyring does not unwrap the data wrapped under it (wrong key?)", None
