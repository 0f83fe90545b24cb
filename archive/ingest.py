"""Ingest of finished conversations: validate, redact, encrypt, store, ledger — all or nothing.

Order matters and is the point of this module: nothing is written until every conversation in
the request has passed validation; redaction happens before encryption, hashing or logging, so
the original card number never exists anywhere but in this process's memory; the conversation
row, its wrapped data key and its ledger entry commit in one transaction, so a 2xx means durable.

Decisions (see docs/archive.md): re-sending the same conversation under the same ``external_id``
is idempotent (same id back). Different content under an existing ``external_id`` is, by
default, a 409: a later push must not silently replace evidence. A caller that means it asks
for a new revision (``on_conflict="revise"``, ``?on_conflict=revise`` over HTTP; connectors
always do): the conversation keeps its id, the earlier content stays readable as an earlier
revision (archive/revisions.py), and the ledger records the revision. A batch is
all-or-nothing: one invalid or conflicting item rejects the batch and names the item.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote
from uuid import UUID, uuid4

import msgspec

from archive import attachments, db, ledger, revisions
from archive.attachments import FetchedFile
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, TooLarge
from archive.limits import control_character_problem, date_errors
from archive.models import (
    Attachment,
    BatchIn,
    ConversationIn,
    IngestResult,
    Message,
    Ratings,
    StoredConversation,
)
from archive.redaction import ChatLine, RedactionOptions, Redactor, redact_conversation
from archive.tables import Conversation
from archive.tenancy import TenantContext
from archive.validation import convert, decode_json

if TYPE_CHECKING:
    from archive.runtime import Runtime

INSERT_RETRIES = 3
# Bodies larger than this are redacted and encrypted in a worker thread, not on the event loop.
OFF_LOOP_BYTES = 64 * 1024

OnConflict = Literal["reject", "revise"]


class Submitter(Protocol):
    """Who archives: an API key's principal, or a connector (archive/connectors/service.py)."""

    @property
    def tenant_id(self) -> UUID: ...

    @property
    def actor(self) -> str: ...


class Prepared(msgspec.Struct):
    """One validated, redacted, encrypted conversation, ready to insert."""

    id: UUID
    external_id: str
    stored: StoredConversation
    content_sha256: str
    submission_mac: str
    ciphertext: bytes
    wrapped_key: bytes
    master_version: int
    redactions: dict[str, int]
    visitor_hash: str
    visitor_email_hash: str | None
    # The redacted conversation as sealed: kept so that a revision (or a conversation whose key
    # was reserved) can be sealed again under its conversation's existing key.
    body: bytes = b""
    # Decided by the steps before the insert (retention: when it may be deleted, under which
    # policy version); None means "keep until a policy says otherwise".
    retain_until: datetime | None = None
    policy_version: int | None = None
    # 1 for a new conversation; more for a new revision of an archived one (steps may tell them apart).
    revision: int = 1
    # The data key already exists (a revision, or a key a connector reserved): do not insert one.
    key_exists: bool = False
    files: list[FetchedFile] = []
    # What steps' analysers found in the plaintext (by step name), for their after_insert.
    findings: dict[str, Any] = {}


# CPU-only work on one prepared conversation while its plaintext exists (see IngestStep.analyser).
Analyse = Callable[[Prepared], None]


class IngestStep:
    """One thing ingest does besides storing the conversation (retention, the index outbox, …).

    The composition root wires the steps in order (``Runtime.ingest_steps``). ``before_insert``
    and ``after_insert`` run inside the ingest transaction, so a step's rows commit with the
    conversation or not at all. They see new conversations and new revisions alike
    (``Prepared.revision`` tells them apart).
    """

    async def analyser(self, rt: Runtime, ctx: TenantContext, items: list[ConversationIn]) -> Analyse | None:
        """A function run on each conversation right after it is redacted and encrypted, while
        the plaintext exists (inside ``prepare_all``, in a worker thread for large bodies); it
        leaves what it finds in ``Prepared.findings``. None: nothing to do for this request."""
        return None

    async def before_insert(self, rt: Runtime, tenant_id: UUID, items: list[Prepared]) -> None:
        """Decide values stored on the conversation row itself."""

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[Prepared]) -> None:
        """Write what refers to the stored conversations."""


