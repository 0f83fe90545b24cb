"""Detectors: each proposes validated spans of the folded text; the resolver picks among them.

Validation is the libraries' job: Luhn, IBAN and national identity numbers through python-stdnum,
phone numbers through libphonenumber's matcher (``phonenumbers``, leniency VALID), e-mail
addresses through ``email-validator`` (syntax only, no DNS). This module only finds candidates in
the way customers write them and decides which written shapes are worth validating.

Digit candidates are runs of digit groups joined by the separators people type (space, dot,
dash, slash, plus; the fold has already turned no-break spaces, typographic dashes, full-width
digits and line breaks into those). Windows of consecutive whole groups are validated, so a card
followed by an expiry year ("4111 1111 1111 1111 2026") or preceded by an unrelated number is
still found, but a Luhn-valid window is never cut out of the middle of a group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Callable, Iterator

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum import iban, luhn, numdb
from stdnum.dk import cpr
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.se import personnummer
from stdnum.si import emso

from archive.redaction.context import nearest_cue

# Which kinds beat which when two validated spans have the same length.
PRIORITY = {"iban": 0, "card": 1, "national_id": 2, "phone": 3, "email": 4}


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int
    end: int
    kind: str  # "card", "iban", "phone", "email", "national_id_no", …
    # False: validated, but context says it is a business number. It still takes part in span
    # resolution (a tracking number's Luhn-valid inner window must not be masked), unmasked.
    sensitive: bool = True

    @property
    def family(self) -> str:
        return "national_id" if self.kind.startswith("national_id") else self.kind


# ---- digit runs -----------------------------------------------------------------------------

_RUN = re.compile(r"(?<![\w+])[0-9]++(?:[ .\-/+]{1,3}+[0-9]++)*+(?!\w)")
_GROUP = re.compile(r"[0-9]+")
MAX_WINDOW_DIGITS = 19


def _card_brand_length_ok(digits: str) -> bool:
    """Issuer prefixes and lengths of the card schemes met in Europe (ISO/IEC 7812 IINs)."""
    n, first = len(digits), digits[0]
    if first == "4":
        return n in (13, 16, 19)
    if first == "5":
        return 12 <= n <= 19  # Mastercard 51-55 (16), Maestro 50/56-58 (12-19)
    if first == "2":
        head = int(digits[:4])
        return (2200 <= head <= 2204 or 2221 <= head <= 2720) and n == 16  # Mir, Mastercard 2-series
    if first == "3":
        if digits[:2] in ("34", "37"):
            return n == 15  # Amex
        if digits[:2] == "35":
            return 16 <= n <= 19  # JCB
        return digits[:2] in ("30", "36", "38", "39") and 14 <= n <= 19  # Diners
    if first == "6":
        return 16 <= n <= 19  # Discover, UnionPay, Maestro 6x, RuPay
    if first == "1":
        return n == 15  # UATP
    if first == "8":
        return digits[:2] == "81" and 16 <= n <= 19  # UnionPay 81
    return False


def is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_brand_length_ok(digits) and len(set(digits)) > 1 and luhn.is_valid(digits)


def _no_fodselsnummer(digits: str) -> bool:
    # stdnum validates the check digits and the birth date; it rejects FH-numbers (no date by
    # design) and Skatteetaten's synthetic test numbers (month + 80), which are identity numbers
    # all the same, so those are accepted on their two check digits.
    if len(digits) != 11:
        return False
    if fodselsnummer.is_valid(digits):
        return True
    checks_ok = digits[9] == fodselsnummer.calc_check_digit1(digits) and digits[10] == fodselsnummer.calc_check_digit2(digits)
    return checks_ok and (digits[0] in "89" or 81 <= int(digits[2:4]) <= 92)


def _ru_snils(digits: str) -> bool:
    # python-stdnum 2.2 has no ru.snils yet: the Pension Fund's published rule (weights 9..1,
    # sum mod 101, 100 -> 00), only defined above 001-001-998.
    if len(digits) != 11 or int(digits[:9]) <= 1001998:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(9, 0, -1))) % 101
    return f"{total % 100:02d}" == digits[9:]


def _dk_cpr(digits: str) -> bool:
    return len(digits) == 10 and cpr.is_valid(digits)


def _se_personnummer(digits: str) -> bool:
    return len(digits) in (10, 12) and personnummer.is_valid(digits)


def _si_emso(digits: str) -> bool:
    return len(digits) == 13 and emso.is_valid(digits)


NUMERIC_IDS: dict[str, Callable[[str], bool]] = {
    "no": _no_fodselsnummer,
    "se": _se_personnummer,
    "dk": _dk_cpr,
    "si": _si_emso,
    "ru": _ru_snils,
}


class Run:
    """A run of digit groups; whether a business label governs it is only worked out if asked."""

    __slots__ = ("start", "end", "groups", "_folded", "_business")

    def __init__(self, folded: str, start: int, end: int, groups: tuple[tuple[int, int], ...]) -> None:
        self.start, self.end, self.groups, self._folded = start, end, groups, folded
        self._business: bool | None = None

    @property
    def business(self) -> bool:
        if self._business is None:
            self._business = nearest_cue(self._folded, self.start, self.end) == "business"
        return self._business


def digit_runs(folded: str) -> list[Run]:
    return [
        Run(folded, m.start(), m.end(), tuple(g.span() for g in _GROUP.finditer(folded, m.start(), m.end())))
        for m in _RUN.finditer(folded)
    ]


_DATE = re.compile(r"(?:\d{1,2}([./-]) ?\d{1,2}\1 ?\d{2,4}|\d{4}([./-])\d{1,2}\2\d{1,2})")


def looks_like_date(text: str) -> bool:
    """15.12.2026, 24. 11. 2026, 24/11/2026, 2026-11-24 with a day and month that exist."""
    if _DATE.fullmatch(text) is None:
        return False
    first, second, third = (int(p) for p in re.split(r"[./-] ?", text))
    if first > 31:
        return 1 <= second <= 12 and 1 <= third <= 31
    return (1 <= first <= 31 and 1 <= second <= 12) or (1 <= first <= 12 and 1 <= second <= 31)


def _windows(run: Run, folded: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, digits, separators) for every window of whole groups of at most 19 digits."""
    groups = run.groups
    for i in range(len(groups)):
        digits, seps = "", ""
        for j in range(i, len(groups)):
            if j > i:
                seps += folded[groups[j - 1][1] : groups[j][0]]
            digits += folded[groups[j][0] : groups[j][1]]
            if len(digits) > MAX_WINDOW_DIGITS:
                break
            yield groups[i][0], groups[j][1], digits, seps


