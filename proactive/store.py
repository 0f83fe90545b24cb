"""Where the engagement engine keeps what must outlive a process: behaviour events, visitor memory,
invitations, capacity reports and counters. Every read and write of those tables is here, so what
is stored about a visitor (and how it is redacted, see proactive.events.as_stored) is decided in
one place.

Writes arrive from the journal (proactive.journal) inside its one transaction per group commit.
Bounds: a visitor's memory row is a few hundred bytes to ~2 KB; rows, events and closed
invitations are deleted ``event_retention_days`` after their last use, and at once by erasure.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from uuid import UUID

import msgspec
from piccolo.querystring import QueryString

from archive import db, signals
from archive.db import json_column
from proactive.delivery import REOFFER_SECONDS
from proactive.events import utc
from proactive.model import GroupCapacity, GroupKey, Invitation, OpenInvitation, VisitorKey
from proactive.tables import AgentCapacity, BehaviourEvent, EngagementHandoff, EngagementInvitation, VisitorMemory


class Batch(msgspec.Struct):
    """One collect request's events as the engine applied them."""

    tenant: Any
    site: Any
    visitor_hash: str
    session_id: str
    tab: str
    batch_id: str
    received: float
    events: list[dict[str, Any]]
    sealed: list[bytes] = []  # each event's payload (PAYLOAD_FIELDS) sealed under the tenant's event key


class EventCrypto(Protocol):
    """What the store needs of a tenant's crypto (archive.crypto.TenantCrypto)."""

    def seal_event(self, subject: str, plaintext: bytes) -> bytes: ...

    def open_event(self, subject: str, sealed: bytes) -> bytes: ...


MemoryRow = tuple[Any, VisitorKey, float, float | None, bytes]  # tenant, key, last seen, due, memory


class Snapshot(msgspec.Struct):
    """Everything one group commit writes."""

    batches: list[Batch]
    visitors: list[MemoryRow]  # the memory sealed (Engagement.seal_memories)
    invitations: list[OpenInvitation]
    capacity: list[tuple[GroupKey, GroupCapacity]]
    counters: Counter[tuple[str, str, str]]
    forgotten: list[tuple[Any, str]]
    handoffs: list[Batch] = []  # batches for sites another process owns (engine replicas): stored, and the owner told
    handed: list[tuple[int, bool]] = []  # hand-off rows done with: applied, or a repeated batch (its events deleted)
    waiting: list[tuple[GroupKey, int]] = []  # engine replicas: visitors waiting per group, where that changed


# What of an event is stored sealed (``payload``): everything that came from the page. In clear
# stay only what the store is queried and ordered by (tenant, site, visitor hash, received_at) and
# what carries no page content: event type, the browser's ``at``, tab, session and batch ids.
PAYLOAD_FIELDS = ("name", "url", "title", "referrer", "props")
EVENT_INSERT = (
    "INSERT INTO behaviour_event (tenant, site, visitor_hash, session_id, tab_id, batch_id, type, at, payload, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INVITATION_UPSERT = (
    "INSERT INTO engagement_invitation (id, tenant, site, visitor_hash, rule, rule_name, variant, agent_group, message, status, sent_at,"
    " expires_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, closed_at = excluded.closed_at"
)
COUNTER_ADD = (
    "INSERT INTO rule_counter (rule, variant, name, count) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (rule, variant, name) DO UPDATE SET count = rule_counter.count + excluded.count"
)
# The group's last report, unless the stored one describes a later moment than this one's as_of
# (GroupCapacity.supersedes, kept here too: a report forwarded by another engine replica and the
# owner's own writes meet in this row).
CAPACITY_UPSERT = (
    "INSERT INTO agent_capacity (tenant, agent_group, online_agents, max_chats_per_agent, active_chats, reported_at, as_of, waiting)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
    " ON CONFLICT (tenant, agent_group) DO UPDATE SET online_agents = excluded.online_agents,"
    " max_chats_per_agent = excluded.max_chats_per_agent, active_chats = excluded.active_chats,"
    " reported_at = excluded.reported_at, as_of = excluded.as_of"
    " WHERE excluded.as_of IS NULL OR excluded.as_of >= COALESCE(agent_capacity.as_of, agent_capacity.reported_at)"
)
MEMORY_UPSERT = (
    "INSERT INTO visitor_memory (tenant, site, visitor_hash, last_seen, next_due, state) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, visitor_hash) DO UPDATE SET last_seen = excluded.last_seen, next_due = excluded.next_due, state = excluded.state"
)