def parse_body(body: bytes, settings: Any) -> tuple[list[ConversationIn], bool]:
    """Decode a single conversation or ``{"conversations": [...]}``; returns (items, is_batch).
    Every structural problem is reported at once, with its path."""
    if len(body) > settings.max_body_bytes:
        raise TooLarge(f"request body is larger than {settings.max_body_bytes} bytes", [FieldError("$", "body too large")])
    raw = decode_json(body)
    if not isinstance(raw, dict):
        raise InvalidInput("expected a JSON object", [FieldError("$", "expected a conversation object or {\"conversations\": [...]}")])
    if "conversations" in raw:
        items = raw["conversations"]
        if isinstance(items, list) and len(items) > settings.max_batch:
            raise TooLarge(
                f"a batch holds at most {settings.max_batch} conversations, got {len(items)}",
                [FieldError("conversations", f"at most {settings.max_batch} items")],
            )
        if isinstance(items, list) and not items:
            raise InvalidInput("the batch is empty", [FieldError("conversations", "at least one conversation")])
        return convert(raw, BatchIn, "the batch is invalid; nothing was stored").conversations, True
    return [convert(raw, ConversationIn, "the conversation is invalid; nothing was stored")], False


def check_conversation(
    conv: ConversationIn, settings: Any, now: datetime, path: str, limit_message_chars: bool = True
) -> list[FieldError]:
    """Rules a type cannot express: limits, emptiness, and timestamps that make sense.
    ``limit_message_chars=False``: no message is refused for its length (see Options)."""
    # Dates at the ends of the calendar first: the comparisons below add a skew to them.
    errors = date_errors(path, started_at=conv.started_at, ended_at=conv.ended_at)
    for i, message in enumerate(conv.messages[: settings.max_messages]):
        errors.extend(date_errors(f"{path}messages[{i}].", at=message.at, edited_at=message.edited_at))
    if errors:
        return errors
    errors.extend(_control_character_errors(conv, settings, path))
    skew = timedelta(seconds=settings.clock_skew_seconds)
    if not conv.messages:
        errors.append(FieldError(f"{path}messages", "a conversation needs at least one message"))
    if len(conv.messages) > settings.max_messages:
        errors.append(FieldError(f"{path}messages", f"at most {settings.max_messages} messages per conversation"))
    if conv.ended_at < conv.started_at:
        errors.append(FieldError(f"{path}ended_at", "ended_at is before started_at"))
    for name, value in (("started_at", conv.started_at), ("ended_at", conv.ended_at)):
        if value > now + skew:
            errors.append(FieldError(f"{path}{name}", "is in the future"))
    for i, message in enumerate(conv.messages[: settings.max_messages]):
        where = f"{path}messages[{i}]"
        if not message.text.strip():
            if message.carries_nothing():
                errors.append(
                    FieldError(f"{where}.text", "must not be empty unless the message has attachments, is an event or is deleted")
                )
        elif limit_message_chars and len(message.text) > settings.max_message_chars:
            errors.append(FieldError(f"{where}.text", f"at most {settings.max_message_chars} characters"))
        if message.event is not None and message.kind != "event":
            errors.append(FieldError(f"{where}.event", 'only messages of kind "event" name an event'))
        if message.at < conv.started_at - skew or message.at > conv.ended_at + skew:
            errors.append(FieldError(f"{where}.at", "lies outside the conversation's started_at..ended_at"))
        elif message.at > now + skew:
            errors.append(FieldError(f"{where}.at", "is in the future"))
    for key, value in conv.metadata.items():
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            errors.append(FieldError(f"{path}metadata.{key}", "metadata is a flat map: values are strings, numbers, booleans or null"))
        elif isinstance(value, str) and len(value) > 1000:
            errors.append(FieldError(f"{path}metadata.{key}", "metadata values are at most 1000 characters"))
    return errors


def _control_character_errors(conv: ConversationIn, settings: Any, path: str) -> list[FieldError]:
    """Names and ids end up in e-mail headers (EML exports), file names and logs, where a line
    break starts something new: refused here rather than rewritten later."""
    named: list[tuple[str, str | None]] = [
        ("external_id", conv.external_id), ("visitor.id", conv.visitor.id), ("visitor.name", conv.visitor.name),
        ("visitor.email", conv.visitor.email),
        *((f"tags[{i}]", tag) for i, tag in enumerate(conv.tags)),
    ]
    for i, agent in enumerate(conv.agents):
        named += [(f"agents[{i}].id", agent.id), (f"agents[{i}].name", agent.name), (f"agents[{i}].email", agent.email)]
    for i, message in enumerate(conv.messages[: settings.max_messages]):
        named += [(f"messages[{i}].sender.id", message.sender.id), (f"messages[{i}].sender.name", message.sender.name)]
        named += [(f"messages[{i}].attachments[{j}].name", a.name) for j, a in enumerate(message.attachments)]
    return [FieldError(f"{path}{where}", problem) for where, value in named if (problem := control_character_problem(value))]


