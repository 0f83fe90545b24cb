"""The review queue: listing flagged conversations, reading one, and acting on them.

Statuses: ``open`` → ``claimed`` → ``escalated`` / ``resolved`` / ``false_positive``, and
``reopen`` back to ``open``. Every action — on one item or on many at once — is checked for all
items first and then applied in one transaction, or not at all; each applied action writes a
review event (the activity report) and a ledger entry with the actor and the time, and a note
that comes with it is kept as a comment sealed under the tenant key (the ledger entry carries it
sealed too, so the note is as tamper-evident as the action).

Who may do what (docs/supervision.md): reviewers work open and claimed items within their
scope and never see others; escalated items wait for compliance, which may do anything,
including reopening a closed item and assigning items to anyone. Reading an item shows its
conversation with the matches marked and the participants pseudonymised, and is ledgered
like any read; a compliance key may reveal the participants with a reason (ledgered too).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Count

from archive import db, ledger, revisions
from archive.errors import Conflict, DomainError, FieldError, Forbidden, InvalidInput, NotFound
from archive.models import StoredConversation
from archive.runtime import Runtime
from archive.supervision.pseudonyms import Pseudonyms, Segment
from archive.supervision.tables import ReviewComment, ReviewEvent, ReviewItem, SupervisionPolicy
from archive.tables import ApiKey
from archive.tenancy import Principal, TenantContext, tenant_context
from archive.transcripts import load

Status = Literal["open", "claimed", "escalated", "resolved", "false_positive"]
Action = Literal["claim", "assign", "comment", "escalate", "resolve", "false_positive", "reopen"]
STATUSES: tuple[str, ...] = ("open", "claimed", "escalated", "resolved", "false_positive")
# Unfinished: these keep their conversation from being deleted (archive/supervision/guard.py).
UNFINISHED: tuple[str, ...] = ("open", "claimed", "escalated")
CLOSED: tuple[str, ...] = ("resolved", "false_positive")
SUPERVISORS = ("compliance",)
MAX_BULK = 500
NOTE_REQUIRED = ("comment", "escalate", "reopen")


class ReviewOut(msgspec.Struct):
    id: UUID
    conversation_id: UUID
    revision: int  # of the conversation, the one that was evaluated (GET /v1/reviews/{id} shows it)
    external_id: str
    policy: UUID
    policy_name: str
    policy_version: int
    severity: str
    reason: str
    status: str
    assignee: str | None
    match_count: int
    site: str
    channel: str
    started_at: datetime
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    case: UUID | None


class ReviewPage(msgspec.Struct):
    items: list[ReviewOut]
    next_cursor: str | None
    # Items per status under the same filters (the status filter aside): the queue's tabs.
    counts: dict[str, int]


class ListQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: list[Status] = []
    policy: UUID | None = None
    severity: list[Literal["low", "medium", "high"]] = []
    assignee: str | None = None  # "me", "none", or an actor such as "key:ab12cd34"
    site: str | None = None
    channel: str | None = None
    case: UUID | None = None
    start: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="from")  # flagged at or after
    end: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="to")  # flagged before
    cursor: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    sort: Literal["oldest", "newest"] = "oldest"


class ActionIn(msgspec.Struct, forbid_unknown_fields=True):
    action: Action
    note: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    assignee: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class BulkActionIn(msgspec.Struct, forbid_unknown_fields=True):
    ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MAX_BULK)]
    action: Action
    note: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    assignee: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class BulkResult(msgspec.Struct):
    items: list[ReviewOut]


class RevealIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class Participant(msgspec.Struct, omit_defaults=True):
    id: str
    name: str | None = None
    email: str | None = None


class SenderView(msgspec.Struct, omit_defaults=True):
    role: str
    id: str | None = None
    name: str | None = None


class AttachmentView(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    content_type: str | None = None
    size: int | None = None


class MessageView(msgspec.Struct):
    index: int
    at: datetime
    sender: SenderView
    kind: str
    text: str
    segments: list[Segment]  # the text in runs; ``mark`` on what a detector matched
    attachments: list[AttachmentView]


class ConversationView(msgspec.Struct):
    id: UUID
    external_id: str
    site: str
    channel: str
    language: str | None
    started_at: datetime
    ended_at: datetime
    tags: list[str]
    visitor: Participant
    agents: list[Participant]
    messages: list[MessageView]


class MatchView(msgspec.Struct):
    message: int
    sender: str
    source: str  # query | pattern
    texts: list[str]


class CommentView(msgspec.Struct):
    id: UUID
    author: str
    action: str
    at: datetime
    text: str


class EventView(msgspec.Struct):
    actor: str
    action: str
    from_status: str
    to_status: str
    assignee: str | None
    at: datetime


class PolicyRef(msgspec.Struct):
    id: UUID
    name: str
    version: int
    severity: str


class ReviewView(msgspec.Struct):
    item: ReviewOut
    policy: PolicyRef
    conversation: ConversationView
    matches: list[MatchView]
    comments: list[CommentView]
    history: list[EventView]
    # False only in a compliance reveal: then names, e-mails and ids are the real ones.
    pseudonymised: bool


class _Hit(msgspec.Struct):
    message: int
    sender: str
    source: str
    spans: list[tuple[int, int]]
    texts: list[str]


class _Cursor(msgspec.Struct):
    at: datetime
    id: UUID


class ItemConflicts(Conflict):
    """A request that conflicts with the state of several items, every item named (an action
    that does not apply to their status, items that belong elsewhere)."""

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        DomainError.__init__(self, detail, errors)


# --- reading ---------------------------------------------------------------------------------

_COLUMNS = (
    ReviewItem.id, ReviewItem.conversation, ReviewItem.revision, ReviewItem.policy, ReviewItem.policy_version, ReviewItem.severity, ReviewItem.reason,
    ReviewItem.status, ReviewItem.assignee, ReviewItem.match_count, ReviewItem.site, ReviewItem.channel, ReviewItem.created_at,
    ReviewItem.updated_at, ReviewItem.closed_at, ReviewItem.case_id,
    ReviewItem.conversation.external_id.as_alias("external_id"), ReviewItem.conversation.started_at.as_alias("started_at"),
)


async def _policy_names(tenant_id: UUID, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    rows = await SupervisionPolicy.select(SupervisionPolicy.id, SupervisionPolicy.name).where(
        (SupervisionPolicy.tenant == tenant_id) & SupervisionPolicy.id.is_in(list(ids))
    )
    return {r["id"]: r["name"] for r in rows}


async def outs(tenant_id: UUID, rows: list[dict[str, Any]]) -> list[ReviewOut]:
    names = await _policy_names(tenant_id, {r["policy"] for r in rows})
    return [
        ReviewOut(
            id=r["id"], conversation_id=r["conversation"], revision=r["revision"], external_id=r["external_id"], policy=r["policy"], policy_name=names.get(r["policy"], ""),
            policy_version=r["policy_version"], severity=r["severity"], reason=r["reason"], status=r["status"], assignee=r["assignee"],
            match_count=r["match_count"], site=r["site"], channel=r["channel"], started_at=r["started_at"], created_at=r["created_at"],
            updated_at=r["updated_at"], closed_at=r["closed_at"], case=r["case_id"],
        )
        for r in rows
    ]


def scope_condition(principal: Principal) -> Combinable | None:
    """What of the tenant's queue this caller may see (None: all of it)."""
    if not principal.sites:
        return None
    where: Combinable = ReviewItem.site.is_in(list(principal.sites))
    if principal.channels:
        where &= ReviewItem.channel.is_in(list(principal.channels))
    return where


