"""Redaction checked against public test vectors: what a compliance archive must mask, and which
business data it must keep, written the ways customers and integrations send them.

The values come from public sources, named in each test: libphonenumber's example numbers
(NO mobile 40 61 23 45, NO fixed line 21 23 45 67), the card test sets of Stripe, Adyen and
Authorize.Net, the SWIFT IBAN registry's example DE89 3704 0044 0532 0130 00, the PCI DSS
glossary's names for the card verification code, WhatsApp's click-to-chat link format and USPS
Publication 199 (IMpb tracking numbers).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from archive.ingest import redact_content
from archive.redaction import ChatLine, RedactionOptions, redact_conversation
from archive.redaction.options import NATIONAL_IDS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ALL_IDS = RedactionOptions(national_ids=list(NATIONAL_IDS))  # as the redaction corpus is scored
DEFAULT = RedactionOptions()  # a tenant that set nothing: Norway is its fallback region


def redact(text: str, language: str | None, options: RedactionOptions = ALL_IDS) -> tuple[str, dict[str, int]]:
    result = redact_conversation([ChatLine("visitor:v1", T0, text)], options, language)
    return result.texts[0], result.counts


# ---- metadata values sent as JSON numbers ----------------------------------------------------


@pytest.mark.parametrize(
    "value,kind",
    [
        (4111111111111111, "card"),  # Stripe/Adyen Visa test card
        (5555555555554444, "card"),  # Stripe Mastercard test card
        (4111111111111111.0, "card"),  # the same card, sent through a JSON float
        (4740612345, "phone"),  # libphonenumber NO mobile example with its country code, no "+"
    ],
)
def test_a_metadata_value_sent_as_a_json_number_is_redacted_like_its_digits(value, kind):
    """Ingest accepts numbers as metadata values; a card or phone number sent as a number is
    masked exactly as the same digits sent as a string (the masked text replaces the number)."""
    out = redact_content(DEFAULT, "nb", [], {"attribute": value})
    assert out.metadata["attribute"] != value and str(int(value)) not in str(out.metadata["attribute"]), out.metadata
    assert out.counts == {kind: 1}


def test_a_number_metadata_value_is_read_with_its_key_as_its_label():
    """The key names the number as a label in a message would: a phone number under "phone" is a
    phone number, an eight-digit customer id (a valid Norwegian number) stays as sent, and numbers
    that hold nothing sensitive keep their JSON type."""
    metadata = {"phone": 40612345, "customer_id": 45871236, "items": 3, "total": 1299.5, "vip": True}
    out = redact_content(DEFAULT, "nb", [], metadata)
    assert out.metadata == {**metadata, "phone": "[phone]"}
    assert out.counts == {"phone": 1}


# ---- dates, times and amounts are not phone numbers ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "It happened at 2025-03-14 14:30",
        "2026-11-24 09:15:02 ERROR payment failed",
        "the meeting 2025-11-24 09:00-10:00",
        "Between 2025-03-14 and 2025-03-15 14:00",
        "the terminal declined it on 2024-03-14 08 AM",
        "last login 2025-03-14 14 h",
    ],
)
def test_an_iso_date_with_a_time_of_day_is_not_a_phone_number(text):
    """ISO 8601 date and time (evidence). In an English conversation libphonenumber's US plan
    reads "2025-03-14 14" as +1 202-503-1414 (area code 202 exists), so the date and the hour
    must not be offered as one number."""
    assert redact(text, "en") == (text, {})


@pytest.mark.parametrize(
    "language,text",
    [
        ("nb", "Vi har overført 45 678 901,00 kr"),
        ("nb", "Fakturaen på 45.678.901,00 NOK er betalt"),
        ("nb", "Det kostet 91 234 567,50"),
    ],
)
def test_an_amount_with_decimal_comma_is_not_a_phone_number(language, text):
    """An amount written with a decimal comma ("45 678 901,00 kr") is an amount: the integer part
    is not a Norwegian or German phone number even though it validates as one."""
    assert redact(text, language) == (text, {})


# ---- the tenant's home-region numbers after a phone cue in any language ----------------------


@pytest.mark.parametrize(
    "language,text",
    [
        ("ru", "мой телефон 406 12 345"),
        ("ru", "мой номер 40 61 23 45"),
        ("uk", "мій номер 406 12 345"),
        ("en", "my number is 406 12 345"),
        ("de", "meine Nummer ist 40 61 23 45"),
        ("es", "mi teléfono es 40 61 23 45"),
        ("fr", "mon numéro : 40 61 23 45"),
        ("sv", "mitt nummer är 21 23 45 67"),
    ],
)
def test_a_norwegian_tenants_home_numbers_are_read_after_a_phone_cue_in_any_language(language, text):
    """libphonenumber's NO example numbers (mobile 40 61 23 45, fixed line 21 23 45 67) given by a
    customer of a Norwegian tenant (defaults: fallback region NO) in a conversation tagged with
    another language, right after an explicit phone cue: the tenant's home regions are read too."""
    out, counts = redact(text, language, DEFAULT)
    assert counts == {"phone": 1}, out


def test_the_home_region_comes_from_the_tenants_default_languages():
    """A German tenant (fallback region DE, from its default languages) whose customer writes in
    English: libphonenumber's DE example mobile 01512 3456789 after "my number is"."""
    options = RedactionOptions(fallback_regions=["DE"])
    out, counts = redact("my number is 01512 3456789", "en", options)
    assert (out, counts) == ("my number is [phone]", {"phone": 1})


# ---- card security codes: every scheme's name, and how Nordic languages inflect it -----------


@pytest.mark.parametrize(
    "text",
    [
        "CV2: 737",  # Worldpay / Opayo (UK acquirers)
        "CSC: 737",  # card security code
        "CAV2: 737",  # JCB (PCI DSS glossary)
        "CVN2 is 737",  # UnionPay
        "CVD: 737",  # Discover / Canadian acquirers
        "Amex CID: 7373",  # American Express (PCI DSS glossary)
        "card verification value: 737",  # the glossary's generic name
        "CVC-koden min er 737",  # Norwegian: the possessive follows the noun
        "sikkerhetskoden min er 737",
        "CVC-en er 737",  # Norwegian definite form of the acronym
        "kontrollsifrene er 737",  # plural definite of kontrollsiffer
        "CVV-nummeret mitt er 737",
        "CVV številka je 737",  # Slovenian: številka = number
        "säkerhetskoden är 737",  # Swedish
        "sikkerhedskoden er 737",  # Danish
        "código de seguridad: 737",  # Spanish
    ],
)
def test_a_card_security_code_is_masked_under_every_schemes_name_and_word_order(text):
    """PCI DSS 3.3.1: the card verification code must not be kept after authorisation. The PCI
    DSS glossary names it CAV2/CVC2/CID/CVV2, UK acquirers CV2/CSC; Adyen's test cards use CVC 737
    and CID 7373. Each, in each word order, becomes [cvc]."""
    out, counts = redact(text, None)
    assert counts == {"card_security_code": 1} and "[cvc]" in out, out
