"""Evaluating policies against one conversation, at ingest and in backfills.

The query side is search's own: the policy's query is parsed and compiled into a plan exactly as
``POST /v1/search`` compiles it (archive/search/plan.py), the conversation becomes the index
document search would store for it (archive/search/indexing.py ``build_document``), and the plan
is evaluated against that one document by the in-memory backend's evaluator
(archive/search/memory.py), which the search contract tests hold to the same answers as FTS5
and OpenSearch. Patterns are RE2, run on each message's text. Both see the conversation as it is
stored — after redaction, before encryption — and only in memory: what is kept of a match (the
matched words and their positions) is sealed under the tenant key before it is written.

Sampling is deterministic per conversation: a keyed hash (the tenant's identity key) of the
policy and conversation ids, read as a number in [0, 100), is compared with ``sample_percent``.
The same conversation is always in or out of a policy's sample, and nobody without the tenant
key can predict which conversations will be sampled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import ingest, ledger
from archive.analysis import highlight_terms, primary_language
from archive.models import ConversationIn, StoredConversation
from archive.query import parse
from archive.runtime import Runtime
from archive.search import indexing
from archive.search.memory import Columns, DocView, matches
from archive.search.plan import PlanNode, TypoToleranceOff, compile_query, positive_tokens
from archive.search.service import tenant_languages
from archive.supervision.policies import Definition, Scope, compile_pattern, definitions, query_senders
from archive.supervision.tables import ReviewItem
from archive.tenancy import TenantContext

log = structlog.get_logger(__name__)

STEP = "supervision"
MAX_SPANS_PER_MESSAGE = 20
SAMPLE_SPACE = 16**13  # the first 13 hex digits of the keyed hash: 52 bits, exact in a float


class Compiled:
    """One policy, ready to evaluate: its plan tree, patterns and scope."""

    __slots__ = ("definition", "tree", "senders", "columns", "wanted", "patterns")

    def __init__(self, ctx: TenantContext, definition: Definition, languages: list[str]) -> None:
        self.definition = definition
        self.senders = query_senders(definition.query, definition.scope)
        self.tree: PlanNode | None = None
        if definition.query.strip():
            parsed = parse(definition.query)
            self.tree = compile_query(parsed.tree, ctx.analyzer, languages, ctx.crypto.identity_hash)
        self.columns = Columns.for_senders(self.senders)
        self.wanted = positive_tokens(self.tree) if self.tree is not None else set()
        self.patterns = [compile_pattern(p) for p in definition.patterns]


class Hit(msgspec.Struct, frozen=True):
    """Where in one message a policy matched: character spans and the words they cover."""

    message: int
    sender: str
    source: Literal["query", "pattern"]
    spans: list[tuple[int, int]]
    texts: list[str]


class Flag(msgspec.Struct, frozen=True):
    policy: UUID
    version: int
    severity: str
    reason: Literal["match", "sample"]
    hits: list[Hit]


def in_scope(scope: Scope, stored: StoredConversation) -> bool:
    if scope.sites and stored.site not in scope.sites:
        return False
    if scope.channels and stored.channel not in scope.channels:
        return False
    return not scope.agents or any(agent.id in scope.agents for agent in stored.agents)


def sample_point(ctx: TenantContext, policy_id: UUID, conversation_id: UUID) -> float:
    """Where a conversation falls in [0, 100) for a policy's sample (keyed, deterministic)."""
    digest = ctx.crypto.identity_hash(f"supervision-sample|{policy_id}|{conversation_id}")
    return int(digest[:13], 16) / SAMPLE_SPACE * 100


def sampled(ctx: TenantContext, policy_id: UUID, conversation_id: UUID, percent: float) -> bool:
    return percent > 0 and sample_point(ctx, policy_id, conversation_id) < percent


def _query_hits(ctx: TenantContext, policy: Compiled, stored: StoredConversation) -> list[Hit]:
    """The words that made the query match, highlighted as search highlights them."""
    if not policy.wanted:
        return []
    language = indexing.document_language(stored, ctx)
    hits = []
    for index, message in enumerate(stored.messages):
        if policy.senders and message.sender.role not in policy.senders:
            continue
        spans = highlight_terms(ctx.analyzer, message.text, language, policy.wanted)[:MAX_SPANS_PER_MESSAGE]
        if spans:
            hits.append(Hit(index, message.sender.role, "query", spans, [message.text[s:e] for s, e in spans]))
    return hits


def _pattern_hits(policy: Compiled, stored: StoredConversation) -> list[Hit]:
    hits = []
    senders = policy.definition.scope.senders
    for index, message in enumerate(stored.messages):
        if senders and message.sender.role not in senders:
            continue
        spans: list[tuple[int, int]] = []
        for pattern in policy.patterns:
            for found in pattern.finditer(message.text):
                if found.end() > found.start():
                    spans.append((found.start(), found.end()))
                if len(spans) >= MAX_SPANS_PER_MESSAGE:
                    break
        if spans:
            spans = sorted(set(spans))[:MAX_SPANS_PER_MESSAGE]
            hits.append(Hit(index, message.sender.role, "pattern", spans, [message.text[s:e] for s, e in spans]))
    return hits


