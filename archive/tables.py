"""Piccolo tables: the relational store is Parley's source of truth.

Nothing in these columns is plaintext transcript content: conversation bodies are AES-GCM
ciphertext, visitor identifiers are keyed hashes, API keys are stored as SHA-256 hashes.
Clear columns hold only what filters and facets need (site, channel, language, agent ids, tags,
times, counts).
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Boolean,
    Bytea,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Tenant(Table, tablename="tenant"):
    id = UUID(primary_key=True)
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=200)
    # Redaction switches and similar per-tenant options; see archive.tenancy.TenantSettings.
    settings = JSON(default="{}")
    # A random 32-byte tenant secret wrapped by the tenant KEK of master key ``secret_version``;
    # the blind-index and identity-hash keys derive from it, so they survive master rotations.
    wrapped_secret = Bytea()
    secret_version = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class ApiKey(Table, tablename="api_key"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    role = Varchar(length=16)
    name = Varchar(length=200, default="")
    prefix = Varchar(length=16, unique=True)
    secret_sha256 = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
    # The scope of a reviewer key (archive.tenancy.Principal.sees); empty lists: the whole tenant.
    sites = JSON(default="[]")
    channels = JSON(default="[]")


class Site(Table, tablename="site"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    name = Varchar(length=64)
    site_key = Varchar(length=40, unique=True)
    allowed_origins = JSON(default="[]")
    settings = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class Conversation(Table, tablename="conversation"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    external_id = Varchar(length=200)
    site = Varchar(length=64)
    channel = Varchar(length=32)
    language = Varchar(length=35, null=True, default=None)
    started_at = Timestamptz()
    ended_at = Timestamptz()
    visitor_hash = Varchar(length=64)
    visitor_email_hash = Varchar(length=64, null=True, default=None)
    agent_ids = JSON(default="[]")
    tags = JSON(default="[]")
    message_count = Integer()
    content_sha256 = Varchar(length=64)
    # HMAC of the submitted (unredacted) conversation, for idempotent re-delivery checks.
    submission_mac = Varchar(length=64)
    ciphertext = Bytea()
    redactions = JSON(default="{}")
    retain_until = Timestamptz(null=True, default=None)  # None: keep forever
    # Which version of the tenant's retention policy computed retain_until (None: none yet).
    policy_version = Integer(null=True, default=None)
    # Set by an erasure request that could not delete (a hold or a compliance floor): the reason.
    restricted = Varchar(length=300, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    # The row is always the latest revision; earlier ones are in conversation_revision.
    revision = Integer(default=1)
    revised_at = Timestamptz(null=True, default=None)  # when the latest revision was archived
    # The connector that first archived it (None: the ingest API): a connector never revises
    # another connector's conversation, so two accounts cannot mix under one external_id.
    source = UUID(null=True, default=None)


class ConversationKey(Table, tablename="conversation_key"):
    """The wrapped data key of one conversation. Deleting the row crypto-shreds the conversation."""

    conversation = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    wrapped_key = Bytea()
    master_version = Integer()


class ConversationRevision(Table, tablename="conversation_revision"):
    """An earlier revision of a conversation, sealed under the conversation's data key with its
    revision number bound in the associated data (archive/revisions.py)."""

    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    conversation = UUID()
    revision = Integer()
    started_at = Timestamptz()
    ended_at = Timestamptz()
    message_count = Integer()
    content_sha256 = Varchar(length=64)
    submission_mac = Varchar(length=64)
    ciphertext = Bytea()
    redactions = JSON(default="{}")
    archived_at = Timestamptz()
    superseded_at = Timestamptz()


class ConversationFile(Table, tablename="conversation_file"):
    """A file attached to a message, fetched from the platform and sealed under the
    conversation's data key. ``digest`` is a keyed hash of the file's SHA-256 (the message's
    attachment names the SHA-256 inside the sealed conversation)."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    conversation = UUID()
    digest = Varchar(length=64)
    size = BigInt()
    ciphertext = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())


