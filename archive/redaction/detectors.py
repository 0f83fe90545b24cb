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
from typing import Callable, Iterator, Sequence

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum import iban, luhn, numdb
from stdnum.dk import cpr
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.se import personnummer
from stdnum.si import emso

from archive.redaction.context import SHIPPING_KEYS, attached_label, glued_cue, governing_cue, nearest_cue
from archive.redaction.options import regions_for_language
from archive.redaction.text import CYRILLIC, looks_like_date

# Which kinds beat which when two validated spans have the same length.
PRIORITY = {"iban": 0, "card": 1, "national_id": 2, "phone": 3, "email": 4, "card_security_code": 5}


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


# Card schemes' issuer prefixes (ISO/IEC 7812 IINs, as published by the schemes and collected in
# braintree/credit-card-type) and the lengths each issues. A number that is Luhn-valid and fits one
# of these is masked as a card whatever words stand before it: a surviving card number is a PCI
# DSS breach, a masked reference that happens to look exactly like one is not.
#   (first IIN, last IIN, lengths): the IIN is compared on as many leading digits as it has.
CARD_SCHEMES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    # Visa's 13 digits are no longer issued but are in every published test set (4222222222222);
    # they are also an EAN-13 barcode's length, so a business label keeps those (RETIRED_LENGTHS).
    ("4", "4", (13, 16, 19)),  # Visa, Visa Electron, Elo/Dankort co-brands
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("2200", "2204", (16, 17, 18, 19)),  # Mir
    # Maestro also issued 12-digit numbers once; none are in use, and 12 digits are an order number.
    ("50", "50", tuple(range(13, 20))),  # Maestro, Dankort (5019), Verve, Elo
    ("56", "59", tuple(range(13, 20))),  # Maestro
    ("6", "6", (16, 17, 18, 19)),  # Maestro, Discover, UnionPay, RuPay, Elo, Hipercard, Bancontact
    # UK and German Maestro (6759, 6705, 6766 …) also issued 13–15 digits: Opayo's Maestro test cards
    # are 6759000000005, 6705000000008, 6766000000000. No GS1 prefix starts with 67, so no EAN-13 does.
    ("67", "67", (13, 14, 15)),  # Maestro
    ("34", "34", (15,)), ("37", "37", (15,)),  # American Express
    ("3528", "3589", (16, 17, 18, 19)),  # JCB
    ("3088", "3094", (16,)),  # JCB's older range (Authorize.Net's JCB test card 3088000000000017)
    # Diners Club issues 14, 16 and 19 digits; 17 digits starting 302–305 are Amazon order numbers.
    ("300", "305", (14, 16, 19)), ("3095", "3095", (14, 16, 19)),  # Diners Club
    ("36", "36", (14, 16, 19)), ("38", "39", (14, 16, 19)),  # Diners Club
    ("1", "1", (15,)),  # UATP
    ("81", "81", (16, 17, 18, 19)),  # UnionPay 81
    ("8600", "8600", (16,)),  # Uzcard
    ("9792", "9792", (16,)),  # Troy
    ("9860", "9860", (16,)),  # Humo
)


# Card lengths no scheme issues any more: a business label ("EAN", "Artikelnummer") keeps such a number.
RETIRED_LENGTHS = frozenset({13})


def card_scheme_fits(digits: str) -> bool:
    """Whether ``digits`` has a card scheme's issuer prefix and one of its lengths."""
    n = len(digits)
    return any(first <= digits[: len(first)] <= last and n in lengths for first, last, lengths in CARD_SCHEMES)


def is_card(digits: str) -> bool:
    return card_scheme_fits(digits) and len(set(digits)) > 1 and luhn.is_valid(digits)


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


def _run(folded: str, match: re.Match[str]) -> Run:
    return Run(folded, match.start(), match.end(), tuple(g.span() for g in _GROUP.finditer(folded, match.start(), match.end())))


def digit_runs(folded: str) -> list[Run]:
    return [_run(folded, m) for m in _RUN.finditer(folded)]


def _card(start: int, end: int, digits: str, run: Run) -> Candidate:
    """A card; one of a retired length after a business label is kept (RETIRED_LENGTHS), and so is
    a card-shaped window inside a longer tracking number (``_inside_tracking_number``)."""
    kept = (len(digits) in RETIRED_LENGTHS and run.business) or _inside_tracking_number(start, run)
    return Candidate(start, end, "card", not kept)


