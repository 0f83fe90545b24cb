"""Builds corpus.jsonl, the development corpus for redaction: ``python tests/redaction_corpus/build.py``.

Every sensitive value comes from a public test-vector source, named next to it:

- python-stdnum's own tests and docstrings (github.com/arthurdejong/python-stdnum: tests/test_iban.doctest,
  tests/test_no_fodselsnummer.doctest, tests/test_se_personnummer.doctest, tests/test_fi_hetu.doctest,
  tests/test_si_emso.doctest, stdnum/dk/cpr.py, stdnum/ru/snils.py);
- Microsoft Presidio's recognizer tests (github.com/microsoft/presidio: presidio-analyzer/tests/
  test_credit_card_recognizer.py, test_email_recognizer.py, test_phone_recognizer.py);
- libphonenumber's example numbers (``phonenumbers.example_number_for_type`` per region);
- published test card numbers (Stripe, Adyen, Braintree/PayPal documentation);
- python-email-validator's syntax tests (github.com/JoshData/python-email-validator: tests/test_syntax.py).

The sentences around them are written the way customers type in Norwegian, Russian, Slovenian,
English and German chats: dots and no-break spaces in numbers, line breaks, numbers split over two
messages, lower-case IBANs with dashes. The negatives (``keep``) are business numbers that must
survive redaction: dates, times, prices, order / invoice / case / tracking numbers, company ids,
KID references (several pass Luhn), versions, postal codes.

Item shape (one JSON object per line)::

    {"id": str, "language": str, "text": str} or {..., "messages": [{"author", "at", "text"}]}
    "expect": [{"kind": "card" | "iban" | "national_id" | "phone" | "email", "value": str}]
    "keep": [str]          # substrings that must appear unchanged in the redacted output
    "source": str

A sensitive item leaks when its value, reduced to letters and digits, survives in the output
reduced the same way (a card's kept first six / last four digits therefore do not count).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import luhn

OUT = Path(__file__).with_name("corpus.jsonl")
LANGS = ["nb", "ru", "sl", "en", "de"]
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)

# ---- sensitive values -------------------------------------------------------------------------

CARDS = {
    "Stripe test cards (docs.stripe.com/testing)": [
        "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
        "5105105105105100", "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
        "3056930009020004", "36227206271667", "3566002020360505", "6200000000000005", "4000002500003155",
        "4000000000000002", "4000000000003220",
    ],
    "Adyen test cards (docs.adyen.com/development-resources/test-cards)": [
        "4111111145551142", "5577000055770004", "4988438843884305", "370000000000002", "6771798021000008",
        "36006666333344", "2222400070000005", "5101180000000007", "4035501000000008", "6703444444444449",
        "8171999927660000", "6250946000000016",
    ],
    "Braintree/PayPal sandbox test cards (developer.paypal.com/braintree/docs)": [
        "4111111111111111", "4005519200000004", "4009348888881881", "4012000033330026", "4012000077777777",
        "4217651111111119", "4500600000000061", "2223000048400011", "3530111333300000", "6304000000000000",
    ],
    "Presidio test_credit_card_recognizer.py": [
        "4012888888881881", "122000000000003", "5019717010103742", "30569309025904", "6011000400000000",
        "3528000700000000", "6759649826438453", "4917300800000000", "4484070000000000",
    ],
}

IBANS = {
    "python-stdnum tests/test_iban.doctest (IBAN registry examples)": [
        "NO9386011117947", "DE89370400440532013000", "GB29NWBK60161331926819", "DK5000400440116243",
        "FI2112345600000785", "AT611904300234573201", "CH9300762011623852957", "FR1420041010050500013M02606",
        "EE382200221020145685", "ES9121000418450200051332", "GI75NWBK000000007099453", "HR1210010051863000160",
        "CZ6508000000192000145399", "BG80BNBG96611020345678", "FO6264600001631634", "GL8964710001000206",
    ],
    "IBAN registry (SWIFT) examples, as listed in python-stdnum's iban.dat": [
        "SE4550000000058398257466", "SI56263300012039086", "NL91ABNA0417164300", "BE68539007547034",
        "PL61109010140000071219812874", "IT60X0542811101000000123456", "LT121000011101001000",
        "LV80BANK0000435195001", "RU0204452560040702810412345678901",
    ],
}

NATIONAL_IDS = {
    "no": ("python-stdnum tests/test_no_fodselsnummer.doctest", [
        "10048744732", "10048745364", "11111598403", "15108695088", "18061592527", "23114038547", "23114048690",
        "26111594014", "26111593816", "26111594286", "26111594448", "10048745526",
    ]),
    "se": ("python-stdnum tests/test_se_personnummer.doctest", [
        "670919-9530", "811228-9874", "880320-0016", "880320-0057", "8803200073", "8803200099", "8803200115",
    ]),
    "dk": ("python-stdnum stdnum/dk/cpr.py docstring", ["211062-5629"]),
    "fi": ("python-stdnum tests/test_fi_hetu.doctest", ["131052-308T", "131052A308T", "010101-123N"]),
    "si": ("python-stdnum tests/test_si_emso.doctest", [
        "0101006500006", "1211981500126", "1508995500237", "2001939010010", "2902932505526",
    ]),
    "ru": ("python-stdnum stdnum/ru/snils.py docstring", ["112-233-445 95", "010-242-368 77", "148-481-255 85"]),
}

EMAILS = {
    "Presidio test_email_recognizer.py": ["info@presidio.site", "anotherinfo@presidio.site", "user@xn--80ak6aa92e.com", "a@xn--d1acufc.xn--p1ai"],
    "python-email-validator tests/test_syntax.py": [
        "Abc@example.tld", "Abc.123@test-example.com", "user+mailbox/department=shipping@example.tld",
        "юзер@екзампл.ком", "伊昭傑@郵件.商務", "jeff@臺網中心.tw", "ñoñó@example.tld",
        "чебурашкаящик-с-апельсинами.рф@example.tld", "ιωάννης@εεττ.gr",
    ],
    "issue 11 examples (IDN domains, non-ASCII TLDs, '/' and '=' in the local part)": [
        "ola.nordmann@eksempel.no", "иван.петров@пример.рф", "kupec@trgovina.si", "max.mustermann@beispiel.de",
        "billing/dept=sales@shop.example.com", "kari+chat@firma.no", "OLA.NORDMANN@EXAMPLE.NO", "mila@почта.рф",
    ],
}

PHONE_REGIONS = {"nb": "NO", "ru": "RU", "sl": "SI", "en": "GB", "de": "DE"}
PRESIDIO_PHONES = [("en", "US", "(415) 555-0132"), ("en", "US", "+1 415 555 0132"), ("en", "BR", "+55 11 98456 5666"),
                   ("en", "GB", "+44 (20) 7123 4567"), ("de", "DE", "+49 30 1234567"), ("en", "FR", "+33 1 42 68 53 00")]


def example_numbers(region: str) -> list[phonenumbers.PhoneNumber]:
    types = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP)
    return [n for n in (phonenumbers.example_number_for_type(region, t) for t in types) if n is not None]


# ---- how customers write numbers ------------------------------------------------------------

def groups(digits: str, sizes: list[int]) -> list[str]:
    out, i = [], 0
    for s in sizes:
        if i >= len(digits):
            break
        out.append(digits[i : i + s])
        i += s
    if i < len(digits):
        out.append(digits[i:])
    return out


def card_groups(digits: str) -> list[str]:
    if len(digits) == 15:
        return groups(digits, [4, 6, 5])
    if len(digits) == 14:
        return groups(digits, [4, 6, 4])
    return groups(digits, [4, 4, 4, 4, 4])


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
CARD_STYLES = ["space", "compact", "dash", "dot", "nbsp", "thin", "linebreak", "split", "endash", "narrow", "mixed", "fullwidth", "split"]


def write_grouped(parts: list[str], style: str) -> tuple[str, str | None]:
    """(text, second message or None)."""
    sep = {"space": " ", "compact": "", "dash": "-", "dot": ".", "nbsp": "\u00a0", "thin": "\u2009", "endash": "\u2013",
           "narrow": "\u202f", "fullwidth": " "}.get(style, " ")
    if style == "linebreak":
        half = len(parts) // 2
        return " ".join(parts[:half]) + "\n" + " ".join(parts[half:]), None
    if style == "split":
        half = len(parts) // 2
        return " ".join(parts[:half]), " ".join(parts[half:])
    if style == "mixed":
        return "".join(p + (" " if i % 2 == 0 else "-") for i, p in enumerate(parts)).rstrip(" -"), None
    text = sep.join(parts)
    return (text.translate(FULLWIDTH) if style == "fullwidth" else text), None


CARD_TEMPLATES = {
    "nb": ["Hei! Kortnummeret mitt er {v}", "Kan dere trekke det fra kortet {v}?", "kort: {v} utløper 08/29",
           "Jeg betalte med {v} men fikk ingen kvittering", "{v}", "her er det: {v} takk"],
    "ru": ["Здравствуйте, номер карты {v}", "оплатил картой {v}, деньги списались дважды", "карта {v} срок 08/29",
           "Вот моя карта: {v}", "{v}", "вот {v} спасибо"],
    "sl": ["Pozdravljeni, številka kartice je {v}", "plačal sem s kartico {v}", "Kartica: {v}, velja do 08/29",
           "tukaj je {v}", "{v}", "prosim preverite {v} hvala"],
    "en": ["my card number is {v}", "I paid with {v} and was charged twice", "card {v} exp 08/29 cvc 123",
           "here it is {v}", "{v}", "ok so its {v} thanks"],
    "de": ["Meine Kartennummer ist {v}", "Ich habe mit der Karte {v} bezahlt", "Kreditkarte: {v}, gültig bis 08/29",
           "hier bitte {v}", "{v}", "also die Nummer ist {v} danke"],
}
IBAN_TEMPLATES = {
    "nb": ["Kan dere sende refusjonen til {v}?", "kontonummeret mitt er {v}", "IBAN: {v}", "{v} takk"],
    "ru": ["Верните деньги на счёт {v}", "мой IBAN {v}", "реквизиты: {v}", "{v} спасибо"],
    "sl": ["Vračilo prosim na TRR {v}", "moj IBAN je {v}", "Številka računa: {v}", "{v} hvala"],
    "en": ["Please refund to {v}", "my IBAN is {v}", "bank account: {v}", "{v} thanks"],
    "de": ["Bitte überweisen Sie auf {v}", "meine IBAN lautet {v}", "Konto: {v}", "{v} danke"],
}
ID_TEMPLATES = {
    "nb": ["Fødselsnummeret mitt er {v}", "fnr {v}", "personnummer: {v}", "{v}"],
    "ru": ["мой СНИЛС {v}", "номер: {v}", "{v}", "личный номер {v}"],
    "sl": ["Moj EMŠO je {v}", "emšo: {v}", "{v}", "osebna številka {v}"],
    "en": ["my personal number is {v}", "ID number {v}", "{v}", "national id: {v}"],
    "de": ["Meine Personennummer ist {v}", "ID-Nummer: {v}", "{v}", "hier die Nummer {v}"],
}
PHONE_TEMPLATES = {
    "nb": ["Ring meg på {v}", "mobilnummeret mitt er {v}", "tlf {v}", "{v}", "dere kan nå meg på {v} etter kl 16"],
    "ru": ["Позвоните мне по номеру {v}", "мой телефон {v}", "тел. {v}", "{v}", "лучше звоните на {v} после 18:00"],
    "sl": ["Pokličite me na {v}", "moja telefonska je {v}", "tel. {v}", "{v}", "dosegljiv sem na {v} po 16. uri"],
    "en": ["Call me on {v}", "my mobile is {v}", "phone: {v}", "{v}", "you can reach me at {v} after 4pm"],
    "de": ["Rufen Sie mich unter {v} an", "meine Handynummer ist {v}", "Tel. {v}", "{v}", "erreichbar unter {v} ab 16 Uhr"],
}
EMAIL_TEMPLATES = {
    "nb": ["e-posten min er {v}", "send kvitteringen til {v}", "{v}", "Kontakt: <{v}>"],
    "ru": ["моя почта {v}", "отправьте чек на {v}", "{v}", "email: {v}."],
    "sl": ["moj e-naslov je {v}", "račun pošljite na {v}", "{v}", "kontakt: ({v})"],
    "en": ["my email is {v}", "send the receipt to {v}, thanks", "{v}", "contact: <{v}>"],
    "de": ["meine E-Mail ist {v}", "bitte an {v} schicken", "{v}", "Kontakt: {v}!"],
}
SPLIT_LEADS = {"nb": "kortnummer:", "ru": "номер карты:", "sl": "številka kartice:", "en": "card number:", "de": "Kartennummer:"}


class Builder:
    def __init__(self) -> None:
        self.items: list[dict] = []
        self.counter = itertools.count(1)

    def add(self, language: str, source: str, text: str | None = None, messages: list[dict] | None = None,
            expect: list[dict] | None = None, keep: list[str] | None = None) -> None:
        item: dict = {"id": f"r{next(self.counter):04d}", "language": language}
        if messages is not None:
            item["messages"] = messages
        else:
            item["text"] = text
        item["expect"] = expect or []
        item["keep"] = keep or []
        item["source"] = source
        self.items.append(item)

    def sensitive(self, language: str, source: str, template: str, written: str, second: str | None, kind: str, value: str) -> None:
        expect = [{"kind": kind, "value": value}]
        if second is None:
            self.add(language, source, text=template.format(v=written), expect=expect)
            return
        head = template.split("{v}")[0].strip() or SPLIT_LEADS[language]
        at = T0 + timedelta(minutes=len(self.items))
        self.add(language, source, expect=expect, messages=[
            {"author": "visitor", "at": at.isoformat(), "text": f"{head} {written}"},
            {"author": "visitor", "at": (at + timedelta(seconds=25)).isoformat(), "text": second},
        ])


def build_cards(b: Builder) -> None:
    styles = itertools.cycle(CARD_STYLES)
    langs = itertools.cycle(LANGS)
    for source, cards in CARDS.items():
        for n, card in enumerate(cards):
            for _ in range(2 if n % 3 == 0 else 1):
                lang = next(langs)
                style = next(styles)
                written, second = write_grouped(card_groups(card), style)
                templates = CARD_TEMPLATES[lang]
                b.sensitive(lang, source, templates[(n + len(b.items)) % len(templates)], written, second, "card", card)


def iban_written(iban: str, style: str) -> tuple[str, str | None]:
    parts = groups(iban, [4] * 9)
    if style == "print":
        return " ".join(parts), None
    if style == "compact":
        return iban, None
    if style == "lower-dash":
        return "-".join(parts).lower(), None
    if style == "space-after-cc":
        return iban[:2] + " " + " ".join(groups(iban[2:], [2, 4, 4, 4, 4, 4, 4, 4])), None
    if style == "lower":
        return " ".join(parts).lower(), None
    if style == "nbsp":
        return "\u00a0".join(parts), None
    if style == "linebreak":
        return " ".join(parts[:3]) + "\n" + " ".join(parts[3:]), None
    if style == "split":
        return " ".join(parts[:2]), " ".join(parts[2:])
    raise ValueError(style)


def build_ibans(b: Builder) -> None:
    styles = itertools.cycle(["print", "compact", "lower-dash", "space-after-cc", "lower", "nbsp", "linebreak", "split"])
    langs = itertools.cycle(LANGS)
    for source, ibans in IBANS.items():
        for n, iban in enumerate(ibans):
            for _ in range(2 if n % 2 == 0 else 1):
                lang, style = next(langs), next(styles)
                written, second = iban_written(iban, style)
                templates = IBAN_TEMPLATES[lang]
                b.sensitive(lang, source, templates[len(b.items) % len(templates)], written, second, "iban", iban)


def id_styles(country: str, value: str) -> list[str]:
    digits = "".join(ch for ch in value if ch.isalnum())
    if country == "no":
        return [digits, f"{digits[:6]} {digits[6:]}", f"{digits[:6]}-{digits[6:]}", f"{digits[:2]}.{digits[2:4]}.{digits[4:6]} {digits[6:]}"]
    if country == "ru":
        return [value, digits, f"{digits[:3]} {digits[3:6]} {digits[6:9]} {digits[9:]}"]
    if country == "si":
        return [digits, f"{digits[:7]} {digits[7:]}"]
    return [value]


def build_national_ids(b: Builder) -> None:
    lang_for = {"no": ["nb"], "se": ["en", "nb"], "dk": ["en", "de"], "fi": ["en", "de"], "si": ["sl"], "ru": ["ru"]}
    for country, (source, values) in NATIONAL_IDS.items():
        langs = itertools.cycle(lang_for[country])
        for n, value in enumerate(values):
            compact = "".join(ch for ch in value if ch.isalnum()).upper()
            for k, written in enumerate(id_styles(country, value)[: 2 if n % 2 else 4]):
                lang = next(langs)
                templates = ID_TEMPLATES[lang]
                b.sensitive(lang, source, templates[(n + k) % len(templates)], written, None, "national_id", compact)
    # Split over two messages (same author, seconds apart).
    for lang, country, value in [("nb", "no", "26111593816"), ("sl", "si", "1508995500237"), ("ru", "ru", "11223344595")]:
        b.sensitive(lang, NATIONAL_IDS[country][0], ID_TEMPLATES[lang][0], value[:6], value[6:], "national_id", value)


def phone_written(number: phonenumbers.PhoneNumber, style: str) -> tuple[str, str | None]:
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    nsn = phonenumbers.national_significant_number(number)
    cc = str(number.country_code)
    return {
        "intl": (intl, None),
        "e164": (phonenumbers.format_number(number, PhoneNumberFormat.E164), None),
        "national": (national, None),
        "00": (f"00{cc} {nsn}", None),
        "nbsp": (intl.replace(" ", "\u00a0"), None),
        "dots": ("+" + cc + " " + ".".join(groups(nsn, [3, 2, 3, 3])), None),
        "dashes": (national.replace(" ", "-"), None),
        "linebreak": (f"+{cc} {nsn[:3]}\n{nsn[3:]}", None),
        "split": (f"+{cc} {nsn[:3]}", nsn[3:]),
        "compact-national": (national.replace(" ", "").replace("-", "") if "(" not in national else national, None),
    }[style]


def build_phones(b: Builder) -> None:
    source = "libphonenumber example numbers (phonenumbers.example_number_for_type)"
    styles = itertools.cycle(["intl", "national", "e164", "00", "nbsp", "dots", "dashes", "linebreak", "split", "compact-national", "national"])
    for lang, region in PHONE_REGIONS.items():
        for number in example_numbers(region):
            for _ in range(4):
                style = next(styles)
                written, second = phone_written(number, style)
                templates = PHONE_TEMPLATES[lang]
                nsn = phonenumbers.national_significant_number(number)
                b.sensitive(lang, source, templates[len(b.items) % len(templates)], written, second, "phone", nsn)
    # Numbers from other countries, always written internationally.
    langs = itertools.cycle(LANGS)
    for region in ("SE", "DK", "FI", "PL", "FR", "NL", "UA", "EE", "US", "NO", "RU", "SI", "DE"):
        for number in example_numbers(region)[:2]:
            lang = next(langs)
            written, _ = phone_written(number, "intl")
            templates = PHONE_TEMPLATES[lang]
            b.sensitive(lang, source, templates[len(b.items) % len(templates)], written, None, "phone",
                        phonenumbers.national_significant_number(number))
    for lang, region, written in PRESIDIO_PHONES:
        nsn = phonenumbers.national_significant_number(phonenumbers.parse(written, region))
        b.sensitive(lang, "Presidio test_phone_recognizer.py", PHONE_TEMPLATES[lang][0], written, None, "phone", nsn)


def build_emails(b: Builder) -> None:
    langs = itertools.cycle(LANGS)
    for source, emails in EMAILS.items():
        for n, email in enumerate(emails):
            lang = next(langs)
            templates = EMAIL_TEMPLATES[lang]
            b.sensitive(lang, source, templates[(n + len(b.items)) % len(templates)], email, None, "email", email)


# ---- business numbers that must survive -----------------------------------------------------

def kid(base: str) -> str:
    """A KID reference with a MOD10 (Luhn) check digit, as Norwegian banks issue them."""
    return base + luhn.calc_check_digit(base)


# Luhn-valid, but no card scheme issues these prefixes and lengths (7…, 15 digits from 52, 14 from 34, 9…).
KIDS = [kid("700123456789012"), kid("52000012345678"), kid("3456789012345"), kid("900012345678901234"), kid("12345678901")]
# Luhn-valid *and* of a card scheme's prefix and length (Visa 4…/16, Maestro 6…/19): nothing tells
# them from a card, so they are masked as cards by policy (docs/redaction.md, "Business labels and
# cards") and are scored as cards below, not as business numbers.
CARD_SHAPED = [kid("400123456789012"), kid("600012345678901234"), kid("520012345678901")]

NEGATIVES: dict[str, list[tuple[str, list[str]]]] = {
    "nb": [
        ("Leveringen er planlagt 15.12.2026, mellom kl. 08:00 og 16:00", ["15.12.2026", "08:00", "16:00"]),
        ("Fakturadato 2026-11-24, forfall 24/12/2026", ["2026-11-24", "24/12/2026"]),
        ("Ordrenummeret mitt er #2026-118-5567", ["#2026-118-5567"]),
        ("Ordre 98765432 er ikke levert", ["98765432"]),
        ("Saksnummer 20261123-0042 gjelder reklamasjonen", ["20261123-0042"]),
        ("Fakturanummer INV-2026-000123 er betalt", ["INV-2026-000123"]),
        ("Org.nr. 988 077 917", ["988 077 917"]),
        ("Selger: Butikken AS, NO 995 525 828 MVA", ["NO 995 525 828 MVA"]),
        (f"Betal til konto med KID {KIDS[0]}", [KIDS[0]]),
        (f"KID: {KIDS[1]}", [KIDS[1]]),
        (f"KID-nummer {KIDS[2]} står på giroen", [KIDS[2]]),
        ("Totalt 12 499,- inkl. mva, frakt 99 kr", ["12 499,-", "99 kr"]),
        ("Pakken har sporingsnummer 70712345678901234 hos PostNord", ["70712345678901234"]),
        ("Sendingsnummer fra Bring: 370712345678912345", ["370712345678912345"]),
        ("Kundenummer 100234567, bestilling 4500123456", ["100234567", "4500123456"]),
        ("Jeg bruker Windows 10.0.19045.3693 og Chrome 120.0.6099.109", ["10.0.19045.3693", "120.0.6099.109"]),
        ("Postnummer 0150 Oslo, 3 stk à 249,50", ["0150", "249,50"]),
        ("Referanse: 2026-11-23/4471", ["2026-11-23/4471"]),
        ("Billettnummer 4567 8912 3456 7890 gjelder reisen 15.12.2026", ["4567 8912 3456 7890", "15.12.2026"]),
        ("Artikkelnummer 7041234567891, EAN-kode", ["7041234567891"]),
        ("Levert 24. 11. 2026, returfrist 24.12.26", ["24. 11. 2026", "24.12.26"]),
        ("Tilbudet gjelder 01.12.2026-15.12.2026", ["01.12.2026-15.12.2026"]),
        ("Bestillingen din (98765432) er sendt", ["98765432"]),
        ("MVA-nr 995525828, kontonummer til firmaet står på fakturaen", ["995525828"]),
        ("Møtet er 2026-11-24T14:30:00Z", ["2026-11-24T14:30:00Z"]),
    ],
    "ru": [
        ("Доставка 15.12.2026 с 10:00 до 18:00", ["15.12.2026", "10:00", "18:00"]),
        ("Заказ № 45871236 оформлен 24/11/2026", ["45871236", "24/11/2026"]),
        ("номер заказа 2026-118-5567", ["2026-118-5567"]),
        ("Сумма 4 990 руб., скидка 10%", ["4 990 руб"]),
        ("ИНН 7707083893, ОГРН 1027700132195", ["7707083893", "1027700132195"]),
        ("Трек-номер СДЭК 1234567890, посылка отправлена 2026-11-24", ["1234567890", "2026-11-24"]),
        ("трек почты России 80081234567890", ["80081234567890"]),
        ("Обращение № 20261123-0042 зарегистрировано", ["20261123-0042"]),
        ("Счёт на оплату № INV-2026-000123 от 24.11.2026", ["INV-2026-000123", "24.11.2026"]),
        ("Версия приложения 5.12.3 (сборка 20261124)", ["5.12.3", "20261124"]),
        (f"Артикул {KIDS[3]}", [KIDS[3]]),
        ("Договор № 77-2026/11 от 01.11.2026", ["77-2026/11", "01.11.2026"]),
        ("Индекс 125009, Москва, ул. Тверская 7", ["125009"]),
        ("заказ 4500123456 и заказ 4500123457", ["4500123456", "4500123457"]),
        ("БИК 044525225, КПП 773601001", ["044525225", "773601001"]),
        ("Номер вашего заказа — 45871236, оплата 24.11.2026 в 14:30", ["45871236", "24.11.2026", "14:30"]),
        ("Посылка 80081234567890 прибудет 1.12.2026", ["80081234567890", "1.12.2026"]),
    ],
    "sl": [
        ("Dostava bo 15.12.2026 med 8.00 in 16.00", ["15.12.2026", "8.00", "16.00"]),
        ("Naročilo št. 2026-11-0042 je bilo oddano 24. 11. 2026", ["2026-11-0042"]),
        ("Številka naročila: 45871236", ["45871236"]),
        ("Račun št. INV-2026-000123, znesek 129,90 EUR", ["INV-2026-000123", "129,90"]),
        ("Davčna številka podjetja SI59082437, matična 5860571000", ["SI59082437", "5860571000"]),
        ("Sledilna številka Pošte Slovenije: RR123456785SI", ["RR123456785SI"]),
        ("Paket DPD 05212345678901", ["05212345678901"]),
        ("Zadeva 2026/1234-7 je v obdelavi", ["2026/1234-7"]),
        ("Uporabljam različico 2.14.1 na Androidu 14", ["2.14.1"]),
        (f"Sklic: SI00 {KIDS[4]}", [KIDS[4]]),
        ("Poštna številka 1000 Ljubljana, 2 kosa po 19,99 €", ["1000", "19,99"]),
        ("Rezervacija 20261123-0042 za 2 osebi ob 19:30", ["20261123-0042", "19:30"]),
        ("referenca naročila #2026-118-5567", ["#2026-118-5567"]),
        ("Prevzem od 1. 12. 2026 do 15. 12. 2026", ["1. 12. 2026", "15. 12. 2026"]),
        ("Cena 1.299,00 EUR z DDV, naročilo oddano 24.11.2026 ob 9.15", ["1.299,00", "24.11.2026", "9.15"]),
    ],
    "en": [
        ("Delivery on 2026-11-24 between 9:00 and 17:00", ["2026-11-24", "9:00", "17:00"]),
        ("My order #2026-118-5567 arrived damaged on 24/11/2026", ["#2026-118-5567", "24/11/2026"]),
        ("Invoice INV-2026-000123, total $1,299.99", ["INV-2026-000123", "1,299.99"]),
        ("Case number 20261123-0042", ["20261123-0042"]),
        ("UPS tracking 1Z999AA10123456784", ["1Z999AA10123456784"]),
        ("DHL waybill 1234567890, shipped 15.12.2026", ["1234567890", "15.12.2026"]),
        ("USPS tracking 9400 1000 0000 0000 0000 00", ["9400 1000 0000 0000 0000 00"]),
        ("Windows 10.0.19045.3693, build 19045", ["10.0.19045.3693"]),
        ("order 12345678, 3 items, total 1299 NOK", ["12345678", "1299"]),
        ("Company number 09446231, VAT GB 123 4567 89", ["09446231", "GB 123 4567 89"]),
        ("ticket 4500123456 was closed on 2026-11-20 at 14:05", ["4500123456", "2026-11-20", "14:05"]),
        ("Serial number 3456789012345678 on the box", ["3456789012345678"]),
        (f"Transaction reference {kid('720012345678901')} from the bank", [kid("720012345678901")]),
        ("the router is at 192.168.100.254", ["192.168.100.254"]),
        ("Amazon order 302-1234567-1234567", ["302-1234567-1234567"]),
        ("The sale runs 11/24/2026 to 12/15/2026, price 1 299.00 NOK", ["11/24/2026", "12/15/2026", "1 299.00"]),
        ("FedEx tracking number 123456789012 shows delivered", ["123456789012"]),
    ],
    "de": [
        ("Lieferung am 15.12.2026 zwischen 8:00 und 12:00 Uhr", ["15.12.2026", "8:00", "12:00"]),
        ("Bestellnummer 302-1234567-7654321", ["302-1234567-7654321"]),
        ("Rechnungsnummer RE-2026-4711 vom 24.11.2026", ["RE-2026-4711", "24.11.2026"]),
        ("Sendungsnummer DHL JJD014600003818930", ["JJD014600003818930"]),
        ("Sendungsverfolgung 00340434161094042557", ["00340434161094042557"]),
        ("Kundennummer 100234567, Vorgang 20261123-0042", ["100234567", "20261123-0042"]),
        ("USt-IdNr. DE136695976, HRB 6324", ["DE136695976", "6324"]),
        ("Preis 1.299,00 € inkl. MwSt., Versand 4,99 €", ["1.299,00", "4,99"]),
        ("Firmware-Version 4.2.19045.1, iOS 17.1.2", ["4.2.19045.1", "17.1.2"]),
        ("Auftrag 4500123456 wurde am 2026-11-24 storniert", ["4500123456", "2026-11-24"]),
        ("PLZ 10115 Berlin, Hausnummer 12", ["10115"]),
        (f"Paketnummer {KIDS[0]}", [KIDS[0]]),
        ("Aktenzeichen 2026/1123/0042", ["2026/1123/0042"]),
        ("Termin am 24. 11. 2026 um 14:30 Uhr", ["24. 11. 2026", "14:30"]),
        ("Ihre Bestellung Nr. 4711-2026-0815 ist unterwegs", ["4711-2026-0815"]),
    ],
}


def build_negatives(b: Builder) -> None:
    for lang, entries in NEGATIVES.items():
        for text, keep in entries:
            if keep:
                b.add(lang, "hand-written business text (issue 11 negatives)", text=text, keep=keep)
    # A business number split over two messages is still a business number.
    at = T0 + timedelta(hours=5)
    for lang, label, number in [("nb", "Ordrenummer:", "2026-118-5567"), ("en", "my tracking number", "1Z999AA10123456784"),
                                ("de", "Bestellnummer", "302-1234567-7654321")]:
        b.add(lang, "hand-written business text (issue 11 negatives)", keep=[number], messages=[
            {"author": "visitor", "at": at.isoformat(), "text": label},
            {"author": "visitor", "at": (at + timedelta(seconds=20)).isoformat(), "text": number},
        ])
    # Mixed: a card and a business number in one message; both promises at once.
    mixed = [
        ("nb", "Ordre #2026-118-5567 ble betalt med kortet 4242 4242 4242 4242 den 15.12.2026", "4242424242424242", ["#2026-118-5567", "15.12.2026"]),
        ("ru", "Заказ № 45871236, карта 5555 5555 5555 4444, доставка 24.11.2026", "5555555555554444", ["45871236", "24.11.2026"]),
        ("sl", "Naročilo 2026-11-0042 sem plačal s kartico 4111-1111-1111-1111", "4111111111111111", ["2026-11-0042"]),
        ("en", "Invoice INV-2026-000123 was paid with 3782 822463 10005 on 2026-11-24", "378282246310005", ["INV-2026-000123", "2026-11-24"]),
        ("de", "Bestellung 4500123456, bezahlt mit 5200.8282.8282.8210 am 24.11.2026", "5200828282828210", ["4500123456", "24.11.2026"]),
    ]
    for lang, text, card, keep in mixed:
        b.add(lang, "Stripe / Braintree test cards in hand-written business text", text=text,
              expect=[{"kind": "card", "value": card}], keep=keep)


# Longer, free-form messages mixing sensitive and business numbers in one line, phrased unlike
# the templates above (values from the same public sources).
FREE_FORM: list[tuple[str, str, list[tuple[str, str]], list[str]]] = [
    ("nb", "Hei! Jeg betalte ordren med 4242 4242 4242 4242 i går, men ordrenummeret 98765432 vises ikke.",
     [("card", "4242424242424242")], ["98765432"]),
    ("nb", "Saken gjelder faktura 2026001245 (forfall 24.12.2026). Ring meg gjerne på 406 12 345.",
     [("phone", "40612345")], ["2026001245", "24.12.2026"]),
    ("nb", "Refusjon til kontoen NO93 8601 1117 947 takk, beløpet var 1 499,- og ordren #2026-118-5567",
     [("iban", "NO9386011117947")], ["1 499,-", "#2026-118-5567"]),
    ("nb", "fødselsnr: 26111593816 og mobil 21 23 45 67, kundenr 100234567",
     [("national_id", "26111593816"), ("phone", "21234567")], ["100234567"]),
    ("nb", f"Pakken med sporingsnr. 70712345678901234 skulle komme 15.12., spør om KID {KIDS[0]} stemmer?",
     [], ["70712345678901234", KIDS[0]]),
    ("nb", "Kan dere sende ny faktura til kari.nordmann@eksempel.no? Org.nr. 988 077 917",
     [("email", "kari.nordmann@eksempel.no")], ["988 077 917"]),
    ("ru", "Я оплатил заказ картой 5555 5555 5555 4444, а заказ № 45871236 до сих пор не отправлен.",
     [("card", "5555555555554444")], ["45871236"]),
    ("ru", "Перезвоните мне: +7 912 345-67-89. Трек-номер 80081234567890, отправлено 24.11.2026.",
     [("phone", "9123456789")], ["80081234567890", "24.11.2026"]),
    ("ru", "СНИЛС 148-481-255 85, ИНН организации 7707083893, договор № 77-2026/11",
     [("national_id", "14848125585")], ["7707083893", "77-2026/11"]),
    ("ru", "почта иван.петров@пример.рф, телефон 8 (912) 345-67-89, сумма 4 990 руб.",
     [("email", "иван.петров@пример.рф"), ("phone", "9123456789")], ["4 990 руб"]),
    ("ru", "Верните деньги на счёт DE89 3704 0044 0532 0130 00, номер обращения 20261123-0042",
     [("iban", "DE89370400440532013000")], ["20261123-0042"]),
    ("sl", "Naročilo 2026-11-0042 sem plačal s kartico 5200 8282 8282 8210, prosim za vračilo na SI56 2633 0001 2039 086.",
     [("card", "5200828282828210"), ("iban", "SI56263300012039086")], ["2026-11-0042"]),
    ("sl", "Moj EMŠO je 1211981500126, telefon 031 234 567, račun št. 2026-000123 z dne 24. 11. 2026",
     [("national_id", "1211981500126"), ("phone", "31234567")], ["2026-000123", "24. 11. 2026"]),
    ("sl", "Pošiljka 05212345678901 še ni prispela, pišite mi na kupec@trgovina.si",
     [("email", "kupec@trgovina.si")], ["05212345678901"]),
    ("en", "I paid for the order with 3782 822463 10005 and the invoice INV-2026-000123 still says unpaid.",
     [("card", "378282246310005")], ["INV-2026-000123"]),
    ("en", "My number changed to +44 7400 123456, please update case 20261123-0042.",
     [("phone", "7400123456")], ["20261123-0042"]),
    ("en", "Refund to GB29 NWBK 6016 1331 9268 19 please, order 4500123456 from 2026-11-24",
     [("iban", "GB29NWBK60161331926819")], ["4500123456", "2026-11-24"]),
    ("en", "UPS says 1Z999AA10123456784 was delivered at 14:05, call me on (415) 555-0132",
     [("phone", "4155550132")], ["1Z999AA10123456784", "14:05"]),
    ("de", "Ich habe die Bestellung 302-1234567-7654321 mit der Karte 4111 1111 1111 1111 bezahlt.",
     [("card", "4111111111111111")], ["302-1234567-7654321"]),
    ("de", "Bitte zurück auf DE89 3704 0044 0532 0130 00, Rechnungsnummer RE-2026-4711, Betrag 1.299,00 €",
     [("iban", "DE89370400440532013000")], ["RE-2026-4711", "1.299,00"]),
    ("de", "Erreichbar unter 030 123456 oder max.mustermann@beispiel.de, Kundennummer 100234567",
     [("phone", "30123456"), ("email", "max.mustermann@beispiel.de")], ["100234567"]),
    ("de", "Sendungsnummer 00340434161094042557, Zustellung am 24. 11. 2026 zwischen 8:00 und 12:00",
     [], ["00340434161094042557", "24. 11. 2026", "8:00", "12:00"]),
    ("nb", "Ring meg angående ordren på 406 12 345", [("phone", "40612345")], []),
    ("de", "Rechnung bezahlt mit 4111 1111 1111 1111, bitte prüfen", [("card", "4111111111111111")], []),
]


# More business lines, written after the engine existed, as a check that it generalises.
MORE_NEGATIVES: list[tuple[str, str, list[str]]] = [
    ("nb", "Hei, jeg venter fortsatt på pakke 370712345678912345 som skulle komme tirsdag", ["370712345678912345"]),
    ("nb", "Vi har registrert saken din med nummer 20261123-0042", ["20261123-0042"]),
    ("nb", f"Referansenummer: {KIDS[3]}", [KIDS[3]]),
    ("nb", "Bestillingsnr 10023456, levert til postnr 0150", ["10023456", "0150"]),
    ("nb", "KID-nr: 0012345678903", ["0012345678903"]),
    ("nb", "Åpningstider 08.00-16.00, fredag 08.00-15.00", ["08.00-16.00", "08.00-15.00"]),
    ("nb", "Pakken ble sendt 23.11.2026 kl 14.32 fra Oslo", ["23.11.2026", "14.32"]),
    ("ru", "Телефон горячей линии 8 800 555-35-35", ["8 800 555-35-35"]),
    ("ru", "Ваше обращение №1234567 принято", ["1234567"]),
    ("ru", "Счёт-фактура № 2026/000123 от 24.11.2026", ["2026/000123", "24.11.2026"]),
    ("ru", "Стоимость 12 999 ₽, доставка 390 ₽", ["12 999 ₽", "390 ₽"]),
    ("sl", "Številka vašega naročila je 45871236", ["45871236"]),
    ("sl", "Sledilna številka pošiljke: 12345678901234", ["12345678901234"]),
    ("sl", "Vaša zadeva ima številko 2026-11-0042", ["2026-11-0042"]),
    ("en", "Your order number is 112-4567890-1234567", ["112-4567890-1234567"]),
    ("en", "Ticket #45871236 has been escalated", ["#45871236"]),
    ("en", "We shipped it via DHL Express, waybill 1234567890, on 11/24/2026", ["1234567890", "11/24/2026"]),
    ("en", "Customer ID 45871236, account created 2026-01-15", ["45871236", "2026-01-15"]),
    ("en", "booking reference 20261123-0042 for 2 adults", ["20261123-0042"]),
    ("de", "Ihre Bestellnummer lautet 4500123456", ["4500123456"]),
    ("de", "Unsere Hotline 0800 1234567 ist kostenlos", ["0800 1234567"]),
    ("de", "Vorgangsnummer 20261123-0042, Kunden-Nr. 4711081", ["20261123-0042", "4711081"]),
    ("de", "Lieferung zwischen 24.11. und 27.11.2026", ["27.11.2026"]),
    ("en", "Your order number is 98765432", ["98765432"]),
]


# Business numbers of a card's shape, labelled as business: masked as cards all the same (a
# surviving card number is a PCI DSS breach; a masked reference is an inconvenience).
CARD_SHAPED_REFERENCES: list[tuple[str, str, str]] = [
    ("nb", "Betal til konto med KID {v}", CARD_SHAPED[0]),
    ("nb", "Referansenummer: {v}", CARD_SHAPED[0]),
    ("de", "Paketnummer {v}", CARD_SHAPED[0]),
    ("ru", "Артикул {v}", CARD_SHAPED[1]),
    ("en", "Transaction reference {v} from the bank", CARD_SHAPED[2]),
    ("sl", "Sklic {v}", CARD_SHAPED[0]),
]


def build_card_shaped_references(b: Builder) -> None:
    for lang, template, value in CARD_SHAPED_REFERENCES:
        b.add(lang, "card-shaped business numbers (Luhn-valid, a card scheme's prefix and length): masked by policy",
              text=template.format(v=value), expect=[{"kind": "card", "value": value}])


def build_free_form(b: Builder) -> None:
    for lang, text, keep in MORE_NEGATIVES:
        b.add(lang, "hand-written business text (written after the engine, as a generalisation check)", text=text, keep=keep)
    for lang, text, expect, keep in FREE_FORM:
        b.add(lang, "hand-written chat lines with public test vectors (sources above)", text=text,
              expect=[{"kind": k, "value": v} for k, v in expect], keep=keep)


def main() -> None:
    b = Builder()
    build_cards(b)
    build_ibans(b)
    build_national_ids(b)
    build_phones(b)
    build_emails(b)
    build_negatives(b)
    build_free_form(b)
    build_card_shaped_references(b)
    with OUT.open("w", encoding="utf-8") as fh:
        for item in b.items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(b.items)} items -> {OUT}")


if __name__ == "__main__":
    main()