def canonical(value: Any) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def _redacted_url(redactor: Redactor, url: str) -> str:
    """A URL is read as its decoded text (``%20`` hides a card number from a detector); it is
    kept as sent unless something in it was redacted."""
    plain = unquote(url)
    redacted = redactor.redact(plain)
    return url if redacted == plain else redacted


def _redacted_attachments(redactor: Redactor, files: list[Attachment]) -> list[Attachment]:
    """File names are indexed and URLs often carry them: both are redacted like text."""
    return [
        msgspec.structs.replace(
            a,
            name=redactor.redact(a.name) if a.name else a.name,
            url=_redacted_url(redactor, a.url) if a.url else a.url,
        )
        for a in files
    ]


def _redacted_value(redactor: Redactor, key: str, value: Any) -> Any:
    """A metadata value as stored. A number (JSON allows ``{"card": 4111111111111111}``) is read as
    the digits it is written with, its key standing before it as a label would in a message
    (``customer_id``, ``order``: business; ``phone``: a phone cue); when anything in it is
    masked, the masked text is stored in place of the number."""
    if isinstance(value, str):
        return _redacted_text_value(redactor, key, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    digits = str(int(value)) if isinstance(value, float) and value.is_integer() and abs(value) < 1e19 else str(value)
    label = f"{key.replace('_', ' ')}: "
    counted = Counter(redactor.counts)
    redacted = redactor.redact(label + digits)
    if redacted == label + digits:
        return value
    if redacted.startswith(label):
        return redacted[len(label) :]
    # The key itself held something masked: read the number alone, and count only that.
    redactor.counts.clear()
    redactor.counts.update(counted)
    redacted = redactor.redact(digits)
    return value if redacted == digits else redacted


_DIGIT = re.compile(r"\d")  # a digit of any script


def _redacted_text_value(redactor: Redactor, key: str, value: str) -> str:
    """A metadata string, redacted alone and with its key in front of it as a label, as a number
    is: ``{"phone": "406 12 345"}`` from a pre-chat form is a phone number in a conversation of
    any language, as ``{"phone": 40612345}`` is, and ``{"snils": "112-233-445 95"}`` an identity
    number. The key only ever adds to what is masked: a value that is masked alone (a bare
    national number under ``order_id``) stays masked."""
    if not _DIGIT.search(value):
        return redactor.redact(value)  # the key can only change how digits are read
    label = f"{key.replace('_', ' ')}: "
    alone, alone_counts = redactor.trial(value)
    labelled, labelled_counts = redactor.trial(label + value)
    if labelled.startswith(label) and labelled_counts.total() > alone_counts.total():
        redactor.counts.update(labelled_counts)
        return labelled[len(label):]
    redactor.counts.update(alone_counts)
    return alone


class Redacted(msgspec.Struct):
    messages: list[Message]
    metadata: dict[str, Any]
    counts: dict[str, int]


def redacted_ratings(redactor: Redactor, ratings: Ratings | None | msgspec.UnsetType) -> Ratings | msgspec.UnsetType:
    """Survey answers as stored: the comment is the visitor's own words, redacted like a message."""
    if not isinstance(ratings, Ratings):
        return msgspec.UNSET
    if ratings.comment:
        return msgspec.structs.replace(ratings, comment=redactor.redact(ratings.comment))
    return ratings


def redact_content(
    options: RedactionOptions, language: str | None, messages: Sequence[Message], metadata: Mapping[str, Any]
) -> Redacted:
    """What ingest redacts of a conversation: message texts (the whole conversation at once, so a
    number split over two messages of one author is found), attachment names and URLs, and
    metadata values. The rescan of stored conversations (archive/rescan.py) applies exactly this."""
    lines = [ChatLine(f"{m.sender.role}:{m.sender.id or ''}", m.at, m.text) for m in messages]
    redacted = redact_conversation(lines, options, language)
    redactor = Redactor(options, language)
    clean_metadata = {k: _redacted_value(redactor, k, v) for k, v in metadata.items()}
    clean_messages = [
        msgspec.structs.replace(
            m, text=text, **({"attachments": _redacted_attachments(redactor, m.attachments)} if m.attachments else {}),
        )
        for m, text in zip(messages, redacted.texts, strict=True)
    ]
    counts = Counter(redacted.counts) + redactor.counts
    return Redacted(clean_messages, clean_metadata, dict(sorted(counts.items())))


def prepare(ctx: TenantContext, conv: ConversationIn) -> Prepared:
    redacted = redact_content(ctx.redaction, conv.language, conv.messages, conv.metadata)
    metadata = redacted.metadata
    messages = [msgspec.structs.replace(m, at=m.at.astimezone(timezone.utc)) for m in redacted.messages]
    survey = Redactor(ctx.redaction, conv.language)
    ratings = redacted_ratings(survey, conv.ratings)
    counts = dict(sorted((Counter(redacted.counts) + survey.counts).items()))
    stored = StoredConversation(
        external_id=conv.external_id,
        site=conv.site,
        channel=conv.channel,
        language=conv.language,
        started_at=conv.started_at.astimezone(timezone.utc),
        ended_at=conv.ended_at.astimezone(timezone.utc),
        visitor=conv.visitor,
        agents=conv.agents,
        tags=sorted(set(conv.tags)),
        metadata=metadata,
        messages=messages,
        ratings=ratings,
    )
    body = canonical(stored)
    conversation_id = uuid4()
    sealed = ctx.crypto.seal(conversation_id, body)
    email = conv.visitor.email.strip().lower() if conv.visitor.email else None
    return Prepared(
        id=conversation_id,
        external_id=conv.external_id,
        stored=stored,
        content_sha256=hashlib.sha256(body).hexdigest(),
        submission_mac=ctx.crypto.mac(canonical(conv)),
        ciphertext=sealed.ciphertext,
        wrapped_key=sealed.wrapped_key,
        master_version=sealed.master_version,
        redactions=counts,
        visitor_hash=ctx.crypto.identity_hash(conv.visitor.id),
        visitor_email_hash=ctx.crypto.identity_hash(email) if email else None,
        body=body,
    )


def is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, revisions.RevisionRace):
        return True
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    return type(exc).__name__ == "UniqueViolationError"