def _inside_tracking_number(start: int, run: Run) -> bool:
    """A shipping label ("USPS tracking number:", "Sporingsnummer", "SSCC") names a run longer than
    any card, and the card-shaped window starts after the run's first digits: the Luhn-valid window
    "6351 0336 3445 3039" inside USPS's "9400 6351 0336 3445 3039 45" (printed in groups of four)
    is part of the tracking number. The run must be printed as one number, in groups of one
    length (the last may be shorter). A card-shaped number at the start of the run ("tracking:
    4111 1111 1111 1111 2026") or after a differently grouped number ("tracking 12345 4111 1111
    1111 1111") is still a card."""
    sizes = [b - a for a, b in run.groups]
    if start == run.start or sum(sizes) <= MAX_WINDOW_DIGITS or len(set(sizes[:-1])) != 1 or sizes[-1] > sizes[0]:
        return False
    if not run.business:
        return False
    return attached_label(run._folded, run.start, run.end) in SHIPPING_KEYS


# Card numbers typed without a space after a word or before the next ("kortnr4242…", "cc4242…",
# "…4242exp 08/29") or grouped by commas ("4242,4242,4242,4242"). Only cards are looked for in
# these: an identity number or a phone number glued to a word is a product code more often than not.
_GLUED_RUN = re.compile(
    r"(?=[0-9])(?:"  # every alternative starts with a digit; checked first, it keeps the scan fast
    r"(?<=[^\W\d_])[0-9]++(?:[ .\-/]{1,3}+[0-9]++)*+"
    r"|(?<![\w+])[0-9]++(?:[ .\-/]{1,3}+[0-9]++)*+(?=[^\W\d_])"
    r"|(?<![\w,.])[0-9]{4}(?:(?:, ?|[_\u00b7])[0-9]{4}){2,3}(?:(?:, ?|[_\u00b7])[0-9]{1,4})?(?![\w]|[,.][0-9])"
    # A card wrapped onto an indented line ("4111 1111\n    1111 1111"): the fold made the line
    # break a space, so groups of four with up to eight spaces between them.
    r"|(?P<wrapped>(?<![\w+])[0-9]{4}(?: {1,8}[0-9]{4}){3}(?: {1,8}[0-9]{1,4})?(?![\w]|[ .,\-/][0-9]))"
    r")"
)


_AFTER_DIGITS = re.compile(r"[0-9][ .,\-/]{0,8}$")


def glued_card_candidates(folded: str, national_ids: Sequence[str] = (), language: str | None = None) -> Iterator[Candidate]:
    """Cards in glued and comma-, underscore- or middle-dot-grouped runs; identity numbers only
    glued to their own cue word ("fnr15108695088", "emšo0101006500006", "СНИЛС112-233-445 95")."""
    for match in _GLUED_RUN.finditer(folded):
        if match.end() - match.start() < 10:
            continue  # fewer than an identity number's 10 digits, whatever the separators
        if match.group("wrapped") and ("  " not in match.group() or _AFTER_DIGITS.search(folded, max(0, match.start() - 9), match.start())):
            continue  # single spaces are an ordinary run; after more digits, part of a longer number
        id_glued = bool(national_ids) and glued_cue(folded, match.start()) == "national_id"
        if match.end() - match.start() < 13 and not id_glued:
            continue
        run = _run(folded, match)
        if match.end() - match.start() >= 13:
            for start, end, digits, _ in _windows(run, folded):
                if len(digits) >= 13 and is_card(digits):
                    yield _card(start, end, digits, run)
        if id_glued:
            yield from (c for c in numeric_candidates(folded, [run], list(national_ids), language) if c.family == "national_id")


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


# Identity numbers whose check passes often: a Danish CPR has no check digit (every reference
# stamped DDMMYY-NNNN is one), a Swedish personnummer only Luhn (one date-stamped reference in ten),
# SNILS mod 101 (one number in a hundred). A business label attached to one of these keeps it, as
# it keeps a national-format phone number. The Norwegian, Finnish and Slovenian checks pass about
# one random number in a thousand or fewer: no label vetoes those.
WEAK_CHECK_IDS = frozenset({"dk", "se", "ru"})


