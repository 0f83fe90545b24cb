"""Builds redaction_heldout.jsonl: a held-out corpus for Parley's redaction engine (issue 11).

Every sensitive value comes from a public test vector (named in "source") or, where a public
vector does not exist for the format, is synthetic and validated by python-stdnum /
phonenumbers / email-validator (source says "synthetic"). Every value is checked here before
the file is written, so the corpus cannot carry an invalid "sensitive" value by mistake.

Run: .venv/bin/python build_corpus.py   (venv in this folder: python-stdnum, phonenumbers,
email-validator; nothing from the Parley repo is imported).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import email_validator
import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.dk import cpr
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.se import personnummer
from stdnum.si import emso

OUT = Path(__file__).with_name("redaction_heldout.jsonl")
BASE = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)
NBSP, THIN, NNBSP = "\u00a0", "\u2009", "\u202f"

# Sources, named once.
STRIPE = "Stripe test cards (stripe.com/docs/testing; mirrored on documentation.paysimple.com)"
ADYEN = "Adyen test card numbers (docs.adyen.com test-card-numbers; gist sschlein/100f8061)"
BRAINTREE = "Braintree sandbox card numbers (developer.paypal.com/braintree/docs/reference/general/testing)"
PRESIDIO_CC = "microsoft/presidio presidio-analyzer/tests/test_credit_card_recognizer.py"
PRESIDIO_EMAIL = "microsoft/presidio presidio-analyzer/tests/test_email_recognizer.py"
PRESIDIO_PHONE = "microsoft/presidio presidio-analyzer/tests/test_phone_recognizer.py"
PRESIDIO_IBAN = "microsoft/presidio presidio-analyzer/tests/test_iban_recognizer.py"
STD_IBAN = "arthurdejong/python-stdnum tests/test_iban.doctest (IBAN registry samples)"
STD_NO = "arthurdejong/python-stdnum tests/test_no_fodselsnummer.doctest"
STD_SE = "arthurdejong/python-stdnum tests/test_se_personnummer.doctest"
STD_DK = "arthurdejong/python-stdnum stdnum/dk/cpr.py doctest"
STD_FI = "arthurdejong/python-stdnum tests/test_fi_hetu.doctest"
STD_SI = "arthurdejong/python-stdnum tests/test_si_emso.doctest"
STD_LUHN = "arthurdejong/python-stdnum tests/test_luhn.doctest"
STD_IMEI = "arthurdejong/python-stdnum tests/test_imei.doctest"
STD_MVA = "arthurdejong/python-stdnum tests/test_no_mva.doctest / stdnum/no/orgnr.py"
STD_INN = "arthurdejong/python-stdnum tests/test_ru_inn.doctest / stdnum/ru/ogrn.py"
LIBPHONE = "libphonenumber example numbers (PhoneNumberMetadata.xml via phonenumbers 9.0.43)"
SNILS = "SNILS example 112-233-445 95 (ru.wikipedia СНИЛС); others synthetic with valid checksum"
WIKI_CPR = "CPR example 070761-4285 (da.wikipedia CPR-nummer)"
SYN = "synthetic, realistic customer phrasing"

items: list[dict] = []
_clock = [BASE]
# Round 1 was written before the engine was run. Round 2 was written after seeing round 1's
# score, from the brief's checklist of spellings that round 1 covered thinly (not aimed at the
# round-1 failures); score it separately to keep round 1 genuinely held out.
ROUND = [1]


def M(text: str, author: str = "visitor:v1", gap: int = 20) -> dict:
    """One message; ``gap`` = seconds after the previous message of the item (times are
    assigned in ``item`` so that messages of one item are always in order)."""
    return {"author": author, "_gap": gap, "text": text}


def A(text: str) -> dict:
    return M(text, author="agent:a1", gap=40)


def item(lang: str, source: str, messages: list, expect=(), keep=(), keep_category=()) -> None:
    _clock[0] += timedelta(minutes=10)  # each item its own conversation in time
    if isinstance(messages, (str, dict)):
        messages = [messages]
    messages = [M(m) if isinstance(m, str) else m for m in messages]
    timed = []
    for m in messages:
        _clock[0] += timedelta(seconds=m["_gap"])
        timed.append({"author": m["author"], "at": _clock[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "text": m["text"]})
    messages = timed
    keep = list(keep)
    if isinstance(keep_category, str):
        keep_category = [keep_category] * len(keep)
    assert len(keep_category) == len(keep), (keep, keep_category)
    joined = "\n".join(m["text"] for m in messages)
    for k in keep:
        assert k in joined, f"keep {k!r} not in {joined!r}"
    n = sum(1 for i in items if i["language"] == lang) + 1
    items.append(
        {
            "id": f"{'r2-' if ROUND[0] == 2 else ''}{lang}-{'s' if expect else 'n'}-{n:03d}",
            "round": ROUND[0],
            "language": lang,
            "source": source,
            "messages": messages,
            "expect": [{"kind": k, "value": v} for k, v in expect],
            "keep": keep,
            "keep_category": list(keep_category),
        }
    )


# ---------------------------------------------------------------- validation of sensitive values
def digits(s: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", s) if ch.isdigit())


def check(kind: str, value: str, lang: str) -> None:
    v = unicodedata.normalize("NFKC", value)
    if kind == "card":
        assert luhn.is_valid(digits(v)) and 13 <= len(digits(v)) <= 19, value
    elif kind == "iban":
        assert std_iban.is_valid(re.sub(r"[\s.\-]", "", v).upper()), value
    elif kind == "national_id":
        ok = (
            fodselsnummer.is_valid(v)
            or personnummer.is_valid(v)
            or cpr.is_valid(v)
            or hetu.is_valid(v)
            or emso.is_valid(v)
            or _snils(digits(v))
        )
        assert ok, value
    elif kind == "phone":
        region = {"nb": "NO", "ru": "RU", "sl": "SI", "de": "DE", "en": "GB"}[lang]
        for r in (region, "US"):
            try:
                n = phonenumbers.parse(v, r)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(n):
                return
        raise AssertionError(value)
    elif kind == "email":
        email_validator.validate_email(v, check_deliverability=False)
    else:
        raise AssertionError(kind)


def _snils(d: str) -> bool:
    if len(d) != 11:
        return False
    s = sum(int(x) * (9 - i) for i, x in enumerate(d[:9]))
    c = s % 101
    c = 0 if c in (100, 101) else c
    return f"{c:02d}" == d[9:]


def snils(body9: str) -> str:
    s = sum(int(x) * (9 - i) for i, x in enumerate(body9))
    c = s % 101
    c = 0 if c in (100, 101) else c
    return f"{body9[0:3]}-{body9[3:6]}-{body9[6:9]} {c:02d}"


def luhn_complete(body: str) -> str:
    return body + luhn.calc_check_digit(body)


# ================================================================== NORWEGIAN (bokmål) — sensitive
L = "nb"
item(L, STRIPE, "Hei! Jeg prøvde å betale med kortet 4242 4242 4242 4242 men fikk bare feilmelding", [("card", "4242 4242 4242 4242")])
item(L, STRIPE, "kortnr: 5200.8282.8282.8210 utløper 09/28", [("card", "5200.8282.8282.8210")])
item(L, STRIPE, f"Kortnummer: 4000{NBSP}0566{NBSP}5566{NBSP}5556", [("card", "4000 0566 5566 5556")])
item(L, STRIPE, "her er kortet\n5555 5555\n5555 4444", [("card", "5555 5555 5555 4444")])
item(L, ADYEN, ["kortnummer 5100 2900", M("2900 2909", gap=25)], [("card", "5100 2900 2900 2909")])
item(L, BRAINTREE, "Visa:4111111111111111, utløp 12/27", [("card", "4111111111111111")])
item(L, STRIPE, "Ordre #2026-118-5567 ble betalt med 3782 822463 10005 (Amex), men jeg ble trukket to ganger",
     [("card", "3782 822463 10005")], ["#2026-118-5567"], "order")
item(L, STRIPE, "kortet er 2223-0031-2200-3222", [("card", "2223-0031-2200-3222")])
item(L, STRIPE, "Kan dere refundere til 6011 1111 1111 1117? Det er samme kort som jeg brukte 15.12.2026",
     [("card", "6011 1111 1111 1117")], ["15.12.2026"], "date")
item(L, ADYEN, f"bankkort{THIN}4977{THIN}9494{THIN}9494{THIN}9497 – funker ikke i kassa", [("card", "4977 9494 9494 9497")])
item(L, BRAINTREE, "Betalte 1 299,00 kr med 4005519200000004 i går kl. 21:14", [("card", "4005519200000004")], ["1 299,00 kr", "21:14"], ["price", "time"])
item(L, ADYEN, ["Jeg har to kort, det første er", M("5555 4444 3333 1111.", gap=15)], [("card", "5555 4444 3333 1111")])
# IBAN
item(L, STD_IBAN, "IBAN: NO93 8601 1117 947", [("iban", "NO93 8601 1117 947")])
item(L, STD_IBAN, "kontonr for refusjon: no93 8601 1117 947", [("iban", "no93 8601 1117 947")])
item(L, STD_IBAN, "Refusjon til NO 02 15037577003 takk", [("iban", "NO 02 15037577003")])
item(L, STD_IBAN, "iban NO07.8380.08.06006", [("iban", "NO07.8380.08.06006")])
item(L, STD_IBAN, "IBAN er NO93-8601-1117-947.", [("iban", "NO93-8601-1117-947")])
item(L, STD_IBAN, ["IBAN NO38 8200", M("06 10190", gap=30)], [("iban", "NO38 8200 06 10190")])
item(L, STD_IBAN, "Pengene kan settes inn på NO 44 1850.05.14562 (DNB)", [("iban", "NO 44 1850.05.14562")])
item(L, STD_IBAN, "Faktura 2026004512: betal tilbake til iban no8976940512510", [("iban", "no8976940512510")], ["2026004512"], "invoice")
# fødselsnummer
item(L, STD_NO, "fødselsnummeret mitt er 151086 95088", [("national_id", "151086 95088")])
item(L, STD_NO, "fnr: 26111593816", [("national_id", "26111593816")])
item(L, STD_NO, "f.nr 100487 45526 (trenger dere det?)", [("national_id", "100487 45526")])
item(L, STD_NO, "Personnummer 231140-38547", [("national_id", "231140-38547")])
item(L, "synthetic D-number, valid per stdnum.no.fodselsnummer", "D-nummeret mitt er 41018036736", [("national_id", "41018036736")])
item(L, STD_NO, "fødselsnr: 26 11 15 940 14", [("national_id", "26 11 15 940 14")])
item(L, STD_NO, ["fødselsnr 111115", M("98403", gap=12)], [("national_id", "11111598403")])
item(L, STD_NO, "fnr\n18-06-15-92527", [("national_id", "18-06-15-92527")])
item(L, STD_NO, "Saksnummer 20261123-0042, fnr. 23114048690", [("national_id", "23114048690")], ["Saksnummer 20261123-0042"], "case")
# phones
item(L, LIBPHONE, "ring meg på 406 12 345", [("phone", "406 12 345")])
item(L, LIBPHONE, "mobil: +47 916 54 321", [("phone", "+47 916 54 321")])
item(L, LIBPHONE, "tlf 48123456", [("phone", "48123456")])
item(L, LIBPHONE, "nummeret mitt er 0047 40612345", [("phone", "0047 40612345")])
item(L, LIBPHONE, "Kan dere ringe 93 41 27 80 etter kl. 16:00?", [("phone", "93 41 27 80")], ["16:00"], "time")
item(L, LIBPHONE, "Jobbnummer (+47) 21 23 45 67", [("phone", "(+47) 21 23 45 67")])
item(L, LIBPHONE, f"+47{NBSP}406{NBSP}12{NBSP}345 er best", [("phone", "+47 406 12 345")])
item(L, LIBPHONE, ["Du kan nå meg på +47 406", M("12 345", gap=10)], [("phone", "+47 406 12 345")])
item(L, LIBPHONE, "Ordre 1182-5567: ring meg på 93412780 når pakken kommer", [("phone", "93412780")], ["1182-5567"], "order")
# e-mail
item(L, SYN, "e-post: kari.nordmann@online.no", [("email", "kari.nordmann@online.no")])
item(L, SYN, "Send kvittering til ola+faktura@firma.no takk", [("email", "ola+faktura@firma.no")])
item(L, SYN, "min mail er post@blåbær.no", [("email", "post@blåbær.no")])
item(L, SYN, "(kontakt: per.hansen@gmail.com)", [("email", "per.hansen@gmail.com")])
item(L, SYN, "Jeg heter Åse, mail:åse.ødegård@hotmail.no.", [("email", "åse.ødegård@hotmail.no")])

# ================================================================== NORWEGIAN — negatives
item(L, SYN, "Bestillingen ble levert 15.12.2026, men esken var knust", keep=["15.12.2026"], keep_category="date")
item(L, SYN, "Saksnummer 20261123-0042 – når får jeg svar?", keep=["Saksnummer 20261123-0042"], keep_category="case")
item(L, STD_MVA, "Org.nr. 988 077 917 står på fakturaen", keep=["Org.nr. 988 077 917"], keep_category="company_id")
item(L, STD_MVA, "Firmaet vårt: NO 995 525 828 MVA", keep=["NO 995 525 828 MVA"], keep_category="company_id")
item(L, STD_MVA, "Fakturaen skal til NO 987 008 644 MVA, ikke til 965 920 358 MVA", keep=["NO 987 008 644 MVA", "965 920 358 MVA"], keep_category="company_id")
item(L, "synthetic KID, Luhn (MOD10) check digit", "Betalte med KID 1004821300010 i nettbanken", keep=["1004821300010"], keep_category="kid")
item(L, "synthetic KID, Luhn (MOD10) check digit", "KID-nummer: 0001234567897, beløp 499,00", keep=["0001234567897", "499,00"], keep_category=["kid", "price"])
item(L, "synthetic KID, Luhn (MOD10) check digit", "KID 202611240047 forfall 01.12.2026", keep=["202611240047", "01.12.2026"], keep_category=["kid", "date"])
item(L, "synthetic KID, 16 digits, Luhn-valid, starts with 4 (card-like)", "Fikk feil KID på giroen: 4026150001234561. Hva skal jeg bruke?", keep=["4026150001234561"], keep_category="kid_cardlike")
item(L, SYN, "Faktura 2026004512 forfaller 01.12.2026, beløp kr 1 299,00", keep=["2026004512", "01.12.2026", "kr 1 299,00"], keep_category=["invoice", "date", "price"])
item(L, SYN, "Ordrenummer: 7012345678", keep=["7012345678"], keep_category="order")
item(L, SYN, "Ordrenummeret er 41234567, levert til feil adresse", keep=["41234567"], keep_category="order")
item(L, SYN, "saksnr. 93456781 – jeg har ventet i to uker", keep=["93456781"], keep_category="case")
item(L, "UPU S10 format with computed check digit", "Sporingsnummer LA123456785NO sier 'under transport' siden 24.11.", keep=["LA123456785NO", "24.11."], keep_category=["tracking", "date"])
item(L, "GS1 SSCC with computed check digit (PostNord/Bring style)", "Sporing: 00370726200002578926", keep=["00370726200002578926"], keep_category="tracking")
item(L, SYN, "Prisen var 12 990,- og nå er den 9 990,- en uke etter", keep=["12 990,-", "9 990,-"], keep_category="price")
item(L, SYN, "Kan jeg hente mellom 09.00 og 16.30?", keep=["09.00", "16.30"], keep_category="time")
item(L, SYN, "Appen sier versjon 4.12.0 (build 20261104)", keep=["4.12.0", "20261104"], keep_category="version")
item(L, SYN, "Adresse: Storgata 1, 0155 Oslo", keep=["0155 Oslo"], keep_category="postcode")
item(L, SYN, "Kundenummer 10045873", keep=["10045873"], keep_category="customer_no")
item(L, STD_IMEI, "IMEI 35-209900-176148-1 – telefonen starter ikke", keep=["35-209900-176148-1"], keep_category="imei")
item(L, STD_IMEI, "Telefonen (IMEI 354178036859789) er ødelagt etter reparasjon", keep=["354178036859789"], keep_category="imei")
item(L, SYN, "Loggen sier 2026-11-24T14:30:00+01:00", keep=["2026-11-24T14:30:00+01:00"], keep_category="timestamp")
item(L, SYN, "Jeg bestilte 3 stk à 249,50 kr", keep=["249,50 kr"], keep_category="price")
item(L, SYN, "Den 24.11.26 kl. 14.35 fikk jeg SMS om at pakken var levert", keep=["24.11.26", "14.35"], keep_category=["date", "time"])
item(L, SYN, "IP-adressen min er 85.164.22.198 hvis det hjelper", keep=["85.164.22.198"], keep_category="ip")
item(L, SYN, "Periode: 01.12.2026–15.12.2026", keep=["01.12.2026", "15.12.2026"], keep_category="date")
item(L, "GS1 EAN-13 with computed check digit (Norwegian prefix 703)", "Strekkoden på esken er 7038010009457", keep=["7038010009457"], keep_category="sku")
item(L, SYN, "kvittering nr. 8471-2026-11-24", keep=["8471-2026-11-24"], keep_category="invoice")
item(L, SYN, "Avtalenummer 4500123456 gjelder fra 1. desember", keep=["4500123456"], keep_category="contract")
item(L, SYN, "dato 20261124, ordre 20261124-118", keep=["20261124", "20261124-118"], keep_category=["date", "order"])
item(L, SYN, ["Bestilte 24.11.2026", M("ordrenr 1182 5567", gap=15)], keep=["24.11.2026", "1182 5567"], keep_category=["date", "order"])
item(L, SYN, "Sendte betaling på kr 12 345 678 for hele prosjektet (ref 2026/11/0042)", keep=["12 345 678", "2026/11/0042"], keep_category=["price", "case"])
item(L, SYN, "Kl. 0930 i morgen passer fint", keep=["0930"], keep_category="time")

# ================================================================== RUSSIAN — sensitive
L = "ru"
mir = luhn_complete("220070012345678")
item(L, "synthetic Mir BIN 2200, Luhn check digit computed", f"номер карты {mir[0:4]} {mir[4:8]} {mir[8:12]} {mir[12:16]}", [("card", f"{mir[0:4]} {mir[4:8]} {mir[8:12]} {mir[12:16]}")])
item(L, STRIPE, "Карта 5555 5555 5555 4444, деньги списали дважды", [("card", "5555 5555 5555 4444")])
item(L, BRAINTREE, "вот карта:4111-1111-1111-1111", [("card", "4111-1111-1111-1111")])
item(L, STRIPE, ["номер карты 5105 1051", M("0510 5100", gap=20)], [("card", "5105 1051 0510 5100")])
item(L, STRIPE, f"Оплачивал картой 4000{NBSP}0566{NBSP}5566{NBSP}5556, заказ № 123456789", [("card", "4000 0566 5566 5556")], ["№ 123456789"], "order")
item(L, ADYEN, "карта\n4646 4646\n4646 4644", [("card", "4646 4646 4646 4644")])
item(L, STRIPE, "Номер карты: 3566002020360505 (JCB)", [("card", "3566002020360505")])
item(L, ADYEN, "картой 5577.0000.5577.0004 оплатить не получается", [("card", "5577.0000.5577.0004")])
item(L, STRIPE, "UnionPay 6200 0000 0000 0005, срок 12/29", [("card", "6200 0000 0000 0005")])
item(L, BRAINTREE, "Вернуть на карту 4012 0000 7777 7777 от 24.11.2026 на сумму 12 345,67 ₽",
     [("card", "4012 0000 7777 7777")], ["24.11.2026", "12 345,67 ₽"], ["date", "price"])
# IBAN
item(L, STD_IBAN, "IBAN для возврата: DE89 3704 0044 0532 0130 00", [("iban", "DE89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, "счёт gb29nwbk60161331926819", [("iban", "gb29nwbk60161331926819")])
item(L, STD_IBAN, "Мой IBAN FI21 1234 5600 0007 85, банк Nordea", [("iban", "FI21 1234 5600 0007 85")])
item(L, STD_IBAN, ["IBAN: LT12 1000", M("0111 0100 1000", gap=30)], [("iban", "LT12 1000 0111 0100 1000")])
item(L, PRESIDIO_IBAN, "реквизиты: iban ee38-2200-2210-2014-5685", [("iban", "ee38-2200-2210-2014-5685")])
item(L, STD_IBAN, "Счёт в Латвии LV80 BANK 0000 4351 9500 1", [("iban", "LV80 BANK 0000 4351 9500 1")])
# SNILS
item(L, SNILS, "СНИЛС 112-233-445 95", [("national_id", "112-233-445 95")])
s2 = snils("123456789")
item(L, SNILS, f"мой снилс: {s2}", [("national_id", s2)])
s3 = snils("087654303")
item(L, SNILS, f"СНИЛС {s3.replace('-', '').replace(' ', '')} для оформления", [("national_id", s3.replace("-", "").replace(" ", ""))])
# phones
item(L, LIBPHONE, "Мой телефон 8 (912) 345-67-89", [("phone", "8 (912) 345-67-89")])
item(L, LIBPHONE, "звоните +7 912 345-67-89", [("phone", "+7 912 345-67-89")])
item(L, LIBPHONE, "тел.: +7(916)1234567", [("phone", "+7(916)1234567")])
item(L, LIBPHONE, "номер 89035551234, звонить после 18:00", [("phone", "89035551234")], ["18:00"], "time")
item(L, LIBPHONE, "Рабочий тел. 8-495-123-45-67", [("phone", "8-495-123-45-67")])
item(L, LIBPHONE, ["мой номер +7 916", M("123-45-67", gap=15)], [("phone", "+7 916 123-45-67")])
item(L, LIBPHONE, f"телефон:{NBSP}+7{NBSP}903{NBSP}555{NBSP}12{NBSP}34.", [("phone", "+7 903 555 12 34")])
item(L, LIBPHONE, "Заказ № 123456789, телефон 8 912 345 67 89", [("phone", "8 912 345 67 89")], ["№ 123456789"], "order")
# e-mail
item(L, SYN, "почта: иван.петров@почта.рф", [("email", "иван.петров@почта.рф")])
item(L, PRESIDIO_EMAIL, "мой email user@xn--80ak6aa92e.com", [("email", "user@xn--80ak6aa92e.com")])
item(L, PRESIDIO_EMAIL, "пишите на a@xn--d1acufc.xn--p1ai!", [("email", "a@xn--d1acufc.xn--p1ai")])
item(L, SYN, "ivanov.sergey@yandex.ru — это мой адрес", [("email", "ivanov.sergey@yandex.ru")])
item(L, SYN, "Напишите на info@пример.ком, пожалуйста", [("email", "info@пример.ком")])
item(L, SYN, "почта для чеков: chek+ozon@mail.ru", [("email", "chek+ozon@mail.ru")])

# ================================================================== RUSSIAN — negatives
item(L, SYN, "Заказ № 123456789 до сих пор не пришёл", keep=["Заказ № 123456789"], keep_category="order")
item(L, STD_INN, "ИНН 7707083893, КПП 773601001", keep=["7707083893", "773601001"], keep_category="company_id")
item(L, STD_INN, "ОГРН 1027700132195", keep=["1027700132195"], keep_category="company_id")
item(L, STD_INN, "ИНН ИП 005826107187", keep=["005826107187"], keep_category="company_id")
item(L, "Russian Post 14-digit ШПИ with computed check digit", "трек-номер 10100076123454", keep=["10100076123454"], keep_category="tracking")
item(L, "UPU S10 format with computed check digit", "Почта России: RA123456785RU", keep=["RA123456785RU"], keep_category="tracking")
item(L, SYN, "дата доставки 24.11.2026, с 10:00 до 18:00", keep=["24.11.2026", "10:00", "18:00"], keep_category=["date", "time", "time"])
item(L, SYN, "Сумма 12 345,67 ₽, а в корзине было 11 990 руб.", keep=["12 345,67 ₽", "11 990 руб."], keep_category="price")
item(L, SYN, "Москва, ул. Тверская, д. 7, 125009", keep=["125009"], keep_category="postcode")
item(L, SYN, "номер обращения 2026-118-5567", keep=["2026-118-5567"], keep_category="case")
item(L, SYN, "счёт-фактура № 000123 от 24.11.2026", keep=["№ 000123", "24.11.2026"], keep_category=["invoice", "date"])
item(L, SYN, "версия приложения 5.32.0 (53200417)", keep=["5.32.0", "53200417"], keep_category="version")
item(L, STD_LUHN, "IMEI 490154203237518, телефон не включается", keep=["490154203237518"], keep_category="imei")
item(L, "Sberbank public bank details (BIK, correspondent account)", "Банк: БИК 044525225, к/с 30101810400000000225", keep=["044525225", "30101810400000000225"], keep_category="bank_ref")
item(L, SYN, "номер договора 77-2026/00415", keep=["77-2026/00415"], keep_category="contract")
item(L, "GS1 EAN-13 with computed check digit (prefix 460)", "артикул 4601234567893", keep=["4601234567893"], keep_category="sku")
item(L, SYN, "Заказ №2026-11-24-0042 оформлен 24 ноября", keep=["№2026-11-24-0042"], keep_category="order")
item(L, SYN, "накладная СДЭК 1098765432", keep=["1098765432"], keep_category="tracking")
item(L, SYN, "В логах: 2026-11-24 14:30:05, код ошибки 0x80070005", keep=["2026-11-24 14:30:05"], keep_category="timestamp")
item(L, SYN, "Заказ 77 от 01.12.2026 на 3 шт. по 1 499 ₽", keep=["01.12.2026", "1 499 ₽"], keep_category=["date", "price"])
item(L, SYN, "IP 192.168.10.254, роутер перезагружал", keep=["192.168.10.254"], keep_category="ip")
item(L, SYN, "Номер заказа 28479-0115-3, дата 2026-11-24", keep=["28479-0115-3", "2026-11-24"], keep_category=["order", "date"])
item(L, SYN, "Ваш код бронирования 9124578, рейс в 07:45", keep=["9124578", "07:45"], keep_category=["order", "time"])
item(L, SYN, "Заказ № 912345678 — где он?", keep=["№ 912345678"], keep_category="order")
item(L, SYN, "Оплатил 24/11/2026 по счёту № 2026-000417", keep=["24/11/2026", "№ 2026-000417"], keep_category=["date", "invoice"])
item(L, SYN, "таймстамп 1764000000", keep=["1764000000"], keep_category="timestamp")

# ================================================================== SLOVENIAN — sensitive
L = "sl"
item(L, ADYEN, "številka kartice 4166 6766 6766 6746", [("card", "4166 6766 6766 6746")])
item(L, ADYEN, "kartica: 5136-3333-3333-3335, velja do 11/28", [("card", "5136-3333-3333-3335")])
item(L, STRIPE, "Plačal sem s kartico 4242424242424242 in nič", [("card", "4242424242424242")])
item(L, ADYEN, ["št. kartice 5585 5585", M("5585 5583", gap=20)], [("card", "5585 5585 5585 5583")])
item(L, STRIPE, f"Kartica 5200{NNBSP}8282{NNBSP}8282{NNBSP}8210 je bila zavrnjena", [("card", "5200 8282 8282 8210")])
item(L, ADYEN, "Naročilo št. 2025-44721 sem plačal s kartico 4988 4388 4388 4305", [("card", "4988 4388 4388 4305")], ["Naročilo št. 2025-44721"], "order")
item(L, STRIPE, "American Express 3714 496353 98431", [("card", "3714 496353 98431")])
item(L, ADYEN, "kartica\n4444 3333 2222 1111\nhvala", [("card", "4444 3333 2222 1111")])
item(L, BRAINTREE, "Številka: 4217.6511.1111.1119", [("card", "4217.6511.1111.1119")])
# IBAN
item(L, STD_IBAN, "TRR: SI56 1910 0000 0123 438", [("iban", "SI56 1910 0000 0123 438")])
item(L, STD_IBAN, "moj trr je si56 1910 0000 0123 438", [("iban", "si56 1910 0000 0123 438")])
item(L, STD_IBAN, "Vračilo na SI56-1910-0000-0123-438 prosim", [("iban", "SI56-1910-0000-0123-438")])
item(L, STD_IBAN, "IBAN SI 56 1910 0000 0123 438", [("iban", "SI 56 1910 0000 0123 438")])
item(L, STD_IBAN, ["TRR SI56 1910", M("0000 0123 438", gap=25)], [("iban", "SI56 1910 0000 0123 438")])
item(L, STD_IBAN, "račun HR1210010051863000160 (hrvaška banka)", [("iban", "HR1210010051863000160")])
item(L, STD_IBAN, "IBAN: AT61 1904 3002 3457 3201, hvala", [("iban", "AT61 1904 3002 3457 3201")])
# EMŠO
item(L, STD_SI, "EMŠO: 0101006500006", [("national_id", "0101006500006")])
item(L, STD_SI, "moj emšo je 1211981500126", [("national_id", "1211981500126")])
item(L, STD_SI, "EMSO 2902932505526 (za pogodbo)", [("national_id", "2902932505526")])
item(L, STD_SI, ["EMŠO 150899", M("5500237", gap=20)], [("national_id", "1508995500237")])
item(L, STD_SI, "emšo:2001939010010.", [("national_id", "2001939010010")])
# phones
item(L, LIBPHONE, "pokličite me na 031 234 567", [("phone", "031 234 567")])
item(L, LIBPHONE, "GSM: +386 31 234 567", [("phone", "+386 31 234 567")])
item(L, LIBPHONE, "tel. 041 123 456 (po 16. uri)", [("phone", "041 123 456")])
item(L, LIBPHONE, "Službeni telefon (01) 234 56 78", [("phone", "(01) 234 56 78")])
item(L, LIBPHONE, "00386 40 555 123", [("phone", "00386 40 555 123")])
item(L, LIBPHONE, "mobi 051/987-654", [("phone", "051/987-654")])
item(L, LIBPHONE, ["Številka je 031 234", M("567", gap=10)], [("phone", "031 234 567")])
# e-mail
item(L, SYN, "moj e-naslov je janez.novak@siol.net", [("email", "janez.novak@siol.net")])
item(L, SYN, "pišite na info@šola.si", [("email", "info@šola.si")])
item(L, SYN, "e-pošta: mojca+narocila@gmail.com.", [("email", "mojca+narocila@gmail.com")])
item(L, SYN, "(ana.kovač@gmail.com)", [("email", "ana.kovač@gmail.com")])

# ================================================================== SLOVENIAN — negatives
item(L, SYN, "Naročilo št. 2025-44721 še ni prispelo", keep=["Naročilo št. 2025-44721"], keep_category="order")
item(L, SYN, "Datum: 24. 11. 2026", keep=["24. 11. 2026"], keep_category="date")
item(L, SYN, "Račun št. 2026-000417 z dne 24.11.2026", keep=["2026-000417", "24.11.2026"], keep_category=["invoice", "date"])
item(L, "arthurdejong/python-stdnum stdnum/si/ddv.py doctest", "ID za DDV: SI 5022 3054", keep=["SI 5022 3054"], keep_category="company_id")
item(L, SYN, "Matična številka podjetja 5860571000", keep=["5860571000"], keep_category="company_id")
item(L, SYN, "Sklic: SI12 2025447210", keep=["SI12 2025447210"], keep_category="invoice")
item(L, SYN, "Cena 49,99 €, poštnina 3,50 EUR", keep=["49,99 €", "3,50 EUR"], keep_category="price")
item(L, "UPU S10 format with computed check digit", "Pošiljka RR123456785SI je obtičala", keep=["RR123456785SI"], keep_category="tracking")
item(L, SYN, "Slovenska cesta 35, 1000 Ljubljana", keep=["1000 Ljubljana"], keep_category="postcode")
item(L, SYN, "Delamo od 8:00 do 16:00, jutri ob 14.30", keep=["8:00", "16:00", "14.30"], keep_category="time")
item(L, SYN, "reklamacija št. 48213/2026", keep=["48213/2026"], keep_category="case")
item(L, SYN, "verzija aplikacije 2.4.1 na Androidu 14", keep=["2.4.1"], keep_category="version")
item(L, SYN, "naslov IP 192.168.1.254", keep=["192.168.1.254"], keep_category="ip")
item(L, "GS1 EAN-13 with computed check digit (prefix 383)", "EAN koda 3830000012348", keep=["3830000012348"], keep_category="sku")
item(L, SYN, "Številka pogodbe 2026/11-0042", keep=["2026/11-0042"], keep_category="contract")
item(L, SYN, "Dobavnica 2026-118-5567 z dne 2026-11-24", keep=["2026-118-5567", "2026-11-24"], keep_category=["order", "date"])
item(L, SYN, "Naročilo 31234567 je bilo preklicano", keep=["31234567"], keep_category="order")
item(L, SYN, "Popust 15 % do 31.12.2026, skupaj 1.299,00 €", keep=["31.12.2026", "1.299,00 €"], keep_category=["date", "price"])
item(L, STD_IMEI, "IMEI telefona: 35-417803-685978-9", keep=["35-417803-685978-9"], keep_category="imei")
item(L, SYN, "Čas: 2026-11-24T09:15:00Z", keep=["2026-11-24T09:15:00Z"], keep_category="timestamp")
item(L, SYN, "Paket 2 x 500 g, teža 1,2 kg", keep=["2 x 500 g", "1,2 kg"], keep_category="quantity")
item(L, SYN, "Reklamacija 041123456 je zaprta?", keep=["041123456"], keep_category="case")

# ================================================================== ENGLISH — sensitive
L = "en"
item(L, PRESIDIO_CC, "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881", [("card", "4012888888881881"), ("card", "4012-8888-8888-1881"), ("card", "4012 8888 8888 1881")])
item(L, PRESIDIO_CC, "my credit card: 122000000000003", [("card", "122000000000003")])
item(L, BRAINTREE, "card number 4217 6511 1111 1119 exp 08/29", [("card", "4217 6511 1111 1119")])
item(L, STRIPE, "Diners 3622 720627 1667", [("card", "3622 720627 1667")])
item(L, STRIPE, "UnionPay card 6205 5000 0000 0000 004", [("card", "6205 5000 0000 0000 004")])
item(L, PRESIDIO_CC, "it's a maestro: 6759649826438453", [("card", "6759649826438453")])
item(L, STRIPE, "card ４２４２ ４２４２ ４２４２ ４２４２", [("card", "４２４２ ４２４２ ４２４２ ４２４２")])
item(L, ADYEN, ["my card is 4111 1111", M("4555 1142", gap=20)], [("card", "4111 1111 4555 1142")])
item(L, BRAINTREE, "card:4009348888881881.", [("card", "4009348888881881")])
item(L, STRIPE, "Order #2026-118-5567 was charged twice on 2223 0031 2200 3222", [("card", "2223 0031 2200 3222")], ["#2026-118-5567"], "order")
item(L, BRAINTREE, "Invoice INV-2026-000123 paid by 4500-6000-0000-0061 on 24/11/2026", [("card", "4500-6000-0000-0061")], ["INV-2026-000123", "24/11/2026"], ["invoice", "date"])
item(L, STRIPE, "the card\n6011 0009 9013 9424\nthanks", [("card", "6011 0009 9013 9424")])
item(L, ADYEN, "Amex 3700 0000 0000 002 was declined", [("card", "3700 0000 0000 002")])
item(L, PRESIDIO_CC, "(30569309025904)", [("card", "30569309025904")])
item(L, BRAINTREE, f"visa 4012{NBSP}0000{NBSP}3333{NBSP}0026", [("card", "4012 0000 3333 0026")])
# IBAN
item(L, STD_IBAN, "IBAN GB29 NWBK 6016 1331 9268 19", [("iban", "GB29 NWBK 6016 1331 9268 19")])
item(L, STD_IBAN, "my iban is gb29nwbk60161331926819", [("iban", "gb29nwbk60161331926819")])
item(L, STD_IBAN, "Refund to IE29 AIBK 9311 5212 3456 78 please", [("iban", "IE29 AIBK 9311 5212 3456 78")])
item(L, STD_IBAN, "NL91ABNA0417164300 (ABN AMRO)", [("iban", "NL91ABNA0417164300")])
item(L, STD_IBAN, ["IBAN: SE45 5000 0000", M("0583 9825 7466", gap=30)], [("iban", "SE45 5000 0000 0583 9825 7466")])
item(L, STD_IBAN, "Danish account DK50 0040 0440 1162 43", [("iban", "DK50 0040 0440 1162 43")])
item(L, STD_IBAN, "iban: fi21-1234-5600-0007-85", [("iban", "fi21-1234-5600-0007-85")])
item(L, STD_IBAN, "IBAN\nGB29 NWBK 6016\n1331 9268 19", [("iban", "GB29 NWBK 6016 1331 9268 19")])
# national ids written in English chats
item(L, STD_SE, "My Swedish personnummer is 880320-0016", [("national_id", "880320-0016")])
item(L, STD_SE, "personal number 670919-9530", [("national_id", "670919-9530")])
item(L, STD_SE, "personnummer 19170512-0424 (my grandmother's)", [("national_id", "19170512-0424")])
item(L, STD_DK, "CPR 211062-5629", [("national_id", "211062-5629")])
item(L, WIKI_CPR, "my CPR number is 0707614285", [("national_id", "0707614285")])
item(L, STD_FI, "Finnish ID (HETU) 131052-308T", [("national_id", "131052-308T")])
item(L, STD_FI, "henkilötunnus 131052A308T", [("national_id", "131052A308T")])
item(L, STD_NO, "Norwegian national ID 15108695088", [("national_id", "15108695088")])
# phones
item(L, PRESIDIO_PHONE, "My US number is (415) 555-0132, and my international one is +1 415 555 0132", [("phone", "(415) 555-0132"), ("phone", "+1 415 555 0132")])
item(L, PRESIDIO_PHONE, "call me on +44 (20) 7123 4567", [("phone", "+44 (20) 7123 4567")])
item(L, LIBPHONE, "mobile 07400 123456", [("phone", "07400 123456")])
item(L, LIBPHONE, "office: 0121 234 5678", [("phone", "0121 234 5678")])
item(L, LIBPHONE, "my German mobile is +49 1512 3456787", [("phone", "+49 1512 3456787")])
item(L, LIBPHONE, "Swedish number +46 70 123 45 67", [("phone", "+46 70 123 45 67")])
item(L, LIBPHONE, "reach me at +45 32 12 34 56", [("phone", "+45 32 12 34 56")])
item(L, LIBPHONE, "Finnish mobile +358 41 2345678", [("phone", "+358 41 2345678")])
item(L, LIBPHONE, "text me: 201.555.0123", [("phone", "201.555.0123")])
item(L, PRESIDIO_PHONE, "Brazil: +55 11 98456 5666", [("phone", "+55 11 98456 5666")])
item(L, LIBPHONE, "+44 (0)20 7946 0018 is the best number during office hours", [("phone", "+44 (0)20 7946 0018")])
item(L, LIBPHONE, ["my number is +1 (646)", M("555-0143", gap=10)], [("phone", "+1 (646) 555-0143")])
item(L, PRESIDIO_PHONE, "_: +33 1 42 68 53 00", [("phone", "+33 1 42 68 53 00")])
# e-mail
item(L, PRESIDIO_EMAIL, "my email address is info@presidio.site", [("email", "info@presidio.site")])
item(L, PRESIDIO_EMAIL, "try one of these emails: info@presidio.site or anotherinfo@presidio.site", [("email", "info@presidio.site"), ("email", "anotherinfo@presidio.site")])
item(L, SYN, "send it to sales/eu=1@company.com", [("email", "sales/eu=1@company.com")])
item(L, SYN, "Email: ops=alerts@example.org", [("email", "ops=alerts@example.org")])
item(L, SYN, "you can reach our buyer at sales@firma.商務", [("email", "sales@firma.商務")])
item(L, SYN, "<john.o'brien@example.co.uk>", [("email", "john.o'brien@example.co.uk")])
item(L, SYN, "customer+order-2026@gmail.com, thanks!", [("email", "customer+order-2026@gmail.com")])

# ================================================================== ENGLISH — negatives
item(L, SYN, "Order #2026-118-5567 hasn't arrived", keep=["#2026-118-5567"], keep_category="order")
item(L, SYN, "Invoice INV-2026-000123 is wrong", keep=["INV-2026-000123"], keep_category="invoice")
item(L, SYN, "Case 01234567 – any update?", keep=["01234567"], keep_category="case")
item(L, SYN, "Ticket #48213 was closed without a reply", keep=["#48213"], keep_category="ticket")
item(L, SYN, "PO 4500123456 needs a new delivery date", keep=["4500123456"], keep_category="order")
item(L, SYN, "I'm on Windows 10.0.19045.3693 with Chrome 119.0.6045.159", keep=["10.0.19045.3693", "119.0.6045.159"], keep_category="version")
item(L, "UPS tracking number example (UPS developer docs)", "UPS tracking 1Z999AA10123456784", keep=["1Z999AA10123456784"], keep_category="tracking")
item(L, "USPS 22-digit tracking with computed mod-10 check digit", "USPS says 9400 1118 9922 3197 4284 97 was delivered", keep=["9400 1118 9922 3197 4284 97"], keep_category="tracking")
item(L, SYN, "sort code 20-00-00", keep=["20-00-00"], keep_category="sort_code")
item(L, SYN, "It was £1,299.99, now $1,049.00", keep=["£1,299.99", "$1,049.00"], keep_category="price")
item(L, SYN, "delivered 24/11/2026, ordered 11/20/2026", keep=["24/11/2026", "11/20/2026"], keep_category="date")
item(L, SYN, "IP 10.0.0.1 / 2001:db8:85a3::8a2e:370:7334", keep=["10.0.0.1", "2001:db8:85a3::8a2e:370:7334"], keep_category="ip")
item(L, SYN, "10 Downing Street, London SW1A 2AA", keep=["SW1A 2AA"], keep_category="postcode")
item(L, STD_IMEI, "IMEI 35-417803-685978-9", keep=["35-417803-685978-9"], keep_category="imei")
item(L, SYN, "serial number C02XK0ABJGH5", keep=["C02XK0ABJGH5"], keep_category="sku")
item(L, SYN, "Amazon order 112-4567890-1234567", keep=["112-4567890-1234567"], keep_category="order")
item(L, SYN, "event timestamp 1764000000000", keep=["1764000000000"], keep_category="timestamp")
item(L, SYN, "Reference 2026112400042", keep=["2026112400042"], keep_category="invoice")
item(L, SYN, "meeting at 14:30 on Nov 24, 2026", keep=["14:30", "Nov 24, 2026"], keep_category=["time", "date"])
item(L, STD_IMEI, "the IMEISV is 35686800-004141-20", keep=["35686800-004141-20"], keep_category="imei")
item(L, SYN, "Booking ref 4155550132 for the hotel", keep=["4155550132"], keep_category="order")
item(L, SYN, "Order number: 2015550123", keep=["2015550123"], keep_category="order")
item(L, SYN, "2 x 250ml bottles, total 12.50", keep=["2 x 250ml", "12.50"], keep_category=["quantity", "price"])
item(L, SYN, "tracking number 00340434161094042557 (DHL)", keep=["00340434161094042557"], keep_category="tracking")
item(L, SYN, "Version 3.2.1-beta.4 build 20261124.2", keep=["3.2.1-beta.4", "20261124.2"], keep_category="version")
item(L, SYN, "Order 4111-2026 was for 1 item", keep=["4111-2026"], keep_category="order")
item(L, SYN, "Account created 2026-11-24 at 09:15:30 UTC", keep=["2026-11-24", "09:15:30"], keep_category=["date", "time"])
item(L, SYN, "Your confirmation code is 552 918", keep=["552 918"], keep_category="order")

# ================================================================== GERMAN — sensitive
L = "de"
item(L, ADYEN, "Kartennummer 4988 4388 4388 4305", [("card", "4988 4388 4388 4305")])
item(L, ADYEN, f"Karte: 5577{NNBSP}0000{NNBSP}5577{NNBSP}0004", [("card", "5577 0000 5577 0004")])
item(L, ADYEN, "meine Kreditkarte 4646-4646-4646-4644 wurde abgelehnt", [("card", "4646-4646-4646-4644")])
item(L, STRIPE, "Kreditkarte 3566 0020 2036 0505 (JCB)", [("card", "3566 0020 2036 0505")])
item(L, BRAINTREE, ["Karte 4012 8888", M("8888 1881", gap=20)], [("card", "4012 8888 8888 1881")])
item(L, ADYEN, "Bestellnummer 302-1234567-1234567, bezahlt mit 5100 0811 1222 3332", [("card", "5100 0811 1222 3332")], ["302-1234567-1234567"], "order")
item(L, STRIPE, "Die Karte 4242.4242.4242.4242 läuft 12/26 ab", [("card", "4242.4242.4242.4242")])
item(L, STRIPE, "Karte\n3782 822463\n10005", [("card", "3782 822463 10005")])
item(L, ADYEN, "Maestro:6771798021000008;", [("card", "6771798021000008")])
item(L, BRAINTREE, "Am 24.11.2026 wurden 1.299,00 € von 5555555555554444 abgebucht", [("card", "5555555555554444")], ["24.11.2026", "1.299,00 €"], ["date", "price"])
# IBAN
item(L, STD_IBAN, "IBAN: DE89 3704 0044 0532 0130 00", [("iban", "DE89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, "meine iban de89 3704 0044 0532 0130 00", [("iban", "de89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, "Bitte auf DE 89 3704 0044 0532 0130 00 überweisen", [("iban", "DE 89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, "IBAN DE89-3704-0044-0532-0130-00", [("iban", "DE89-3704-0044-0532-0130-00")])
item(L, STD_IBAN, "Konto in Österreich: AT611904300234573201", [("iban", "AT611904300234573201")])
item(L, STD_IBAN, "CH93 0076 2011 6238 5295 7 (Schweiz)", [("iban", "CH93 0076 2011 6238 5295 7")])
item(L, STD_IBAN, "IBAN DE89 3704 0044\n0532 0130 00", [("iban", "DE89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, ["Rückerstattung bitte an DE89 3704", M("0044 0532 0130 00", gap=40)], [("iban", "DE89 3704 0044 0532 0130 00")])
item(L, STD_IBAN, "Rechnung RE-2026-00417, IBAN: DE89370400440532013000", [("iban", "DE89370400440532013000")], ["RE-2026-00417"], "invoice")
# phones
item(L, LIBPHONE, "Festnetz 030 123456", [("phone", "030 123456")])
item(L, LIBPHONE, "Tel.: +49 (0)30 123456", [("phone", "+49 (0)30 123456")])
item(L, LIBPHONE, "Handy 0171 2345678", [("phone", "0171 2345678")])
item(L, LIBPHONE, "erreichbar unter +49 171 2345678", [("phone", "+49 171 2345678")])
item(L, LIBPHONE, "Rufen Sie mich unter +49 1512 3456787 an", [("phone", "+49 1512 3456787")])
item(L, LIBPHONE, "Tel 089/12345678", [("phone", "089/12345678")])
item(L, LIBPHONE, "0049 30 1234567 (Büro)", [("phone", "0049 30 1234567")])
item(L, LIBPHONE, "Mobil: 0176 12345679", [("phone", "0176 12345679")])
item(L, LIBPHONE, ["Meine Nummer ist 01522", M("3456786", gap=15)], [("phone", "01522 3456786")])
item(L, LIBPHONE, f"Rückruf bitte: +49{NBSP}160{NBSP}12345677", [("phone", "+49 160 12345677")])
# e-mail
item(L, SYN, "E-Mail: max.mustermann@web.de", [("email", "max.mustermann@web.de")])
item(L, SYN, "schreiben Sie an info@müller.de", [("email", "info@müller.de")])
item(L, SYN, "Meine Adresse lautet kontakt@bücher.de.", [("email", "kontakt@bücher.de")])
item(L, SYN, "bestellung=42@shop-beispiel.de", [("email", "bestellung=42@shop-beispiel.de")])
item(L, SYN, "Mail an jürgen.groß@gmx.de bitte", [("email", "jürgen.groß@gmx.de")])

# ================================================================== GERMAN — negatives
item(L, SYN, "Bestellnummer 302-1234567-1234567 ist nicht angekommen", keep=["302-1234567-1234567"], keep_category="order")
item(L, SYN, "Rechnungsnummer RE-2026-00417", keep=["RE-2026-00417"], keep_category="invoice")
item(L, SYN, "Kundennummer 100 234 567", keep=["100 234 567"], keep_category="customer_no")
item(L, "arthurdejong/python-stdnum stdnum/de/vat.py doctest", "USt-IdNr. DE136695976", keep=["USt-IdNr. DE136695976"], keep_category="company_id")
item(L, SYN, "Steuernummer 93815/08152", keep=["93815/08152"], keep_category="company_id")
item(L, SYN, "Amtsgericht München HRB 123456", keep=["HRB 123456"], keep_category="company_id")
item(L, "GS1 SSCC with computed check digit (DHL Paket style)", "DHL Sendungsnummer 00340434161094042557", keep=["00340434161094042557"], keep_category="tracking")
item(L, SYN, "am 24.11.2026 um 14:30 Uhr", keep=["24.11.2026", "14:30"], keep_category=["date", "time"])
item(L, SYN, "Preis 1.299,00 €, jetzt 999,- EUR", keep=["1.299,00 €", "999,- EUR"], keep_category="price")
item(L, SYN, "Friedrichstraße 43-45, 10117 Berlin", keep=["10117 Berlin"], keep_category="postcode")
item(L, SYN, "Firmware 4.2.1-20261101 installiert", keep=["4.2.1-20261101"], keep_category="version")
item(L, SYN, "Auftragsnummer 4500123456", keep=["4500123456"], keep_category="order")
item(L, SYN, "Vorgangsnummer 2026/11/0042", keep=["2026/11/0042"], keep_category="case")
item(L, STD_IMEI, "IMEI 350077523237513", keep=["350077523237513"], keep_category="imei")
item(L, "GS1 EAN-13 (stdnum / GS1 example)", "Artikelnummer 4006381333931", keep=["4006381333931"], keep_category="sku")
item(L, SYN, "Lieferung in KW 48/2026", keep=["48/2026"], keep_category="date")
item(L, SYN, "BLZ 370 400 44", keep=["370 400 44"], keep_category="bank_ref")
item(L, SYN, "Kundennummer 0301234567 – bitte prüfen", keep=["0301234567"], keep_category="customer_no")
item(L, SYN, "Bestellung 01712345678 vom 2026-11-24", keep=["01712345678", "2026-11-24"], keep_category=["order", "date"])
item(L, SYN, "Liefertermin 24.11.2026–28.11.2026, Zeitfenster 08:00–12:00", keep=["24.11.2026", "28.11.2026", "08:00", "12:00"], keep_category=["date", "date", "time", "time"])
item(L, SYN, "Ticket-Nr. 2026-118-5567", keep=["2026-118-5567"], keep_category="ticket")
item(L, SYN, "Versand mit Hermes, Sendung H1002345678901234567", keep=["H1002345678901234567"], keep_category="tracking")
item(L, SYN, "3 Stück à 19,99 €", keep=["19,99 €"], keep_category="price")
item(L, SYN, "iOS 17.1.2, App-Version 8.4.0 (8040017)", keep=["17.1.2", "8.4.0", "8040017"], keep_category="version")
item(L, SYN, "Router-IP ist 192.168.178.1", keep=["192.168.178.1"], keep_category="ip")
item(L, SYN, "Zeitstempel 2026-11-24 14:30:05 MEZ", keep=["2026-11-24 14:30:05"], keep_category="timestamp")

# ================================================================== extra cross-language negatives (KID / org / dates)
L = "nb"
item(L, SYN, "Giro: KID 00048213003, kontonummer står på fakturaen", keep=["00048213003"], keep_category="kid")
item(L, SYN, "Ordre nr. 48 12 34 56 kom ikke", keep=["48 12 34 56"], keep_category="order")
item(L, SYN, "Leveringsdato 2026-11-24, hentefrist 2026-12-08", keep=["2026-11-24", "2026-12-08"], keep_category="date")
item(L, SYN, "Fakturadato 24/11/2026, forfall 08/12/2026", keep=["24/11/2026", "08/12/2026"], keep_category="date")
item(L, SYN, "Windows 10.0.19045.3693 og Edge 119.0.2151.72", keep=["10.0.19045.3693", "119.0.2151.72"], keep_category="version")
item(L, SYN, "Pakke fra Posten: 70701234567890123 har stått på terminalen i en uke", keep=["70701234567890123"], keep_category="tracking")
item(L, SYN, "Faktura 261124-0042 gjelder november", keep=["261124-0042"], keep_category="invoice")
item(L, SYN, "Ordre #2026-118-5567 og #2026-118-5568 ble slått sammen", keep=["#2026-118-5567", "#2026-118-5568"], keep_category="order")
L = "en"
item(L, SYN, "INV-2026-000123 and INV-2026-000124 both show 24.11.2026", keep=["INV-2026-000123", "INV-2026-000124", "24.11.2026"], keep_category=["invoice", "invoice", "date"])
item(L, SYN, "ticket 2026-11-24-00042 opened at 2026-11-24T08:00:00Z", keep=["2026-11-24-00042", "2026-11-24T08:00:00Z"], keep_category=["ticket", "timestamp"])

L = "ru"
item(L, SYN, "Дата рождения 15.10.1986, если нужно", keep=["15.10.1986"], keep_category="date")
item(L, SYN, "Серийный номер SN 3B2401F12345", keep=["3B2401F12345"], keep_category="sku")
item(L, SYN, "код получения в ПВЗ 483920", keep=["483920"], keep_category="order")
item(L, SYN, "190000, Санкт-Петербург, Невский пр., д. 28", keep=["190000"], keep_category="postcode")
item(L, SYN, "2 шт., вес 1,5 кг, срок 5–7 рабочих дней", keep=["1,5 кг"], keep_category="quantity")
item(L, SYN, "рейс SU 1234 вылетает 2026-12-01 в 06:40", keep=["SU 1234", "2026-12-01", "06:40"], keep_category=["order", "date", "time"])
item(L, SYN, "Накладная № 0042/26 от 24.11.26", keep=["0042/26", "24.11.26"], keep_category=["invoice", "date"])
L = "sl"
item(L, SYN, "rok plačila 8 dni, do 2. 12. 2026", keep=["2. 12. 2026"], keep_category="date")
item(L, SYN, "Koda za prevzem 582 913", keep=["582 913"], keep_category="order")
item(L, SYN, "Pridem ob 9.30, poštna številka 2000 Maribor", keep=["9.30", "2000 Maribor"], keep_category=["time", "postcode"])
item(L, SYN, "Windows 10.0.19045.3693, brskalnik 119.0.6045.159", keep=["10.0.19045.3693", "119.0.6045.159"], keep_category="version")
item(L, "UPS tracking number example (UPS developer docs)", "številka za sledenje 1Z999AA10123456784", keep=["1Z999AA10123456784"], keep_category="tracking")
item(L, SYN, "Cena 1.049,90 EUR z DDV", keep=["1.049,90 EUR"], keep_category="price")
item(L, SYN, "Datum rojstva 15.10.1986", keep=["15.10.1986"], keep_category="date")
item(L, SYN, "Številka računa 2026-11-0042 z dne 24.11.2026", keep=["2026-11-0042", "24.11.2026"], keep_category=["invoice", "date"])
L = "de"
item(L, SYN, "Geburtsdatum 15.10.1986", keep=["15.10.1986"], keep_category="date")
item(L, SYN, "Abholcode 582913 für die Packstation 123", keep=["582913"], keep_category="order")
item(L, SYN, "Rücksendenummer R-2026-118-5567", keep=["R-2026-118-5567"], keep_category="order")
item(L, SYN, "Seriennummer SN 4CE0460D0G, Gewicht 2,5 kg", keep=["4CE0460D0G", "2,5 kg"], keep_category=["sku", "quantity"])
item(L, SYN, "Auftrag vom 1. Dezember 2026, Lieferung 03.12.", keep=["03.12."], keep_category="date")
item(L, SYN, "Vertragsnummer 2026-000417-01", keep=["2026-000417-01"], keep_category="contract")
L = "nb"
item(L, SYN, "Fødselsdato 15.10.1986", keep=["15.10.1986"], keep_category="date")
item(L, STD_SE, "Jeg er svensk, personnummer 811228-9874", [("national_id", "811228-9874")])
L = "en"
item(L, SYN, "DOB 15/10/1986", keep=["15/10/1986"], keep_category="date")
item(L, STD_SE, "personnummer 8803200420", [("national_id", "8803200420")])
item(L, "synthetic, valid per stdnum.fi.hetu", "HETU 311280-888Y", [("national_id", "311280-888Y")])
L = "de"
item(L, WIKI_CPR, "dänische CPR-Nummer 070761-4285", [("national_id", "070761-4285")])

# ================================================================== ROUND 2
ROUND[0] = 2
L = "nb"
item(L, STRIPE, "kortet mitt: 4242–4242–4242–4242", [("card", "4242–4242–4242–4242")])
item(L, STRIPE, "4242424242424242 12/28 123", [("card", "4242424242424242")])
item(L, STRIPE, "kort:5555555555554444!", [("card", "5555555555554444")])
item(L, ADYEN, ["4988 4388", M("4388 4305 utløper 12/27", gap=30)], [("card", "4988 4388 4388 4305")])
item(L, STD_NO, "fnr 151086\n95088", [("national_id", "151086 95088")])
item(L, STD_NO, "fødselsnummer:26111594286.", [("national_id", "26111594286")])
item(L, LIBPHONE, "tlf:40612345, helst etter 16", [("phone", "40612345")])
item(L, LIBPHONE, "0047-406-12-345", [("phone", "0047-406-12-345")])
item(L, LIBPHONE, "Mobil +47 406 12 345 / jobb 21 23 45 67", [("phone", "+47 406 12 345"), ("phone", "21 23 45 67")])
item(L, STD_IBAN, f"IBAN:no93{NBSP}8601{NBSP}1117{NBSP}947", [("iban", "no93 8601 1117 947")])
item(L, STD_IBAN, "kontoen min er NO9386011117947;", [("iban", "NO9386011117947")])
item(L, SYN, "Kari.Nordmann@Online.NO er e-posten", [("email", "Kari.Nordmann@Online.NO")])
item(L, SYN, "[støtte@nettbutikk.no]", [("email", "støtte@nettbutikk.no")])
item(L, SYN, "mailto:ola.nordmann@firma.no", [("email", "ola.nordmann@firma.no")])
item(L, SYN, "Vi har åpent 08-16, ring oss gjerne", keep=["08-16"], keep_category="time")
item(L, SYN, "org nr 995525828", keep=["995525828"], keep_category="company_id")
item(L, SYN, "NO-0250 Oslo", keep=["NO-0250"], keep_category="postcode")
item(L, SYN, "Beløp: NOK 4 990 og 4 242,42 kr i frakt", keep=["NOK 4 990", "4 242,42 kr"], keep_category="price")
item(L, "Bring/Posten 18-digit shipment number with Luhn check digit", "Sendingsnummer 370722150123456789", keep=["370722150123456789"], keep_category="tracking")
item(L, SYN, "fødselsdato 151086, ikke hele nummeret", keep=["151086"], keep_category="date")
item(L, SYN, "08.12.2026 kl. 10:00–14:00", keep=["08.12.2026", "10:00", "14:00"], keep_category=["date", "time", "time"])
item(L, SYN, "KID 12345678903 og faktura 2026-000417", keep=["12345678903", "2026-000417"], keep_category=["kid", "invoice"])
item(L, SYN, "1000 stk à 2,50 = 2 500,00", keep=["1000 stk", "2,50", "2 500,00"], keep_category=["quantity", "price", "price"])
item(L, SYN, "Instagram: @kari_nordmann, ikke e-post", keep=["@kari_nordmann"], keep_category="handle")
L = "ru"
item(L, LIBPHONE, "тел +7 (912) 345 67 89", [("phone", "+7 (912) 345 67 89")])
item(L, LIBPHONE, "8(912)3456789 — звоните", [("phone", "8(912)3456789")])
item(L, STRIPE, "карта 4000 0566 5566 5556 12/28 cvc 123", [("card", "4000 0566 5566 5556")])
item(L, SNILS, "СНИЛС 112 233 445 95", [("national_id", "112 233 445 95")])
item(L, SYN, "почта: Info@Магазин.рф", [("email", "Info@Магазин.рф")])
item(L, SYN, "ivan_petrov-1985@mail.ru?", [("email", "ivan_petrov-1985@mail.ru")])
item(L, STD_IBAN, "IBAN DE89-3704-0044-0532-0130-00, получатель Иванов", [("iban", "DE89-3704-0044-0532-0130-00")])
item(L, SYN, "24.11.2026г. в 14:30", keep=["24.11.2026", "14:30"], keep_category=["date", "time"])
item(L, SYN, "с 24.11 по 28.11 не смогу", keep=["24.11", "28.11"], keep_category="date")
item(L, SYN, "сумма 1 234 567,89 ₽", keep=["1 234 567,89 ₽"], keep_category="price")
item(L, SYN, "Android 14 (UP1A.231005.007)", keep=["UP1A.231005.007"], keep_category="version")
item(L, SYN, "Заказ № 7701234567 от 24.11.2026", keep=["№ 7701234567", "24.11.2026"], keep_category=["order", "date"])
item(L, SYN, "номер заявки 2026/11/24-0042", keep=["2026/11/24-0042"], keep_category="case")
L = "sl"
item(L, LIBPHONE, "mobitel +386 (0)31 234 567", [("phone", "+386 (0)31 234 567")])
item(L, LIBPHONE, "tel:041/123-456", [("phone", "041/123-456")])
item(L, STD_SI, "EMŠO 0101006 50 000 6", [("national_id", "0101006 50 000 6")])
item(L, STD_IBAN, f"TRR{NBSP}SI56{NBSP}1910{NBSP}0000{NBSP}0123{NBSP}438", [("iban", "SI56 1910 0000 0123 438")])
item(L, ADYEN, "kartica 4646.4646.4646.4644, CVC 737", [("card", "4646.4646.4646.4644")])
item(L, SYN, "naslov: Tina.Horvat@Gmail.com.", [("email", "Tina.Horvat@Gmail.com")])
item(L, SYN, "SI-1000 Ljubljana, Trubarjeva 5", keep=["SI-1000"], keep_category="postcode")
item(L, SYN, "Datum 24-11-2026, ura 9.15", keep=["24-11-2026", "9.15"], keep_category=["date", "time"])
item(L, SYN, "Naročilo št. 2026-0044721 in račun 2026-000418", keep=["2026-0044721", "2026-000418"], keep_category=["order", "invoice"])
item(L, SYN, "IP 85.164.22.198:8443", keep=["85.164.22.198:8443"], keep_category="ip")
item(L, SYN, "Skupaj EUR 1.234.567,89", keep=["EUR 1.234.567,89"], keep_category="price")
L = "en"
item(L, LIBPHONE, "(020) 7946 0958", [("phone", "(020) 7946 0958")])
item(L, LIBPHONE, "+44 20 7946 0958 ext. 12", [("phone", "+44 20 7946 0958")])
item(L, STRIPE, "card 4242424242424242|12/28|123", [("card", "4242424242424242")])
item(L, STRIPE, "It's 3782-822463-10005.", [("card", "3782-822463-10005")])
item(L, STD_SE, "personnummer: 19670919-9530", [("national_id", "19670919-9530")])
item(L, STD_FI, "hetu 131052a308t", [("national_id", "131052a308t")])
item(L, STD_DK, "CPR 2110625629", [("national_id", "2110625629")])
item(L, STD_IBAN, "GB29 NWBK 6016 1331 9268 19.", [("iban", "GB29 NWBK 6016 1331 9268 19")])
item(L, SYN, "email me at JOHN.SMITH@EXAMPLE.COM", [("email", "JOHN.SMITH@EXAMPLE.COM")])
item(L, SYN, "Follow us @parley_support or #support", keep=["@parley_support"], keep_category="handle")
item(L, SYN, "v2.14.3, build 23B81, Windows 10.0.22631.2715", keep=["v2.14.3", "23B81", "10.0.22631.2715"], keep_category="version")
item(L, SYN, "sort code 40-47-84", keep=["40-47-84"], keep_category="sort_code")
item(L, SYN, "$ 12,345,678.00 total for 12 x 330 ml", keep=["$ 12,345,678.00", "12 x 330 ml"], keep_category=["price", "quantity"])
item(L, SYN, "logged 20261124T143005Z", keep=["20261124T143005Z"], keep_category="timestamp")
item(L, SYN, "DHL Express waybill 4512345678", keep=["4512345678"], keep_category="tracking")
L = "de"
item(L, LIBPHONE, "Handy: 0171/2345678", [("phone", "0171/2345678")])
item(L, LIBPHONE, "Tel.+49-171-2345678", [("phone", "+49-171-2345678")])
item(L, STD_IBAN, f"iban{NBSP}de89{NBSP}3704{NBSP}0044{NBSP}0532{NBSP}0130{NBSP}00", [("iban", "de89 3704 0044 0532 0130 00")])
item(L, STRIPE, "Karte 5200 8282 8282 8210, gültig bis 09/28, Prüfnummer 123", [("card", "5200 8282 8282 8210")])
item(L, SYN, "E-Mail:Max.Mustermann@T-Online.de;", [("email", "Max.Mustermann@T-Online.de")])
item(L, SYN, "D-80331 München", keep=["D-80331"], keep_category="postcode")
item(L, SYN, "DHL Express Sendungsnummer 4512345678", keep=["4512345678"], keep_category="tracking")
item(L, SYN, "Datum 2026.11.24, Uhrzeit 14.30 Uhr", keep=["2026.11.24", "14.30"], keep_category=["date", "time"])
item(L, SYN, "Zeitstempel 24.11.2026 14:30:05", keep=["24.11.2026 14:30:05"], keep_category="timestamp")
item(L, SYN, "IMEI: 35 209900 176148 1", keep=["35 209900 176148 1"], keep_category="imei")
item(L, SYN, "Summe EUR 1.234.567,89 inkl. MwSt.", keep=["EUR 1.234.567,89"], keep_category="price")


# ---------------------------------------------------------------- validate and write
def main() -> None:
    for it in items:
        for e in it["expect"]:
            check(e["kind"], e["value"], it["language"])
    with OUT.open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    sens = sum(1 for i in items if i["expect"])
    print(f"{len(items)} items, {sens} sensitive, {len(items) - sens} negative-only, "
          f"{sum(len(i['expect']) for i in items)} sensitive values, {sum(len(i['keep']) for i in items)} keeps -> {OUT}")


if __name__ == "__main__":
    main()
