"""Supervision: policies flag conversations as they are ingested, with search's own meaning."""

from __future__ import annotations

import uuid

import pytest

from archive.supervision.tables import ReviewItem
from tests.supervision_helpers import chat, create_policy, ingest, policy_body, queue


async def test_a_flagged_conversation_is_in_the_queue_when_the_ingest_request_returns(client, tenant):
    policy = await create_policy(client, tenant)
    ids = await ingest(client, tenant,
                       chat("risky", "Is this safe?", "Absolutely, these are guaranteed returns, no risk at all."),
                       chat("calm", "Is this safe?", "Every investment carries risk."))
    page = await queue(client, tenant.headers("compliance"))
    assert [(i["conversation_id"], i["policy"], i["status"], i["severity"]) for i in page["items"]] == [(ids["risky"], policy["id"], "open", "high")]
    assert page["counts"]["open"] == 1


async def test_policy_query_errors_point_at_the_position(client, tenant):
    response = await client.post("/v1/supervision/policies", json=policy_body(query="refund AND", patterns=["(unclosed", "ok", "a\\1"]),
                                 headers=tenant.headers("compliance"))
    assert response.status_code == 422
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert "position 10" in errors["query"]
    assert "RE2" in errors["patterns[0]"] and "RE2" in errors["patterns[2]"] and "patterns[1]" not in errors


@pytest.mark.parametrize("role", ["reviewer_like_marketing", "ingest"])
async def test_only_compliance_and_admin_manage_policies(client, tenant, role):
    headers = tenant.headers("marketing" if role == "reviewer_like_marketing" else role)
    assert (await client.get("/v1/supervision/policies", headers=headers)).status_code == 403


async def test_matched_words_are_sealed_in_the_store(client, tenant):
    await create_policy(client, tenant)
    await ingest(client, tenant, chat("risky", "Hello", "These are guaranteed returns."))
    [row] = await ReviewItem.select(ReviewItem.matches).where(ReviewItem.tenant == tenant.id)
    assert row["matches"] and "guaranteed" not in row["matches"]


