"""Words around a candidate number that say whether it is sensitive or a business number.

A validated checksum says a number *could* be a card or an identity number; the words before it
say what the customer meant. A business label attached to it ("Ordre #…", "Заказ №…", "KID …",
"Sporingsnummer …", a carrier's name) keeps it, because a compliance archive that blanks order,
case and tracking numbers destroys the evidence it exists to keep. A sensitive cue ("kortnummer",
"телефон", "EMŠO" …) nearer to the number overrides that label, lets a Danish CPR (no check digit)
or a recently born person's id count, and lets a phone number of merely possible length count.

Keywords of every language apply to every conversation (customers mix languages, and the
conversation's language tag is often missing); the tables are per language only so they can be
read and extended by people who speak it. Matching is case-insensitive on words; see
docs/redaction.md for the whole rule.
"""

from __future__ import annotations

import re
from typing import Literal

Cue = Literal["card", "iban", "national_id", "phone", "business"]

# Sensitive cues, per language. A cue for the candidate's own kind raises confidence most; a cue
# for another sensitive kind still says "the customer is giving personal data here".
SENSITIVE: dict[str, dict[Cue, tuple[str, ...]]] = {
    "no": {
        "card": ("kort", "kortnummer", "kortnr", "bankkort", "kredittkort", "betalingskort", "visa", "mastercard", "amex"),
        "iban": ("iban", "konto", "kontonummer", "kontonr", "bankkonto"),
        "national_id": ("fødselsnummer", "fødselsnr", "fnr", "personnummer", "personnr", "d-nummer", "dnummer", "pnr"),
        "phone": ("telefon", "telefonnummer", "tlf", "mobil", "mobilnummer", "ring", "ringe", "sms"),
    },
    "ru": {
        "card": ("карта", "карты", "карту", "картой", "карточк", "номер карты", "visa", "мир"),
        "iban": ("iban", "счёт", "счет", "счёта", "счета", "р/с", "расчётный", "расчетный", "лицевой"),
        "national_id": ("снилс", "паспорт", "инн физ"),
        "phone": ("телефон", "тел", "моб", "мобильный", "номер телефона", "позвоните", "звоните", "перезвоните", "whatsapp", "вотсап", "телеграм"),
    },
    "sl": {
        "card": ("kartica", "kartice", "kartico", "številka kartice", "kreditna", "plačilna"),
        "iban": ("iban", "trr", "transakcijski", "bančni račun", "številka računa"),
        "national_id": ("emšo", "emso", "matična številka občana"),
        "phone": ("telefon", "telefonska", "tel", "mobitel", "gsm", "pokličite", "pokliči", "številka telefona"),
    },
    "en": {
        "card": ("card", "card number", "credit card", "debit card", "cc", "pan", "visa", "mastercard", "amex"),
        "iban": ("iban", "account", "account number", "bank account", "acct"),
        "national_id": ("ssn", "social security", "national id", "personal number", "identity number", "id number", "personal id"),
        "phone": ("phone", "telephone", "tel", "mobile", "cell", "call", "text me", "whatsapp", "reach me"),
    },
    "de": {
        "card": ("karte", "kartennummer", "kreditkarte", "kreditkartennummer", "ec-karte", "girokarte", "visa", "mastercard"),
        "iban": ("iban", "konto", "kontonummer", "bankverbindung", "girokonto"),
        "national_id": ("personalausweis", "personennummer", "identifikationsnummer", "sozialversicherungsnummer"),
        "phone": ("telefon", "telefonnummer", "tel", "handy", "handynummer", "mobil", "mobilnummer", "rufnummer", "anrufen", "rufen sie"),
    },
    "sv/da/fi": {
        "card": ("kortnummer", "kreditkort", "betalkort", "kortti", "kortin"),
        "iban": ("kontonummer", "tilinumero"),
        "national_id": ("personnummer", "cpr", "cpr-nummer", "personnr", "henkilötunnus", "hetu", "sotu"),
        "phone": ("telefon", "mobil", "puhelin", "puhelinnumero"),
    },
}