class Connector(Table, tablename="connector"):
    """One platform account pushing to ``/v1/connectors/{id}/events``. The secret and API token
    are sealed under the tenant secret (``credentials``): they must be usable again, so they are
    encrypted rather than hashed."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    platform = Varchar(length=16)
    credentials = Text()
    api_url = Varchar(length=2048, null=True, default=None)
    site = Varchar(length=64, null=True, default=None)
    channel = Varchar(length=32, null=True, default=None)
    # Attachment fetching (archive/connectors/files.py FileSettings).
    files = JSON(default="{}")
    created_by = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class ConnectorCounter(Table, tablename="connector_counter"):
    """A connector's statistics, one row per counter (``duplicate``, ``rejected.bad_signature``…);
    ``key`` is ``<connector>:<name>`` so that one upsert bumps it. Accepted pushes are counted by
    their delivery rows while those are kept (no counter write in the hot path), and rolled up
    into ``accepted``/``archived`` here when they expire."""

    key = Varchar(length=120, primary_key=True)
    connector = UUID(index=True)
    name = Varchar(length=80)
    total = BigInt(default=0)
    last_at = Timestamptz(null=True, default=None)


class ConnectorDelivery(Table, tablename="connector_delivery"):
    """Deliveries already stored, by the key a retry repeats, with what each became (``archived``,
    ``pending``, ``queued``); kept for a bounded time, then rolled up into the counters."""

    key = Varchar(length=320, primary_key=True)
    connector = UUID(index=True)
    received_at = Timestamptz(index=True)
    outcome = Varchar(length=16, default="archived")


class ConnectorThread(Table, tablename="connector_thread"):
    """A platform conversation a connector holds pending drafts or queued work for, and the
    conversation id (with its data key) reserved for it."""

    key = Varchar(length=320, primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    connector = UUID(index=True)
    conversation = UUID(index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ConnectorDraft(Table, tablename="connector_draft"):
    """One pending piece of a conversation (Chatwoot's messages before the resolve), sealed
    under the thread's reserved data key; kept until the conversation is deleted."""

    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    connector = UUID()
    conversation = UUID(index=True)
    token = UUID()  # bound in the associated data
    ciphertext = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())


class ConnectorJob(Table, tablename="connector_job"):
    """A push whose completion needs network I/O (fetch-back, files): queued, run by the
    ``connectors.work`` job with backoff. The outcome is sealed under the thread's data key."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    connector = UUID(index=True)
    conversation = UUID()
    ciphertext = Bytea()
    status = Varchar(length=16, default="queued")  # queued | failed
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    last_error = Varchar(length=300, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class LedgerEntry(Table, tablename="ledger_entry"):
    tenant = ForeignKey(references=Tenant, null=False)
    seq = Integer()
    at = Timestamptz()
    actor = Varchar(length=64)
    action = Varchar(length=32)
    subject = Varchar(length=200, default="")
    content_hash = Varchar(length=64, default="")
    details = JSON(default="{}")
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)


class LedgerHead(Table, tablename="ledger_head"):
    """The newest entry of each tenant's chain; locked by every append so appends serialise."""

    tenant = UUID(primary_key=True)
    seq = Integer()
    hash = Varchar(length=64)


class LedgerCheckpoint(Table, tablename="ledger_checkpoint"):
    tenant = ForeignKey(references=Tenant, null=False)
    seq = Integer()
    hash = Varchar(length=64)
    signed_at = Timestamptz()
    key_version = Integer()
    signature = Varchar(length=128)


class IndexOutbox(Table, tablename="index_outbox"):
    """Pending index work, written in the transaction that changes the store (durable outbox)."""

    id: Serial  # Piccolo's implicit primary key, named for the type checker
    tenant = ForeignKey(references=Tenant, null=False)
    conversation = UUID()
    op = Varchar(length=8)  # "upsert" | "delete"
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    last_error = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class ConsoleSession(Table, tablename="console_session"):
    """A browser session of the review console, opened with an API key (archive.sessions).

    Only a SHA-256 of the session token is stored: a copy of this table cannot be replayed as
    cookies. The key's own row decides whether the session is still good (a revoked key ends it).
    """

    id = UUID(primary_key=True)
    token_sha256 = Varchar(length=64, unique=True)
    tenant = ForeignKey(references=Tenant, null=False)
    api_key = ForeignKey(references=ApiKey, null=False)
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
    expires_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    ended_reason = Varchar(length=32, null=True, default=None)