def numeric_candidates(folded: str, runs: list[Run], national_ids: list[str], language: str | None = None) -> Iterator[Candidate]:
    """Cards and identity numbers among the windows of each run. No business label vetoes a card
    or a strongly checked identity number: "Order: 4111 1111 1111 1111" and "saksnummer
    15108695088" are still a card and a person."""
    id_checks = [(country, NUMERIC_IDS[country]) for country in national_ids if country in NUMERIC_IDS]
    for run in runs:
        for start, end, digits, seps in _windows(run, folded):
            n = len(digits)
            if n < 10:
                continue
            if n >= 13 and is_card(digits):
                yield _card(start, end, digits, run)
            if "/" in seps:
                continue  # nobody writes an identity number with slashes; references and dates do
            for country, valid in id_checks:
                if valid(digits) and _plausible_id(country, folded, start, end, digits, seps, language):
                    vetoed = country in WEAK_CHECK_IDS and run.business
                    yield Candidate(start, end, f"national_id_{country}", not vetoed)


OLDEST_PERSON_DAYS = 120 * 366
_BIRTH_DATE = {"no": fodselsnummer.get_birth_date, "se": personnummer.get_birth_date, "dk": cpr.get_birth_date,
               "si": emso.get_birth_date}


def _plausible_id(country: str, folded: str, start: int, end: int, digits: str, seps: str, language: str | None) -> bool:
    if country == "dk" and not _dk_written_as_cpr(folded, start, end, seps):
        return False
    if country == "se" and not (seps in ("", "-", "+", " ") and (not seps or len(folded[start:end].split(seps)[-1]) == 4)):
        return False
    if country == "ru" and not _ru_written_as_snils(folded, start, end, language):
        return False
    if country in ID_SPLITS and _splits(folded, start, end) not in ID_SPLITS[country]:
        if nearest_cue(folded, start, end) != "national_id":
            return False
    if country == "no" and not fodselsnummer.is_valid(digits):
        # FH-numbers and synthetic test numbers carry no birth date: their two check digits alone
        # pass one number in 121, so they count only after an identity cue.
        return nearest_cue(folded, start, end) == "national_id"
    # References are stamped with the date they were made ("20261123-0042"); a person born in the
    # last year rarely chats with a support desk. Such an id counts only after an identity cue.
    try:
        born = _BIRTH_DATE[country](digits) if country in _BIRTH_DATE else None
    except ValueError:
        born = None
    if born is not None and (date.today() - born).days < 366:
        return nearest_cue(folded, start, end) == "national_id"
    # EMŠO's three-digit year reaches back to 1800: "1004821300010" (born 1821) is a reference.
    # (Other ids put test persons in the 1800s by their century rules: 211062-5629 is a CPR.)
    # Named as an EMŠO, it counts all the same (docs/redaction.md: "only after an identity cue").
    if country == "si" and born is not None and (date.today() - born).days >= OLDEST_PERSON_DAYS:
        return nearest_cue(folded, start, end) == "national_id"
    return True


# Where people split an identity number when they type it: between its parts, the birth date
# whole or as day, month and year (the digits before each separator). Fødselsnummer DDMMYY IIIKK:
# "151086 95088", "18-06-15-92527", "26 11 15 940 14", "10 04 87 44 732", "111115984-03"; EMŠO
# DDMMYYY RR BBB K: "0101006 500006", "0101006 50 000 6". Split any other way ("9679-8728-536"
# passes the fødselsnummer checks), it counts only after an identity cue.
ID_SPLITS: dict[str, frozenset[tuple[int, ...]]] = {
    "no": frozenset({(), (6,), (9,), (6, 9), (2, 4, 6), (2, 4, 6, 8), (2, 4, 6, 9)}),
    "si": frozenset({(), (7,), (7, 9), (7, 12), (7, 9, 12), (2, 4, 7), (2, 4, 7, 9), (2, 4, 7, 9, 12)}),
}


def _splits(folded: str, start: int, end: int) -> tuple[int, ...]:
    """How many digits precede each separator in ``folded[start:end]``."""
    cuts, seen = [], 0
    for index in range(start, end):
        if folded[index].isdigit():
            seen += 1
        elif folded[index - 1].isdigit():
            cuts.append(seen)
    return tuple(cuts)


