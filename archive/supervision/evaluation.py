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

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import ingest, ledger
from archive import query as q
from archive.analysis import Analyzer, highlight_terms, primary_language
from archive.models import ConversationIn, StoredConversation
from archive.query import parse
from archive.runtime import Runtime
from archive.search import indexing
from archive.search.languages import tenant_languages
from archive.search.memory import Columns, DocView, Relaxed, Relevant, has_words, matches
from archive.search.plan import PlanNode, TypoToleranceOff, compile_query, positive_paths, positive_tokens
from archive.supervision.policies import Definition, Scope, compile_pattern, definitions, enabled_versions, pattern_options, query_senders
from archive.supervision.screen import Recorder, Screen
from archive.supervision.tables import ReviewItem
from archive.tenancy import TenantContext

log = structlog.get_logger(__name__)

STEP = "supervision"
# ^ $ \A \z anchor at the text's ends (or at line breaks, with (?m)): a pattern with one may match
# a message and not the messages joined by line breaks.
_ANCHOR = re.compile(r"(?<!\[)\^|\$|\\[Az]")
MAX_SPANS_PER_MESSAGE = 20
SAMPLE_SPACE = 16**13  # the first 13 hex digits of the keyed hash: 52 bits, exact in a float


class Compiled:
    """One policy, ready to evaluate: its plan tree, patterns and scope."""

    __slots__ = ("definition", "tree", "senders", "columns", "wanted", "paths", "patterns", "typos", "relaxed")

    def __init__(self, ctx: TenantContext, definition: Definition, languages: list[str], analyzer: Analyzer | None = None) -> None:
        self.definition = definition
        self.senders = query_senders(definition.query, definition.scope)
        self.tree: PlanNode | None = None
        self.typos = False  # whether the query asks for typo tolerance (``word~``)
        if definition.query.strip():
            parsed = parse(definition.query)
            self.tree = compile_query(parsed.tree, analyzer or ctx.analyzer, languages, ctx.crypto.identity_hash)
            self.typos = _has_fuzzy(parsed.tree)
        self.columns = Columns.for_senders(self.senders)
        self.wanted = positive_tokens(self.tree) if self.tree is not None else set()
        self.paths = positive_paths(self.tree) if self.tree is not None else ()
        # A query that looks for words can rule most conversations out with set tests alone.
        self.relaxed = Relaxed(self.tree) if self.tree is not None and has_words(self.tree) else None
        self.patterns = [compile_pattern(p) for p in definition.patterns]


def _has_fuzzy(node: q.Node) -> bool:
    if isinstance(node, q.Fuzzy):
        return True
    if isinstance(node, (q.And, q.Or)):
        return any(_has_fuzzy(child) for child in node.children)
    if isinstance(node, q.Not):
        return _has_fuzzy(node.child)
    return False


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


class Findings(msgspec.Struct):
    """What evaluation found in one conversation: the detectors' flags, and the policies in scope
    that did not match, whose samples are drawn once the conversation's id is final (a new
    revision takes its conversation's id only when it is stored)."""

    flags: list[Flag]
    to_sample: list[Definition]

    def with_samples(self, ctx: TenantContext, conversation_id: UUID) -> list[Flag]:
        drawn = [Flag(d.id, d.version, d.severity, "sample", []) for d in self.to_sample if sampled(ctx, d.id, conversation_id, d.sample_percent)]
        return [*self.flags, *drawn]


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
        spans = highlight_terms(ctx.analyzer, message.text, language, policy.wanted, policy.paths)[:MAX_SPANS_PER_MESSAGE]
        if spans:
            hits.append(Hit(index, message.sender.role, "query", spans, [message.text[s:e] for s, e in spans]))
    return hits


