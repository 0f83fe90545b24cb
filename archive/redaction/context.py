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
from functools import lru_cache
from typing import Literal

from archive.redaction.text import looks_like_date

Cue = Literal["card", "iban", "national_id", "phone", "business"]

# Sensitive cues, per language. A cue for the candidate's own kind raises confidence most; a cue
# for another sensitive kind still says "the customer is giving personal data here".
SENSITIVE: dict[str, dict[Cue, tuple[str, ...]]] = {
    "no": {
        "card": ("kort", "kortnummer", "kortnr", "bankkort", "kredittkort", "betalingskort", "debetkort", "visa",
                 "mastercard", "amex"),
        "iban": ("iban", "konto", "kontonummer", "kontonr", "bankkonto"),
        "national_id": ("fødselsnummer", "fødselsnr", "fnr", "personnummer", "personnr", "d-nummer", "dnummer", "pnr",
                        "personnummeret", "f.nr",
                        # typed on a keyboard without "ø", as "emso" is for "emšo"
                        "fodselsnummer", "fodselsnr", "foedselsnummer", "foedselsnr"),
        "phone": ("telefon", "telefonnummer", "tlf", "mobil", "mobilnummer", "mobilnr", "mob", "ring", "ringe", "sms",
                  "nå meg", "nås", "mitt nummer", "nummeret mitt"),
    },
    "ru": {
        "card": ("карта", "карты", "карту", "картой", "карточк", "номер карты", "visa", "мир"),
        "iban": ("iban", "счёт", "счет", "счёта", "счета", "р/с", "расчётный", "расчетный"),
        "national_id": ("снилс", "snils", "страховой номер", "страхового свидетельства", "паспорт", "инн физ"),
        "phone": ("телефон", "тел", "моб", "мобильный", "сотовый", "номер телефона", "позвоните", "звоните",
                  "перезвоните", "смс", "whatsapp", "вотсап", "viber", "вайбер", "телеграм", "мой номер"),
    },
    "sl": {
        "card": ("kartica", "kartice", "kartico", "številka kartice", "kreditna", "plačilna"),
        "iban": ("iban", "trr", "transakcijski", "bančni račun", "številka računa"),
        "national_id": ("emšo", "emso", "matična številka občana"),
        "phone": ("telefon", "telefonska", "tel", "mobitel", "mobi", "gsm", "pokličite", "pokliči", "številka telefona",
                  "dosegljiv", "dosegljiva", "moja številka"),
    },
    "en": {
        "card": ("card", "card number", "credit card", "debit card", "cc", "pan", "visa", "mastercard", "amex"),
        "iban": ("iban", "account", "account number", "bank account", "acct"),
        "national_id": ("ssn", "social security", "national id", "personal number", "identity number", "id number",
                        "personal id", "snils"),
        "phone": ("phone", "telephone", "tel", "mobile", "mob", "cell", "cellphone", "landline", "call", "call back",
                  "callback", "ring me", "text me", "whatsapp", "reach me", "my number"),
    },
    "de": {
        "card": ("karte", "kartennummer", "kreditkarte", "kreditkartennummer", "ec-karte", "girokarte", "visa",
                 "mastercard"),
        "iban": ("iban", "konto", "kontonummer", "bankverbindung", "girokonto"),
        "national_id": ("personalausweis", "personennummer", "identifikationsnummer", "sozialversicherungsnummer"),
        "phone": ("telefon", "telefonnummer", "tel", "handy", "handynummer", "mobil", "mobilnummer", "mobilfunk",
                  "rufnummer", "anrufen", "rufen sie", "rückruf", "festnetz", "erreichbar", "meine nummer"),
    },
    "sv/da/fi": {
        "card": ("kortnummer", "kreditkort", "betalkort", "kortti", "kortin"),
        "iban": ("kontonummer", "tilinumero"),
        "national_id": ("personnummer", "cpr", "cpr-nummer", "personnr", "henkilötunnus", "hetu", "sotu"),
        "phone": ("telefon", "mobil", "puhelin", "puhelinnumero", "telefonnummer", "mobilnummer", "mitt nummer",
                  "mit nummer", "numeroni"),
    },
    # Phone cues only: a tenant's customers write in many more languages than the tables above
    # cover, and a number they introduce so is read for the tenant's home regions too.
    "es": {"phone": ("teléfono", "telefono", "móvil", "movil", "celular", "mi número", "mi numero", "llámame")},
    "fr": {"phone": ("téléphone", "mon portable", "mon numéro", "mon numero", "appelez-moi", "rappelez-moi")},
    "it": {"phone": ("cellulare", "il mio numero", "chiamami")},
    "pt": {"phone": ("telefone", "telemóvel", "o meu número", "meu número", "meu numero", "ligue-me")},
    "pl": {"phone": ("numer telefonu", "mój numer", "moj numer", "komórka", "komórki", "zadzwoń")},
    "uk": {"phone": ("телефону", "мій номер", "мобільний", "номер телефону", "зателефонуйте")},
}