async def test_a_policy_query_flags_exactly_what_the_same_search_finds(client, tenant, runtime):
    """Every query of the search relevance set, as a policy: the conversations it flags at ingest
    are the conversations the same query finds in search. (Search alone retries a query that
    finds nothing anywhere with typo tolerance; a policy means its query as written, so for those
    queries the policy is compared with the search as written: nothing.)"""
    from archive.search import indexing
    from tests.search_corpus import EXPECTED, bodies

    names = {}
    for index, query in enumerate(EXPECTED):
        names[(await create_policy(client, tenant, name=f"p{index}", query=query))["id"]] = query
    ids = await ingest(client, tenant, *bodies())
    await indexing.drain_all(runtime)
    found: dict[str, set[str]] = {}
    for query in EXPECTED:
        result = (await client.post("/v1/search", json={"q": query, "size": 100}, headers=tenant.headers("compliance"))).json()
        assert "typo_tolerant" in result, (query, result)
        found[query] = set() if result["typo_tolerant"] else {hit["id"] for hit in result["hits"]}
    flagged: dict[str, set[str]] = {query: set() for query in EXPECTED}
    cursor = None
    while True:
        page = await queue(client, tenant.headers("compliance"), limit=200, **({"cursor": cursor} if cursor else {}))
        for item in page["items"]:
            flagged[names[item["policy"]]].add(item["conversation_id"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    by_id = {v: k for k, v in ids.items()}
    wrong = {q: {"missing": sorted(by_id[i] for i in found[q] - flagged[q]), "unexpected": sorted(by_id[i] for i in flagged[q] - found[q])}
             for q in EXPECTED if flagged[q] != found[q]}
    assert wrong == {}
    assert sum(bool(hits) for hits in found.values()) >= len(EXPECTED) - 8  # the comparison is not empty


async def test_patterns_are_re2_on_the_redacted_text_of_the_senders_in_scope(client, tenant):
    await create_policy(client, tenant, name="off-channel", query="", patterns=[r"(?i)\bwhats\s?app\b", r"\[card\]|\d[\d -]*\*[* -]*\d{4}"],
                        scope={"senders": ["agent"]})
    ids = await ingest(client, tenant,
                       chat("agent-whatsapp", "hello", "Text me on WhatsApp instead"),
                       chat("visitor-whatsapp", "can we use whatsapp?", "No, only this chat."),
                       chat("agent-card", "my card?", "Your card 4111 1111 1111 1111 is fine"))
    page = await queue(client, tenant.headers("compliance"))
    assert {i["conversation_id"] for i in page["items"]} == {ids["agent-whatsapp"], ids["agent-card"]}
    card = next(i for i in page["items"] if i["conversation_id"] == ids["agent-card"])
    view = (await client.get(f"/v1/reviews/{card['id']}", headers=tenant.headers("compliance"))).json()
    assert view["matches"] == [{"message": 1, "sender": "agent", "source": "pattern", "texts": ["4111 11** **** 1111"]}]


async def test_the_scope_limits_sites_channels_and_agents(client, tenant):
    await create_policy(client, tenant, scope={"sites": ["shop"], "channels": ["web"], "agents": ["agent-7"]})
    said = ("hi", "guaranteed returns")
    ids = await ingest(client, tenant, chat("in", *said), chat("blog", *said, site="blog"), chat("wa", *said, channel="whatsapp"),
                       chat("other-agent", *said, agents=[{"id": "agent-9"}]))
    assert [i["conversation_id"] for i in (await queue(client, tenant.headers("compliance")))["items"]] == [ids["in"]]


async def test_the_scope_senders_narrow_the_query_to_their_messages(client, tenant):
    await create_policy(client, tenant, query="guaranteed", scope={"senders": ["agent"]})
    ids = await ingest(client, tenant, chat("visitor-says", "is it guaranteed?", "no"), chat("agent-says", "is it safe?", "guaranteed!"))
    assert [i["conversation_id"] for i in (await queue(client, tenant.headers("compliance")))["items"]] == [ids["agent-says"]]
    clash = await client.post("/v1/supervision/policies", json=policy_body(name="x", query="sender:visitor refund", scope={"senders": ["agent"]}),
                              headers=tenant.headers("compliance"))
    assert clash.status_code == 422 and clash.json()["errors"][0]["path"] == "scope.senders"


async def test_disabled_and_deleted_policies_flag_nothing(client, tenant):
    off = await create_policy(client, tenant, name="off", enabled=False)
    gone = await create_policy(client, tenant, name="gone")
    assert (await client.delete(f"/v1/supervision/policies/{gone['id']}", headers=tenant.headers("admin"))).status_code == 204
    await ingest(client, tenant, chat("c", "hi", "guaranteed returns"))
    assert (await queue(client, tenant.headers("compliance")))["items"] == []
    listed = (await client.get("/v1/supervision/policies", headers=tenant.headers("compliance"))).json()
    assert [p["id"] for p in listed] == [off["id"]]
    everything = (await client.get("/v1/supervision/policies", params={"include_deleted": "true"}, headers=tenant.headers("compliance"))).json()
    assert {p["id"]: p["status"] for p in everything} == {off["id"]: "active", gone["id"]: "deleted"}


async def test_every_change_makes_a_version_and_a_ledger_entry(client, tenant):
    policy = await create_policy(client, tenant)
    headers = tenant.headers("admin")
    updated = await client.put(f"/v1/supervision/policies/{policy['id']}", json=policy_body(query='"guaranteed profit"', severity="low"), headers=headers)
    assert (updated.json()["version"], updated.json()["query"], updated.json()["updated_by"]) == (2, '"guaranteed profit"', f"key:{tenant.keys['admin'].prefix}")
    await client.delete(f"/v1/supervision/policies/{policy['id']}", headers=headers)
    versions = (await client.get(f"/v1/supervision/policies/{policy['id']}/versions", headers=headers)).json()
    assert [(v["version"], v["change"], v["query"]) for v in versions] == [
        (1, "create", '"guaranteed returns"'), (2, "update", '"guaranteed profit"'), (3, "delete", '"guaranteed profit"')]
    entries = (await client.get("/v1/audit", params={"subject": policy["id"]}, headers=headers)).json()
    assert [e["action"] for e in entries] == ["supervision.policy.create", "supervision.policy.update", "supervision.policy.delete"]
    assert all("guaranteed" not in str(e["details"]) for e in entries)  # the query is in the ledger sealed
    assert (await client.put(f"/v1/supervision/policies/{policy['id']}", json=policy_body(), headers=headers)).status_code == 404


async def test_policy_names_are_unique_among_live_policies(client, tenant):
    await create_policy(client, tenant, name="same")
    again = await client.post("/v1/supervision/policies", json=policy_body(name="same"), headers=tenant.headers("compliance"))
    assert again.status_code == 409


async def test_a_sampled_share_is_within_two_points_of_its_setting_on_10k_conversations(runtime, tenant):
    import uuid

    from archive.supervision.evaluation import sampled

    ctx = await runtime.tenants.context(tenant.id)
    policy, other = uuid.uuid4(), uuid.uuid4()
    conversations = [uuid.uuid4() for _ in range(10_000)]
    for percent in (2.5, 10.0, 50.0):
        share = sum(sampled(ctx, policy, c, percent) for c in conversations) / len(conversations) * 100
        assert abs(share - percent) <= 2, (percent, share)
    picked = [c for c in conversations if sampled(ctx, policy, c, 10.0)]
    assert picked == [c for c in conversations if sampled(ctx, policy, c, 10.0)]  # the same conversations every time
    assert picked != [c for c in conversations if sampled(ctx, other, c, 10.0)]  # each policy draws its own sample


async def test_sampled_conversations_are_queued_for_review_with_their_reason(client, tenant):
    await create_policy(client, tenant, name="qa", query="", sample_percent=100, severity="low")
    ids = await ingest(client, tenant, chat("any", "hello", "hi"))
    [item] = (await queue(client, tenant.headers("compliance")))["items"]
    assert (item["conversation_id"], item["reason"], item["match_count"]) == (ids["any"], "sample", 0)


async def test_the_evaluator_sees_each_conversation_exactly_as_the_index_stores_it(runtime, tenant):
    """Policies evaluate a view made straight from the analyzer's tokens (no index columns are
    built at ingest); it holds the same tokens, in the same order, as build_document's document."""
    import msgspec

    from archive.ingest import prepare
    from archive.models import ConversationIn
    from archive.search import indexing
    from archive.search.memory import DocView
    from archive.search.plan import SENDERS
    from archive.supervision.evaluation import document_view
    from tests import search_corpus, search_relevance

    ctx = await runtime.tenants.context(tenant.id)
    for body in [*search_corpus.bodies(), *search_relevance.bodies()]:
        item = prepare(ctx, msgspec.convert(body, ConversationIn))
        indexed = DocView(indexing.build_document(ctx, item.id, item.stored, item.visitor_hash))
        evaluated = document_view(ctx, item.id, item.stored, item.visitor_hash)
        for sender in SENDERS:
            assert evaluated.tokens(f"t_{sender}") == indexed.tokens(f"t_{sender}"), body["external_id"]
            for kind in ("t_", "p_", "f_"):
                assert evaluated.token_set(kind + sender) == indexed.token_set(kind + sender), (body["external_id"], kind + sender)
        # The neighbourhoods are compared above, in the f_ sets; the shell document carries none.
        assert msgspec.structs.replace(evaluated.doc, columns={}, typos={}) == msgspec.structs.replace(indexed.doc, columns={}, typos={})


async def test_the_evaluator_keeps_of_each_word_exactly_the_tokens_policies_can_ask_about(runtime, tenant):
    """Without typo tolerance in any policy, a word is analysed for its term, prefix path and
    typing key only; those are the analyzer's own tokens of the word, whichever tokens are asked."""
    from archive.analysis import words
    from archive.search.memory import Relevant
    from archive.search.plan import Match, PrefixMatch
    from tests import search_corpus, search_relevance

    ctx = await runtime.tenants.context(tenant.id)
    an = ctx.analyzer
    vocabulary = {(word, language or "en") for body in [*search_corpus.bodies(), *search_relevance.bodies()]
                  for language in [body.get("language")] for m in body["messages"] for word in words(m["text"])}
    full = [(word, language, an.word(word, language)) for word, language in sorted(vocabulary)]
    every_path = sorted({t.path for _, _, t in full if t.path})
    every_form = sorted({f for _, _, t in full for f in t.bag})
    light = Relevant([Match([], forms=every_form), *[PrefixMatch(p) for p in every_path]], typos=False)
    for word, language, tokens in full:
        term, prefixes, forms = light._analyse(an, word, language)
        # A prefix query's token is the head of a path: the word's own path, and those of the
        # vocabulary's words its path extends (refund → refunds).
        assert term == tokens.term and prefixes == {p for p in every_path if tokens.path.startswith(p)}, word
        assert (tokens.path in prefixes) == bool(tokens.path), word
        assert forms == {f for f in tokens.bag if _is_typing_key(an, word, language, f)}, word
    assert any(light._analyse(an, w, lang)[2] for w, lang, _ in full)  # Cyrillic words have typing keys


def _is_typing_key(an, word, language, token):
    from archive import transliteration as tr
    from archive.analysis import TYPING_KEY

    normal = an.normal(word, language)
    return tr.is_cyrillic(normal) and token == an.token(TYPING_KEY, tr.cyrillic_key(normal))


async def test_anchored_patterns_match_each_message_from_its_own_start(client, tenant):
    await create_policy(client, tenant, name="anchored", query="", patterns=[r"^(?i)call me\b", r"asap$"])
    ids = await ingest(client, tenant, chat("second", "hello there", "call me tomorrow"), chat("ending", "please answer asap", "ok"),
                       chat("inside", "you can call me", "asap is not at the end."))
    assert {i["conversation_id"] for i in (await queue(client, tenant.headers("compliance")))["items"]} == {ids["second"], ids["ending"]}


async def test_queries_without_words_are_evaluated_on_every_conversation(client, tenant):
    await create_policy(client, tenant, name="no words", query="-refund tag:vip")
    ids = await ingest(client, tenant, chat("vip", "hello", "hi", tags=["vip"]), chat("vip-refund", "refund", "ok", tags=["vip"]),
                       chat("plain", "hello", "hi"))
    assert [i["conversation_id"] for i in (await queue(client, tenant.headers("compliance")))["items"]] == [ids["vip"]]


async def test_each_new_revision_is_evaluated_and_its_item_shows_that_revision(client, tenant):
    await create_policy(client, tenant)
    [first] = (await ingest(client, tenant, chat("c1", "is it safe?", "it carries some risk"))).values()
    revised = await client.post("/v1/transcripts", params={"on_conflict": "revise"},
                                json=chat("c1", "is it safe?", "it carries some risk", "actually: guaranteed returns"),
                                headers=tenant.headers("ingest"))
    assert revised.status_code in (200, 201) and revised.json()["revision"] == 2, revised.text
    [item] = (await queue(client, tenant.headers("compliance")))["items"]
    assert (item["conversation_id"], item["revision"]) == (first, 2)
    await client.post("/v1/transcripts", params={"on_conflict": "revise"}, json=chat("c1", "is it safe?", "no comment"),
                      headers=tenant.headers("ingest"))
    view = (await client.get(f"/v1/reviews/{item['id']}", headers=tenant.headers("compliance"))).json()
    assert [m["text"] for m in view["conversation"]["messages"]][-1] == "actually: guaranteed returns"  # revision 2, not 3
    assert [i["revision"] for i in (await queue(client, tenant.headers("compliance")))["items"]] == [2]


async def test_every_revision_of_a_conversation_draws_the_same_sample(client, tenant, runtime):
    from archive.supervision.evaluation import sample_point

    policy = await create_policy(client, tenant, name="qa", query="", sample_percent=50, severity="low")
    bodies = [chat(f"c{i}", "hello", "hi") for i in range(12)]
    ids = await ingest(client, tenant, *bodies)
    for body in bodies:
        body["messages"][1]["text"] = "hi again"
        response = await client.post("/v1/transcripts", params={"on_conflict": "revise"}, json=body, headers=tenant.headers("ingest"))
        assert response.json()["revision"] == 2
    ctx = await runtime.tenants.context(tenant.id)
    expected = {cid for cid in ids.values() if sample_point(ctx, uuid.UUID(policy["id"]), uuid.UUID(cid)) < 50}
    items = (await queue(client, tenant.headers("compliance"), limit=100))["items"]
    assert {(i["conversation_id"], i["revision"]) for i in items} == {(c, r) for c in expected for r in (1, 2)}