# SNILS is printed 112-233-445 95; customers type it so, with dashes or spaces only, or as eleven
# digits. Its check (mod 101) passes one number in a hundred, so a British landline written
# 0121 234 5678 would pass too: it counts after an identity cue, or in its written forms in a
# Russian context (the conversation's language, or Cyrillic text around it).
_SNILS_WRITTEN = re.compile(r"[0-9]{11}|[0-9]{3}[ -][0-9]{3}[ -][0-9]{3}[ -][0-9]{2}")
RUSSIAN_CONTEXT = 80  # characters either side in which Cyrillic text makes the context Russian


def _ru_written_as_snils(folded: str, start: int, end: int, language: str | None) -> bool:
    if nearest_cue(folded, start, end) == "national_id":
        return True  # "СНИЛС 112233 / 44595": named, so any grouping (a split over two messages too)
    if _SNILS_WRITTEN.fullmatch(folded, start, end) is None:
        return False
    return (language or "").lower().split("-")[0] == "ru" or CYRILLIC.search(
        folded, max(0, start - RUSSIAN_CONTEXT), end + RUSSIAN_CONTEXT
    ) is not None


def _dk_written_as_cpr(folded: str, start: int, end: int, seps: str) -> bool:
    # A CPR number has no check digit since 2007, so ten digits that start with a date are not
    # enough: it counts only written as DDMMYY-SSSS or introduced by an identity-number cue.
    return seps == "-" and end - start == 11 or nearest_cue(folded, start, end) == "national_id"


_HETU = re.compile(r"(?<![0-9+])[0-9]{6}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Ya-y](?!\w)")


def hetu_candidates(folded: str) -> Iterator[Candidate]:
    for match in _HETU.finditer(folded):
        start = match.start()
        if start > 0 and (folded[start - 1].isalnum() or folded[start - 1] == "_") and glued_cue(folded, start) != "national_id":
            continue  # glued to a word: a product code, unless the word is its own cue ("hetu131052-308T")
        if hetu.is_valid(match.group().upper()):
            yield Candidate(start, match.end(), "national_id_fi")


# ---- IBAN -----------------------------------------------------------------------------------

# "IBAN" itself may be glued on: "IBANNO9386011117947".
_IBAN_HEAD = re.compile(r"(?:(?<![0-9A-Za-z])|(?<=[Ii][Bb][Aa][Nn]))[A-Za-z]{2}[ .\-]?[0-9]{2}")
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
            token, need = part.group(1).upper(), length - len(compact)
            if len(token) > need and token[need - 1].isdigit() != token[need].isdigit():
                # Pasted from an invoice that lost its line break: "…0130 00BIC COBADEFFXXX",
                # "NO9386011117947DNBANOKK". The IBAN ends where digits turn into letters (or back).
                compact += token[:need]
                pos = part.start(1) + need
                break
            compact += token
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
# Glued after: a longer dotted, dashed or slashed code, a time of day ("2025-03-14 14:30", which
# the US plan reads as +1 202-503-1414), or the decimals of an amount ("45 678 901,00 kr", "…,-").
_GLUED_AFTER = re.compile(r"[.\-/:][0-9]|,[0-9]{1,2}(?![0-9]|[ .\-/][0-9])|,-")
# Two times of day on the quarter hour joined by a dash: opening hours, not a phone number.
_HOURS = re.compile(r"(?:[01][0-9]|2[0-3])(?:00|15|30|45) ?- ?(?:[01][0-9]|2[0-4])(?:00|15|30|45)")
# A number read from a date and the time after it ("2025-03-14 1430"): a date is evidence.
_LEADING_DATE = re.compile(r"([0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{1,4}) ")
# "030/1234567" is a German phone number; "77-2026/11" and "11/2026" are references and dates.
_SHORT_SLASH_PART = re.compile(r"/\d{1,2}$|^\d{1,2}/")
# How a number written with its country code starts: "+47 …", or an international dialling prefix
# and the country code set apart: "0047 912 34 567", "810 7 912 …". "0012345678903" is a
# zero-padded reference, whatever libphonenumber can read into it.
_INTERNATIONAL_START = re.compile(r"\(?(?:\+|(?:00|810|011) ?[1-9][0-9]{0,2}[ ().\-/])")