async def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> None:
    """One prepared statement for many rows, on the open transaction's connection: the engine's
    writes (every collect and every decision) skip the ORM, which would build a query string value
    by value. Values are the drivers' own types (Piccolo's SQLite adapters apply)."""
    if not rows:
        return
    transaction = db.engine().current_transaction.get()
    if transaction is None:
        raise RuntimeError("store writes run inside the journal's transaction")
    if db.is_sqlite():
        await transaction.connection.executemany(sql, rows)
    else:
        numbered, count = sql, 0
        while "?" in numbered:
            count += 1
            numbered = numbered.replace("?", f"${count}", 1)
        await transaction.connection.executemany(numbered, rows)


async def write(snapshot: Snapshot) -> None:
    """Inside the caller's transaction."""
    await _executemany(EVENT_INSERT, [
        (b.tenant, b.site, b.visitor_hash, b.session_id, b.tab, b.batch_id, e["type"], utc(e["at_epoch"]), sealed, utc(b.received))
        for b in (*snapshot.batches, *snapshot.handoffs) for e, sealed in zip(b.events, b.sealed, strict=True)
    ])
    if snapshot.handoffs:
        await _executemany(HANDOFF_INSERT, [(b.tenant, b.site, b.visitor_hash, b.batch_id, utc(b.received)) for b in snapshot.handoffs])
        for tenant in sorted({str(b.tenant) for b in snapshot.handoffs}):  # NOTIFY goes out when this commits
            await db.engine().run_querystring(QueryString("SELECT pg_notify({}, {})", signals.CHANNEL, f"{HANDED_OFF}:{tenant}"))
    await _executemany(MEMORY_UPSERT, [
        (tenant, key[0], key[1], utc(seen), utc(due) if due else None, state) for tenant, key, seen, due, state in snapshot.visitors
    ])
    await _executemany(INVITATION_UPSERT, [_invitation_values(r) for r in snapshot.invitations])
    await _executemany(CAPACITY_UPSERT, [
        (tenant, group, cap.online_agents, cap.max_chats_per_agent, cap.active_chats, cap.reported_at, cap.as_of)
        for (tenant, group), cap in snapshot.capacity
    ])
    await _executemany("UPDATE agent_capacity SET waiting = ? WHERE tenant = ? AND agent_group = ?",
                       [(n, tenant, group) for (tenant, group), n in snapshot.waiting])
    await _executemany(COUNTER_ADD, [(UUID(rule_id), variant, name, count) for (rule_id, variant, name), count in snapshot.counters.items()])
    for tenant, visitor_hash in snapshot.forgotten:
        await delete_visitor(tenant, visitor_hash)
    await _executemany(REPEAT_DELETE, [(i,) for i, applied in snapshot.handed if not applied])
    await _executemany("DELETE FROM engagement_handoff WHERE id = ?", [(i,) for i, _ in snapshot.handed])


_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(dict[str, Any])


def seal_payloads(crypto: EventCrypto, visitor_hash: str, events: list[dict[str, Any]]) -> list[bytes]:
    """Each event's page content, already redacted (proactive.events.as_stored), sealed for storage:
    one AES-GCM operation per event under a per-tenant key, cheap enough for intake."""
    return [crypto.seal_event(visitor_hash, _json_encoder.encode({k: e[k] for k in PAYLOAD_FIELDS})) for e in events]


def _invitation_values(record: OpenInvitation) -> tuple[Any, ...]:
    inv = record.invitation
    return (inv.id, record.tenant, record.key[0], record.key[1], UUID(record.rule_id), inv.rule, inv.variant, inv.group or "", inv.message,
            record.status, utc(record.sent_at), inv.expires_at, utc(record.closed_at) if record.closed_at is not None else None)


def invitation_record(row: dict[str, Any]) -> OpenInvitation:
    invitation = Invitation(id=row["id"], rule=row["rule_name"], variant=row["variant"], message=row["message"],
                            group=row["agent_group"] or None, expires_at=row["expires_at"])
    return OpenInvitation(
        invitation=invitation, rule_id=str(row["rule"]), key=(row["site"], row["visitor_hash"]), tenant=row["tenant"],
        sent_at=row["sent_at"].timestamp(), expires=row["expires_at"].timestamp(), status=row["status"],
        closed_at=row["closed_at"].timestamp() if row["closed_at"] else None,
    )