def numeric_candidates(folded: str, runs: list[Run], national_ids: list[str]) -> Iterator[Candidate]:
    id_checks = [(country, NUMERIC_IDS[country]) for country in national_ids if country in NUMERIC_IDS]
    for run in runs:
        for start, end, digits, seps in _windows(run, folded):
            n = len(digits)
            if n < 10:
                continue
            if n >= 13 and is_card(digits):
                yield Candidate(start, end, "card", not run.business)
            if "/" in seps:
                continue  # nobody writes an identity number with slashes; references and dates do
            for country, valid in id_checks:
                if valid(digits) and _plausible_id(country, folded, start, end, digits, seps):
                    yield Candidate(start, end, f"national_id_{country}", not run.business)


_BIRTH_DATE = {"no": fodselsnummer.get_birth_date, "se": personnummer.get_birth_date, "dk": cpr.get_birth_date,
               "si": emso.get_birth_date}


def _plausible_id(country: str, folded: str, start: int, end: int, digits: str, seps: str) -> bool:
    if country == "dk" and not _dk_written_as_cpr(folded, start, end, seps):
        return False
    if country == "se" and not (seps in ("", "-", "+", " ") and (not seps or len(folded[start:end].split(seps)[-1]) == 4)):
        return False
    # References are stamped with the date they were made ("20261123-0042"); a person born in the
    # last year rarely chats with a support desk. Such an id counts only after an identity cue.
    try:
        born = _BIRTH_DATE[country](digits) if country in _BIRTH_DATE else None
    except ValueError:
        born = None
    if born is not None and (date.today() - born).days < 366:
        return nearest_cue(folded, start, end) == "national_id"
    return True