class SigningKey(Table, tablename="signing_key"):
    """One Ed25519 key that signs ledger checkpoints and exports; rows are never deleted, so
    everything ever signed stays verifiable (see archive/signing.py)."""

    version = Integer(primary_key=True)
    public_key = Varchar(length=64)  # hex, raw 32 bytes
    # "generated" (its own random key) or "master-derived" (signed before signing keys had a
    # history of their own; its public half was recorded while the master version still existed).
    origin = Varchar(length=16)
    # The private half, wrapped under master key ``wrap_version``; NULL once the key is superseded
    # (a retired signing key can never sign again) and for master-derived keys.
    wrapped_private = Bytea(null=True, default=None)
    wrap_version = Integer(null=True, default=None)
    valid_from = Timestamptz()
    valid_until = Timestamptz(null=True, default=None)  # NULL: the active key
    # HMAC over (version, public key, origin, valid_from) under master key ``attested_by``: a
    # forged row added by someone who can write the table but holds no master key does not verify.
    attestation = Varchar(length=64)
    attested_by = Integer()


class OperationLease(Table, tablename="operation_lease"):
    """Who runs a long operation of a tenant right now (sweep, erasure, rescan, export, rotation).

    One row per (tenant, operation), kept after release so the fencing token only ever grows.
    """

    key = Varchar(length=120, primary_key=True)  # "<tenant>/<operation>"
    tenant = UUID()
    operation = Varchar(length=64)
    run_id = UUID()
    holder = Varchar(length=200)
    token = BigInt(default=0)
    acquired_at = Timestamptz()
    heartbeat_at = Timestamptz()
    expires_at = Timestamptz()
    released_at = Timestamptz(null=True, default=None)


class RedactionRescan(Table, tablename="redaction_rescan"):
    """One rescan of a tenant's stored conversations with the current detectors (archive/rescan.py).

    Progress is written in the transaction of each batch, with the rewrites it counts, so a run
    killed half-way resumes from ``cursor`` and its counters stay exact. ``active`` holds the
    tenant id while a real (not dry) run is queued or running and NULL afterwards: its unique
    index is what refuses a second concurrent rescan of a tenant, across processes.
    """

    id = UUID(primary_key=True)
    tenant = UUID(index=True)
    active = Varchar(length=40, null=True, default=None, unique=True)
    requested_by = Varchar(length=64)
    dry_run = Boolean(default=False)
    since = Timestamptz(null=True, default=None)
    status = Varchar(length=16, default="queued")  # queued | running | done | failed
    cursor = UUID(null=True, default=None)  # the last conversation id of the last committed batch
    total = Integer(default=0)
    scanned = Integer(default=0)
    changed = Integer(default=0)  # conversations rewritten (or, in a dry run, that would be)
    revisions_changed = Integer(default=0)  # revisions among them whose text changed
    unreadable = Integer(default=0)  # conversations that did not decrypt (a tampered row): left as they are, logged
    redactions = JSON(default="{}")  # newly masked spans per kind, never the values
    error = Varchar(length=300, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)


class TenantLanguage(Table, tablename="tenant_language"):
    """Each language a tenant has archived conversations in (primary subtag), kept at ingest: a
    search reads a query word in every one of them."""

    id: Serial  # Piccolo's implicit primary key, named for the type checker
    tenant = ForeignKey(references=Tenant, null=False)
    language = Varchar(length=35)


APP_TABLES: list[type[Table]] = [
    Tenant,
    ApiKey,
    Site,
    Conversation,
    ConversationKey,
    LedgerEntry,
    LedgerHead,
    LedgerCheckpoint,
    IndexOutbox,
    TenantLanguage,
    ConversationRevision,
    ConversationFile,
    Connector,
    ConnectorCounter,
    ConnectorDelivery,
    ConnectorThread,
    ConnectorDraft,
    ConnectorJob,
    ConsoleSession,
    SigningKey,
    OperationLease,
    RedactionRescan,
]