# --- reading back --------------------------------------------------------------------------------


async def visitor(site: Any, visitor_hash: str) -> dict[str, Any] | None:
    return await VisitorMemory.select(VisitorMemory.tenant, VisitorMemory.state).where(
        (VisitorMemory.site == site) & (VisitorMemory.visitor_hash == visitor_hash)
    ).first()


async def recent_visitors(since: datetime, tenant: Any = None) -> list[dict[str, Any]]:
    """``tenant``: only its visitors (an engine replica taking the tenant over), else everyone's."""
    where = VisitorMemory.last_seen >= since
    if tenant is not None:
        where = where & (VisitorMemory.tenant == tenant)
    return await VisitorMemory.select(VisitorMemory.tenant, VisitorMemory.site, VisitorMemory.visitor_hash, VisitorMemory.state).where(where)


async def dormant_timers(before: datetime, tenant: Any = None) -> list[dict[str, Any]]:
    """Visitors not active lately but with a decision due: loaded when it is."""
    where = (VisitorMemory.last_seen < before) & VisitorMemory.next_due.is_not_null()
    if tenant is not None:
        where = where & (VisitorMemory.tenant == tenant)
    return await VisitorMemory.select(VisitorMemory.site, VisitorMemory.visitor_hash, VisitorMemory.next_due).where(where)


async def open_invitations(tenant: Any = None) -> list[OpenInvitation]:
    where = EngagementInvitation.status.is_in(["sent", "shown"])
    if tenant is not None:
        where = where & (EngagementInvitation.tenant == tenant)
    rows = await EngagementInvitation.select().where(where)
    return [invitation_record(r) for r in rows]


async def invitations_since(since: datetime, tenant: Any = None) -> list[OpenInvitation]:
    """Sent since ``since``: pacing, and accepted invitations the platform has not reported yet."""
    where = EngagementInvitation.sent_at >= since
    if tenant is not None:
        where = where & (EngagementInvitation.tenant == tenant)
    rows = await EngagementInvitation.select().where(where)
    return [invitation_record(r) for r in rows]


async def accepted_since_report() -> dict[GroupKey, list[float]]:
    """Per group, when the accepted invitations its last report does not count were accepted:
    those after the moment the report describes."""
    rows = await EngagementInvitation.raw(
        "SELECT i.tenant AS tenant, i.agent_group AS agent_group, i.closed_at AS closed_at FROM engagement_invitation i "
        "JOIN agent_capacity c ON c.tenant = i.tenant AND c.agent_group = i.agent_group "
        "WHERE i.status = 'accepted' AND i.closed_at > COALESCE(c.as_of, c.reported_at) ORDER BY i.closed_at"
    )
    found: dict[GroupKey, list[float]] = {}
    for r in rows:
        found.setdefault((_uuid(r["tenant"]), r["agent_group"]), []).append(_timestamp(r["closed_at"]))
    return found


async def capacity_reports(tenant: Any = None) -> list[tuple[GroupKey, GroupCapacity]]:
    rows = await (AgentCapacity.select() if tenant is None else AgentCapacity.select().where(AgentCapacity.tenant == tenant))
    return [((r["tenant"], r["agent_group"]),
             GroupCapacity(r["online_agents"], r["max_chats_per_agent"], r["active_chats"], r["reported_at"], r["as_of"])) for r in rows]


async def waiting_counts(tenant: Any) -> dict[str, int]:
    """Visitors waiting per agent group, as the tenant's owner last wrote it (engine replicas)."""
    rows = await AgentCapacity.select(AgentCapacity.agent_group, AgentCapacity.waiting).where(AgentCapacity.tenant == tenant)
    return {r["agent_group"]: r["waiting"] for r in rows}


def _uuid(value: Any) -> Any:
    return UUID(value) if isinstance(value, str) else value