def _dk_written_as_cpr(folded: str, start: int, end: int, seps: str) -> bool:
    # A CPR number has no check digit since 2007, so ten digits that start with a date are not
    # enough: it counts only written as DDMMYY-SSSS or introduced by an identity-number cue.
    return seps == "-" and end - start == 11 or nearest_cue(folded, start, end) == "national_id"


_HETU = re.compile(r"(?<![\w+])[0-9]{6}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Ya-y](?!\w)")


def hetu_candidates(folded: str) -> Iterator[Candidate]:
    for match in _HETU.finditer(folded):
        if hetu.is_valid(match.group().upper()):
            business = nearest_cue(folded, match.start(), match.end()) == "business"
            yield Candidate(match.start(), match.end(), "national_id_fi", not business)


# ---- IBAN -----------------------------------------------------------------------------------

_IBAN_HEAD = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}[ .\-]?[0-9]{2}")
_IBAN_PART = re.compile(r"[ .\-/]{0,3}([0-9A-Za-z]+)")
# IBAN length per country from python-stdnum's copy of the SWIFT IBAN registry ("NO": 15): only
# the prefix of exactly that length is worth validating, and "am 24" in a sentence is no IBAN.
IBAN_LENGTH = {
    country: 4 + sum(int(n) for n in re.findall(r"(\d+)!", props["bban"]))
    for _, country, _, props, _ in numdb.get("iban").prefixes
    if props.get("bban")
}


def iban_candidates(folded: str) -> Iterator[Candidate]:
    """Country code, check digits, then whole tokens until the country's IBAN length is reached,
    so "NO93 8601 1117 947 takk" stops before "takk"."""
    for head in _IBAN_HEAD.finditer(folded):
        country = folded[head.start() : head.start() + 2].upper()
        length = IBAN_LENGTH.get(country)
        if length is None:
            continue
        compact = country + folded[head.end() - 2 : head.end()]
        pos = head.end()
        while len(compact) < length:
            part = _IBAN_PART.match(folded, pos)
            if part is None:
                break
            compact += part.group(1).upper()
            pos = part.end()
        # Checksum and the registry's BBAN structure; not the per-country bank registries, which
        # lag behind new banks (and would let a real account number through).
        if len(compact) == length and iban.is_valid(compact, check_country=False):
            yield Candidate(head.start(), pos, "iban")


# ---- phone numbers --------------------------------------------------------------------------

# Stretches that could hold a phone number: digits and the punctuation phone numbers are written
# with. Only those with at least seven digits that are not a date go to the matcher (libphonenumber
# is thorough and slow; most digit runs in a chat are dates, prices and quantities).
_PHONE_STRETCH = re.compile(r"\+?\(?[0-9][0-9 ().\-/]*[0-9]\)?")
MIN_PHONE_DIGITS = 7
_GLUED_BEFORE = re.compile(r"[0-9][.\-/]$")
_GLUED_AFTER = re.compile(r"[.\-/][0-9]")
# "030/1234567" is a German phone number; "77-2026/11" and "11/2026" are references and dates.
_SHORT_SLASH_PART = re.compile(r"/\d{1,2}$|^\d{1,2}/")


# Numbers that reach a person. Toll-free, premium-rate, shared-cost and universal-access numbers
# are companies' numbers (a hotline is business data), and short ones hide inside longer runs.
PERSONAL_TYPES = frozenset({
    phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE, phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER, phonenumbers.PhoneNumberType.PAGER,
})