def prepare_all(ctx: TenantContext, items: list[ConversationIn], analysers: list[Analyse] | None = None) -> list[Prepared]:
    prepared = [prepare(ctx, conv) for conv in items]
    for analyse in analysers or []:
        for item in prepared:
            analyse(item)
    return prepared


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How a submission meets what is already archived. ``source``: the connector submitting
    (None: the ingest API). ``reserved``: conversation ids whose data key a connector already
    holds, by external_id. ``files``: fetched attachment files, by external_id.
    ``limit_message_chars``: refuse a message longer than ``max_message_chars``. A client of the
    ingest API is told (422) and still holds the record; a connector turns it off, because the
    platform already accepted the message and does not send a refused conversation again, so a
    refusal would lose the record for good (docs/connectors.md). The body and response size
    limits still bound what one conversation can hold."""

    on_conflict: OnConflict = "reject"
    source: UUID | None = None
    reserved: Mapping[str, UUID] = {}
    files: Mapping[str, Sequence[FetchedFile]] = {}
    limit_message_chars: bool = True


Within = Callable[[], Awaitable[None]]


async def ingest(
    rt: Runtime,
    submitter: Submitter,
    items: list[ConversationIn],
    batch: bool = False,
    body_bytes: int = 0,
    *,
    options: Options | None = None,
    within: Within | None = None,
) -> list[IngestResult]:
    """Validate, redact, encrypt and store conversations atomically; see the module docstring.
    ``within`` runs inside the ingest transaction after the rows are written (a connector
    records the delivery there, so a delivery and its conversation commit together)."""
    options = options or Options()
    now = rt.clock.now()
    errors: list[FieldError] = []
    for index, conv in enumerate(items):
        errors.extend(
            check_conversation(
                conv, rt.settings, now, f"conversations[{index}]." if batch else "", options.limit_message_chars
            )
        )
    seen: dict[str, int] = {}
    for index, conv in enumerate(items):
        if conv.external_id in seen and batch:
            errors.append(FieldError(f"conversations[{index}].external_id", f"repeats conversations[{seen[conv.external_id]}]"))
        seen.setdefault(conv.external_id, index)
    if errors:
        raise InvalidInput("the request is invalid; nothing was stored", errors)
    ctx = await rt.tenants.context(submitter.tenant_id)
    analysers = [found for step in rt.ingest_steps if (found := await step.analyser(rt, ctx, items)) is not None]
    if body_bytes > OFF_LOOP_BYTES:
        prepared = await rt.workers.run(prepare_all, ctx, items, analysers)
    else:
        prepared = prepare_all(ctx, items, analysers)
    for item in prepared:
        item.files = list(options.files.get(item.external_id, ()))
    for attempt in range(INSERT_RETRIES):
        try:
            return await _store(rt, ctx, submitter, prepared, batch, options, within)
        except Exception as exc:  # a concurrent ingest of the same external_id won the race
            if not is_unique_violation(exc) or attempt == INSERT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


_EXISTING = (
    Conversation.id, Conversation.external_id, Conversation.submission_mac, Conversation.content_sha256,
    Conversation.redactions, Conversation.revision, Conversation.source,
)


async def _store(
    rt: Runtime, ctx: TenantContext, submitter: Submitter, prepared: list[Prepared], batch: bool, options: Options,
    within: Within | None,
) -> list[IngestResult]:
    tenant_id = submitter.tenant_id
    now = rt.clock.now()
    async with db.write_transaction():
        existing = {
            row["external_id"]: row
            for row in await Conversation.select(*_EXISTING).where(
                (Conversation.tenant == tenant_id) & Conversation.external_id.is_in([p.external_id for p in prepared])
            )
        }
        results: list[IngestResult] = []
        new: list[Prepared] = []
        revised: list[tuple[Prepared, dict[str, Any]]] = []
        for index, original in enumerate(prepared):
            item = msgspec.structs.replace(original)  # a retry starts again from what prepare made
            row = existing.get(item.external_id)
            where = f"conversations[{index}].external_id" if batch else "external_id"
            if row is None:
                reserved = options.reserved.get(item.external_id)
                if reserved is not None:
                    await _seal_under_existing_key(ctx, item, reserved)
                new.append(item)
                results.append(IngestResult(item.id, item.external_id, "created", item.content_sha256, item.redactions))
            elif row["submission_mac"] == item.submission_mac:
                results.append(_existing(row, row["revision"], row["content_sha256"], row["redactions"]))
            elif options.on_conflict == "reject":
                raise Conflict(
                    f"external_id {item.external_id!r} is already archived with different content; "
                    "send it as a new revision (?on_conflict=revise) or under a new external_id",
                    field=where, existing_id=str(row["id"]),
                )
            elif options.source is not None and row["source"] is not None and row["source"] != options.source:
                raise Conflict(
                    f"external_id {item.external_id!r} was archived by another connector; "
                    "give each account its own tenant, or its own ids on the platform",
                    field=where, existing_id=str(row["id"]),
                )
            else:
                earlier = await revisions.earlier_with(row["id"], item.submission_mac)
                if earlier is not None:  # a late retry of an earlier revision: nothing new
                    results.append(_existing(row, earlier["revision"], earlier["content_sha256"], earlier["redactions"]))
                    continue
                if not revised:
                    # Lock order everywhere: chain head, then keys and rows (deletion and rescans
                    # take them so). Locking the key first would let a revision and a deletion batch
                    # wait on each other until PostgreSQL aborts one.
                    await ledger.lock_head(tenant_id)
                await _seal_under_existing_key(ctx, item, row["id"])
                item.revision = row["revision"] + 1
                revised.append((item, row))
                results.append(IngestResult(item.id, item.external_id, "revised", item.content_sha256, item.redactions, item.revision))
        changed = new + [item for item, _ in revised]
        if changed:
            for step in rt.ingest_steps:
                await step.before_insert(rt, tenant_id, changed)
            if new:
                await _insert_new(tenant_id, new, options.source)
            for item, row in revised:
                await _revise(ctx, item, row, now)
            stored_files = {p.id: await attachments.store(ctx, p.id, (p.wrapped_key, p.master_version), p.files) for p in changed}
            await ledger.append(
                tenant_id,
                *[_ledger_entry(submitter, p, stored_files[p.id], existing.get(p.external_id)) for p in changed],
            )
            for step in rt.ingest_steps:
                await step.after_insert(rt, tenant_id, changed)
        if within is not None:
            await within()
    return results


def _existing(row: dict[str, Any], revision: int, content_sha256: str, redactions: Any) -> IngestResult:
    return IngestResult(row["id"], row["external_id"], "existing", content_sha256, json_column(redactions), revision)


async def _seal_under_existing_key(ctx: TenantContext, item: Prepared, conversation_id: UUID) -> None:
    """Seal ``item`` as conversation ``conversation_id`` under that conversation's data key."""
    key = await revisions.key_of(ctx.tenant_id, conversation_id, lock=True)
    if key is None:  # the key was shredded with its conversation: keep the fresh one
        return
    item.id = conversation_id
    item.wrapped_key, item.master_version, item.key_exists = key["wrapped_key"], key["master_version"], True
    item.ciphertext = ctx.crypto.seal_part(conversation_id, item.wrapped_key, item.master_version, revisions.CURRENT, item.body)