def _encode_cursor(row: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(row["created_at"], row["id"]))).decode().rstrip("=")


def _decode_cursor(text: str) -> _Cursor:
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=_Cursor)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput("the cursor is not one this API issued", [FieldError("cursor", "pass next_cursor back unchanged")]) from None


def _filters(principal: Principal, query: ListQuery) -> Combinable:
    where: Combinable = ReviewItem.tenant == principal.tenant_id
    scope = scope_condition(principal)
    if scope is not None:
        where &= scope
    if query.policy is not None:
        where &= ReviewItem.policy == query.policy
    if query.severity:
        where &= ReviewItem.severity.is_in(list(query.severity))
    if query.assignee == "none":
        where &= ReviewItem.assignee.is_null()
    elif query.assignee:
        where &= ReviewItem.assignee == (principal.actor if query.assignee == "me" else query.assignee)
    if query.site:
        where &= ReviewItem.site == query.site
    if query.channel:
        where &= ReviewItem.channel == query.channel
    if query.case is not None:
        where &= ReviewItem.case_id == query.case
    if query.start is not None:
        where &= ReviewItem.created_at >= query.start
    if query.end is not None:
        where &= ReviewItem.created_at < query.end
    return where


async def list_reviews(principal: Principal, query: ListQuery) -> ReviewPage:
    where = _filters(principal, query)
    counted = await ReviewItem.select(ReviewItem.status, Count()).where(where).group_by(ReviewItem.status)
    counts = dict.fromkeys(STATUSES, 0) | {r["status"]: r["count"] for r in counted}
    if query.status:
        where &= ReviewItem.status.is_in(list(query.status))
    newest = query.sort == "newest"
    if query.cursor:
        after = _decode_cursor(query.cursor)
        if newest:
            where &= (ReviewItem.created_at < after.at) | ((ReviewItem.created_at == after.at) & (ReviewItem.id < after.id))
        else:
            where &= (ReviewItem.created_at > after.at) | ((ReviewItem.created_at == after.at) & (ReviewItem.id > after.id))
    rows = await ReviewItem.select(*_COLUMNS).where(where).order_by(
        ReviewItem.created_at, ReviewItem.id, ascending=not newest
    ).limit(query.limit)
    return ReviewPage(
        items=await outs(principal.tenant_id, rows),
        next_cursor=_encode_cursor(rows[-1]) if len(rows) == query.limit else None,
        counts=counts,
    )