# Business cues: what precedes order, invoice, case, customer, company, payment-reference and
# tracking numbers, versions and amounts.
BUSINESS: dict[str, tuple[str, ...]] = {
    "no": (
        "ordre", "ordrenummer", "ordrenr", "bestilling", "bestillingsnummer", "bestillingsnr", "faktura", "fakturanummer",
        "fakturanr", "kid", "kid-nummer", "saksnummer", "saksnr", "sak", "referanse", "ref", "kundenummer", "kundenr",
        "org.nr", "orgnr", "org nr", "organisasjonsnummer", "foretaksregisteret", "mva", "sporingsnummer", "sporing",
        "sendingsnummer", "sending", "pakke", "pakkenummer", "kolli", "versjon", "beløp", "pris", "sum", "totalt",
        "artikkel", "artikkelnummer", "varenummer", "serienummer", "lisens", "billett", "reservasjon", "booking",
        "kunde",
    ),
    "ru": (
        "заказ", "заказа", "номер заказа", "счёт-фактура", "счет-фактура", "накладная", "накладной", "трек", "трек-номер",
        "трекинг", "отслеживания", "отправление", "отправления", "посылка", "посылки", "дело", "обращение", "обращения",
        "заявка", "заявки", "тикет", "инн", "огрн", "кпп", "бик", "артикул", "версия", "сумма", "цена", "договор",
        "договора", "лицензия", "бронь", "бронирования", "квитанция", "клиента",
    ),
    "sl": (
        "naročilo", "naročila", "številka naročila", "račun št", "faktura", "sledilna", "sledenje", "pošiljka", "pošiljke",
        "paket", "zadeva", "zahtevek", "davčna", "matična številka podjetja", "id za ddv", "ddv", "sklic", "referenca",
        "različica", "verzija", "znesek", "cena", "pogodba", "licenca", "rezervacija", "stranke",
    ),
    "en": (
        "order", "order number", "order no", "invoice", "inv", "case", "case number", "ticket", "tracking", "tracking number",
        "shipment", "parcel", "package", "consignment", "waybill", "awb", "reference", "ref", "customer number",
        "customer id", "account id", "vat", "company number", "reg no", "registration", "version", "build", "release",
        "amount", "price", "total", "serial", "serial number", "sku", "item", "licence", "license", "booking", "reservation",
        "confirmation", "receipt", "transaction", "contract", "policy", "customer",
    ),
    "de": (
        "bestellung", "bestellnummer", "auftrag", "auftragsnummer", "rechnung", "rechnungsnummer", "sendung",
        "sendungsnummer", "sendungsverfolgung", "paket", "paketnummer", "kundennummer", "aktenzeichen", "vorgang",
        "vorgangsnummer", "ticket", "ust-idnr", "steuernummer", "handelsregister", "hrb", "version", "betrag", "preis",
        "summe", "artikelnummer", "seriennummer", "lizenz", "buchung", "vertrag", "vertragsnummer", "referenz", "kunde",
    ),
    "carriers": (
        "ups", "dhl", "postnord", "posten", "bring", "fedex", "gls", "dpd", "tnt", "usps", "hermes", "schenker",
        "budbee", "instabox", "helthjem", "porterbuddy", "почта", "почта россии", "сдэк", "cdek", "boxberry",
        "pošta slovenije", "pošta", "intime", "royal mail", "parcelforce", "evri", "deutsche post",
    ),
    "versions": ("windows", "macos", "ios", "android", "firmware", "build", "ver", "sdk", "api"),
    "units": ("kr", "nok", "sek", "dkk", "eur", "usd", "gbp", "rub", "руб", "рублей", "€", "$", "£", "₽"),
}

# Written right after a number, these say it is a company id or an amount ("… 828 MVA", "… kr").
BUSINESS_SUFFIX = ("mva", "kr", "nok", "sek", "dkk", "eur", "usd", "gbp", "rub", "руб", "€", "₽", ",-", "mbit", "gb", "mb")
# Written right before a number: "#2026-118-5567", "№ 4711", "INV-2026-000123".
_CODE_PREFIX = re.compile(r"(?:[#№]\s{0,2}|(?<![^\W\d_])[^\W\d_]{1,6}[-/])$")