async def _revise(ctx: TenantContext, item: Prepared, row: dict[str, Any], now: datetime) -> None:
    previous = await revisions.supersede(ctx, item.id, {"wrapped_key": item.wrapped_key, "master_version": item.master_version}, now)
    # Explicit SQL (issue 20): only if the row is still the revision that was moved aside.
    updated = await Conversation.raw(
        _REVISE + "revision = {}, revised_at = {} WHERE id = {} AND revision = {} RETURNING id",
        *_mutable_row(item), item.revision, now, item.id, previous,
    )
    if not updated:
        raise revisions.RevisionRace(str(item.id))


# What a revision replaces on the conversation row: everything derived from the content.
_MUTABLE = (
    "site", "channel", "language", "started_at", "ended_at", "visitor_hash", "visitor_email_hash", "agent_ids", "tags",
    "message_count", "content_sha256", "submission_mac", "ciphertext", "redactions", "retain_until", "policy_version",
)


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _mutable_row(p: Prepared) -> tuple[Any, ...]:
    """The ``_MUTABLE`` columns' values, as the driver takes them (JSON columns as their text)."""
    s = p.stored
    return (
        s.site, s.channel, s.language, s.started_at, s.ended_at, p.visitor_hash, p.visitor_email_hash,
        _json_text(sorted({a.id for a in s.agents})), _json_text(s.tags), len(s.messages), p.content_sha256,
        p.submission_mac, p.ciphertext, _json_text(p.redactions), p.retain_until, p.policy_version,
    )