def _timestamp(value: datetime | str) -> float:
    """A stored time from a raw query (SQLite may hand back its text, in UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)).timestamp()


def event_payload(row: dict[str, Any], crypto: EventCrypto) -> dict[str, Any]:
    """What came from the page (PAYLOAD_FIELDS) of a stored event row, opened; the row needs
    ``payload`` and ``visitor_hash`` (and the legacy columns for rows stored before sealing)."""
    if row["payload"]:
        payload: dict[str, Any] = _json_decoder.decode(crypto.open_event(row["visitor_hash"], bytes(row["payload"])))
        return payload
    # Stored before payloads were sealed: the columns, until event retention removes the row.
    return {"name": row["name"] or None, "url": row["url"] or None, "title": row["title"] or None,
            "referrer": row["referrer"] or None, "props": json_column(row["props"])}


async def replay_batches(site: Any, since: datetime, crypto: EventCrypto) -> list[Batch]:
    """A site's stored events as the batches the engine applied, in the order it applied them.
    ``crypto``: the site's tenant's (payloads are sealed)."""
    rows = await BehaviourEvent.select().where((BehaviourEvent.site == site) & (BehaviourEvent.received_at >= since)).order_by(
        BehaviourEvent.received_at, BehaviourEvent._meta.primary_key  # insertion order within a commit
    )
    batches: list[Batch] = []
    open_batch: dict[tuple[str, str], Batch] = {}
    for row in rows:
        received = row["received_at"].timestamp()
        key = (row["visitor_hash"], row["batch_id"])
        batch = open_batch.get(key)
        if batch is None or batch.received != received:
            batch = open_batch[key] = Batch(row["tenant"], site, row["visitor_hash"], row["session_id"], row["tab_id"], row["batch_id"],
                                            received, [])
            batches.append(batch)
        payload = event_payload(row, crypto)
        batch.events.append({
            "type": row["type"], "name": payload.get("name"), "at_epoch": row["at"].timestamp(), "url": payload.get("url"),
            "title": payload.get("title"), "referrer": payload.get("referrer"), "props": payload.get("props") or {},
            "tab": row["tab_id"] or row["session_id"],
        })
    return batches


async def opened_events(tenant: Any, crypto: EventCrypto) -> list[dict[str, Any]]:
    """A tenant's stored events with their payloads opened, in the order they were applied."""
    rows = await BehaviourEvent.select().where(BehaviourEvent.tenant == tenant).order_by(
        BehaviourEvent.received_at, BehaviourEvent._meta.primary_key
    )
    clear = ("type", "site", "visitor_hash", "session_id", "tab_id", "batch_id", "at", "received_at")
    return [{**{k: row[k] for k in clear}, **event_payload(row, crypto)} for row in rows]


# --- deleting ------------------------------------------------------------------------------------


async def purge(cutoff: datetime) -> int:
    """Event retention: events received, visitors last seen and invitations sent before ``cutoff``."""
    count: int = await BehaviourEvent.count().where(BehaviourEvent.received_at < cutoff)
    if count:
        await BehaviourEvent.delete().where(BehaviourEvent.received_at < cutoff)
    await VisitorMemory.delete().where(VisitorMemory.last_seen < cutoff)
    await EngagementHandoff.delete().where(EngagementHandoff.received_at < cutoff)  # a tenant no process took in all that time
    await EngagementInvitation.delete().where(
        (EngagementInvitation.sent_at < cutoff) & EngagementInvitation.status.not_in(["sent", "shown"])
    )
    return count


async def delete_visitor(tenant_id: Any, visitor_hash: str) -> int:
    """Erasure: everything the engine stored about one visitor. Returns how many events went."""
    events: int = await BehaviourEvent.count().where((BehaviourEvent.tenant == tenant_id) & (BehaviourEvent.visitor_hash == visitor_hash))
    await BehaviourEvent.delete().where((BehaviourEvent.tenant == tenant_id) & (BehaviourEvent.visitor_hash == visitor_hash))
    await VisitorMemory.delete().where((VisitorMemory.tenant == tenant_id) & (VisitorMemory.visitor_hash == visitor_hash))
    await EngagementInvitation.delete().where(
        (EngagementInvitation.tenant == tenant_id) & (EngagementInvitation.visitor_hash == visitor_hash)
    )
    await EngagementHandoff.delete().where((EngagementHandoff.tenant == tenant_id) & (EngagementHandoff.visitor_hash == visitor_hash))
    return events


def recent_cutoff(now: float, seconds: float) -> datetime:
    return utc(now) - timedelta(seconds=seconds)


# --- engine replicas (proactive.handoff) -----------------------------------------------------------