# Numbers that reach a person. Toll-free, premium-rate, shared-cost and universal-access numbers
# are companies' numbers (a hotline is business data), and short ones hide inside longer runs.
PERSONAL_TYPES = frozenset({
    phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE, phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER, phonenumbers.PhoneNumberType.PAGER,
})


def phone_candidates(
    folded: str, regions: list[str], runs: list[Run], found: list[Candidate], home: Sequence[str] = ()
) -> Iterator[Candidate]:
    """``found``: longer entities already validated; digits inside them cannot make a phone number
    that wins the span contest, so they are not offered to the (slow) matcher again. ``home``: the
    tenant's home regions, also read for a number introduced by a phone cue whatever the
    conversation's language (a Norwegian shop's English-speaking customer gives a Norwegian number)."""
    seen: set[tuple[int, int]] = set()
    covered = bytearray(len(folded))
    for c in found:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for stretch in _PHONE_STRETCH.finditer(folded):
        text, start, end = stretch.group(), stretch.start(), stretch.end()
        free = sum(1 for i, ch in enumerate(text, start) if ch.isdigit() and not covered[i])
        if free < MIN_PHONE_DIGITS or looks_like_date(text.strip()) or _glued_to_letters(folded, start, end):
            continue  # "1Z999AA10123456784": whatever the matcher says, not a phone number
        link = _click_to_chat(folded, start, end)
        if link is not None:
            yield link
            continue
        cue, cue_languages = governing_cue(folded, start, end)
        if cue == "business" and not _INTERNATIONAL_START.match(text):
            continue  # "Ordre 98765432"; but "Bestellung +49 171 2345678" is still a person's number
        if text.startswith("+"):
            tried = regions[:1]  # a number written with its country code reads the same from any region
        elif cue == "phone":
            # "Handy 0171 2345678": introduced in German, so written the German way too.
            tried = list(dict.fromkeys([
                *regions, *(r for lang in cue_languages for r in regions_for_language(lang)), *home
            ]))
        else:
            tried = regions
        read_whole = False
        for region in tried:
            whole = False
            for match_start, match_end, raw, personal, international in _matches(
                folded, start, end, region, phonenumbers.Leniency.VALID
            ):
                whole = whole or (match_start <= start and match_end >= end)
                if personal and (match_start, match_end) not in seen:
                    seen.add((match_start, match_end))
                    candidate = _phone(folded, match_start, match_end, raw, runs, international)
                    if candidate is not None:
                        yield candidate
            if whole:
                read_whole = True
                break  # no other region can read a longer number out of this stretch
        if not read_whole and cue == "phone":
            # "call me on 07700 900123": introduced as a phone number, so a number of a possible
            # length is enough (invented and reserved numbers are not valid, but are still numbers).
            # The conversation's own region first, then the tenant's home regions.
            for region in dict.fromkeys([tried[0], *home]):
                possible = False
                for match_start, match_end, raw, _, international in _matches(
                    folded, start, end, region, phonenumbers.Leniency.POSSIBLE
                ):
                    if _imei_shaped(raw):
                        continue  # "IMEI telefona: 35-417803-685978-9": the phone's serial number
                    candidate = _phone(folded, match_start, match_end, raw, runs, international)
                    if candidate is not None:
                        possible = True
                        yield candidate
                if possible:
                    break


# Messenger links carry the full international number without its "+": WhatsApp's click-to-chat
# (https://wa.me/4740612345, api.whatsapp.com/send?phone=…, whatsapp://send?phone=…) and Viber's
# (viber://chat?number=…).
_CLICK_TO_CHAT = re.compile(
    r"(?:\bwa\.me/|whatsapp\.com/send/?\?(?:[^\s#]*&)?phone=|whatsapp://send/?\?(?:[^\s#]*&)?phone="
    r"|viber://(?:chat|add)/?\?(?:[^\s#]*&)?number=)$",
    re.IGNORECASE,
)


def _click_to_chat(folded: str, start: int, end: int) -> Candidate | None:
    if start == 0 or folded[start - 1] not in "/=" or _CLICK_TO_CHAT.search(folded, max(0, start - 64), start) is None:
        return None
    digits = re.sub(r"[^0-9]", "", folded[start:end])
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return Candidate(start, end, "phone")