class Conversation:
    """One conversation under evaluation; its index document is built once, on first need."""

    def __init__(self, ctx: TenantContext, conversation_id: UUID, stored: StoredConversation, visitor_hash: str) -> None:
        self.ctx, self.id, self.stored, self.visitor_hash = ctx, conversation_id, stored, visitor_hash
        self._view: DocView | None = None

    @property
    def view(self) -> DocView:
        if self._view is None:
            self._view = DocView(indexing.build_document(self.ctx, self.id, self.stored, self.visitor_hash))
        return self._view


def evaluate(ctx: TenantContext, policies: list[Compiled], conversation: Conversation) -> list[Flag]:
    """The flags ``policies`` raise on one conversation (CPU only: safe in a worker thread)."""
    flags = []
    for policy in policies:
        definition = policy.definition
        if not in_scope(definition.scope, conversation.stored):
            continue
        hits: list[Hit] = []
        query_hit = policy.tree is not None and matches(policy.tree, conversation.view, policy.columns)
        if query_hit:
            hits.extend(_query_hits(ctx, policy, conversation.stored))
        hits.extend(_pattern_hits(policy, conversation.stored))
        if query_hit or hits:
            hits.sort(key=lambda h: (h.message, h.source))
            flags.append(Flag(definition.id, definition.version, definition.severity, "match", hits))
        elif sampled(ctx, definition.id, conversation.id, definition.sample_percent):
            flags.append(Flag(definition.id, definition.version, definition.severity, "sample", []))
    return flags


async def languages_for(rt: Runtime, ctx: TenantContext, extra: list[str | None]) -> list[str]:
    """The languages query words expand into: search's own (the tenant's defaults and archived
    languages) and those of the conversations being evaluated. Search caches its list for a
    minute; the new languages go into that cache too, so search knows them as soon as these
    conversations are stored instead of a minute later (and never knows fewer than a policy)."""
    languages = await tenant_languages(rt, ctx)
    new = {primary_language(x) for x in extra if x} - set(languages)
    if new:
        languages = sorted({*languages, *new})
        if ctx.languages is not None:
            ctx.languages = (ctx.languages[0], languages)
    return languages


async def compiled_policies(rt: Runtime, ctx: TenantContext, extra_languages: list[str | None], **which: Any) -> list[Compiled]:
    """The policies ready to evaluate. One that no longer compiles (it asks for typo tolerance,
    which the tenant has since turned off) is left out and logged, never failing an ingest."""
    found = await definitions(ctx, **which)
    if not found:
        return []
    languages = await languages_for(rt, ctx, extra_languages)
    compiled = []
    for definition in found:
        try:
            compiled.append(Compiled(ctx, definition, languages))
        except TypoToleranceOff:
            log.warning("supervision_policy_skipped", policy=str(definition.id), reason="typo tolerance is off for the tenant")
    return compiled


async def store_flags(
    ctx: TenantContext, flagged: list[tuple[UUID, StoredConversation, list[Flag]]], actor: str, now: datetime,
) -> int:
    """Review items for the flags, with one ledger entry each (inside the caller's transaction)."""
    rows, entries = [], []
    for conversation_id, stored, flags in flagged:
        for flag in flags:
            review_id = uuid4()
            sealed = ctx.crypto.seal_note(msgspec.json.encode(flag.hits)) if flag.hits else ""
            rows.append(ReviewItem(
                id=review_id, tenant=ctx.tenant_id, conversation=conversation_id, policy=flag.policy, policy_version=flag.version,
                reason=flag.reason, severity=flag.severity, status="open", site=stored.site, channel=stored.channel,
                match_count=sum(len(h.spans) for h in flag.hits), matches=sealed, created_at=now, updated_at=now,
            ))
            entries.append(ledger.Entry(
                actor=actor, action="review.flag", subject=str(review_id),
                details={"conversation": str(conversation_id), "policy": str(flag.policy), "policy_version": flag.version,
                         "reason": flag.reason, "severity": flag.severity},
            ))
    if rows:
        await ReviewItem.insert(*rows)
        await ledger.append(ctx.tenant_id, *entries)
    return len(rows)


class SupervisionStep(ingest.IngestStep):
    """Every ingested conversation is evaluated against the tenant's enabled policies while its
    plaintext exists, and what it flags is in the review queue when the ingest request returns
    (the review items commit in the ingest transaction)."""

    async def analyser(self, rt: Runtime, ctx: TenantContext, items: list[ConversationIn]) -> ingest.Analyse | None:
        policies = await compiled_policies(rt, ctx, [conv.language for conv in items])
        if not policies:
            return None

        def analyse(item: ingest.Prepared) -> None:
            flags = evaluate(ctx, policies, Conversation(ctx, item.id, item.stored, item.visitor_hash))
            if flags:
                item.findings[STEP] = flags

        return analyse

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        flagged = [(item.id, item.stored, item.findings[STEP]) for item in items if STEP in item.findings]
        if flagged:
            await store_flags(await rt.tenants.context(tenant_id), flagged, "system:supervision", rt.clock.now())
