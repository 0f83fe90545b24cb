"""What Parley keeps about connectors: the connector itself, its counters, the deliveries it has
stored, and the threads whose drafts or queued work wait for a close.

Secrets. The platform secret and API token must be usable again (to verify a signature, to call
the platform), so they are sealed, not hashed: under a key derived from the tenant secret (the
ledger-notes key, which survives master rotations), with the connector id inside the sealed
value so that a sealed blob copied to another connector's row is refused.

Threads. A platform conversation that sends pieces before it closes (Chatwoot's messages) or
whose close waits for network work gets a thread: the conversation id it will be archived under,
reserved with its own data key in ``conversation_key`` from the first piece on. Drafts and queued
work are sealed under that key, so the conversation, its revisions, its files and everything
pending for it share one key, and crypto-shredding the conversation shreds them too. A thread of
an already archived conversation reuses that conversation's id and key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from piccolo.query.functions.aggregate import Count, Max
from piccolo.querystring import QueryString

from archive import db, ledger, revisions
from archive.clock import Clock
from archive.connectors.files import FileSettings
from archive.connectors.files import check as check_files
from archive.connectors.outcomes import Draft, Outcome
from archive.connectors.push import ConnectorConfig, PlatformName
from archive.crypto import DecryptionError
from archive.db import json_column
from archive.errors import FieldError, InvalidInput, NotFound
from archive.signals import KEYRING_CHANGED, Signals
from archive.tables import (
    Connector,
    ConnectorCounter,
    ConnectorDelivery,
    ConnectorDraft,
    ConnectorJob,
    ConnectorThread,
    Conversation,
    ConversationKey,
)
from archive.tenancy import TenantContext

if TYPE_CHECKING:
    from archive.runtime import Runtime

# Platforms that generate the secret themselves: it must be copied into Parley.
SECRET_FROM_PLATFORM = {
    "chatwoot": "Chatwoot shows the webhook's secret when the webhook is saved; give it as the connector's secret (--secret)",
    "intercom": "Intercom signs with your app's client secret (Developer Hub → Basic information); give it as the connector's secret (--secret)",
}
# Shorter secrets could be found by trying. Every platform that generates its secret makes a longer
# one; Rocket.Chat's Secret Token is free text the admin types (webhooks.ts sends it as it is,
# and no header at all when it is empty), so a short one is refused with how to fix it.
MIN_SECRET_CHARS = 8
SHORT_SECRET_HINT = {
    "rocketchat": "Rocket.Chat's Secret Token is free text: set a longer one under Administration → Omnichannel → "
    "Webhooks, or leave --secret out and enter the one Parley generates",
    "livechat": "leave --secret out and enter the one Parley generates as the webhook's secret_key",
    "generic": "leave --secret out and sign with the one Parley generates",
    "crisp": "for Plugin Hooks copy the whole signing secret the Marketplace shows; for Website Hooks leave --secret "
    "out and enter the webhook URL with ?key=<the secret Parley generates>",
}
DELIVERY_DAYS = 7  # a platform retries within hours; a week of keys is plenty
STALE_THREAD_DAYS = 30  # a thread whose conversation never closed is dropped after this


class ConnectorIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    platform: PlatformName
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    api_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    api_token: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None
    site: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] | None = None
    channel: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] | None = None
    files: FileSettings = msgspec.field(default_factory=FileSettings)


class CreatedConnector(msgspec.Struct):
    """What ``connectors create`` answers: the secret is in this response only."""

    id: UUID
    platform: str
    webhook_url: str
    secret: str


class ConnectorOut(msgspec.Struct, kw_only=True):
    id: UUID
    platform: str
    webhook_url: str
    api_url: str | None
    api_token: bool  # whether one is set (it is never shown)
    site: str | None
    channel: str | None
    files: FileSettings
    created_at: datetime
    created_by: str


class ConnectorStats(msgspec.Struct, kw_only=True):
    id: UUID
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: dict[str, int] = {}
    archived: int = 0
    files: dict[str, int] = {}
    queued: int = 0  # pushes waiting for network work (fetch-back, files)
    failed: int = 0  # queued pushes given up on
    failures: dict[str, int] = {}  # why they were given up, by reason
    last_received_at: datetime | None = None


class Loaded(msgspec.Struct, frozen=True):
    """A connector as a push needs it: its tenant, settings and decrypted credentials."""

    id: UUID
    tenant_id: UUID
    config: ConnectorConfig
    files: FileSettings


class _Credentials(msgspec.Struct):
    connector: str
    secret: str
    api_token: str | None = None


def webhook_url(base: str, connector_id: UUID) -> str:
    return f"{base.rstrip('/')}/v1/connectors/{connector_id}/events"


# --- connectors ----------------------------------------------------------------------------------


def _check(data: ConnectorIn) -> list[FieldError]:
    from archive.connectors import check_config

    errors: list[FieldError] = []
    if data.secret is None and data.platform in SECRET_FROM_PLATFORM:
        errors.append(FieldError("secret", SECRET_FROM_PLATFORM[data.platform]))
    if data.secret is not None and len(data.secret) < MIN_SECRET_CHARS:
        hint = SHORT_SECRET_HINT.get(data.platform, "copy the whole secret the platform shows")
        errors.append(FieldError("secret", f"at least {MIN_SECRET_CHARS} characters (a shorter one can be guessed); {hint}"))
    if data.api_url is not None and not data.api_url.startswith(("https://", "http://")):
        errors.append(FieldError("api_url", "an http:// or https:// URL, e.g. https://chat.example.com"))
    config = ConnectorConfig(platform=data.platform, secret=data.secret or "-", api_url=data.api_url, api_token=data.api_token)
    errors.extend(check_config(config))
    errors.extend(check_files(data.files))
    return errors


async def create(ctx: TenantContext, data: ConnectorIn, actor: str, public_url: str) -> CreatedConnector:
    errors = _check(data)
    if errors:
        raise InvalidInput("the connector settings are invalid; nothing was created", errors)
    connector_id = uuid4()
    secret = data.secret or secrets.token_urlsafe(32)
    sealed = ctx.crypto.seal_note(msgspec.json.encode(_Credentials(str(connector_id), secret, data.api_token)))
    async with db.write_transaction():
        await Connector.insert(
            Connector(
                id=connector_id, tenant=ctx.tenant_id, platform=data.platform, credentials=sealed, api_url=data.api_url,
                site=data.site, channel=data.channel, files=msgspec.json.encode(data.files).decode(), created_by=actor,
            )
        )
        await ledger.append(ctx.tenant_id, ledger.Entry(
            actor=actor, action="connector.create", subject=str(connector_id),
            details={"platform": data.platform, "api_url": data.api_url, "files": msgspec.to_builtins(data.files)},
        ))
    return CreatedConnector(id=connector_id, platform=data.platform, webhook_url=webhook_url(public_url, connector_id), secret=secret)


def _out(row: dict[str, Any], public_url: str, has_token: bool) -> ConnectorOut:
    return ConnectorOut(
        id=row["id"], platform=row["platform"], webhook_url=webhook_url(public_url, row["id"]), api_url=row["api_url"],
        api_token=has_token, site=row["site"], channel=row["channel"],
        files=msgspec.convert(json_column(row["files"]), FileSettings), created_at=row["created_at"], created_by=row["created_by"],
    )


def _open(ctx: TenantContext, row: dict[str, Any]) -> _Credentials:
    try:
        credentials = msgspec.json.decode(ctx.crypto.open_note(row["credentials"]), type=_Credentials)
    except (DecryptionError, msgspec.DecodeError, ValueError):
        raise DecryptionError(f"the credentials of connector {row['id']} do not decrypt") from None
    if credentials.connector != str(row["id"]):
        raise DecryptionError(f"the credentials stored with connector {row['id']} belong to another connector")
    return credentials


async def list_connectors(ctx: TenantContext, public_url: str) -> list[ConnectorOut]:
    rows = await Connector.select().where(Connector.tenant == ctx.tenant_id).order_by(Connector.created_at)
    return [_out(row, public_url, _open(ctx, row).api_token is not None) for row in rows]


async def get(ctx: TenantContext, connector_id: UUID, public_url: str) -> ConnectorOut:
    row = await _row(connector_id, ctx.tenant_id)
    return _out(row, public_url, _open(ctx, row).api_token is not None)


async def _row(connector_id: UUID, tenant_id: UUID | None = None) -> dict[str, Any]:
    query = Connector.select().where(Connector.id == connector_id)
    if tenant_id is not None:
        query = query.where(Connector.tenant == tenant_id)
    row: dict[str, Any] | None = await query.first()
    if row is None:
        raise NotFound(f"no connector {connector_id}")
    return row


async def tenant_of(connector_id: UUID) -> UUID:
    tenant: UUID = (await _row(connector_id))["tenant"]
    return tenant


CONNECTOR_DELETED = "connector_deleted"


class ConnectorDirectory:
    """What a process caches about connectors: each one a push named, with its decrypted
    credentials, so that a push costs no database round trip before it is authenticated (the
    same reason API keys are cached). Bounded; a connector deleted in any process is forgotten
    here at once (the ``connector_deleted`` signal), the TTL (``PARLEY_AUTH_CACHE_SECONDS``) is
    only a backstop. Unknown ids are never cached, so random ids cannot grow memory."""

    SIZE = 10_000

    def __init__(self, signals: Signals, clock: Clock, ttl: float) -> None:
        self.signals, self.clock, self.ttl = signals, clock, ttl
        self._loaded: OrderedDict[UUID, tuple[float, Loaded]] = OrderedDict()
        signals.subscribe(CONNECTOR_DELETED, self._on_deleted)
        signals.subscribe(KEYRING_CHANGED, lambda _arg: self.clear())
        signals.on_reset(self.clear)

    async def load(self, rt: Runtime, connector_id: UUID) -> Loaded:
        self.signals.poll()
        cached = self._loaded.get(connector_id)
        if cached is not None and self.clock.monotonic() - cached[0] <= self.ttl:
            self._loaded.move_to_end(connector_id)
            return cached[1]
        loaded = await _load(rt, connector_id)
        if self.ttl > 0:
            self._loaded[connector_id] = (self.clock.monotonic(), loaded)
            while len(self._loaded) > self.SIZE:
                self._loaded.popitem(last=False)
        return loaded

    def forget(self, connector_id: UUID) -> None:
        self._loaded.pop(connector_id, None)

    def clear(self) -> None:
        self._loaded.clear()

    def _on_deleted(self, arg: str) -> None:
        try:
            self.forget(UUID(arg))
        except ValueError:
            self.clear()


async def load(rt: Runtime, connector_id: UUID) -> Loaded:
    """The connector a push names, ready to verify and parse with (NotFound if there is none);
    through the runtime's cache."""
    return await rt.connectors.load(rt, connector_id)


