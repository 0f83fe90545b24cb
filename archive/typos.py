"""Typo tolerance on keyed tokens: symmetric deletion neighbourhoods (the SymSpell idea).

A word is indexed with itself and every string obtained by deleting one letter; a query word looks
up its own deletions. Two words meet when they share such a string, which covers one wrong,
missing, extra or swapped letter — and, because the strings are compared as opaque hashes with no
way to verify afterwards, also the rarer pair that differs by one letter removed in one place and
another added elsewhere (``strain``/``trains``).

Two edits (``~2``, and ``~`` on words of ``LONG_WORD`` letters or more) delete up to two letters
from the query word only: that finds words the query has up to two letters too many for, or one
too many and one wrong, but not two wrong or two missing. Indexing two-letter deletions would find
those too, but a word of n letters has about n²/2 of them (a 20-letter Norwegian compound, 190):
the one-letter neighbourhoods alone already double the index. The cost in index size and what the
neighbourhoods reveal are in docs/search.md.
"""

from __future__ import annotations

MIN_LETTERS = 4  # shorter words get no neighbourhood: "cat~" meeting "car", "hat", "cut" is noise
LONG_WORD = 10  # from here ``~`` means two edits (from 8 letters, precision dropped by a third)
MAX_DISTANCE = 2


def auto_distance(word: str) -> int:
    """Edits ``word~`` tolerates: none below MIN_LETTERS, two from LONG_WORD letters, else one."""
    if len(word) < MIN_LETTERS:
        return 0
    return 2 if len(word) >= LONG_WORD else 1


def neighbourhood(word: str, distance: int) -> set[str]:
    """``word`` and every string with up to ``distance`` of its letters deleted."""
    found = {word}
    frontier = {word}
    for _ in range(distance):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))} - found
        found |= frontier
    return found


def has_neighbourhood(word: str) -> bool:
    """Whether a (normalised, folded) word gets a neighbourhood: not short, only letters."""
    return len(word) >= MIN_LETTERS and word.isalpha()


def indexed_neighbourhood(word: str) -> set[str]:
    """What the index holds for a (normalised, folded) word: empty for short or non-alphabetic words."""
    return neighbourhood(word, 1) if has_neighbourhood(word) else set()