# Business cues: what precedes the numbers a support chat is about — orders, invoices, cases and
# tickets, complaints and returns, customer, member and contract numbers, payment references,
# tracking, bank codes, company ids, products, versions and amounts.
BUSINESS: dict[str, tuple[str, ...]] = {
    "no": (
        # orders, invoices, payment references
        "ordre", "ordrenummer", "ordrenr", "bestilling", "bestillingsnummer", "bestillingsnr", "faktura",
        "fakturanummer", "fakturanr", "kid", "kid-nummer", "giro", "kvittering", "kvitteringsnummer", "transaksjon",
        "transaksjonsnummer", "betalingsreferanse",
        # cases, complaints, returns
        "saksnummer", "saksnr", "sak", "sak-id", "henvendelse", "henvendelsesnummer", "referanse", "referansenummer",
        "ref", "reklamasjon", "reklamasjonsnummer", "retur", "returnummer", "returkode", "retursak", "garanti",
        "garantisak", "bytte", "klage", "klagesak", "ticket",
        # customers, contracts, subscriptions
        "kundenummer", "kundenr", "kunde-id", "kundeid", "kunde", "medlemsnummer", "medlemsnr", "avtale",
        "avtalenummer", "kontrakt", "kontraktsnummer", "abonnement", "abonnementsnummer", "polise", "polisenummer",
        "forsikringsnummer", "skadenummer", "målepunkt", "målepunkt-id", "målernummer", "anleggsnummer",
        # companies
        "org.nr", "orgnr", "org nr", "organisasjonsnummer", "foretaksregisteret", "mva",
        # shipping
        "sporingsnummer", "sporing", "sendingsnummer", "sending", "forsendelse", "pakke", "pakkenummer", "kolli",
        "hentekode", "hentenummer",
        # products, versions, amounts
        "versjon", "beløp", "pris", "sum", "totalt", "artikkel", "artikkelnummer", "varenummer", "varenr",
        "serienummer", "imei", "lisens", "lisensnummer", "billett", "billettnummer", "reservasjon", "booking",
        "bookingnummer", "postnummer", "regnr", "registreringsnummer",
    ),
    "ru": (
        "заказ", "заказа", "номер заказа", "счёт-фактура", "счет-фактура", "накладная", "накладной", "трек",
        "трек-номер", "трекинг", "отслеживания", "отправление", "отправления", "посылка", "посылки", "дело",
        "обращение", "обращения", "заявка", "заявки", "тикет", "инн", "огрн", "огрнип", "кпп", "бик", "окпо", "корр",
        "к/с", "артикул", "версия", "сборка", "билд", "прошивка", "сумма", "цена", "стоимость", "договор", "договора",
        "лицензия", "бронь", "бронирования", "квитанция", "чек", "номер чека", "клиента", "клиентский", "претензия",
        "жалоба", "рекламация", "возврат", "возврата", "гарантия", "гарантийный", "талон", "серийный", "imei",
        "модель", "партия", "инвойс", "платёжное поручение", "платежное поручение", "поручение", "транзакция",
        "идентификатор", "промокод", "купон", "индекс", "полис", "лицевой", "лицевой счёт", "лицевой счет",
    ),
    "sl": (
        "naročilo", "naročila", "številka naročila", "račun št", "faktura", "predračun", "dobavnica", "ponudba",
        "sledilna", "sledenje", "pošiljka", "pošiljke", "paket", "zadeva", "zahtevek", "reklamacija", "pritožba",
        "vračilo", "vračila", "garancija", "garancijski", "davčna", "matična številka podjetja", "id za ddv", "ddv",
        "sklic", "referenca", "različica", "verzija", "znesek", "cena", "pogodba", "naročnina", "naročniška",
        "naročniško", "licenca", "rezervacija", "stranke", "številka stranke", "kupec", "serijska", "imei", "artikel",
        "šifra", "koda", "transakcija", "poštna",
    ),
    "en": (
        "order", "order number", "order no", "purchase order", "po number", "invoice", "inv", "case", "case number",
        "ticket", "incident", "request", "complaint", "claim", "return", "rma", "refund", "warranty", "tracking",
        "tracking number", "shipment", "parcel", "package", "consignment", "waybill", "awb", "reference", "ref",
        "customer number", "customer id", "account id", "member", "membership", "subscription", "vat",
        "company number", "reg no", "registration", "version", "build", "release", "amount", "price", "total",
        "serial", "serial number", "sku", "item", "part number", "model", "imei", "licence", "license", "booking",
        "reservation", "confirmation", "receipt", "transaction", "contract", "policy", "customer", "quote",
        "quotation", "sort code", "routing number", "aba", "swift", "bic", "postcode", "zip",
    ),
    "de": (
        "bestellung", "bestellnummer", "auftrag", "auftragsnummer", "rechnung", "rechnungsnummer", "lieferschein",
        "lieferscheinnummer", "beleg", "belegnummer", "quittung", "sendung", "sendungsnummer", "sendungsverfolgung",
        "paket", "paketnummer", "tracking", "trackingnummer", "kundennummer", "kunde", "mitgliedsnummer",
        "aktenzeichen", "az", "vorgang", "vorgangsnummer", "fall", "fallnummer", "ticket", "ticketnummer",
        "reklamation", "reklamationsnummer", "retoure", "retourennummer", "rücksendung", "rücksendenummer",
        "umtausch", "garantie", "ust-idnr", "steuernummer", "handelsregister", "hrb", "version", "betrag", "preis",
        "summe", "artikel", "artikelnummer", "seriennummer", "imei", "lizenz", "buchung", "buchungsnummer", "vertrag",
        "vertragsnummer", "vertragskonto", "versicherungsschein", "policennummer", "zählernummer", "zählpunkt",
        "referenz", "transaktion", "transaktionsnummer", "blz", "bankleitzahl", "bic", "plz", "postleitzahl",
    ),
    "sv/da/fi": (
        "ordernummer", "beställning", "fakturanummer", "ärende", "ärendenummer", "kundnummer", "ocr", "ocr-nummer",
        "bankgiro", "plusgiro", "clearingnummer", "reklamation", "returnummer", "sagsnummer", "tilaus",
        "tilausnumero", "lasku", "laskun", "viitenumero", "viite", "asiakasnumero", "seurantakoodi", "lähetys",
    ),
    "carriers": (
        "ups", "dhl", "postnord", "posten", "bring", "fedex", "gls", "dpd", "tnt", "usps", "hermes", "schenker",
        "budbee", "instabox", "helthjem", "porterbuddy", "почта", "почта россии", "сдэк", "cdek", "boxberry",
        "pošta slovenije", "pošta", "intime", "royal mail", "parcelforce", "evri", "deutsche post",
    ),
    "barcodes": ("ean", "ean-13", "ean-kode", "ean-code", "gtin", "upc", "barcode", "strekkode", "strichcode", "штрихкод",
                 "штрих-код", "črtna koda"),
    "versions": ("windows", "macos", "ios", "android", "firmware", "build", "ver", "sdk", "api"),
    "units": ("kr", "nok", "sek", "dkk", "eur", "usd", "gbp", "rub", "руб", "рублей", "€", "$", "£", "₽"),
}

