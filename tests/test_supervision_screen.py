"""Supervision's screen: which words of a conversation the policies ask about, found by string
comparison with the words behind the policies' tokens, with the answers of a full analysis."""

from __future__ import annotations

import random

import msgspec

from archive.analysis import fold, words
from archive.ingest import prepare
from archive.models import ConversationIn
from archive.search import indexing
from archive.search.memory import Relevant
from archive.supervision.evaluation import build_evaluator, languages_for
from archive.supervision.policies import definitions
from archive.supervision.screen import _PLAIN
from tests import search_corpus, search_relevance
from tests.supervision_helpers import create_policy

# The search relevance set's queries, and the kinds of policy a compliance desk runs: phrases,
# NEAR, prefixes, Cyrillic and Slovene words, Cyrillic typed in Latin letters, sender scopes.
POLICY_QUERIES = [
    *search_corpus.EXPECTED,
    '"guaranteed returns" OR "risk free" OR "no risk"',
    "guaranteed NEAR/5 profit OR promise NEAR/3 money",
    'whatsapp OR telegram OR "private number"',
    '"гарантированный доход" OR гарантирую NEAR/3 прибыль',
    "dengi OR posylka OR schet",
    '"zagotovljen donos" OR zagotavljam NEAR/3 dobiček OR naroč*',
    '("garantert avkastning" OR risikofri*) AND lang:nb',
    "sender:agent (refund* OR chargeback)",
]


async def _evaluator_and_conversations(client, tenant, runtime, queries):
    for index, query in enumerate(queries):
        await create_policy(client, tenant, name=f"screen-{index}", query=query)
    ctx = await runtime.tenants.context(tenant.id)
    bodies = [*search_corpus.bodies(), *search_relevance.bodies()]
    items = [msgspec.convert(body, ConversationIn) for body in bodies]
    found = await definitions(ctx)
    evaluator = build_evaluator(ctx, found, await languages_for(runtime, ctx, [c.language for c in items]))
    return ctx, evaluator, [prepare(ctx, item) for item in items]


async def test_the_screen_finds_in_each_conversation_exactly_the_tokens_a_full_analysis_finds(client, tenant, runtime):
    ctx, evaluator, conversations = await _evaluator_and_conversations(client, tenant, runtime, POLICY_QUERIES)
    assert evaluator.screen is not None  # no policy asks for typo tolerance: the screen answers
    full = Relevant((p.tree for p in evaluator.policies if p.tree is not None), typos=False)
    found_any = 0
    for item in conversations:
        language = indexing.document_language(item.stored, ctx)
        texts = [m.text for m in item.stored.messages]
        screened = evaluator.screen.present(ctx.analyzer, texts, language)
        assert screened == full.present(ctx.analyzer, texts, language), item.external_id
        assert evaluator.screen.present(ctx.analyzer, texts, language) == screened  # the same answer from its cache
        found_any += bool(screened)
    assert found_any >= len(conversations) // 3  # the comparison is not empty


async def test_the_screen_answers_for_words_one_at_a_time_as_for_whole_conversations(client, tenant, runtime):
    """Each word of the vocabulary on its own: its tokens are those the full analysis finds."""
    ctx, evaluator, conversations = await _evaluator_and_conversations(client, tenant, runtime, POLICY_QUERIES)
    assert evaluator.screen is not None
    full = Relevant((p.tree for p in evaluator.policies if p.tree is not None), typos=False)
    vocabulary = sorted({(word, indexing.document_language(item.stored, ctx)) for item in conversations
                         for m in item.stored.messages for word in words(m.text)})
    asked = 0
    for word, language in vocabulary:
        expected = full.present(ctx.analyzer, [word], language)
        assert evaluator.screen.present(ctx.analyzer, [word], language) == expected, (word, language)
        asked += bool(expected)
    assert asked >= 20


async def test_policies_asking_for_typo_tolerance_are_screened_by_full_analysis(client, tenant, runtime):
    _, evaluator, _ = await _evaluator_and_conversations(client, tenant, runtime, ["refund~", "pakke"])
    assert evaluator.screen is None


def test_words_of_plain_letters_are_their_own_folded_form():
    """The screen skips folding words of ASCII letters and digits and Cyrillic а–я but й."""
    plain = [chr(c) for c in range(0x110000) if _PLAIN.fullmatch(chr(c))]
    assert len(plain) == 10 + 26 + 1 + 31
    assert all(fold(c) == c for c in plain)
    rng = random.Random(7)
    for _ in range(2000):
        word = "".join(rng.choice(plain) for _ in range(rng.randint(1, 12)))
        assert fold(word) == word
    assert not any(_PLAIN.fullmatch(w) for w in ("й", "ё", "é", "ø", "ß", "ž"))


def test_a_word_starting_with_an_ascii_letter_folds_to_a_word_starting_with_it():
    """What lets the screen skip folding a word whose first letter begins no prefix policy."""
    vocabulary = {word for body in [*search_corpus.bodies(), *search_relevance.bodies()] for m in body["messages"]
                  for word in words(m["text"])}
    vocabulary |= {f"{a}{mark}x" for a in "aeiouncszy" for mark in ("\u0301", "\u0308", "\u030c", "\u0327", "\u0338")}
    checked = [w for w in vocabulary if w[0].isascii()]
    assert len(checked) > 200
    assert all(fold(w).startswith(w[0]) for w in checked)


def test_the_screen_romanises_cyrillic_as_transliteration_does():
    from archive import transliteration as tr
    from archive.supervision.screen import _ROMANIZED

    letters = [chr(c) for c in range(0x0400, 0x0530)]
    assert all(letter.translate(_ROMANIZED) == tr.romanize(letter) for letter in letters)
    rng = random.Random(11)
    for _ in range(2000):
        word = "".join(rng.choice(letters) for _ in range(rng.randint(1, 12)))
        assert word.translate(_ROMANIZED) == tr.romanize(word)