async def _load(rt: Runtime, connector_id: UUID) -> Loaded:
    row = await _row(connector_id)
    ctx = await rt.tenants.context(row["tenant"])
    credentials = _open(ctx, row)
    config = ConnectorConfig(
        platform=row["platform"], secret=credentials.secret, api_url=row["api_url"], api_token=credentials.api_token,
        site=row["site"], channel=row["channel"],
    )
    return Loaded(id=connector_id, tenant_id=row["tenant"], config=config, files=msgspec.convert(json_column(row["files"]), FileSettings))


async def delete(rt: Runtime, tenant_id: UUID, connector_id: UUID, actor: str) -> dict[str, int]:
    """Delete a connector with its counters, delivery keys and pending work. Conversations it
    archived stay (they are the archive's); drafts of threads that never closed are dropped and
    their reserved keys destroyed. Returns what was dropped. Every process stops accepting its
    pushes at once (the ``connector_deleted`` signal)."""
    row = await _row(connector_id, tenant_id)
    async with db.write_transaction():
        threads = await ConnectorThread.select(ConnectorThread.conversation).where(ConnectorThread.connector == connector_id)
        reserved = [t["conversation"] for t in threads]
        archived = {
            r["id"] for r in await Conversation.select(Conversation.id).where(Conversation.id.is_in(reserved))
        } if reserved else set()
        never_closed = [cid for cid in reserved if cid not in archived]
        drafts = await ConnectorDraft.count().where(ConnectorDraft.connector == connector_id)
        jobs = await ConnectorJob.count().where(ConnectorJob.connector == connector_id)
        await ConnectorDraft.delete().where(ConnectorDraft.connector == connector_id)
        await ConnectorJob.delete().where(ConnectorJob.connector == connector_id)
        await ConnectorThread.delete().where(ConnectorThread.connector == connector_id)
        if never_closed:
            await ConversationKey.delete().where((ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in(never_closed))
        await ConnectorDelivery.delete().where(ConnectorDelivery.connector == connector_id)
        await ConnectorCounter.delete().where(ConnectorCounter.connector == connector_id)
        await Connector.delete().where(Connector.id == connector_id)
        dropped = {"drafts_dropped": drafts, "jobs_dropped": jobs}
        await ledger.append(tenant_id, ledger.Entry(
            actor=actor, action="connector.delete", subject=str(connector_id), details={"platform": row["platform"], **dropped},
        ))
    rt.connectors.forget(connector_id)
    await rt.signals.announce(CONNECTOR_DELETED, str(connector_id))
    return dropped


# --- counters and deliveries ---------------------------------------------------------------------


async def bump(connector_id: UUID, at: datetime, *names: str, by: int = 1) -> None:
    """Add ``by`` to each named counter (one statement, inside the caller's transaction if any)."""
    if not names:
        return
    values = ", ".join("({}, {}, {}, {}, {})" for _ in names)
    args: list[Any] = []
    for name in names:
        args += [f"{connector_id}:{name}"[:120], connector_id, name[:80], by, at]
    await db.engine().run_querystring(QueryString(
        f'INSERT INTO connector_counter ("key", connector, name, total, last_at) VALUES {values} '
        'ON CONFLICT ("key") DO UPDATE SET total = connector_counter.total + excluded.total, '
        "last_at = CASE WHEN excluded.last_at > connector_counter.last_at THEN excluded.last_at ELSE connector_counter.last_at END",
        *args,
    ))


class Duplicate(Exception):
    """The delivery was stored before: the platform retried it."""


def _delivery_key(connector_id: UUID, key: str) -> str:
    full = f"{connector_id}|{key}"
    return full if len(full) <= 320 else f"{connector_id}|sha256:{hashlib.sha256(key.encode()).hexdigest()}"


Accepted = Literal["archived", "pending", "queued"]


async def record_delivery(connector_id: UUID, key: str, at: datetime, outcome: Accepted) -> None:
    """Remember a delivery and what it became, in the caller's transaction (it is also what the
    stats count it by); Duplicate if it was stored before (the unique key decides a race between
    two copies arriving at once)."""
    stored = await db.engine().run_querystring(QueryString(
        'INSERT INTO connector_delivery ("key", connector, received_at, outcome) VALUES ({}, {}, {}, {}) '
        'ON CONFLICT ("key") DO NOTHING RETURNING "key"',
        _delivery_key(connector_id, key), connector_id, at, outcome,
    ))
    if not stored:
        raise Duplicate(key)


async def stats(tenant_id: UUID, connector_id: UUID) -> ConnectorStats:
    await _row(connector_id, tenant_id)
    result = ConnectorStats(id=connector_id)
    rejected: dict[str, int] = {}
    files: dict[str, int] = {}
    failures: dict[str, int] = {}
    latest: list[datetime] = []
    for row in await ConnectorCounter.select().where(ConnectorCounter.connector == connector_id):
        name, count = row["name"], int(row["total"])
        if row["last_at"] is not None and not name.startswith(("files.", "failed.")):
            latest.append(row["last_at"])
        if name == "accepted":
            result.accepted += count
        elif name == "archived":
            result.archived += count
        elif name == "duplicate":
            result.duplicates = count
        elif name == "ignored":
            result.ignored = count
        elif name.startswith("rejected."):
            rejected[name.removeprefix("rejected.")] = count
        elif name.startswith("files."):
            files[name.removeprefix("files.")] = count
        elif name.startswith("failed."):
            failures[name.removeprefix("failed.")] = count
    for outcome, count, last in await _live_deliveries(connector_id):
        result.accepted += count
        if outcome == "archived":
            result.archived += count
        latest.append(last)
    result.rejected, result.files, result.failures = rejected, files, failures
    result.received = result.accepted + result.duplicates + result.ignored + sum(rejected.values())
    result.last_received_at = max(latest) if latest else None
    result.queued = await ConnectorJob.count().where((ConnectorJob.connector == connector_id) & (ConnectorJob.status == "queued"))
    result.failed = await ConnectorJob.count().where((ConnectorJob.connector == connector_id) & (ConnectorJob.status == "failed"))
    return result


async def _live_deliveries(connector_id: UUID, before: datetime | None = None) -> list[tuple[str, int, datetime]]:
    """(outcome, count, latest) of the delivery rows still kept (those older than ``before``)."""
    query = ConnectorDelivery.select(
        ConnectorDelivery.outcome, Count(ConnectorDelivery.key, alias="n"), Max(ConnectorDelivery.received_at, alias="latest"),
    ).where(ConnectorDelivery.connector == connector_id).group_by(ConnectorDelivery.outcome)
    if before is not None:
        query = query.where(ConnectorDelivery.received_at < before)
    return [(r["outcome"], int(r["n"]), _aware(r["latest"])) for r in await query]


def _aware(value: Any) -> datetime:
    """SQLite hands an aggregate of a timestamp column back as text."""
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- threads, drafts and queued work -------------------------------------------------------------


class Thread(msgspec.Struct, frozen=True):
    """The conversation id reserved for a platform conversation, and its (wrapped) data key."""

    conversation: UUID
    wrapped_key: bytes
    master_version: int


def _thread_key(connector_id: UUID, thread: str) -> str:
    full = f"{connector_id}|{thread}"
    return full if len(full) <= 320 else f"{connector_id}|sha256:{hashlib.sha256(thread.encode()).hexdigest()}"


async def find_thread(tenant_id: UUID, connector_id: UUID, thread: str) -> Thread | None:
    row = await ConnectorThread.select(ConnectorThread.conversation).where(ConnectorThread.key == _thread_key(connector_id, thread)).first()
    if row is None:
        return None
    key = await revisions.key_of(tenant_id, row["conversation"], lock=True)
    return Thread(row["conversation"], key["wrapped_key"], key["master_version"]) if key else None


async def archived_id(tenant_id: UUID, external_id: str) -> UUID | None:
    """The id of the conversation archived under ``external_id``, if there is one."""
    found = await archived_end(tenant_id, external_id)
    return found[0] if found else None


async def archived_end(tenant_id: UUID, external_id: str) -> tuple[UUID, datetime] | None:
    """The id and end time of the conversation archived under ``external_id``, if there is one
    (read from the row, without decrypting the conversation)."""
    row = await Conversation.select(Conversation.id, Conversation.ended_at).where(
        (Conversation.tenant == tenant_id) & (Conversation.external_id == external_id)
    ).first()
    return (row["id"], row["ended_at"]) if row else None


async def ensure_thread(ctx: TenantContext, connector_id: UUID, thread: str, external_id: str, now: datetime) -> Thread:
    """The thread's reserved conversation, created on first use (inside the caller's transaction):
    the archived conversation's own id and key if ``external_id`` is archived, else a new id with
    a new data key."""
    key = _thread_key(connector_id, thread)
    found = await find_thread(ctx.tenant_id, connector_id, thread)
    if found is not None:
        await ConnectorThread.update({ConnectorThread.updated_at: now}).where(ConnectorThread.key == key)
        return found
    await ConnectorThread.delete().where(ConnectorThread.key == key)  # a thread whose key was shredded starts again
    archived = await archived_id(ctx.tenant_id, external_id)
    existing = await revisions.key_of(ctx.tenant_id, archived, lock=True) if archived else None
    if archived is not None and existing is not None:
        reserved = Thread(archived, existing["wrapped_key"], existing["master_version"])
    else:
        conversation_id = uuid4()
        fresh = ctx.crypto.seal(conversation_id, b"")  # only its wrapped data key is kept
        await ConversationKey.insert(
            ConversationKey(conversation=conversation_id, tenant=ctx.tenant_id, wrapped_key=fresh.wrapped_key, master_version=fresh.master_version)
        )
        reserved = Thread(conversation_id, fresh.wrapped_key, fresh.master_version)
    await ConnectorThread.insert(
        ConnectorThread(key=key, tenant=ctx.tenant_id, connector=connector_id, conversation=reserved.conversation, created_at=now, updated_at=now)
    )
    return reserved


async def keep_draft(ctx: TenantContext, connector_id: UUID, thread: Thread, draft: Draft, now: datetime) -> None:
    token = uuid4()
    sealed = ctx.crypto.seal_part(thread.conversation, thread.wrapped_key, thread.master_version, f"draft/{token}", msgspec.json.encode(draft))
    await ConnectorDraft.insert(
        ConnectorDraft(tenant=ctx.tenant_id, connector=connector_id, conversation=thread.conversation, token=token, ciphertext=sealed, created_at=now)
    )


async def drafts(ctx: TenantContext, connector_id: UUID, thread: Thread | None) -> list[Draft]:
    """The thread's pending drafts, oldest first (all of them: a reopened conversation's next
    revision is assembled from everything it ever said)."""
    if thread is None:
        return []
    rows = await ConnectorDraft.select(ConnectorDraft.token, ConnectorDraft.ciphertext).where(
        (ConnectorDraft.connector == connector_id) & (ConnectorDraft.conversation == thread.conversation)
    ).order_by(ConnectorDraft.id)
    return [
        msgspec.json.decode(
            ctx.crypto.open_part(thread.conversation, thread.wrapped_key, thread.master_version, f"draft/{row['token']}", row["ciphertext"]),
            type=Draft,
        )
        for row in rows
    ]


async def lock_thread(connector_id: UUID, thread: Thread, now: datetime) -> None:
    """Lock the thread's row until the caller's transaction ends (``ensure_thread`` does the same
    write), so pieces kept and revisions assembled from them are serialised per thread."""
    await ConnectorThread.update({ConnectorThread.updated_at: now}).where(
        (ConnectorThread.connector == connector_id) & (ConnectorThread.conversation == thread.conversation)
    )


async def draft_count(connector_id: UUID, thread: Thread) -> int:
    return int(await ConnectorDraft.count().where(
        (ConnectorDraft.connector == connector_id) & (ConnectorDraft.conversation == thread.conversation)
    ))


async def queue(ctx: TenantContext, connector_id: UUID, thread: Thread, outcome: Outcome, now: datetime) -> UUID:
    job_id = uuid4()
    sealed = ctx.crypto.seal_part(thread.conversation, thread.wrapped_key, thread.master_version, f"job/{job_id}", msgspec.json.encode(outcome))
    await ConnectorJob.insert(
        ConnectorJob(id=job_id, tenant=ctx.tenant_id, connector=connector_id, conversation=thread.conversation, ciphertext=sealed,
                     status="queued", attempts=0, next_attempt_at=now, created_at=now)
    )
    return job_id


def open_job(ctx: TenantContext, job: dict[str, Any], key: dict[str, Any]) -> Outcome:
    plaintext = ctx.crypto.open_part(job["conversation"], key["wrapped_key"], key["master_version"], f"job/{job['id']}", job["ciphertext"])
    outcome: Outcome = msgspec.json.decode(plaintext, type=Outcome)
    return outcome


async def expire(now: datetime, rolling_up: Callable[[UUID], None] | None = None) -> dict[str, int]:
    """Bounded retention of connector bookkeeping: delivery keys after DELIVERY_DAYS; threads that
    never became a conversation (with their drafts, work and reserved keys) after
    STALE_THREAD_DAYS without news; failed work after STALE_THREAD_DAYS.

    Expired delivery rows are still counted in the stats, so their counts move into the counters
    in the transaction that deletes them, one connector at a time: a crash leaves each
    connector's count either wholly in its rows or wholly in its counters, never both or neither
    (``rolling_up`` is called inside that transaction, between the two; the kill -9 test stops
    there)."""
    old = now - timedelta(days=DELIVERY_DAYS)
    deliveries = 0
    for row in await ConnectorDelivery.select(ConnectorDelivery.connector).where(ConnectorDelivery.received_at < old).distinct():
        async with db.write_transaction():
            for outcome, count, last in await _live_deliveries(row["connector"], before=old):
                await bump(row["connector"], last, "accepted", *(["archived"] if outcome == "archived" else []), by=count)
                deliveries += count
            if rolling_up is not None:
                rolling_up(row["connector"])
            await ConnectorDelivery.delete().where((ConnectorDelivery.connector == row["connector"]) & (ConnectorDelivery.received_at < old))
    cutoff = now - timedelta(days=STALE_THREAD_DAYS)
    dropped = 0
    async with db.write_transaction():
        stale = await ConnectorThread.select(ConnectorThread.key, ConnectorThread.tenant, ConnectorThread.conversation).where(
            ConnectorThread.updated_at < cutoff
        )
        ids = [t["conversation"] for t in stale]
        archived = {r["id"] for r in await Conversation.select(Conversation.id).where(Conversation.id.is_in(ids))} if ids else set()
        orphans = [t for t in stale if t["conversation"] not in archived]
        for tenant_id, group in _by_tenant(orphans):
            cids = [t["conversation"] for t in group]
            await ConnectorDraft.delete().where((ConnectorDraft.tenant == tenant_id) & ConnectorDraft.conversation.is_in(cids))
            await ConnectorJob.delete().where((ConnectorJob.tenant == tenant_id) & ConnectorJob.conversation.is_in(cids))
            await ConversationKey.delete().where((ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in(cids))
            await ConnectorThread.delete().where(ConnectorThread.key.is_in([t["key"] for t in group]))
            dropped += len(group)
        await ConnectorJob.delete().where((ConnectorJob.status == "failed") & (ConnectorJob.created_at < cutoff))
    return {"delivery_keys": deliveries, "stale_threads": dropped}


def _by_tenant(rows: Iterable[dict[str, Any]]) -> list[tuple[UUID, list[dict[str, Any]]]]:
    groups: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["tenant"], []).append(row)
    return list(groups.items())
