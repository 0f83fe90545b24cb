"""The analyzer's caches: bounded, and what a tenant keeps using survives when they turn over."""

from __future__ import annotations

from archive import analysis
from archive.analysis import Analyzer

KEY = b"c" * 32


def test_words_in_use_survive_when_the_caches_turn_over(monkeypatch):
    monkeypatch.setattr(analysis, "CACHE_LIMIT", 8)
    analyzer = Analyzer(KEY)
    expected = analyzer.word("refund", "en")
    computed: list[str] = []
    real = analysis.normal_form
    monkeypatch.setattr(analysis, "normal_form", lambda word, language: computed.append(word) or real(word, language))
    for n in range(40):
        analyzer.word(f"parcel{'x' * n}", "en")  # new words, five times what the caches hold
        assert analyzer.word("refund", "en") == expected  # in use all along
    assert "refund" not in computed
    assert len(computed) == 40


def test_the_caches_stay_within_their_budget(monkeypatch):
    monkeypatch.setattr(analysis, "CACHE_LIMIT", 8)
    analyzer = Analyzer(KEY)
    for n in range(100):
        analyzer.word(f"word{'y' * n}", "en" if n % 2 else "nb")
        analyzer.path(f"path{'z' * n}")
    held = sum(len(c) for generation in (analyzer._words._young, analyzer._words._old) for c in generation.values())
    assert held <= 8
    assert len(analyzer._paths._young) + len(analyzer._paths._old) <= 8
