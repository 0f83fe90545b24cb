"""Redaction of sensitive data before anything is stored, indexed or logged.

Every detector proposes validated spans (cards, IBANs, national identity numbers, phone
numbers, e-mail addresses, card security codes named as such; see ``detectors``) on a folded copy of the text (``text``), context
words decide whether a validated number is a business number after all (``context``), and one
resolver picks among overlapping spans: the longest validated entity wins, so an IBAN beats the
Luhn-valid card window inside it and a card beats a phone number inside it. Masks (``masks``)
are applied to the original text.

A whole conversation is redacted at once (``redact_conversation``) because customers split
numbers over consecutive messages: the messages of one author sent within two minutes of each
other are scanned as one text, and a number may span two of them; both parts are masked.

Pure CPU and synchronous; a ``Redactor`` keeps its own counts, nothing else is shared between
calls, so it is safe to run in worker threads. docs/redaction.md has the rules and the measured
recall and false-positive rates.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Protocol, Sequence
from urllib.parse import unquote

import msgspec

from archive.redaction.detectors import (
    PRIORITY,
    Candidate,
    digit_runs,
    email_candidates,
    glued_card_candidates,
    hetu_candidates,
    iban_candidates,
    numeric_candidates,
    phone_candidates,
    security_code_candidates,
)
from archive.redaction.masks import mask_for
from archive.redaction.options import RedactionOptions, options_from, phone_regions_for, regions_for_language
from archive.redaction.text import CYRILLIC, fold, worth_scanning

__all__ = [
    "ChatLine",
    "RedactedConversation",
    "RedactionOptions",
    "Redactor",
    "options_from",
    "redact_conversation",
]

# A number split over messages: at most two consecutive messages of one author, this close.
SPLIT_WINDOW = timedelta(seconds=120)
SPLIT_MESSAGES = 2
_JOIN = "\n"
_DIGIT = re.compile("[0-9]")


class ChatMessage(Protocol):
    @property
    def author(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def text(self) -> str: ...


class ChatLine(msgspec.Struct, frozen=True):
    """One message as redaction sees it; ``author`` is any key that is equal for one speaker."""

    author: str
    at: datetime
    text: str


class RedactedConversation(msgspec.Struct):
    texts: list[str]  # the masked texts, in the order given
    counts: dict[str, int]  # spans masked per kind ("card", "iban", "national_id_no", "phone", …)


def _resolve(candidates: list[Candidate], length: int) -> list[Candidate]:
    """Longest validated span first; on equal length the stronger kind.

    A business number (a national-format phone number that a business label vetoed) takes its
    place in the contest among phone readings, so no shorter phone number inside it is masked;
    it never hides a card, an IBAN or an identity number, which no label can veto."""
    masked = bytearray(length)
    business = bytearray(length)
    chosen: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (c.start - c.end, PRIORITY[c.family], c.start)):
        if any(masked[cand.start : cand.end]) or (cand.family == "phone" and any(business[cand.start : cand.end])):
            continue
        (masked if cand.sensitive else business)[cand.start : cand.end] = b"\x01" * (cand.end - cand.start)
        if cand.sensitive:
            chosen.append(cand)
    return sorted(chosen, key=lambda c: c.start)


class _Engine:
    def __init__(self, options: RedactionOptions, language: str | None) -> None:
        self.options = options
        self.language = language
        # "ZZ" (no region) still finds every number written with its country code.
        self.regions = phone_regions_for(options, language) or ["ZZ"]
        # Without a language tag, Cyrillic text says enough to read Russian national numbers too
        # (ten digits after 8: no order number is mistaken for one the way eight digits are in NO).
        # The tenant's home market: read after a phone cue in a conversation of any language.
        self.home_regions = [r for r in options.fallback_regions if r not in self.regions]
        self.cyrillic_regions = self.regions if regions_for_language(language) else list(dict.fromkeys([*self.regions, "RU"]))

    def candidates(self, folded: str) -> list[Candidate]:
        options = self.options
        found: list[Candidate] = []
        if _DIGIT.search(folded):
            runs = digit_runs(folded)
            found += numeric_candidates(folded, runs, list(options.national_ids), self.language)
            found += glued_card_candidates(folded, options.national_ids, self.language)
            found += iban_candidates(folded)
            found += security_code_candidates(folded)
            if "fi" in options.national_ids:
                found += hetu_candidates(folded)
            if options.redact_phone:
                regions = self.cyrillic_regions if CYRILLIC.search(folded) else self.regions
                found += phone_candidates(folded, regions, runs, found, self.home_regions)
        if options.redact_email:
            found += email_candidates(folded)
        return found

    def _decoded_tokens(self, text: str, counts: Counter[str]) -> str:
        def redacted(match: re.Match[str]) -> str:
            token = match.group()
            plain = unquote(token)
            if plain == token:
                return token
            masked = self.redact_texts([plain], counts)[0]
            return token if masked == plain else masked

        return _ENCODED_TOKEN.sub(redacted, text)

    def redact_texts(self, texts: Sequence[str], counts: Counter[str]) -> list[str]:
        """Redact ``texts`` as one stretch of speech: a span may cross one message boundary."""
        if not any(worth_scanning(t) for t in texts):
            return list(texts)
        texts = [self._decoded_tokens(t, counts) if "%" in t else t for t in texts]
        joined = _JOIN.join(texts)
        folded = fold(joined)
        starts, offset = [], 0
        for t in texts:
            starts.append(offset)
            offset += len(t) + len(_JOIN)

        def message_of(position: int) -> int:
            return bisect_right(starts, position) - 1

        candidates = [
            c for c in self.candidates(folded) if message_of(c.end - 1) - message_of(c.start) < SPLIT_MESSAGES
        ]
        pieces: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        for cand in _resolve(candidates, len(joined)):
            counts[cand.kind] += 1
            mask = mask_for(cand, joined[cand.start : cand.end], folded[cand.start : cand.end], self.options.card_mask)
            for index in range(message_of(cand.start), message_of(cand.end - 1) + 1):
                lo = max(cand.start, starts[index])
                hi = min(cand.end, starts[index] + len(texts[index]))
                text = mask.text[lo - cand.start : hi - cand.start] if mask.layout else mask.text
                pieces[index].append((lo - starts[index], hi - starts[index], text))
        return [_apply(t, p) for t, p in zip(texts, pieces)]


# A token with percent escapes (a pasted URL or query string: "?q=4111%201111%201111%201111",
# "viber://chat?number=%2B4740612345") is read decoded, as attachment URLs are: "%20" hides a
# card number from every detector. Such a token is kept as written unless something in its decoded
# form is masked; then the decoded, masked form replaces it.
_ENCODED_TOKEN = re.compile(r"[^\s<>\"'`]*%[0-9A-Fa-f]{2}[^\s<>\"'`]*")


def _apply(text: str, pieces: list[tuple[int, int, str]]) -> str:
    if not pieces:
        return text
    out, cursor = [], 0
    for start, end, replacement in pieces:
        out.append(text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def _stretches(messages: Sequence[ChatMessage]) -> list[list[int]]:
    """Indices of consecutive messages by one author, each within SPLIT_WINDOW of the previous."""
    stretches: list[list[int]] = []
    for index, message in enumerate(messages):
        if stretches:
            previous = messages[stretches[-1][-1]]
            if previous.author == message.author and abs(message.at - previous.at) <= SPLIT_WINDOW:
                stretches[-1].append(index)
                continue
        stretches.append([index])
    return stretches


def redact_conversation(messages: Sequence[ChatMessage], options: Any, language: str | None = None) -> RedactedConversation:
    """Redact a whole conversation; see the module docstring. ``options`` is a RedactionOptions or
    anything with the same attributes (tenant settings); ``language`` adds phone region hints."""
    engine = _Engine(options_from(options), language)
    counts: Counter[str] = Counter()
    texts: list[str] = [m.text for m in messages]
    for stretch in _stretches(messages):
        redacted = engine.redact_texts([texts[i] for i in stretch], counts)
        for i, text in zip(stretch, redacted):
            texts[i] = text
    return RedactedConversation(texts=texts, counts=dict(sorted(counts.items())))


class Redactor:
    """Redacts single texts (metadata values, event properties) and counts what it replaced."""

    def __init__(self, options: Any, language: str | None = None) -> None:
        self.options = options_from(options)
        self._engine = _Engine(self.options, language)
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        return self._engine.redact_texts([text], self.counts)[0]

    def trial(self, text: str) -> tuple[str, Counter[str]]:
        """``redact`` without counting: the text and what it would replace (for a caller choosing
        between two readings of a value; it counts the one it keeps)."""
        counts: Counter[str] = Counter()
        return self._engine.redact_texts([text], counts)[0], counts
