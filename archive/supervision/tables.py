"""Supervision's tables: policies and their versions, review items, comments, events, backfills.

Nothing here is readable transcript text: a policy's query and patterns, the matched words of a
review item and every comment are sealed under the tenant key (``TenantCrypto.seal_note``); the
clear columns hold ids, statuses, times and the site and channel a reviewer's scope is checked on.
Review items and their comments belong to their conversation (a foreign key that cascades), so
the retention path that deletes a conversation deletes them in the same transaction. Review
events keep no content and outlive the item: they are the activity report's evidence, like the
ledger entries they mirror.
"""

from __future__ import annotations

from piccolo.columns import JSON, UUID, Boolean, DoublePrecision, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from archive.tables import Conversation, Tenant


class SupervisionPolicy(Table, tablename="supervision_policy"):
    """The current version of a policy; every version is also in ``supervision_policy_version``."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    name = Varchar(length=200)
    version = Integer(default=1)
    enabled = Boolean(default=True)
    severity = Varchar(length=16)
    sample_percent = DoublePrecision(default=0.0)
    # {"query_sealed", "patterns_sealed", "scope": {...}}: see archive.supervision.policies.Stored.
    definition = JSON(default="{}")
    status = Varchar(length=16, default="active")  # active | deleted (kept: review items refer to it)
    created_by = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_by = Varchar(length=64)
    updated_at = Timestamptz(default=TimestamptzNow())


class SupervisionPolicyVersion(Table, tablename="supervision_policy_version"):
    id: Serial
    tenant = UUID()
    policy = UUID()
    version = Integer()
    change = Varchar(length=16)  # create | update | delete
    actor = Varchar(length=64)
    at = Timestamptz()
    # The whole policy as of this version (name, switches, sealed query and patterns, scope).
    snapshot = JSON(default="{}")


class ReviewItem(Table, tablename="review_item"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    conversation = ForeignKey(references=Conversation, null=False, on_delete=OnDelete.cascade, index=True)
    revision = Integer(default=1)  # the revision of the conversation that was evaluated
    policy = UUID()
    policy_version = Integer()
    reason = Varchar(length=16)  # match | sample
    severity = Varchar(length=16)
    status = Varchar(length=16, default="open")  # open | claimed | escalated | resolved | false_positive
    assignee = Varchar(length=64, null=True, default=None)
    site = Varchar(length=64)
    channel = Varchar(length=32)
    match_count = Integer(default=0)
    # Sealed JSON: [{"message", "sender", "source", "spans": [[start, end]], "texts": [...]}].
    matches = Text(default="")
    case_id = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None)


class ReviewComment(Table, tablename="review_comment"):
    id = UUID(primary_key=True)
    tenant = UUID()
    review = ForeignKey(references=ReviewItem, null=False, on_delete=OnDelete.cascade, index=True)
    author = Varchar(length=64)
    action = Varchar(length=16)  # the action the note came with (comment, escalate, resolve, …)
    text_sealed = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class ReviewEvent(Table, tablename="review_event"):
    """One action on one review item: who, what, when, from which status to which (no content)."""

    id: Serial
    tenant = UUID()
    review = UUID()
    actor = Varchar(length=64)
    action = Varchar(length=16)
    from_status = Varchar(length=16)
    to_status = Varchar(length=16)
    assignee = Varchar(length=64, null=True, default=None)
    at = Timestamptz()


class SupervisionBackfill(Table, tablename="supervision_backfill"):
    """A policy applied to stored conversations, in batches; ``cursor`` is the last conversation
    id done, committed with the review items of its batch, so a run resumes where one stopped."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    policy = UUID()
    policy_version = Integer()
    start = Timestamptz(null=True, default=None)
    end = Timestamptz(null=True, default=None)
    status = Varchar(length=16, default="queued")  # queued | running | done | failed
    cursor = UUID(null=True, default=None)
    total = Integer(default=0)
    scanned = Integer(default=0)
    flagged = Integer(default=0)
    requested_by = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    # Which run owns the job and when it last showed life: a run that died is taken over.
    runner = UUID(null=True, default=None)
    heartbeat_at = Timestamptz(null=True, default=None)
    error = Varchar(length=300, default="")


SUPERVISION_TABLES: list[type[Table]] = [
    SupervisionPolicy,
    SupervisionPolicyVersion,
    ReviewItem,
    ReviewComment,
    ReviewEvent,
    SupervisionBackfill,
]