class Evaluator:
    """A set of compiled policies, ready for many conversations: the tokens their queries can ask
    about (a conversation's view keeps only those), the screen that finds which of them a
    conversation's words have without hashing every word (archive/supervision/screen.py; when the
    policies were compiled by ``recorder``), and all their patterns in one RE2 set (one pass over
    each message finds which patterns occur in it; only those are run for spans)."""

    def __init__(self, ctx: TenantContext, policies: list[Compiled], recorder: Recorder | None = None) -> None:
        self.ctx, self.policies = ctx, policies
        self.relevant = Relevant((p.tree for p in policies if p.tree is not None), typos=any(p.typos for p in policies))
        self.screen = Screen.build(self.relevant, recorder) if recorder is not None else None
        # What the relaxed plans say of a set of present tokens (few distinct sets recur: most
        # conversations hold none of the tokens, or the same few common ones).
        self._verdicts: dict[frozenset[str], list[bool]] = {}
        self._patterns: list[tuple[int, Any]] = [(i, pattern) for i, p in enumerate(policies) for pattern in p.patterns]
        self._set: Any = _pattern_set([p.definition.patterns for p in policies]) if self._patterns else None
        # Without anchors, a pattern that occurs in a message occurs in the messages joined by
        # line breaks, so one pass over the joined text rules most conversations out.
        self._joinable = not any(_ANCHOR.search(p) for policy in policies for p in policy.definition.patterns)

    def view(self, conversation_id: UUID, stored: StoredConversation, visitor_hash: str) -> DocView:
        return document_view(self.ctx, conversation_id, stored, visitor_hash, self.relevant)

    def _pattern_hits(self, stored: StoredConversation) -> dict[int, list[Hit]]:
        """Pattern matches per policy (by index), each message read once by the RE2 set."""
        found: dict[int, list[Hit]] = {}
        if self._set is None:
            return found
        if self._joinable and not self._set.Match("\n".join(m.text for m in stored.messages)):
            return found  # no pattern occurs in any message
        for index, message in enumerate(stored.messages):
            matched = (self._set.Match(message.text) if message.text else None) or []  # None: no pattern occurs
            by_policy: dict[int, list[tuple[int, int]]] = {}
            for number in matched:
                policy_index, pattern = self._patterns[number]
                senders = self.policies[policy_index].definition.scope.senders
                if senders and message.sender.role not in senders:
                    continue
                spans = by_policy.setdefault(policy_index, [])
                spans.extend((m.start(), m.end()) for m in pattern.finditer(message.text) if m.end() > m.start())
            for policy_index, spans in by_policy.items():
                if spans:
                    kept = sorted(set(spans))[:MAX_SPANS_PER_MESSAGE]
                    found.setdefault(policy_index, []).append(
                        Hit(index, message.sender.role, "pattern", kept, [message.text[s:e] for s, e in kept]))
        return found

    def evaluate(self, conversation_id: UUID, stored: StoredConversation, visitor_hash: str) -> list[Flag]:
        """The flags the policies raise on one stored conversation, samples included."""
        return self.detect(conversation_id, stored, visitor_hash).with_samples(self.ctx, conversation_id)

    VERDICTS = 10_000

    def _could_match(self, stored: StoredConversation) -> list[bool]:
        """Per policy, whether its relaxed plan lets the conversation's words through."""
        language = indexing.document_language(stored, self.ctx)
        present = (self.screen or self.relevant).present(self.ctx.analyzer, (m.text for m in stored.messages), language)
        found = self._verdicts.get(present)
        if found is None:
            found = [p.relaxed is None or p.relaxed.could_match(present) for p in self.policies]
            if len(self._verdicts) >= self.VERDICTS:
                self._verdicts.clear()
            self._verdicts[present] = found
        return found

    def detect(self, conversation_id: UUID, stored: StoredConversation, visitor_hash: str) -> Findings:
        """What the detectors find in one conversation (CPU only: safe in a worker thread). The
        conversation's view is built once, and only when a query in scope may match."""
        flags = []
        to_sample = []
        view: DocView | None = None
        verdicts: list[bool] | None = None
        patterns = self._pattern_hits(stored)
        for index, policy in enumerate(self.policies):
            definition = policy.definition
            if not in_scope(definition.scope, stored):
                continue
            query_hit = False
            if policy.tree is not None:
                if policy.relaxed is not None and verdicts is None:
                    verdicts = self._could_match(stored)
                if policy.relaxed is None or (verdicts is not None and verdicts[index]):
                    view = view or self.view(conversation_id, stored, visitor_hash)
                    query_hit = matches(policy.tree, view, policy.columns)
            hits = [*(_query_hits(self.ctx, policy, stored) if query_hit else []), *patterns.get(index, [])]
            if query_hit or hits:
                hits.sort(key=lambda h: (h.message, h.source))
                flags.append(Flag(definition.id, definition.version, definition.severity, "match", hits))
            elif definition.sample_percent > 0:
                to_sample.append(definition)
        return Findings(flags, to_sample)


def _pattern_set(patterns: list[tuple[str, ...]]) -> Any:
    import re2

    found = re2.Set.SearchSet(pattern_options())
    for group in patterns:
        for pattern in group:
            found.Add(pattern)
    found.Compile()
    return found


def document_view(ctx: TenantContext, conversation_id: UUID, stored: StoredConversation, visitor_hash: str,
                  relevant: Relevant | None = None) -> DocView:
    """The conversation as the index would hold it (``build_document``: the same analyzer, the
    same tokens), as a view for the evaluator, without building the index's text columns; with
    ``relevant``, only the prefix and form tokens the policies can ask about are kept."""
    shell = indexing.build_document(ctx, conversation_id, msgspec.structs.replace(stored, messages=[]), visitor_hash)
    language = indexing.document_language(stored, ctx)
    return DocView.analysed(ctx.analyzer, shell, ((m.sender.role, m.text) for m in stored.messages), language, relevant)


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


