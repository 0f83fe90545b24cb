"""Normalising chat text for matching without losing the way back to the original.

Customers type numbers with no-break and thin spaces, typographic dashes, full-width digits and
line breaks. Matching runs on a folded copy in which every one of those is a plain ASCII character,
and the fold maps each character to exactly one character, so an offset in the folded copy is the
same offset in the original: masks are applied to the original text and keep its layout.
"""

from __future__ import annotations

import re
import unicodedata


def _fold_char(ch: str) -> int:
    category = unicodedata.category(ch)
    if category == "Nd":
        return 48 + unicodedata.digit(ch)
    if ch.isspace() or category == "Cf":
        # Line breaks count as spaces: a number wrapped over two lines is still one number.
        # Zero-width and other format characters pasted into numbers separate groups the same way.
        return 32
    if category == "Pd" or ch == "\u2212":
        return 45
    compat = unicodedata.normalize("NFKC", ch)
    if len(compat) == 1 and compat.isascii() and compat.isprintable():
        return ord(compat)
    return ord(ch)


class _Fold(dict[int, int]):
    """A lazily filled ``str.translate`` table; only characters actually seen are looked up."""

    def __missing__(self, codepoint: int) -> int:
        folded = _fold_char(chr(codepoint))
        self[codepoint] = folded
        return folded


_FOLD = _Fold({cp: cp for cp in range(32, 127)})


def fold(text: str) -> str:
    """The matching copy of ``text``: same length, same offsets (see the module docstring)."""
    return text.translate(_FOLD)


# Most chat lines hold neither a digit (in any script) nor an at-sign; they need no further work.
_WORTH_SCANNING = re.compile(r"[\d@\uff20]")


def worth_scanning(text: str) -> bool:
    return _WORTH_SCANNING.search(text) is not None


# Russian (or another Cyrillic-script language) is being written.
CYRILLIC = re.compile("[\u0400-\u04ff]")

_DATE = re.compile(r"(?:\d{1,2}([./-]) ?\d{1,2}\1 ?\d{2,4}|\d{4}([./-])\d{1,2}\2\d{1,2})")


def looks_like_date(text: str) -> bool:
    """15.12.2026, 24. 11. 2026, 24/11/2026, 2026-11-24 with a day and month that exist."""
    if _DATE.fullmatch(text) is None:
        return False
    first, second, third = (int(p) for p in re.split(r"[./-] ?", text))
    if first > 31:
        return 1 <= second <= 12 and 1 <= third <= 31
    return (1 <= first <= 31 and 1 <= second <= 12) or (1 <= first <= 12 and 1 <= second <= 31)
