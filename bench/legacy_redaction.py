"""Redaction of sensitive data before anything is stored, indexed or logged.

Detectors form a small registry, run in priority order; a later detector never touches text an
earlier one already replaced (a card number is not also reported as a phone number). Every
detector validates what its pattern found (Luhn, mod-97, check digits) so ordinary numbers in a
chat (order numbers, quantities) are left alone.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Iterable

import msgspec

from archive.tenancy import TenantSettings


class Detector(msgspec.Struct, frozen=True):
    name: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool]
    mask: Callable[[str, TenantSettings], str]
    enabled: Callable[[TenantSettings], bool] = lambda _settings: True
    # A cheap test that must pass before the full pattern is worth running (most chat lines have
    # no digits and no '@'; skipping the scan there is most of redaction's speed).
    hint: re.Pattern[str] | None = None


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if index % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(match: str) -> bool:
    digits = _digits(match)
    return 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1


def _mask_card(match: str, settings: TenantSettings) -> str:
    if settings.card_mask == "full":
        return "[card]"
    digits = _digits(match)
    # PCI DSS: at most the first six and the last four digits may be shown.
    keep_head, keep_tail = 6, 4
    out, seen = [], 0
    for ch in match:
        if ch.isdigit():
            out.append(ch if seen < keep_head or seen >= len(digits) - keep_tail else "*")
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def _mask_iban(match: str, _settings: TenantSettings) -> str:
    compact = match.replace(" ", "").upper()
    return f"{compact[:2]}**{'*' * (len(compact) - 8)}{compact[-4:]}"


_NIN_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_NIN_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def norwegian_nin_valid(text: str) -> bool:
    """Fødselsnummer / D-nummer: a plausible date and both mod-11 check digits."""
    d = [int(c) for c in _digits(text)]
    if len(d) != 11:
        return False
    day, month = d[0] * 10 + d[1], d[2] * 10 + d[3]
    if day > 40:  # D-number
        day -= 40
    if month > 80:  # synthetic test numbers
        month -= 80
    elif month > 40:  # H-number
        month -= 40
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return False
    k1 = 11 - sum(w * x for w, x in zip(_NIN_W1, d)) % 11
    k1 = 0 if k1 == 11 else k1
    if k1 == 10 or k1 != d[9]:
        return False
    k2 = 11 - sum(w * x for w, x in zip(_NIN_W2, d)) % 11
    k2 = 0 if k2 == 11 else k2
    return k2 != 10 and k2 == d[10]


def _is_phone(match: str) -> bool:
    # A bare run of digits is more often an order or ticket number than a phone number: only
    # numbers written like phone numbers (international prefix or grouped) count.
    digits = _digits(match)
    written_as_phone = match.startswith(("+", "(")) or any(not ch.isdigit() for ch in match)
    return 8 <= len(digits) <= 15 and written_as_phone


_DIGITS = re.compile(r"\d")
_AT = re.compile("@")

DETECTORS: list[Detector] = [
    Detector(
        name="card",
        hint=_DIGITS,
        pattern=re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
        validate=_is_card,
        mask=_mask_card,
    ),
    Detector(
        name="iban",
        hint=_DIGITS,
        pattern=re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
        validate=iban_valid,
        mask=_mask_iban,
    ),
    Detector(
        name="national_id_no",
        hint=_DIGITS,
        pattern=re.compile(r"(?<!\d)\d{6} ?\d{5}(?!\d)"),
        validate=norwegian_nin_valid,
        mask=lambda _m, _s: "[national-id]",
    ),
    Detector(
        name="email",
        hint=_AT,
        pattern=re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
        validate=lambda _m: True,
        mask=lambda _m, _s: "[email]",
        enabled=lambda s: s.redact_email,
    ),
    Detector(
        name="phone",
        hint=_DIGITS,
        pattern=re.compile(r"(?<![\w+])\+?\(?\d[\d ()./-]{6,}\d(?!\w)"),
        validate=_is_phone,
        mask=lambda _m, _s: "[phone]",
        enabled=lambda s: s.redact_phone,
    ),
]


def register(detector: Detector, before: str | None = None) -> None:
    """Add a detector; ``before`` names an existing one it must run ahead of."""
    index = next((i for i, d in enumerate(DETECTORS) if d.name == before), len(DETECTORS))
    DETECTORS.insert(index, detector)


def _longest_valid_prefix(candidate: str, validate: Callable[[str], bool]) -> str | None:
    """Patterns are greedy ("4111 1111 1111 1111 2026" or "NO93 8601 1117 947 OK"), so when the
    whole match does not validate, shorter prefixes ending at a separator are tried."""
    if validate(candidate):
        return candidate
    for cut in range(len(candidate) - 1, 0, -1):
        if candidate[cut] in " -" and validate(candidate[:cut]):
            return candidate[:cut]
    return None


class Redactor:
    """Applies the enabled detectors for one tenant and counts what it replaced."""

    def __init__(self, settings: TenantSettings, detectors: Iterable[Detector] | None = None) -> None:
        self.settings = settings
        self.detectors = [d for d in (DETECTORS if detectors is None else detectors) if d.enabled(settings)]
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        spans: list[tuple[int, int, str]] = []
        for detector in self.detectors:
            if detector.hint is not None and detector.hint.search(text) is None:
                continue
            for match in detector.pattern.finditer(text):
                start, end = match.span()
                if any(start < e and s < end for s, e, _ in spans):
                    continue
                found = _longest_valid_prefix(match.group(), detector.validate)
                if found:
                    spans.append((start, start + len(found), detector.mask(found, self.settings)))
                    self.counts[detector.name] += 1
        if not spans:
            return text
        spans.sort()
        out, cursor = [], 0
        for start, end, replacement in spans:
            out.append(text[cursor:start])
            out.append(replacement)
            cursor = end
        out.append(text[cursor:])
        return "".join(out)