# Labels of shipments: a number after one of these (or a carrier's name) is a tracking or parcel
# number, which may be longer than any card (USPS IMpb: 22 digits printed in groups of four;
# GS1 SSCC: 18 digits, 20 with its application identifier).
SHIPPING = (
    "sporingsnummer", "sporing", "sendingsnummer", "sending", "forsendelse", "pakke", "pakkenummer", "kolli",
    "трек", "трек-номер", "трекинг", "отслеживания", "отправление", "отправления", "посылка", "посылки",
    "накладная", "накладной", "sledilna", "sledenje", "pošiljka", "pošiljke", "paket", "tracking",
    "tracking number", "shipment", "parcel", "package", "consignment", "waybill", "awb", "sendung",
    "sendungsnummer", "sendungsverfolgung", "paketnummer", "trackingnummer", "lieferschein", "seurantakoodi",
    "lähetys", "sscc",
) + BUSINESS["carriers"]
BUSINESS["shipping"] = ("sscc",)

# Written right after a number, these say it is a company id or an amount ("… 828 MVA", "… kr").
BUSINESS_SUFFIX = ("mva", "kr", "nok", "sek", "dkk", "eur", "usd", "gbp", "rub", "руб", "€", "₽", ",-", "mbit", "gb", "mb")
# Written right before a number: "#2026-118-5567", "№ 4711", "INV-2026-000123".
_CODE_PREFIX = re.compile(r"(?:[#№]\s{0,2}|(?<![^\W\d_])[^\W\d_]{1,6}[-/])$")
# A number right after a version string is its build number: "5.32.0 (53200417)", "v2.14 build 4471".
# Three or more parts (a date of three parts is not a version) or a "v" in front.
_AFTER_VERSION = re.compile(
    r"(?<![\w.])(v?)(\d{1,4}(?:\.\d{1,6}){1,4})(?:[-+][0-9A-Za-z.]{1,12})?[\s,]{0,2}[(\[]?\s{0,2}$", re.IGNORECASE
)