def compile_all(ctx: TenantContext, found: list[Definition], languages: list[str], analyzer: Analyzer | None = None) -> list[Compiled]:
    """The policies ready to evaluate. One that no longer compiles (it asks for typo tolerance,
    which the tenant has since turned off) is left out and logged, never failing an ingest."""
    compiled = []
    for definition in found:
        try:
            compiled.append(Compiled(ctx, definition, languages, analyzer))
        except TypoToleranceOff:
            log.warning("supervision_policy_skipped", policy=str(definition.id), reason="typo tolerance is off for the tenant")
    return compiled


def build_evaluator(ctx: TenantContext, found: list[Definition], languages: list[str]) -> Evaluator:
    """An evaluator of the policies, compiled by a recorder of the tenant's analyzer so that its
    screen knows the words behind their tokens."""
    recorder = Recorder.of(ctx.analyzer)
    return Evaluator(ctx, compile_all(ctx, found, languages, recorder), recorder)


async def evaluator_for(rt: Runtime, ctx: TenantContext, extra_languages: list[str | None], **which: Any) -> Evaluator:
    """An evaluator of the tenant's policies selected by ``which`` (see ``definitions``)."""
    found = await definitions(ctx, **which)
    return build_evaluator(ctx, found, await languages_for(rt, ctx, extra_languages) if found else [])


class Flagged(msgspec.Struct, frozen=True):
    conversation_id: UUID
    revision: int
    stored: StoredConversation
    flags: list[Flag]


async def store_flags(ctx: TenantContext, flagged: list[Flagged], actor: str, now: datetime) -> int:
    """Review items for the flags, with one ledger entry each (inside the caller's transaction)."""
    rows, entries = [], []
    for conversation_id, revision, stored, flags in ((f.conversation_id, f.revision, f.stored, f.flags) for f in flagged):
        for flag in flags:
            review_id = uuid4()
            sealed = ctx.crypto.seal_note(msgspec.json.encode(flag.hits)) if flag.hits else ""
            rows.append(ReviewItem(
                id=review_id, tenant=ctx.tenant_id, conversation=conversation_id, revision=revision, policy=flag.policy, policy_version=flag.version,
                reason=flag.reason, severity=flag.severity, status="open", site=stored.site, channel=stored.channel,
                match_count=sum(len(h.spans) for h in flag.hits), matches=sealed, created_at=now, updated_at=now,
            ))
            entries.append(ledger.Entry(
                actor=actor, action="review.flag", subject=str(review_id),
                details={"conversation": str(conversation_id), "revision": revision, "policy": str(flag.policy),
                         "policy_version": flag.version, "reason": flag.reason, "severity": flag.severity},
            ))
    if rows:
        await ReviewItem.insert(*rows)
        await ledger.append(ctx.tenant_id, *entries)
    return len(rows)


class SupervisionStep(ingest.IngestStep):
    """Every ingested conversation is evaluated against the tenant's enabled policies while its
    plaintext exists, and what it flags is in the review queue when the ingest request returns
    (the review items commit in the ingest transaction)."""

    EVALUATORS = 1000

    def __init__(self) -> None:
        # Per tenant, the evaluator of its current policies (compiled, with warm word caches),
        # kept while the policies' versions, the languages and the tenant's context stay the same.
        self._evaluators: dict[UUID, tuple[tuple[Any, ...], Evaluator]] = {}

    async def _evaluator(self, rt: Runtime, ctx: TenantContext, items: list[ConversationIn]) -> Evaluator | None:
        current = await enabled_versions(ctx.tenant_id)
        if not current:
            return None
        languages = await languages_for(rt, ctx, [conv.language for conv in items])
        key = (id(ctx), tuple(current), tuple(languages))
        cached = self._evaluators.get(ctx.tenant_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        found = await definitions(ctx)
        key = (id(ctx), tuple((d.id, d.version) for d in found), tuple(languages))
        evaluator = build_evaluator(ctx, found, languages)
        if len(self._evaluators) >= self.EVALUATORS:
            self._evaluators.clear()
        self._evaluators[ctx.tenant_id] = (key, evaluator)
        return evaluator

    async def analyser(self, rt: Runtime, ctx: TenantContext, items: list[ConversationIn]) -> ingest.Analyse | None:
        evaluator = await self._evaluator(rt, ctx, items)
        if evaluator is None or not evaluator.policies:
            return None

        def analyse(item: ingest.Prepared) -> None:
            found = evaluator.detect(item.id, item.stored, item.visitor_hash)
            if found.flags or found.to_sample:
                item.findings[STEP] = found

        return analyse

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        """Review items for the new conversations and revisions, now that their ids are final."""
        ctx = await rt.tenants.context(tenant_id)
        flagged = []
        for item in items:
            found = item.findings.get(STEP)
            flags = found.with_samples(ctx, item.id) if isinstance(found, Findings) else []
            if flags:
                flagged.append(Flagged(item.id, item.revision, item.stored, flags))
        if flagged:
            await store_flags(ctx, flagged, "system:supervision", rt.clock.now())