LOOKBEHIND = 32
LOOKAHEAD = 8


_CUES: dict[str, Cue] = {}
for _tables in SENSITIVE.values():
    for _cue, _words in _tables.items():
        for _w in _words:
            _CUES.setdefault(_w.lower(), _cue)
for _words in BUSINESS.values():
    for _w in _words:
        _CUES.setdefault(_w.lower(), "business")
# Keywords longer than four characters also match their inflections (kortnummeret, заказа);
# short ones only as whole words ("ref", "sak", "tel" would match inside ordinary words).
_STEM = 5
_LONGEST_PHRASE = max(len(k.split()) for k in _CUES)
_COMPOUND_HEAD = re.compile(r"^([^\W\d_]+)[-./][^\W\d_]+$")
_WORD = re.compile(r"[^\W\d_]+(?:[-./][^\W\d_]+)*|[€$£₽]")
_SUFFIX = re.compile(r"[\s.:]{0,2}(?:" + "|".join(re.escape(s) for s in BUSINESS_SUFFIX) + r")(?!\w)", re.IGNORECASE)


def _lookup(phrase: str, last_word: str) -> Cue | None:
    cue = _CUES.get(phrase)
    if cue is not None:
        return cue
    head = _COMPOUND_HEAD.match(phrase)
    if head is not None:
        return _lookup(head.group(1), head.group(1))  # "KID-nr", "Tlf.nr", "Kunden-Nr.": the label comes first
    # Inflections change the end of the last word only.
    for cut in range(len(phrase) - 1, max(_STEM, len(phrase) - len(last_word) + 1) - 1, -1):
        cue = _CUES.get(phrase[:cut])
        if cue is not None:
            return cue
    return None


def _last_keyword(before: str) -> tuple[Cue, int] | None:
    """The keyword closest to the end of ``before`` and where it ends."""
    words = [(m.group().lower(), m.end()) for m in _WORD.finditer(before)]
    for last in range(len(words) - 1, -1, -1):
        for size in range(min(_LONGEST_PHRASE, last + 1), 0, -1):
            phrase = " ".join(w for w, _ in words[last - size + 1 : last + 1])
            cue = _lookup(phrase, words[last][0])
            if cue is not None:
                return cue, words[last][1]
    return None


# A business label names the number right after it: "Ordrenummeret mitt er 12345", "Заказ номер
# 45871236", "order no. is 12345". Only such glue may stand between label and number; with other
# words ("I paid the order with 4111 …") or another number ("ordre 12345 betalt med 4111 …") in
# between, the label names something else.
ATTACHED_GAP = 24
GLUE = frozenset(
    """nr no nummer nummeret number num id my mitt min mi er var is was your ditt din
    номер мой моя мой ваш вашего ваша это n št številka je moja moj vaša vaše ist lautet meine mein ihre ihr""".split()
)
_GLUE_CHARS = set(" \t:.#№()[]-–—=\"'«»")


def _is_glue(gap: str) -> bool:
    if len(gap) > ATTACHED_GAP:
        return False
    words = _WORD.findall(gap.lower())
    rest = _WORD.sub("", gap)
    return all(w in GLUE for w in words) and all(ch in _GLUE_CHARS for ch in rest)


def nearest_cue(text: str, start: int, end: int) -> Cue | None:
    """The cue that governs the candidate ``text[start:end]``.

    A code prefix (``#``, ``№``, ``INV-``) or a business keyword attached to the candidate makes it
    business; otherwise the nearest sensitive keyword in the few words before it names its kind;
    otherwise a unit or company suffix right after it (``MVA``, ``kr``) makes it business.
    """
    before = text[max(0, start - LOOKBEHIND) : start]
    code = _CODE_PREFIX.search(before)
    if code is not None and _CUES.get(code.group().rstrip("-/ ").lower(), "business") == "business":
        return "business"
    last = _last_keyword(before)
    if last is not None:
        cue, keyword_end = last
        gap = before[keyword_end:]
        if cue != "business":
            return cue
        if _is_glue(gap):
            return "business"
    if _SUFFIX.match(text, end, end + LOOKAHEAD):
        return "business"
    return None