HANDED_OFF = "engagement_events"  # the signal that wakes the owner (proactive.handoff.EVENTS)
HANDOFF_INSERT = "INSERT INTO engagement_handoff (tenant, site, visitor_hash, batch_id, received_at) VALUES (?, ?, ?, ?, ?)"
# The events of a hand-off row that repeated a batch the owner had applied already (PostgreSQL only,
# as replicas are).
REPEAT_DELETE = (
    "DELETE FROM behaviour_event e USING engagement_handoff h WHERE h.id = ? AND e.tenant = h.tenant AND e.visitor_hash = h.visitor_hash"
    " AND e.batch_id = h.batch_id AND e.received_at = h.received_at"
)


async def batch_stored(tenant: Any, visitor_hash: str, batch_id: str) -> bool:
    """A batch id already stored for the visitor (a retry whose first answer was lost)."""
    found: bool = await BehaviourEvent.exists().where(
        (BehaviourEvent.tenant == tenant) & (BehaviourEvent.visitor_hash == visitor_hash) & (BehaviourEvent.batch_id == batch_id)
    )
    return found


async def handed_off(tenant: Any, crypto: EventCrypto, limit: int) -> list[tuple[int, Batch]]:
    """The oldest batches waiting for the tenant's owner (at most ``limit``), with their events,
    as (hand-off row id, batch)."""
    rows = await BehaviourEvent.raw(
        "SELECT h.id AS handoff, e.site, e.visitor_hash, e.session_id, e.tab_id, e.batch_id, e.type, e.at, e.payload, e.received_at"
        " FROM engagement_handoff h JOIN behaviour_event e ON e.tenant = h.tenant AND e.visitor_hash = h.visitor_hash"
        " AND e.batch_id = h.batch_id AND e.received_at = h.received_at"
        " WHERE h.id IN (SELECT id FROM engagement_handoff WHERE tenant = {} ORDER BY id LIMIT {}) ORDER BY h.id, e.id",
        tenant, limit,
    )
    found: dict[int, Batch] = {}
    for row in rows:
        batch = found.get(row["handoff"])
        if batch is None:
            batch = found[row["handoff"]] = Batch(tenant, row["site"], row["visitor_hash"], row["session_id"], row["tab_id"], row["batch_id"],
                                                  row["received_at"].timestamp(), [])
        payload = event_payload({**row, "name": "", "url": "", "title": "", "referrer": "", "props": "{}"}, crypto)
        batch.events.append({
            "type": row["type"], "name": payload.get("name"), "at_epoch": row["at"].timestamp(), "url": payload.get("url"),
            "title": payload.get("title"), "referrer": payload.get("referrer"), "props": payload.get("props") or {},
            "tab": row["tab_id"] or row["session_id"],
        })
    return list(found.items())


async def claim_invitations(tenant: Any, key: VisitorKey, now: datetime) -> list[Invitation]:
    """Sent invitations no channel has taken, or taken ``REOFFER_SECONDS`` ago and still not shown
    (the connection may have dropped as it went out), taken now: one caller gets each at a time."""
    rows = await EngagementInvitation.raw(
        "UPDATE engagement_invitation SET delivered_at = {} WHERE tenant = {} AND site = {} AND visitor_hash = {}"
        " AND status = 'sent' AND (delivered_at IS NULL OR delivered_at <= {}) AND expires_at > {} RETURNING *",
        now, tenant, key[0], key[1], now - timedelta(seconds=REOFFER_SECONDS), now,
    )
    return [invitation_record(r).invitation for r in sorted(rows, key=lambda r: r["sent_at"])]


async def group_usage(tenant: Any) -> dict[str, tuple[int, int]]:
    """Per agent group of the tenant: open invitations, and accepted ones the platform has not
    counted yet (for capacity answered by a process that does not own the tenant)."""
    open_rows = await EngagementInvitation.raw(
        "SELECT agent_group, COUNT(*) AS n FROM engagement_invitation WHERE tenant = {} AND status IN ('sent', 'shown')"
        " AND agent_group != '' GROUP BY agent_group", tenant,
    )
    accepted = {key: len(times) for key, times in (await accepted_since_report()).items()}
    usage = {r["agent_group"]: (int(r["n"]), 0) for r in open_rows}
    for (t, group), n in accepted.items():
        if t == tenant:
            usage[group] = (usage.get(group, (0, 0))[0], n)
    return usage