LOOKBEHIND = 32
# The longest text _CODE_PREFIX can match, plus the character its lookbehind reads.
_CODE_PREFIX_LONGEST = 8
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
# short ones only as whole words ("ref", "sak", "tel" would match inside ordinary words). Endings
# that replace final vowels (версия → версии, reklamacija → reklamacije, накладная → накладную)
# are met by registering the keyword without them too, when five letters remain.
_STEM = 5
_VOWELS = "aeiouyæøåäöüáéíóúаеёиоуыэюяьй"


def _stems(keyword: str) -> set[str]:
    """The keyword without one final vowel (версия → верси-и) or all of them (накладная →
    накладн-ую), where five letters remain."""
    cuts = {keyword[:-1] if keyword[-1] in _VOWELS else keyword, keyword.rstrip(_VOWELS)} - {keyword}
    return {stem for stem in cuts if len(stem.split()[-1]) >= _STEM}


# "-nr" abbreviates "-nummer" in Norwegian, Swedish, Danish and German ("Serienr", "Bestellnr",
# "Kundennr", "telefonnr"): each "…nummer" keyword is registered abbreviated too.
for _w, _cue in list(_CUES.items()):
    if _w.endswith("nummer") and len(_w) > len("nummer"):
        _CUES.setdefault(_w[: -len("nummer")] + "nr", _cue)
