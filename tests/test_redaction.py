"""Redaction: what each detector catches, what it must leave alone, and tenant switches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from stdnum import luhn

from archive.redaction import ChatLine, RedactionOptions, Redactor, options_from, redact_conversation
from archive.tenancy import TenantSettings

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ALL_IDS = RedactionOptions(national_ids=["no", "se", "dk", "fi", "si", "ru"])


def redact(text: str, options: object = None, language: str | None = None, **settings) -> tuple[str, dict[str, int]]:
    redactor = Redactor(options if options is not None else TenantSettings(**settings), language)
    return redactor.redact(text), dict(redactor.counts)


def lines(*texts: str, author: str = "visitor", gap: int = 20) -> list[ChatLine]:
    return [ChatLine(author, T0 + timedelta(seconds=gap * i), t) for i, t in enumerate(texts)]


# ---- cards -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,expected",
    [
        ("4111 1111 1111 1111", "4111 11** **** 1111"),
        ("4111-1111-1111-1111", "4111-11**-****-1111"),
        ("5555555555554444", "555555******4444"),
        ("amex 378282246310005.", "amex 378282*****0005."),
        ("card 4111 1111 1111 1111 exp 2026", "card 4111 11** **** 1111 exp 2026"),
    ],
)
def test_card_numbers_keep_at_most_first_six_and_last_four(text, expected):
    assert redact(text) == (expected, {"card": 1})


@pytest.mark.parametrize(
    "text,expected",
    [
        ("5200.8282.8282.8210", "5200.82**.****.8210"),
        ("5200\u00a08282\u00a08282\u00a08210", "5200\u00a082**\u00a0****\u00a08210"),
        ("5200\u20098282\u202f8282\u20138210", "5200\u200982**\u202f****\u20138210"),
        ("kort 5200 8282\n8282 8210 takk", "kort 5200 82**\n**** 8210 takk"),
        ("５２００ ８２８２ ８２８２ ８２１０", "５２００ ８２** **** ８２１０"),
    ],
)
def test_cards_typed_with_dots_no_break_spaces_line_breaks_or_full_width_digits_keep_their_layout(text, expected):
    assert redact(text) == (expected, {"card": 1})


@pytest.mark.parametrize(
    "text,expected",
    [
        ("kortnr4242424242424242", "kortnr424242******4242"),
        ("nr4242 4242 4242 4242", "nr4242 42** **** 4242"),
        ("cc5555555555554444 exp 08/29", "cc555555******4444 exp 08/29"),
        ("4242424242424242exp 08/29", "424242******4242exp 08/29"),
        ("378282246310005exp 0829", "378282*****0005exp 0829"),
        ("4242,4242,4242,4242", "4242,42**,****,4242"),
    ],
)
def test_cards_glued_to_words_or_grouped_by_commas_are_masked(text, expected):
    # Public test PANs (Stripe, Adyen) as a customer types them in a hurry.
    assert redact(text) == (expected, {"card": 1})


@pytest.mark.parametrize("text", ["1,234,567 kr", "ids 1234,5678,9012", "model XR2000 in stock", "v2.14.1b"])
def test_comma_lists_thousands_and_product_codes_are_not_cards(text):
    assert redact(text, redact_phone=False) == (text, {})


@pytest.mark.parametrize(
    "text",
    [
        "Bestellnummer 302-4978690-7366258",  # Amazon.de order ids: 17 digits from 302 to 305, no card length
        "Amazon order 305-8310122-2834598 never arrived",
        "EAN 4085509083736",  # an EAN-13 barcode from Germany: 13 digits starting with 4
        "Artikelnummer 4043552474161 ist ausverkauft",
    ],
)
def test_order_numbers_and_barcodes_of_retired_or_unissued_card_lengths_are_kept(text):
    assert luhn.is_valid("".join(ch for ch in text if ch.isdigit()))  # each would pass a card's checksum
    assert redact(text) == (text, {})


def test_a_thirteen_digit_visa_without_a_business_label_is_still_a_card():
    # 4222222222222 is in every published test-card list; no label, no benefit of the doubt.
    assert redact("card 4222222222222") == ("card 422222***2222", {"card": 1})


def test_full_card_masking_is_a_tenant_setting():
    assert redact("4111 1111 1111 1111", card_mask="full") == ("[card]", {"card": 1})


@pytest.mark.parametrize("text", ["4111 1111 1111 1112", "order 1234567890123", "0000 0000 0000 0000"])
def test_numbers_that_fail_luhn_are_not_cards(text):
    assert "card" not in redact(text)[1]


def test_a_luhn_valid_number_without_a_card_issuer_prefix_is_not_a_card():
    # 7-prefixed (petroleum) and 0-prefixed numbers pass Luhn as often as any other.
    assert redact("7000 0000 0000 0006")[1] == {}


def test_a_phone_number_that_passes_luhn_is_masked_as_a_phone():
    assert redact("ring +49 1512 3450004") == ("ring [phone]", {"phone": 1})


# ---- IBAN ------------------------------------------------------------------------------------

@pytest.mark.parametrize("iban", ["NO93 8601 1117 947", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"])
def test_ibans_with_valid_checksums_are_masked(iban):
    text, counts = redact(f"pay to {iban} today")
    assert counts == {"iban": 1}
    compact = text.replace(" ", "")
    assert iban.replace(" ", "") not in compact and iban.replace(" ", "")[-4:] in compact


def test_an_iban_glued_to_the_word_iban_is_masked():
    assert redact("IBANNO9386011117947") == ("IBANNO93*******7947", {"iban": 1})


def test_ibans_with_bad_checksums_are_left_alone():
    assert redact("NO94 8601 1117 947")[1].get("iban") is None


def test_iban_keeps_country_check_digits_and_last_four_in_the_original_layout():
    assert redact("IBAN DE89 3704 0044 0532 0130 00") == ("IBAN DE89 **** **** **** **30 00", {"iban": 1})


@pytest.mark.parametrize(
    "written,expected",
    [
        ("no93-8601-1117-947", "no93-****-***7-947"),
        ("NO 93 8601 1117 947", "NO 93 **** ***7 947"),
        ("de89 3704 0044 0532 0130 00", "de89 **** **** **** **30 00"),
    ],
)
def test_ibans_in_lower_case_with_dashes_or_a_space_after_the_country_code(written, expected):
    assert redact(f"konto {written}") == (f"konto {expected}", {"iban": 1})


def test_an_iban_beats_the_luhn_valid_card_window_inside_it():
    # "4000 0566 5566 5556" is a Luhn-valid Visa test card; inside an IBAN it is part of the account.
    iban = "GB78 HBUK 4000 0566 5566 55"
    text, counts = redact(f"konto {iban}")
    assert counts == {"iban": 1}
    assert "5566" not in text.replace(" ", "")[:-4]


# ---- national identity numbers ---------------------------------------------------------------

@pytest.mark.parametrize("number", ["15076500565", "150765 00565", "01010050053"])
def test_norwegian_national_ids_with_valid_check_digits_are_masked(number):
    assert redact(f"fødselsnummer {number}") == ("fødselsnummer [national-id]", {"national_id_no": 1})


def test_eleven_digit_numbers_with_wrong_check_digits_are_not_national_ids():
    assert "national_id_no" not in redact("15076500566")[1]


@pytest.mark.parametrize(
    "text,kind",
    [
        ("personnummer 880320-0016", "national_id_se"),
        ("CPR 211062-5629", "national_id_dk"),
        ("henkilötunnus 131052-308T", "national_id_fi"),
        ("EMŠO 0101006500006", "national_id_si"),
        ("СНИЛС 112-233-445 95", "national_id_ru"),
    ],
)
def test_other_national_ids_are_masked_once_the_tenant_switches_them_on(text, kind):
    assert redact(text)[1] == {}
    assert redact(text, ALL_IDS)[1] == {kind: 1}


def test_a_danish_cpr_without_check_digit_needs_its_dash_or_a_cue():
    assert redact("ref 2110625629 ok", ALL_IDS)[1] == {}
    assert redact("211062-5629", ALL_IDS)[1] == {"national_id_dk": 1}


def test_a_date_stamped_reference_is_not_a_newborns_personnummer():
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    reference = f"{today}-004{luhn.calc_check_digit(today[2:] + '004')}"  # a valid personnummer of a baby born today
    assert redact(f"ärende {reference}", ALL_IDS)[1] == {}
    assert redact(f"personnummer {reference}", ALL_IDS)[1] == {"national_id_se": 1}


# ---- card security codes -----------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "card 4242 4242 4242 4242, exp 12/34, CVC: 737",
    "cvv 123",
    "and the CVV2 is 4021",
    "kortet utløper 03/27 og kontrollsifferet er 412",
    "sikkerhetskode: 981",
    "Kartenprüfnummer 5530",
    "varnostna koda je 312",
    "код безопасности 845",
    "CVC-код: 190",
    "код CVV 777",
    "CVC code: 737",
    "CVV number 737",
    "CVC-nummer 737",
    "CVV koda: 123",
])
def test_a_card_security_code_named_as_such_is_masked_fully(text):
    redacted, counts = redact(text)
    code = text.rstrip(".").split()[-1]
    assert counts.get("card_security_code") == 1 and code not in redacted.split() and "[cvc]" in redacted


@pytest.mark.parametrize("text", [
    "order 737 shipped",
    "CVC Capital bought us in 2019",
    "CVV is on the back, but I won't send it",
    "cvc 12.5 EUR",
    "sikkerhetskode 4021-1234 for døren",
    "ring 737 123 45",
    "the CVV number is on the back",
    "cid 1234 is the customer",  # "CID" counts only in capitals
    "the CSC team has 120 agents",
])
def test_three_or_four_digits_without_the_codes_name_right_before_them_stay(text):
    assert redact(text, redact_phone=False) == (text, {})


# ---- phone numbers and e-mail ------------------------------------------------------------------

def test_email_and_phone_redaction_can_be_switched_off_per_tenant():
    text = "write ola@example.no or call +47 912 34 567"
    assert redact(text) == ("write [email] or call [phone]", {"email": 1, "phone": 1})
    assert redact(text, redact_email=False, redact_phone=False) == (text, {})


@pytest.mark.parametrize(
    "text,language",
    [
        ("ring meg på 912 34 567", "nb"),
        ("тел. 8 (912) 345-67-89", "ru"),
        ("pokličite 031 234 567", "sl"),
        ("Handy 01512 3456789", "de"),
        ("call (415) 555-0132", "en"),
        ("+46 70 123 45 67", None),
        ("+7 912 345-67-89", "nb"),
        ("+47\u00a0912\u00a034\u00a0567", None),
        ("0047 912 34 567", "nb"),
    ],
)
def test_phone_numbers_in_national_format_use_the_conversation_language_as_region(text, language):
    assert redact(text, RedactionOptions(phone_regions=[]), language)[1] == {"phone": 1}


@pytest.mark.parametrize(
    "text",
    [
        "levering 15.12.2026", "levering 2026-11-24", "levering 24/11/2026", "oddano 24. 11. 2026",
        "kl. 14:30", "Windows 10.0.19045.3693", "total 1 299,00 kr", "#2026-118-5567", "INV-2026-000123",
        "Saksnummer 20261123-0042", "Org.nr. 988 077 917", "NO 995 525 828 MVA", "Ordre 98765432",
        "order 12345678, 3 items, total 1299 NOK", "ref 77-2026/11",
    ],
)
def test_dates_times_versions_prices_and_business_numbers_are_not_redacted(text):
    assert redact(text, ALL_IDS, "nb") == (text, {})


@pytest.mark.parametrize(
    "text",
    [
        "Order: 4111 1111 1111 1111", "ordre 4242 4242 4242 4242", "заказ 4111 1111 1111 1111", "Bestellung 5555 5555 5555 4444",
        "naročilo 4111 1111 1111 1111", "faktura 4242 4242 4242 4242", "invoice 4111111111111111", "ref 4111 1111 1111 1111",
        "KID 4001234567890120", "Sporingsnummer PostNord: 4001234567890120", "Заказ № 4001234567890120", "#4111 1111 1111 1111",
    ],
)
def test_no_business_label_keeps_a_number_of_a_card_schemes_shape(text):
    # A surviving card number is a PCI DSS breach; a masked KID that looks exactly like a Visa
    # card is an inconvenience (docs/redaction.md, "Business labels and cards").
    assert redact(text)[1] == {"card": 1}


@pytest.mark.parametrize(
    "text",
    ["KID 7001234567890123", "KID-nummer 520000123456783", "Sporingsnummer PostNord: 9000123456789012348", "Naročilo 0012345678903"],
)
def test_a_luhn_valid_reference_outside_every_card_scheme_is_kept(text):
    # 7… and 9… are no card scheme's; Mastercard's 52… numbers have 16 digits, not 15.
    assert redact(text, ALL_IDS, "nb") == (text, {})


@pytest.mark.parametrize(
    "text,language",
    [("Bestellung +49 171 2345678", "de"), ("Ordre 0047 412 34 567", "nb"), ("Заказ № +7 912 345-67-89", "ru"), ("Case (+44) 7400 123456", "en")],
)
def test_no_business_label_keeps_a_phone_number_written_with_its_country_code(text, language):
    assert redact(text, language=language)[1] == {"phone": 1}


def test_a_zero_padded_reference_is_not_read_as_an_international_number():
    # libphonenumber reads "00 1 234 567 8903" as a US number; nobody writes one so.
    assert redact("KID-nr: 0012345678903", language="nb") == ("KID-nr: 0012345678903", {})


def test_no_business_label_keeps_a_fodselsnummer():
    assert redact("saksnummer 15108695088") == ("saksnummer [national-id]", {"national_id_no": 1})


def test_a_business_label_keeps_a_date_stamped_reference_that_passes_a_weak_identity_check():
    # A Danish CPR has no check digit: every reference stamped DDMMYY-NNNN is one.
    assert redact("Faktura 261124-0042", ALL_IDS)[1] == {}
    assert redact("CPR 261124-0042", ALL_IDS)[1] == {"national_id_dk": 1}


def test_a_fodselsnummer_split_inside_its_parts_needs_an_identity_cue():
    assert redact("Kundenummer 1510 8695 088")[1] == {}
    assert redact("fnr 1510 8695 088")[1] == {"national_id_no": 1}
    assert redact("10 04 87 44 732")[1] == {"national_id_no": 1}  # day, month, year, then the rest


def test_a_norwegian_fh_number_without_birth_date_needs_an_identity_cue():
    assert redact("Ordre 80000000098")[1] == {}
    assert redact("FH-nummer: 80000000098", language="nb")[1] == {}
    assert redact("fødselsnummer 80000000098")[1] == {"national_id_no": 1}


def test_an_emso_of_someone_born_in_the_1800s_is_a_reference():
    assert redact("KID 1004821300010", ALL_IDS) == ("KID 1004821300010", {})


def test_snils_needs_its_written_form_and_a_russian_context_or_a_cue():
    # 0121 234 5678 passes the SNILS check; written so in English it is a Birmingham landline.
    assert redact("office: 0121 234 5678", ALL_IDS, "en") == ("office: [phone]", {"phone": 1})
    assert redact("ref 112-233-445 95", ALL_IDS, "en")[1] == {}
    assert redact("мой номер 112-233-445 95", ALL_IDS)[1] == {"national_id_ru": 1}
    assert redact("SNILS 112233 44595", ALL_IDS, "en")[1] == {"national_id_ru": 1}


def test_the_label_next_to_a_number_decides_not_one_further_back():
    text, counts = redact("Ordre 12345 ble betalt med 4111 1111 1111 1111")
    assert counts == {"card": 1} and "12345" in text


@pytest.mark.parametrize(
    "address",
    ["ola@example.no", "иван@пример.рф", "user@shop.ком", "info@例え.商務", "a/b=c@example.com", "user@xn--80ak6aa92e.com"],
)
def test_email_addresses_with_idn_domains_non_ascii_tlds_and_unusual_local_parts(address):
    assert redact(f"mail: {address}.") == ("mail: [email].", {"email": 1})


# ---- across messages -------------------------------------------------------------------------

def test_a_card_split_over_two_messages_of_one_author_is_masked_in_both():
    result = redact_conversation(lines("kortnummer 4111 1111", "1111 1111"), TenantSettings())
    assert result.texts == ["kortnummer 4111 11**", "**** 1111"]
    assert result.counts == {"card": 1}


def test_an_iban_split_over_two_messages_is_masked_in_both():
    result = redact_conversation(lines("IBAN NO93 8601", "1117 947"), TenantSettings())
    assert result.texts == ["IBAN NO93 ****", "***7 947"] and result.counts == {"iban": 1}


def test_a_phone_number_split_over_two_messages_is_labelled_in_both():
    result = redact_conversation(lines("ring meg på +47 912", "34 567 etter kl 16"), TenantSettings())
    assert result.texts == ["ring meg på [phone]", "[phone] etter kl 16"] and result.counts == {"phone": 1}


def test_messages_more_than_two_minutes_apart_are_not_joined():
    result = redact_conversation(lines("kortnummer 4111 1111 1111", "1111", gap=121), TenantSettings())
    assert result.counts == {}


def test_messages_of_different_authors_are_not_joined():
    messages = [ChatLine("visitor", T0, "4111 1111 1111"), ChatLine("agent", T0 + timedelta(seconds=5), "1111")]
    assert redact_conversation(messages, TenantSettings()).counts == {}


def test_a_number_is_joined_over_two_messages_at_most():
    result = redact_conversation(lines("4111 1111", "1111", "1111"), TenantSettings(redact_phone=False))
    assert result.counts == {}


def test_redact_conversation_keeps_message_order_and_counts_each_entity_once():
    result = redact_conversation(
        lines("hei", "kort 4111 1111 1111 1111", "mail ola@example.no", "takk"), TenantSettings()
    )
    assert result.texts == ["hei", "kort 4111 11** **** 1111", "mail [email]", "takk"]
    assert result.counts == {"card": 1, "email": 1}


# ---- options and the engine --------------------------------------------------------------------

def test_options_are_built_from_tenant_settings_with_fallback_regions_from_their_languages():
    options = options_from(TenantSettings(card_mask="full", redact_phone=False, default_languages=["de", "sl"]))
    assert options == RedactionOptions(card_mask="full", redact_phone=False, national_ids=["no"], phone_regions=[], fallback_regions=["DE", "SI"])
    assert options_from(TenantSettings(phone_regions=["se"], default_languages=[])) == RedactionOptions(phone_regions=["SE"], fallback_regions=["NO"])


def test_a_conversation_in_russian_does_not_read_eight_digits_as_a_norwegian_phone_number():
    assert redact("kode 41234567", TenantSettings(), "ru") == ("kode 41234567", {})
    assert redact("kode 41234567", TenantSettings(), "nb") == ("kode [phone]", {"phone": 1})


def test_regions_the_tenant_set_explicitly_apply_in_every_language():
    assert redact("kode 41234567", TenantSettings(phone_regions=["NO"]), "ru") == ("kode [phone]", {"phone": 1})


def test_without_a_language_the_tenants_languages_decide_and_norway_only_when_nothing_is_known():
    assert redact("kode 41234567", TenantSettings(default_languages=["de"]))[1] == {}
    assert redact("kode 41234567", TenantSettings(default_languages=["de", "nb"]))[1] == {"phone": 1}
    assert redact("kode 41234567", TenantSettings(default_languages=[]))[1] == {"phone": 1}


def test_a_region_subtag_adds_its_region_to_the_languages():
    assert redact("01 5123456", RedactionOptions(), "de")[1] == {}
    assert redact("01 5123456", RedactionOptions(), "de-AT")[1] == {"phone": 1}  # Vienna
    assert redact("020 7946 0958", RedactionOptions(), "en-US")[1] == {"phone": 1}


@pytest.mark.parametrize(
    "text",
    ["Handy 0171 2345678", "pokličite me na 031 234 567", "Мой телефон 8 (912) 345-67-89", "номер 89035551234, звонить после 18:00"],
)
def test_without_a_language_a_phone_cue_or_cyrillic_text_says_how_the_number_is_written(text):
    assert redact(text, RedactionOptions())[1] == {"phone": 1}


@pytest.mark.parametrize(
    "text,language",
    [
        ("Reklamacija 041123456 je zaprta?", "sl"), ("številka reklamacije 041123456", "sl"), ("vračilo 041123456", "sl"),
        ("BLZ 370 400 44", "nb"), ("Bankleitzahl 37040044", "nb"), ("Kundennummer 01712345678", "de"),
        ("Vorgangsnummer 030123456", "de"), ("Aktenzeichen 030 123456", "de"), ("Ihre Reklamationsnummer: 01512345678", "de"),
        ("версия приложения 5.32.0 (53200417)", "nb"), ("сборка 53200417", "nb"), ("номер версии 53200417", "nb"),
        ("претензия 41234567", "nb"), ("лицевой счёт 9463165742", "ru"), ("Reklamasjon 41234567 er registrert", "nb"),
        ("Returnummer 91234567", "nb"), ("avtalenummer 91234567", "nb"), ("complaint ref 07400 123456", "en"),
        ("RMA 07400123456", "en"), ("App-Version 5.32.0 (53200417)", "de"), ("Android 14.1.2 build 53200417", "nb"),
    ],
)
def test_complaints_returns_customer_numbers_bank_codes_and_builds_are_business_numbers(text, language):
    # "nb" where a number would otherwise be read as a Norwegian phone number: the cue alone keeps it.
    assert redact(text, ALL_IDS, language) == (text, {})


def test_a_date_before_a_phone_number_is_not_a_version_string():
    assert redact("15.12.2026 (412 34 567)", language="nb")[1] == {"phone": 1}


def test_unknown_phone_regions_and_national_ids_are_refused():
    with pytest.raises(msgspec.ValidationError, match="phone_regions"):
        msgspec.convert({"phone_regions": ["XX"]}, RedactionOptions)
    with pytest.raises(msgspec.ValidationError, match="national_ids"):
        msgspec.convert({"national_ids": ["us"]}, RedactionOptions)


def test_text_without_digits_or_at_sign_is_returned_as_is():
    text = "Hei, jeg lurer på når pakken kommer."
    assert Redactor(TenantSettings()).redact(text) is text


def test_multilingual_text_around_redactions_is_untouched():
    text = "Здравствуйте, моя карта 4111 1111 1111 1111 не работает. Hvala lepa! ありがとう"
    assert redact(text)[0] == "Здравствуйте, моя карта 4111 11** **** 1111 не работает. Hvala lepa! ありがとう"


def test_redactors_in_parallel_threads_give_the_same_results():
    texts = [f"kort 4111 1111 1111 1111, tlf 912 34 {i:03d}, mail u{i}@example.no" for i in range(200)]
    expected = [Redactor(TenantSettings()).redact(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda t: Redactor(TenantSettings()).redact(t), texts)) == expected


def test_company_hotlines_are_not_personal_phone_numbers():
    # Shared-cost and toll-free numbers reach a company, not a person.
    assert redact("kundeservice 815 00 000", language="nb") == ("kundeservice 815 00 000", {})


def test_a_number_introduced_as_a_phone_number_needs_only_a_possible_length():
    # Ofcom's drama range is reserved, so not "valid", but a customer writing it means a phone.
    assert redact("call me on 07700 900123", language="en") == ("call me on [phone]", {"phone": 1})


def test_a_long_paste_of_many_numbers_is_redacted_in_one_pass():
    text = "\n".join(f"row {i}: 4111 1111 1111 1111, +47 912 34 {i % 1000:03d}" for i in range(300))
    redacted, counts = redact(text)
    assert counts == {"card": 300, "phone": 300} and "1111 1111 1111" not in redacted


def test_a_card_after_a_tracking_label_is_still_a_card_when_it_starts_the_number_or_stands_apart():
    """Guard for the tracking-number rule (tests/test_redaction_public_vectors.py): a shipping label
    keeps no card that starts the run (expiry after it) or follows a differently grouped number, and
    a label that is no shipping label keeps no card window inside a longer number."""
    text = "tracking: 4111 1111 1111 1111 2026. tracking 12345 4111 1111 1111 1111. my card 9400 6351 0336 3445 3039 45"
    redacted, counts = redact(text, ALL_IDS, "en")
    assert counts == {"card": 3}, redacted
