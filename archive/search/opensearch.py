"""The OpenSearch backend (opensearch-py async client), written to OpenSearch 2.x/3.x semantics.

* An index template ``<prefix>-conversations-*`` and a write alias ``<prefix>-conversations``
  over ``<prefix>-conversations-000001``, so the index can be rolled over or rebuilt behind the
  alias. One shared index; every query filters on ``tenant`` and routes by it.
* Token fields are ``text`` with the ``whitespace`` analyzer (our analyzer already produced the
  tokens) and are excluded from ``_source``: stored documents hold ids, filter fields and nothing
  that reads as text. The bag (``f_*``: prefix paths, exact spellings, transliteration keys, and
  the typo neighbourhoods of the sender's terms) indexes docs only (no positions, no norms); a
  prefix query is a ``prefix`` query on the paths.
* Writes go through ``helpers.async_bulk`` in requests of at most BULK_DOCS documents and
  BULK_BYTES bytes; aggregations (facets) are asked for only when the search asks for facets.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from archive.analysis import ANALYZER_VERSION
from archive.errors import Unavailable
from archive.search.backend import BackendStatus, CompactReport, IndexDoc, ScoredId, SearchPage
from archive.search.plan import (
    SENDERS,
    All,
    AnyOf,
    Everything,
    FieldIs,
    Match,
    NearMatch,
    Plan,
    PlanNode,
    PrefixMatch,
    StartedIn,
    Without,
    positive_text,
)

FACET_LIMIT = 50
# One drain batch per bulk request, split where a request would pass ~10 MB (the size OpenSearch's
# own guidance starts from).
BULK_DOCS = 1000
BULK_BYTES = 10 * 1024 * 1024
# As on SQLite: a word matched through a form scores FORM_SCORE, the exact spelling adds EXACT_BOOST.
FORM_SCORE = 1.0
EXACT_BOOST = 3.0
_FIELD = {"agent": "agent_ids", "visitor": "visitor_hash", "site": "site", "channel": "channel", "tag": "tags", "lang": "language"}


def _mappings() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "tenant": {"type": "keyword"},
        "conversation_id": {"type": "keyword"},
        "site": {"type": "keyword"},
        "channel": {"type": "keyword"},
        "language": {"type": "keyword", "normalizer": "lowercase"},
        "started_at": {"type": "date"},
        "agent_ids": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "visitor_hash": {"type": "keyword"},
    }
    for sender in SENDERS:
        properties[f"t_{sender}"] = {"type": "text", "analyzer": "whitespace", "index_options": "positions", "norms": True}
        properties[f"f_{sender}"] = {"type": "text", "analyzer": "whitespace", "index_options": "docs", "norms": False}
    return {"dynamic": "strict", "_source": {"excludes": ["t_*", "f_*"]}, "properties": properties,
            "_meta": {"analyzer": ANALYZER_VERSION}}  # an index keeps the _meta it was created with


def _event_mappings() -> dict[str, Any]:
    keyword = {"type": "keyword"}
    return {"dynamic": "strict", "properties": {
        "tenant": keyword, "site": keyword, "visitor_hash": keyword, "session_id": keyword, "type": keyword,
        "name": keyword, "url": keyword, "at": {"type": "date"}, "props": {"type": "object", "enabled": False},
    }}


class OpenSearchBackend:
    name = "opensearch"

    def __init__(self, url: str, prefix: str = "parley", username: str = "", password: str = "",
                 verify_certs: bool = True, ca_certs: str = "") -> None:
        self.url = url
        self.alias = f"{prefix}-conversations"
        self.events_alias = f"{prefix}-events"
        self.template = f"{prefix}-conversations"
        self.first_index = f"{prefix}-conversations-000001"
        self._options: dict[str, Any] = {"hosts": [url], "verify_certs": verify_certs, "timeout": 30}
        if username:
            self._options["http_auth"] = (username, password)
        if ca_certs:
            self._options["ca_certs"] = ca_certs
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from opensearchpy import AsyncOpenSearch

            self._client = AsyncOpenSearch(**self._options)
        return self._client

    async def open(self) -> None:
        await self.client.indices.put_index_template(
            name=self.template,
            body={
                "index_patterns": [f"{self.alias}-*"],
                "template": {
                    "settings": {"number_of_shards": 1, "analysis": {"normalizer": {"lowercase": {"type": "custom", "filter": ["lowercase"]}}}},
                    "mappings": _mappings(),
                },
            },
        )
        if not await self.client.indices.exists_alias(name=self.alias):
            await self.client.indices.create(index=self.first_index, body={"aliases": {self.alias: {"is_write_index": True}}})
        await self.client.indices.put_index_template(
            name=self.events_alias,
            body={"index_patterns": [f"{self.events_alias}-*"], "template": {"settings": {"number_of_shards": 1}, "mappings": _event_mappings()}},
        )
        if not await self.client.indices.exists_alias(name=self.events_alias):
            await self.client.indices.create(index=f"{self.events_alias}-000001", body={"aliases": {self.events_alias: {"is_write_index": True}}})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def status(self) -> BackendStatus:
        health = await self.client.cluster.health()
        detail = f"opensearch {health.get('status')}"
        mappings = await self.client.indices.get_mapping(index=self.alias)
        written = sorted({int(m.get("mappings", {}).get("_meta", {}).get("analyzer", 1)) for m in mappings.values()})
        if written and written != [ANALYZER_VERSION]:
            detail += (f"; holds conversations analysed by analyzer {', '.join(map(str, written))} (now {ANALYZER_VERSION}): "
                       "`parley index rebuild` re-analyses them")
        return BackendStatus(ok=health.get("status") in ("green", "yellow"), detail=detail)

    async def refresh(self) -> None:
        await self.client.indices.refresh(index=self.alias)

    async def compaction_due(self) -> bool:
        return False  # Lucene merges segments as it writes

    async def compact(self) -> CompactReport:
        """Only the segments' deleted documents are expunged: OpenSearch merges segments itself,
        and a full force merge of an index still written to is what its documentation warns
        against (the merged segment is too large to be merged again)."""
        started, before = time.monotonic(), await self._store_bytes()
        await self.client.indices.forcemerge(index=self.alias, only_expunge_deletes=True)
        return CompactReport(bytes_before=before, bytes_after=await self._store_bytes(),
                             seconds=round(time.monotonic() - started, 3), detail="forcemerge only_expunge_deletes")

    async def _store_bytes(self) -> int:
        stats = await self.client.indices.stats(index=self.alias, metric="store")
        return int(stats.get("_all", {}).get("primaries", {}).get("store", {}).get("size_in_bytes", 0))

    async def reset(self) -> None:
        indices = await self.client.indices.get_alias(name=self.alias) if await self.client.indices.exists_alias(name=self.alias) else {}
        for index in indices:
            await self.client.indices.delete(index=index)
        await self.open()

    async def index(self, docs: list[IndexDoc]) -> None:
        from opensearchpy.helpers import async_bulk

        actions = [
            {
                "_op_type": "index",
                "_index": self.alias,
                "_id": str(d.conversation_id),
                "_routing": str(d.tenant_id),
                "_source": {
                    "tenant": str(d.tenant_id), "conversation_id": str(d.conversation_id), "site": d.site,
                    "channel": d.channel, "language": d.language, "started_at": d.started_at.astimezone(timezone.utc).isoformat(),
                    "agent_ids": d.agent_ids, "tags": d.tags, "visitor_hash": d.visitor_hash, **_token_fields(d),
                },
            }
            for d in docs
        ]
        if actions:
            await async_bulk(self.client, actions, chunk_size=BULK_DOCS, max_chunk_bytes=BULK_BYTES, raise_on_error=True)

    async def delete(self, tenant_id: UUID, conversation_ids: list[UUID]) -> None:
        from opensearchpy.helpers import async_bulk

        actions = [
            {"_op_type": "delete", "_index": self.alias, "_id": str(cid), "_routing": str(tenant_id)} for cid in conversation_ids
        ]
        if actions:
            await async_bulk(self.client, actions, chunk_size=BULK_DOCS, max_chunk_bytes=BULK_BYTES,
                             raise_on_error=False, raise_on_exception=True)

    async def index_events(self, rows: list[dict[str, Any]]) -> None:
        """Behaviour events (already stored durably) for analytics in OpenSearch."""
        from opensearchpy.helpers import async_bulk

        if rows:
            await async_bulk(self.client, [{"_op_type": "index", "_index": self.events_alias, "_source": r} for r in rows])

    async def delete_visitor_events(self, tenant_id: UUID, visitor_hash: str) -> None:
        query = {"bool": {"filter": [{"term": {"tenant": str(tenant_id)}}, {"term": {"visitor_hash": visitor_hash}}]}}
        await self.client.delete_by_query(index=self.events_alias, body={"query": query}, refresh=True)

    async def purge_events(self, before: datetime) -> None:
        await self.client.delete_by_query(index=self.events_alias, body={"query": {"range": {"at": {"lt": before.isoformat()}}}})

    async def search(self, plan: Plan) -> SearchPage:
        compiler = _Compiler(plan)
        query = {"bool": {"filter": [{"term": {"tenant": str(plan.tenant_id)}}, compiler.query(plan.tree)]}}
        body: dict[str, Any] = {"query": query, "size": plan.size, "track_total_hits": True, "_source": ["conversation_id", "started_at"]}
        if plan.facets:
            body["aggs"] = _aggs(plan.facets)
        if plan.sort == "relevance":
            leaves = [clause for leaf in positive_text(plan.tree) for clause in compiler.scoring(leaf)]
            if leaves:
                query["bool"]["should"] = leaves
            body["sort"] = [{"_score": "desc"}, {"started_at": "desc"}, {"conversation_id": "desc"}]
            body["from"] = plan.cursor.offset
        else:
            order = "desc" if plan.sort == "newest" else "asc"
            body["sort"] = [{"started_at": order}, {"conversation_id": order}]
            if plan.cursor.started_at is not None:
                after = datetime.fromisoformat(plan.cursor.started_at.replace("Z", "+00:00"))
                body["search_after"] = [int(after.timestamp() * 1000), plan.cursor.conversation]
        from opensearchpy.exceptions import ConnectionError as Unreachable  # ConnectionTimeout is one too

        try:
            response = await self.client.search(index=self.alias, body=body, routing=str(plan.tenant_id))
        except Unreachable as exc:
            raise Unavailable("the search index (OpenSearch) cannot be reached; the archive is intact, retry later") from exc
        hits = [
            ScoredId(UUID(h["_source"]["conversation_id"]), float(h.get("_score") or 0.0),
                     datetime.fromisoformat(h["_source"]["started_at"].replace("Z", "+00:00")))
            for h in response["hits"]["hits"]
        ]
        aggs = response.get("aggregations", {})
        facets: dict[str, dict[str, int]] = {}
        for name in plan.facets:
            buckets = aggs.get(name, {}).get("buckets", [])
            if name == "day":
                facets[name] = {b["key_as_string"][:10]: b["doc_count"] for b in buckets if b["doc_count"]}
            else:
                facets[name] = {str(b["key"]): b["doc_count"] for b in buckets}
        return SearchPage(total=response["hits"]["total"]["value"], hits=hits, facets=facets)


def _token_fields(doc: IndexDoc) -> dict[str, str]:
    """The document's token fields: each sender's bag gains the typo neighbourhoods of its terms."""
    fields = dict(doc.columns)
    if doc.typos:
        for sender in SENDERS:
            terms = set(doc.columns.get(f"t_{sender}", "").split())
            deletions = {d for term in terms for d in doc.typos.get(term, ())}
            if deletions:
                fields[f"f_{sender}"] = " ".join(filter(None, (fields.get(f"f_{sender}", ""), " ".join(sorted(deletions)))))
    return fields


def _aggs(names: tuple[str, ...]) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    for name in names:
        if name == "day":
            aggs[name] = {"date_histogram": {"field": "started_at", "calendar_interval": "day", "format": "yyyy-MM-dd"}}
        else:
            aggs[name] = {"terms": {"field": _FIELD["lang" if name == "language" else name], "size": FACET_LIMIT}}
    return aggs


class _Compiler:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def _per_field(self, make: Any, fields: list[str]) -> dict[str, Any]:
        clauses = [make(f) for f in fields]
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

    def words(self, node: Match) -> dict[str, Any]:
        def one(field: str) -> dict[str, Any]:
            clauses = [
                {"term": {field: seq[0]}} if len(seq) == 1 else {"match_phrase": {field: " ".join(seq)}}
                for seq in node.sequences
            ]
            return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

        return self._per_field(one, self.plan.text_columns())

    def forms(self, tokens: list[str], score: float) -> dict[str, Any]:
        """Any of ``tokens`` in the bag, scored as a constant (bags have no frequencies)."""
        bag = self._per_field(lambda f: {"terms": {f: tokens}}, self.plan.bag_columns())
        return {"constant_score": {"filter": bag, "boost": score}}

    def scoring(self, leaf: PlanNode) -> list[dict[str, Any]]:
        """The should-clauses that rank a text leaf (prefixes only filter)."""
        if isinstance(leaf, Match):
            clauses = [self.words(leaf)]
            if leaf.forms or leaf.typos:
                clauses.append(self.forms(leaf.forms + leaf.typos, FORM_SCORE))
            if leaf.boost:
                clauses.append(self.forms(leaf.boost, EXACT_BOOST))
            return clauses
        if isinstance(leaf, NearMatch):
            return [self.query(leaf)]
        return []

    def query(self, node: PlanNode) -> dict[str, Any]:
        if isinstance(node, Match):
            if not node.forms and not node.typos:
                return self.words(node)
            return {"bool": {"should": [self.words(node), self.forms(node.forms + node.typos, FORM_SCORE)], "minimum_should_match": 1}}
        if isinstance(node, PrefixMatch):
            return {"bool": {"filter": [self._per_field(lambda f: {"prefix": {f: node.token}}, self.plan.bag_columns())]}}
        if isinstance(node, NearMatch):
            def near(field: str) -> dict[str, Any]:
                def span(seq: list[str]) -> dict[str, Any]:
                    terms = [{"span_term": {field: t}} for t in seq]
                    return terms[0] if len(terms) == 1 else {"span_near": {"clauses": terms, "slop": 0, "in_order": True}}

                clauses = [
                    {"span_near": {"clauses": [span(a), span(b)], "slop": node.distance, "in_order": False}}
                    for a, b in node.pairs
                ]
                return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

            return self._per_field(near, self.plan.text_columns())
        if isinstance(node, FieldIs):
            value = node.value.lower() if node.name == "lang" else node.value
            if node.name == "lang":
                return {"bool": {"should": [{"term": {"language": value}}, {"prefix": {"language": value + "-"}}], "minimum_should_match": 1}}
            return {"term": {_FIELD[node.name]: value}}
        if isinstance(node, StartedIn):
            bounds: dict[str, str] = {}
            if node.start is not None:
                bounds["gte"] = node.start.astimezone(timezone.utc).isoformat()
            if node.end is not None:
                bounds["lt"] = node.end.astimezone(timezone.utc).isoformat()
            return {"range": {"started_at": bounds}} if bounds else {"match_all": {}}
        if isinstance(node, All):
            return {"bool": {"filter": [self.query(c) for c in node.children]}}
        if isinstance(node, AnyOf):
            return {"bool": {"should": [self.query(c) for c in node.children], "minimum_should_match": 1}}
        if isinstance(node, Without):
            return {"bool": {"must_not": [self.query(node.child)]}}
        if isinstance(node, Everything):
            return {"match_all": {}}
        raise TypeError(f"cannot compile {type(node).__name__}")