for _w, _cue in list(_CUES.items()):
    for _stem in _stems(_w):
        _CUES.setdefault(_stem, _cue)
_LONGEST_PHRASE = max(len(k.split()) for k in _CUES)
SHIPPING_KEYS = frozenset(k for w in SHIPPING for k in {w.lower(), *_stems(w.lower())} if _CUES.get(k) == "business")

PHONE_CUE_LANGUAGES: dict[str, tuple[str, ...]] = {}
# A stem that is itself another language's keyword ("telefon", the stem of Portuguese "telefone")
# keeps the languages that list it.
_PHONE_WORDS = {_w for _tables in SENSITIVE.values() for _w in _tables.get("phone", ())}
for _table, _tables in SENSITIVE.items():
    for _w in _tables.get("phone", ()):
        for _key in {_w, *(_stem for _stem in _stems(_w) if _stem not in _PHONE_WORDS)}:
            if _CUES.get(_key) == "phone":
                PHONE_CUE_LANGUAGES[_key] = tuple(dict.fromkeys((*PHONE_CUE_LANGUAGES.get(_key, ()), *_table.split("/"))))
_COMPOUND_HEAD = re.compile(r"^([^\W\d_]+)[-./][^\W\d_]+$")
_WORD = re.compile(r"[^\W\d_]+(?:[-./][^\W\d_]+)*|[€$£₽]")
_SUFFIX = re.compile(r"[\s.:]{0,2}(?:" + "|".join(re.escape(s) for s in BUSINESS_SUFFIX) + r")(?!\w)", re.IGNORECASE)


# A phrase of several words is a keyword only if its first word begins one (inflections change
# the last word only): most phrases are ruled out without a lookup.
_PHRASE_STARTS = frozenset(k.split()[0] for k in _CUES if " " in k)


# Chat text repeats its words: a lookup is a few dictionary probes per cut, a cache hit is one.
@lru_cache(maxsize=1 << 16)
def _lookup(phrase: str, last_word: str) -> str | None:
    """The keyword ``phrase`` is, or is an inflection of."""
    if phrase in _CUES:
        return phrase
    head = _COMPOUND_HEAD.match(phrase)
    if head is not None:
        return _lookup(head.group(1), head.group(1))  # "KID-nr", "Tlf.nr", "Kunden-Nr.": the label comes first
    # Inflections change the end of the last word only.
    for cut in range(len(phrase) - 1, max(_STEM, len(phrase) - len(last_word) + 1) - 1, -1):
        if phrase[:cut] in _CUES:
            return phrase[:cut]
    return None


def _last_keyword(before: str) -> tuple[str, int] | None:
    """The keyword closest to the end of ``before`` and where it ends."""
    words = [(m.group().lower(), m.end()) for m in _WORD.finditer(before)]
    for last in range(len(words) - 1, -1, -1):
        for size in range(min(_LONGEST_PHRASE, last + 1), 0, -1):
            if size > 1 and words[last - size + 1][0] not in _PHRASE_STARTS:
                continue
            phrase = " ".join(w for w, _ in words[last - size + 1 : last + 1]) if size > 1 else words[last][0]
            keyword = _lookup(phrase, words[last][0])
            if keyword is not None:
                return keyword, words[last][1]
    return None


# A business label names the number right after it: "Ordrenummeret mitt er 12345", "Заказ номер
# 45871236", "order no. is 12345". Only such glue may stand between label and number; with other
# words ("I paid the order with 4111 …") or another number ("ordre 12345 betalt med 4111 …") in
# between, the label names something else.
ATTACHED_GAP = 24
GLUE = frozenset(
    """nr no nummer nummeret number num id code kode my mitt min mi er var is was your ditt din the our vår vårt
    deres номер мой моя мое моё ваш вашего вашей ваша наш нашего это под n št številka številko številki je moja
    moj vaša vaše naša naše pod ist lautet meine mein meiner ihre ihr ihrer unsere unser был была было были war
    wurde är bil bila""".split()
)
_GLUE_CHARS = set(" \t:.#№()[]-–—=\"'«»")