async def _visible(principal: Principal, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    where: Combinable = (ReviewItem.tenant == principal.tenant_id) & ReviewItem.id.is_in(ids)
    scope = scope_condition(principal)
    if scope is not None:
        where &= scope
    return {r["id"]: r for r in await ReviewItem.select(*_COLUMNS, ReviewItem.matches).where(where)}


async def get_item(principal: Principal, review_id: UUID) -> ReviewOut:
    found = await _visible(principal, [review_id])
    if review_id not in found:
        raise NotFound(f"no review item {review_id}")
    return (await outs(principal.tenant_id, [found[review_id]]))[0]


def _conversation_view(stored: StoredConversation, conversation_id: UUID, names: Pseudonyms, hits: list[_Hit], reveal: bool) -> ConversationView:
    marks: dict[int, list[tuple[int, int, str]]] = {}
    for hit in hits:
        marks.setdefault(hit.message, []).extend((s, e, hit.source) for s, e in hit.spans)

    def person(role: str, person_id: str, name: str | None, email: str | None) -> Participant:
        if reveal:
            return Participant(person_id, name, email)
        label = names.visitor_label if role == "visitor" else names.sender_label(role, person_id)
        return Participant(label, label if name else None, Pseudonyms.email(label) if email else None)

    def sender(role: str, sender_id: str | None, name: str | None) -> SenderView:
        if reveal or role not in ("visitor", "agent"):
            return SenderView(role, sender_id, name)
        label = names.sender_label(role, sender_id)
        return SenderView(role, label if sender_id or role == "visitor" else None, label if name else None)

    messages = []
    for index, message in enumerate(stored.messages):
        segments = names.segments(message.text, sorted(marks.get(index, [])), reveal=reveal)
        messages.append(MessageView(
            index=index, at=message.at, sender=sender(message.sender.role, message.sender.id, message.sender.name), kind=message.kind,
            text="".join(s.text for s in segments), segments=segments,
            attachments=[AttachmentView(a.name if reveal or a.name is None else names.text(a.name), a.content_type, a.size) for a in message.attachments],
        ))
    return ConversationView(
        id=conversation_id, external_id=stored.external_id, site=stored.site, channel=stored.channel, language=stored.language,
        started_at=stored.started_at, ended_at=stored.ended_at, tags=stored.tags,
        visitor=person("visitor", stored.visitor.id, stored.visitor.name, stored.visitor.email),
        agents=[person("agent", a.id, a.name, a.email) for a in stored.agents], messages=messages,
    )


async def view(rt: Runtime, principal: Principal, review_id: UUID, reveal_reason: str | None = None) -> ReviewView:
    """One item with its conversation, matches marked; ledgered as a read of the conversation
    (and, with ``reveal_reason``, as a reveal: compliance only)."""
    reveal = reveal_reason is not None
    if reveal and principal.role not in SUPERVISORS:
        raise Forbidden("only a compliance key can reveal participants")
    found = await _visible(principal, [review_id])
    if review_id not in found:
        raise NotFound(f"no review item {review_id}")
    row = found[review_id]
    ctx = await tenant_context(rt, principal.tenant_id)
    if reveal_reason is not None:
        reveal_reason = ctx.redacted(reveal_reason)
    content_hash, stored = await _revision(ctx, row["conversation"], row["revision"])
    hits = msgspec.json.decode(ctx.crypto.open_note(row["matches"]), type=list[_Hit]) if row["matches"] else []
    names = Pseudonyms(ctx, stored)
    comments = await ReviewComment.select().where(ReviewComment.review == review_id).order_by(ReviewComment.created_at)
    events = await ReviewEvent.select().where((ReviewEvent.tenant == principal.tenant_id) & (ReviewEvent.review == review_id)).order_by(ReviewEvent.id)
    policy = await SupervisionPolicy.select(SupervisionPolicy.name).where(SupervisionPolicy.id == row["policy"]).first()
    entries = [ledger.Entry(
        actor=principal.actor, action="read", subject=str(row["conversation"]), content_hash=content_hash,
        details={"via": "review", "review": str(review_id), "revision": row["revision"], "pseudonymised": not reveal},
    )]
    if reveal:
        entries.append(ledger.Entry(actor=principal.actor, action="review.reveal", subject=str(review_id),
                                    details={"conversation": str(row["conversation"]), "reason": reveal_reason}))
    await ledger.append(principal.tenant_id, *entries)

    def shown(text: str) -> str:
        return text if reveal else names.text(text)

    return ReviewView(
        item=(await outs(principal.tenant_id, [row]))[0],
        policy=PolicyRef(row["policy"], policy["name"] if policy else "", row["policy_version"], row["severity"]),
        conversation=_conversation_view(stored, row["conversation"], names, hits, reveal),
        matches=[MatchView(h.message, h.sender, h.source, [shown(t) for t in h.texts]) for h in hits],
        comments=[CommentView(c["id"], c["author"], c["action"], c["created_at"], shown(ctx.crypto.open_note(c["text_sealed"]).decode())) for c in comments],
        history=[EventView(e["actor"], e["action"], e["from_status"], e["to_status"], e["assignee"], e["at"]) for e in events],
        pseudonymised=not reveal,
    )


async def _revision(ctx: TenantContext, conversation_id: UUID, revision: int) -> tuple[str, StoredConversation]:
    """The content hash and text of one revision of a conversation (the latest, or an earlier
    one: an item flagged on revision 2 shows revision 2, though revision 3 has arrived since)."""
    row, stored = await load(ctx, conversation_id)
    if row["revision"] == revision:
        return row["content_sha256"], stored
    earlier = await revisions.earlier_one(ctx.tenant_id, conversation_id, revision)
    key = await revisions.key_of(ctx.tenant_id, conversation_id)
    if earlier is None or key is None:
        raise NotFound(f"revision {revision} of conversation {conversation_id} is gone")
    return earlier["content_sha256"], revisions.open_earlier(ctx, key, earlier)


# --- acting ----------------------------------------------------------------------------------


class _Change(msgspec.Struct):
    status: str
    assignee: str | None


def _decide(row: dict[str, Any], action: str, principal: Principal, assignee: str | None) -> _Change | str | None:
    """The item's next state, None when the action changes nothing, or why it cannot apply."""
    status, current = row["status"], row["assignee"]
    supervisor = principal.role in SUPERVISORS
    held_by_other = status == "claimed" and current is not None and current != principal.actor and not supervisor
    if action == "comment":
        return _Change(status, current)
    if action == "reopen":
        if status not in (*CLOSED, "escalated"):
            return f"it is {status}; only a resolved, false-positive or escalated item can be reopened"
        return _Change("open", None)
    if status in CLOSED:
        return f"it is {status}; reopen it first"
    if status == "escalated" and not supervisor:
        return "it is escalated and waits for compliance"
    if action == "claim":
        if status == "claimed" and current == principal.actor:
            return None
        if held_by_other:
            return f"it is claimed by {current}"
        return _Change("escalated" if status == "escalated" else "claimed", principal.actor)
    if action == "assign":
        if held_by_other:
            return f"it is claimed by {current}"
        return _Change("escalated" if status == "escalated" else "claimed", assignee)
    if held_by_other:
        return f"it is claimed by {current}"
    if action == "escalate":
        if status == "escalated":
            return None
        return _Change("escalated", None)
    return _Change("resolved" if action == "resolve" else "false_positive", current)


async def _assignee(principal: Principal, value: str | None) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """The actor an ``assign`` names (``key:<prefix>``, a prefix or a key id), and its scope."""
    if value is None:
        return None
    prefix = value.removeprefix("key:")
    query = ApiKey.select(ApiKey.prefix, ApiKey.role, ApiKey.sites, ApiKey.channels, ApiKey.revoked_at).where(ApiKey.tenant == principal.tenant_id)
    try:
        query = query.where(ApiKey.id == UUID(prefix))
    except ValueError:
        query = query.where(ApiKey.prefix == prefix)
    row = await query.first()
    if row is None or row["revoked_at"] is not None or row["role"] not in ("reviewer", *SUPERVISORS):
        raise InvalidInput("the assignee is not an active reviewer or compliance key of this tenant",
                           [FieldError("assignee", "a key as key:<prefix> (see GET /v1/admin/keys), of role reviewer or compliance")])
    return f"key:{row['prefix']}", tuple(db.json_column(row["sites"])), tuple(db.json_column(row["channels"]))


async def act(rt: Runtime, principal: Principal, ids: list[UUID], data: ActionIn | BulkActionIn, *, bulk: bool = False) -> list[ReviewOut]:
    """Apply one action to every item in ``ids``, all or nothing (see the module docstring)."""
    def path(i: int) -> str:
        return f"ids[{i}]" if bulk else "id"

    if data.action in NOTE_REQUIRED and not (data.note or "").strip():
        raise InvalidInput(f"{data.action} needs a note", [FieldError("note", f"say why ({data.action} is recorded with its note)")])
    if data.action == "reopen" and principal.role not in SUPERVISORS:
        raise Forbidden("only a compliance key can reopen a review item")
    if (data.action == "assign") != (data.assignee is not None):
        raise InvalidInput("assignee goes with the assign action, and only with it",
                           [FieldError("assignee", "name the key to assign to" if data.action == "assign" else "only for action assign")])
    target = await _assignee(principal, data.assignee)
    ctx = await tenant_context(rt, principal.tenant_id)
    now = rt.clock.now()
    unique = list(dict.fromkeys(ids))
    async with db.write_transaction():
        # Reopening makes an item unfinished again, which keeps its conversation (guard.py): decide
        # under the lock deletion takes, so a deletion either ran wholly before or sees the change.
        await ledger.lock_head(principal.tenant_id)
        found = await _visible(principal, unique)
        missing = [FieldError(path(i), f"no review item {rid}") for i, rid in enumerate(unique) if rid not in found]
        if missing:
            raise NotFound("no such review item" if len(unique) == 1 else "some review items do not exist; nothing was changed", missing)
        changes: dict[UUID, _Change] = {}
        problems: list[FieldError] = []
        for i, rid in enumerate(unique):
            row = found[rid]
            if target is not None and target[1] and not (row["site"] in target[1] and (not target[2] or row["channel"] in target[2])):
                problems.append(FieldError(path(i), f"{target[0]} cannot see this item (outside its sites or channels)"))
                continue
            decided = _decide(row, data.action, principal, target[0] if target else None)
            if isinstance(decided, str):
                problems.append(FieldError(path(i), f"cannot {data.action.replace('_', ' ')}: {decided}"))
            elif decided is not None:
                changes[rid] = decided
        if problems:
            raise ItemConflicts(f"the action {data.action} does not apply; nothing was changed", problems)
        await _apply(ctx, principal, found, changes, data, now)
        rows = await ReviewItem.select(*_COLUMNS).where(ReviewItem.id.is_in(unique))
    by_id = {r["id"]: r for r in rows}
    return await outs(principal.tenant_id, [by_id[rid] for rid in unique])


async def _apply(ctx: TenantContext, principal: Principal, found: dict[UUID, dict[str, Any]], changes: dict[UUID, _Change],
                 data: ActionIn | BulkActionIn, now: datetime) -> None:
    note = (data.note or "").strip()
    sealed = ctx.crypto.seal_note(note.encode()) if note else ""
    events, comments, entries = [], [], []
    for rid, change in changes.items():
        row = found[rid]
        closing = change.status in CLOSED
        await ReviewItem.update({
            ReviewItem.status: change.status, ReviewItem.assignee: change.assignee, ReviewItem.updated_at: now,
            ReviewItem.closed_at: now if closing else None,
        }).where(ReviewItem.id == rid)
        events.append(ReviewEvent(tenant=ctx.tenant_id, review=rid, actor=principal.actor, action=data.action, from_status=row["status"],
                                  to_status=change.status, assignee=change.assignee, at=now))
        details: dict[str, Any] = {"conversation": str(row["conversation"]), "from": row["status"], "to": change.status}
        if data.action in ("claim", "assign"):
            details["assignee"] = change.assignee
        if sealed:
            comment_id = uuid4()
            comments.append(ReviewComment(id=comment_id, tenant=ctx.tenant_id, review=rid, author=principal.actor, action=data.action,
                                          text_sealed=sealed, created_at=now))
            details |= {"comment": str(comment_id), "note_sealed": sealed}
        entries.append(ledger.Entry(actor=principal.actor, action=f"review.{data.action}", subject=str(rid), details=details))
    if events:
        await ReviewEvent.insert(*events)
    if comments:
        await ReviewComment.insert(*comments)
    if entries:
        await ledger.append(ctx.tenant_id, *entries)


async def open_for_conversations(tenant_id: UUID, conversation_ids: list[UUID]) -> dict[UUID, str]:
    """Unfinished review items of these conversations: conversation id → a policy name."""
    if not conversation_ids:
        return {}
    rows = await ReviewItem.select(ReviewItem.conversation, ReviewItem.policy).where(
        (ReviewItem.tenant == tenant_id) & ReviewItem.conversation.is_in(conversation_ids) & ReviewItem.status.is_in(list(UNFINISHED))
    )
    names = await _policy_names(tenant_id, {r["policy"] for r in rows})
    return {r["conversation"]: names.get(r["policy"], "") for r in rows}



async def for_case(tenant_id: UUID, case_id: UUID) -> list[ReviewOut]:
    """The review items a case gathers (retention/cases.py), oldest first."""
    rows = await ReviewItem.select(*_COLUMNS).where((ReviewItem.tenant == tenant_id) & (ReviewItem.case_id == case_id)).order_by(ReviewItem.created_at)
    return await outs(tenant_id, rows)