def _imei_shaped(raw: str) -> bool:
    """Fifteen digits passing Luhn, as an IMEI does (and as one number in ten of that length does):
    no valid number has that length in the plans read, so only the lenient reading could take it."""
    digits = re.sub(r"[^0-9]", "", raw)
    return len(digits) == 15 and not raw.lstrip("(").startswith("+") and luhn.is_valid(digits)


def _matches(folded: str, start: int, end: int, region: str, leniency: int) -> Iterator[tuple[int, int, str, bool, bool]]:
    """(start, end, raw text, reaches a person, written with its country code) for each number the
    matcher reads in the stretch."""
    # One character either side, so the matcher still sees what the number is glued to.
    lo, hi = max(0, start - 1), min(len(folded), end + 1)
    for match in phonenumbers.PhoneNumberMatcher(folded[lo:hi], region, leniency=leniency):
        raw = match.raw_string
        yield lo + match.start, lo + match.end, raw, phonenumbers.number_type(match.number) in PERSONAL_TYPES, _international(raw, region)


_IDD = ("00", "810", "011")  # international dialling prefixes: most of the world, Russia, North America


def _international(raw: str, region: str) -> bool:
    """Written with + and a country code, or with an international dialling prefix and the country
    code as a group of its own (0047 912 34 567; from Russia 810 7 …)."""
    if raw.lstrip("(").startswith("+"):
        return True
    groups = re.findall(r"[0-9]+", raw)
    if not groups:
        return False
    if groups[0] in _IDD:
        country = groups[1] if len(groups) > 1 else ""
    else:
        country = next((groups[0][len(idd) :] for idd in _IDD if groups[0].startswith(idd)), "")
    try:
        number = phonenumbers.parse(raw, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return False
    return number.country_code_source == phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD and country == str(number.country_code)


def _glued_to_letters(folded: str, start: int, end: int) -> bool:
    return (start > 0 and folded[start - 1].isalpha()) or (end < len(folded) and folded[end].isalpha())


def _phone(folded: str, start: int, end: int, raw: str, runs: list[Run], international: bool) -> Candidate | None:
    # A part of a longer dotted or dashed code (a date, a case number) is not a phone number.
    if looks_like_date(raw) or _SHORT_SLASH_PART.search(raw) or _GLUED_BEFORE.search(folded, max(0, start - 2), start):
        return None
    if _GLUED_AFTER.match(folded, end):
        return None
    if _HOURS.fullmatch(raw) is not None and raw[:4] < raw[-4:]:
        return None  # "opening hours 0800-1600": a range of times of day
    leading = _LEADING_DATE.match(raw)
    if leading is not None and looks_like_date(leading.group(1)):
        return None
    if international:
        return Candidate(start, end, "phone")  # no order or case number is written with a country code
    business = nearest_cue(folded, start, end) == "business" or any(
        run.business and run.start < end and start < run.end for run in runs
    )
    return Candidate(start, end, "phone", not business)


# ---- e-mail ---------------------------------------------------------------------------------

# Broad on purpose (any script, combining marks, '/', '=' …): grow outwards from each '@' over
# characters that can be part of an address, trim sentence punctuation, let email-validator decide.
# A typographic apostrophe (iOS smart punctuation: "jane.o’neil@…") continues a local part.
_NOT_IN_ADDRESS = set("<>()[]{},;:\"«»“”„‘’|\\@")
_NOT_IN_LOCAL = _NOT_IN_ADDRESS - {"’"}
_NOT_IN_DOMAIN = _NOT_IN_ADDRESS | set("'/!?*=+&%$#~^`")
_TRIM_LOCAL = ".'`-’"
_TRIM_DOMAIN = ".-_"
# What email-validator rejects but is an address all the same, and as personal: special-use and
# internal domains ("ola.nordmann@firma.local", "admin@localhost"), consecutive dots in the local
# part ("ola..nordmann@…"). The top-level label must be letters, so "foo@1.2.3" is a version.
_LOOSE_ADDRESS = re.compile(
    r"[^\W_][^@\s]*@(?:localhost|[^\W_](?:[\w\-]*[^\W_])?(?:\.[^\W_](?:[\w\-]*[^\W_])?)*\.[^\W\d_]{2,})"
)
# A quoted local part: "ola nordmann"@example.no.
_QUOTED_LOCAL = re.compile(r'"[^"\n@]{1,64}"$')


def _is_address(candidate: str) -> bool:
    try:
        validate_email(candidate.replace("’", "'"), check_deliverability=False, test_environment=True, allow_quoted_local=True)
    except EmailNotValidError:
        return _LOOSE_ADDRESS.fullmatch(candidate) is not None
    return True


def email_candidates(folded: str) -> Iterator[Candidate]:
    at = folded.find("@")
    while at != -1:
        start = at
        quoted = _QUOTED_LOCAL.search(folded, max(0, at - 66), at)
        if quoted is not None:
            start = quoted.start()
        else:
            while start > 0 and not folded[start - 1].isspace() and folded[start - 1] not in _NOT_IN_LOCAL:
                start -= 1
        end = at + 1
        while end < len(folded) and not folded[end].isspace() and folded[end] not in _NOT_IN_DOMAIN:
            end += 1
        while start < at and folded[start] in _TRIM_LOCAL:
            start += 1
        while end > at + 1 and folded[end - 1] in _TRIM_DOMAIN:
            end -= 1
        if start < at < end - 1 and _is_address(folded[start:end]):
            yield Candidate(start, end, "email")
        at = folded.find("@", at + 1)


# ---- card security codes ----------------------------------------------------------------------

# PCI DSS 3.3.1 forbids keeping the card verification code after authorisation, and customers do
# type it into chats ("CVC: 737", "kontrollsiffer 123", "код CVV 456"). Three or four digits are
# everywhere in a chat, so only a code right after its own name counts: the name (every scheme's:
# CVV2, CVC2, CAV2, CID, CVN2, and the acquirers' CV2, CSC, CVD; in any inflection customers
# type, "CVC-en", "CVC-koden", "kontrollsifrene"), at most a possessive that follows the noun
# ("koden min"), a colon, dash, "is"/"er"/"je"/"ist"/"es"/"är"/"—", then the digits standing alone.
# "CID" counts only in capitals: in lower case it is a customer or case id more often than not.
_CODE_WORD = (
    r"code|number|no\.?|nr\.?|nummer(?:et)?|kode(?:n)?|koda|kodo|kod(?:en)?|код(?:а|ом)?|номер|številk[aeo]"
    r"|código|cifre(?:ne)?|siffer(?:et)?|sifre(?:ne)?"
)
_SECURITY_CODE = re.compile(
    # (The first letters of every name, checked first: a chat line is scanned for them quickly.)
    r"(?=[cskvpк])(?<!\w)(?:(?:cvv2?|cvc2?|cvn2?|cav2|cv2|csc|cvd|(?-i:CID))(?:-?en)?(?:[ \-]?(?:" + _CODE_WORD + r"))?"
    r"|(?:card )?security code|card code|card verification (?:code|value|number)|sicherheitscode"
    r"|(?:karten)?prüf(?:nummer|ziffer|code)|kontrollsiffer(?:et|e|ene)?|kontrollsifr(?:e|ene)"
    r"|sikkerhetskode(?:n)?|sikkerhedskode(?:n)?|kontrolcifre(?:ne)?|säkerhetskod(?:en)?"
    r"|varnostn[aeio] (?:kod[aeio]|številk[aeo])|код(?:а|ом)? безопасности|код(?:а)? (?:cvv|cvc)2?"
    r"|código de seguridad|cryptogramme(?: visuel)?)"
    r"(?:[ \t]{1,2}(?:min|mitt|mi|moja|moj|mine))?"
    r"[ \t]{0,2}(?:[:=\-—][ \t]{0,2}|(?:is|er|je|ist|es|est|är|on|это|sind|are)[ \t:]{1,2})?"
    r"([0-9]{3,4})(?![0-9A-Za-z]|[.,/\-][0-9])",
    re.IGNORECASE,
)


def security_code_candidates(folded: str) -> Iterator[Candidate]:
    for match in _SECURITY_CODE.finditer(folded):
        yield Candidate(match.start(1), match.end(1), "card_security_code")