def phone_candidates(folded: str, regions: list[str], runs: list[Run], found: list[Candidate]) -> Iterator[Candidate]:
    """``found``: longer entities already validated; digits inside them cannot make a phone number
    that wins the span contest, so they are not offered to the (slow) matcher again."""
    seen: set[tuple[int, int]] = set()
    covered = bytearray(len(folded))
    for c in found:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for stretch in _PHONE_STRETCH.finditer(folded):
        text, start, end = stretch.group(), stretch.start(), stretch.end()
        free = sum(1 for i, ch in enumerate(text, start) if ch.isdigit() and not covered[i])
        if free < MIN_PHONE_DIGITS or looks_like_date(text.strip()) or _glued_to_letters(folded, start, end):
            continue  # "1Z999AA10123456784": whatever the matcher says, not a phone number
        cue = nearest_cue(folded, start, end)
        if cue == "business":
            continue  # "Ordre 98765432"
        # A number written with its country code reads the same from any region.
        tried = regions[:1] if text.startswith("+") else regions
        read_whole = False
        for region in tried:
            whole = False
            for match_start, match_end, raw, personal in _matches(folded, start, end, region, phonenumbers.Leniency.VALID):
                whole = whole or (match_start <= start and match_end >= end)
                if personal and (match_start, match_end) not in seen:
                    seen.add((match_start, match_end))
                    candidate = _phone(folded, match_start, match_end, raw, runs)
                    if candidate is not None:
                        yield candidate
            if whole:
                read_whole = True
                break  # no other region can read a longer number out of this stretch
        if not read_whole and cue == "phone":
            # "call me on 07700 900123": introduced as a phone number, so a number of a possible
            # length is enough (invented and reserved numbers are not valid, but are still numbers).
            for match_start, match_end, raw, _ in _matches(folded, start, end, tried[0], phonenumbers.Leniency.POSSIBLE):
                candidate = _phone(folded, match_start, match_end, raw, runs)
                if candidate is not None:
                    yield candidate


def _matches(folded: str, start: int, end: int, region: str, leniency: int) -> Iterator[tuple[int, int, str, bool]]:
    """(start, end, raw text, reaches a person) for each number the matcher reads in the stretch."""
    # One character either side, so the matcher still sees what the number is glued to.
    lo, hi = max(0, start - 1), min(len(folded), end + 1)
    for match in phonenumbers.PhoneNumberMatcher(folded[lo:hi], region, leniency=leniency):
        yield lo + match.start, lo + match.end, match.raw_string, phonenumbers.number_type(match.number) in PERSONAL_TYPES


def _glued_to_letters(folded: str, start: int, end: int) -> bool:
    return (start > 0 and folded[start - 1].isalpha()) or (end < len(folded) and folded[end].isalpha())


def _phone(folded: str, start: int, end: int, raw: str, runs: list[Run]) -> Candidate | None:
    # A part of a longer dotted or dashed code (a date, a case number) is not a phone number.
    if looks_like_date(raw) or _SHORT_SLASH_PART.search(raw) or _GLUED_BEFORE.search(folded, max(0, start - 2), start):
        return None
    if _GLUED_AFTER.match(folded, end):
        return None
    business = nearest_cue(folded, start, end) == "business" or any(
        run.business and run.start < end and start < run.end for run in runs
    )
    return Candidate(start, end, "phone", not business)


# ---- e-mail ---------------------------------------------------------------------------------

# Broad on purpose (any script, combining marks, '/', '=' …): grow outwards from each '@' over
# characters that can be part of an address, trim sentence punctuation, let email-validator decide.
_NOT_IN_ADDRESS = set("<>()[]{},;:\"«»“”„‘’|\\@")
_NOT_IN_DOMAIN = _NOT_IN_ADDRESS | set("'/!?*=+&%$#~^`")
_TRIM_LOCAL = ".'`-"
_TRIM_DOMAIN = ".-_"


def email_candidates(folded: str) -> Iterator[Candidate]:
    at = folded.find("@")
    while at != -1:
        start = at
        while start > 0 and not folded[start - 1].isspace() and folded[start - 1] not in _NOT_IN_ADDRESS:
            start -= 1
        end = at + 1
        while end < len(folded) and not folded[end].isspace() and folded[end] not in _NOT_IN_DOMAIN:
            end += 1
        while start < at and folded[start] in _TRIM_LOCAL:
            start += 1
        while end > at + 1 and folded[end - 1] in _TRIM_DOMAIN:
            end -= 1
        if start < at < end - 1:
            try:
                validate_email(folded[start:end], check_deliverability=False, test_environment=True)
            except EmailNotValidError:
                pass
            else:
                yield Candidate(start, end, "email")
        at = folded.find("@", at + 1)