_REVISE = "UPDATE conversation SET " + "".join(f"{name} = {{}}, " for name in _MUTABLE)


_CONVERSATION_COLUMNS = ("id", "tenant", "external_id", "source", "revision", "revised_at", "restricted", "created_at", *_MUTABLE)
_KEY_COLUMNS = ("conversation", "tenant", "wrapped_key", "master_version")


async def _insert_new(tenant_id: UUID, new: list[Prepared], source: UUID | None) -> None:
    """The rows of new conversations and their data keys: the hot write path of ingest, as one
    prepared statement per table (issue 20). The key rows go in after the conversation rows, in
    the same transaction: neither is visible without the other."""
    created_at = datetime.now(timezone.utc)  # the wall clock, as the column's default
    await db.insert_many(
        "conversation", _CONVERSATION_COLUMNS,
        [(p.id, tenant_id, p.external_id, source, p.revision, None, None, created_at, *_mutable_row(p)) for p in new],
    )
    await db.insert_many(
        "conversation_key", _KEY_COLUMNS,
        [(p.id, tenant_id, p.wrapped_key, p.master_version) for p in new if not p.key_exists],
    )


def _ledger_entry(submitter: Submitter, p: Prepared, files: int, previous: dict[str, Any] | None) -> ledger.Entry:
    details: dict[str, Any] = {"external_id": p.external_id, "messages": len(p.stored.messages), "redactions": p.redactions}
    if files:
        details["files"] = files
    if p.revision == 1:
        return ledger.Entry(actor=submitter.actor, action="ingest", subject=str(p.id), content_hash=p.content_sha256, details=details)
    assert previous is not None
    details.update({"revision": p.revision, "previous_content_hash": previous["content_sha256"]})
    return ledger.Entry(actor=submitter.actor, action="ingest.revision", subject=str(p.id), content_hash=p.content_sha256, details=details)


async def ingest_body(
    rt: Runtime, submitter: Submitter, body: bytes, on_conflict: OnConflict = "reject"
) -> tuple[list[IngestResult], bool]:
    items, is_batch = parse_body(body, rt.settings)
    options = Options(on_conflict=on_conflict)
    return await ingest(rt, submitter, items, is_batch, body_bytes=len(body), options=options), is_batch
