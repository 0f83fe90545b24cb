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
    Bytea,
    ForeignKey,
    Integer,
    Serial,
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


class ConversationKey(Table, tablename="conversation_key"):
    """The wrapped data key of one conversation. Deleting the row crypto-shreds the conversation."""

    conversation = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    wrapped_key = Bytea()
    master_version = Integer()


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
]