def _is_glue(gap: str) -> bool:
    if len(gap) > ATTACHED_GAP:
        return False
    words = _WORD.findall(gap.lower())
    rest = _WORD.sub("", gap)
    return all(w in GLUE for w in words) and all(ch in _GLUE_CHARS for ch in rest)


def attached_label(text: str, start: int, end: int) -> str | None:
    """The business keyword attached to ``text[start:end]`` ("Tracking number: …" → "tracking
    number"), if that is what makes it business."""
    before = text[max(0, start - LOOKBEHIND) : start]
    last = _last_keyword(before)
    if last is None or _CUES[last[0]] != "business" or not _is_glue(before[last[1] :]):
        return None
    return last[0]


_GLUED_WORD = re.compile(r"[^\W\d_]+$")


def glued_cue(text: str, start: int) -> Cue | None:
    """The cue of the word glued right before ``start`` ("fnr15108695088" → national_id)."""
    word = _GLUED_WORD.search(text, max(0, start - LOOKBEHIND), start)
    if word is None:
        return None
    keyword = _lookup(word.group().lower(), word.group().lower())
    return _CUES[keyword] if keyword is not None else None


def nearest_cue(text: str, start: int, end: int) -> Cue | None:
    """The cue that governs the candidate ``text[start:end]``.

    A code prefix (``#``, ``№``, ``INV-``), a version string right before it (a build number) or a
    business keyword attached to the candidate makes it business; otherwise the nearest sensitive
    keyword in the few words before it names its kind; otherwise a unit or company suffix right
    after it (``MVA``, ``kr``) makes it business.
    """
    return governing_cue(text, start, end)[0]


# Several detectors ask about the same span of one message (a digit run's business label, the
# phone stretch over it, the number the matcher reads in it): the answer is worked out once. The
# text's hash is computed once per string, so the key costs little. Small, so that the texts it
# keeps alive are those of the last few messages only.
@lru_cache(maxsize=256)
def governing_cue(text: str, start: int, end: int) -> tuple[Cue | None, tuple[str, ...]]:
    """``nearest_cue`` and, for a phone cue, the languages whose tables list it ("Handy" → de;
    "telefon" → no, sl, de, sv/da/fi): a number introduced so is written the way they write."""
    before = text[max(0, start - LOOKBEHIND) : start]
    code = _CODE_PREFIX.search(before, max(0, len(before) - _CODE_PREFIX_LONGEST))
    if code is not None and _CUES.get(code.group().rstrip("-/ ").lower(), "business") == "business":
        # "#" and "№" are also how a sensitive number is introduced: "СНИЛС № 112-233-445 95",
        # "Phone #: 07400 123456", "телефон № 8 912 …". The cue word attached right before the
        # sign names the number; otherwise the sign makes it a code ("#2026-118-5567", "№ 4711").
        if code.group()[0] in "#№":
            last = _last_keyword(before[: code.start()])
            if last is not None and _CUES[last[0]] != "business" and _is_glue(before[last[1] : code.start()]):
                return _CUES[last[0]], PHONE_CUE_LANGUAGES.get(last[0], ())
        return "business", ()
    version = _AFTER_VERSION.search(before)
    if version is not None and (version.group(1) or version.group(2).count(".") >= 2) and not looks_like_date(version.group(2)):
        return "business", ()
    last = _last_keyword(before)
    if last is not None:
        keyword, keyword_end = last
        cue = _CUES[keyword]
        if cue != "business":
            return cue, PHONE_CUE_LANGUAGES.get(keyword, ())
        if _is_glue(before[keyword_end:]):
            return "business", ()
    if _SUFFIX.match(text, end, end + LOOKAHEAD):
        return "business", ()
    return None, ()
