"""Redaction: what each detector catches, what it must leave alone, and tenant switches."""

from __future__ import annotations

import pytest

from archive.redaction import Redactor
from archive.tenancy import TenantSettings


def redact(text: str, **settings) -> tuple[str, dict[str, int]]:
    redactor = Redactor(TenantSettings(**settings))
    return redactor.redact(text), dict(redactor.counts)


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


def test_full_card_masking_is_a_tenant_setting():
    assert redact("4111 1111 1111 1111", card_mask="full") == ("[card]", {"card": 1})


@pytest.mark.parametrize("text", ["4111 1111 1111 1112", "order 1234567890123", "0000 0000 0000 0000"])
def test_numbers_that_fail_luhn_are_not_cards(text):
    assert "card" not in redact(text)[1]


@pytest.mark.parametrize("iban", ["NO93 8601 1117 947", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"])
def test_ibans_with_valid_checksums_are_masked(iban):
    text, counts = redact(f"pay to {iban} today")
    assert counts == {"iban": 1}
    compact = text.replace(" ", "")
    assert iban.replace(" ", "") not in compact and iban.replace(" ", "")[-4:] in compact


def test_ibans_with_bad_checksums_are_left_alone():
    assert redact("NO94 8601 1117 947")[1].get("iban") is None


@pytest.mark.parametrize("number", ["15076500565", "150765 00565", "01010050053"])
def test_norwegian_national_ids_with_valid_check_digits_are_masked(number):
    assert redact(f"fødselsnummer {number}") == ("fødselsnummer [national-id]", {"national_id_no": 1})


def test_eleven_digit_numbers_with_wrong_check_digits_are_not_national_ids():
    assert "national_id_no" not in redact("15076500566")[1]


def test_email_and_phone_redaction_can_be_switched_off_per_tenant():
    text = "write ola@example.no or call +47 912 34 567"
    assert redact(text) == ("write [email] or call [phone]", {"email": 1, "phone": 1})
    assert redact(text, redact_email=False, redact_phone=False) == (text, {})


def test_plain_order_numbers_and_quantities_are_not_phone_numbers():
    assert redact("order 12345678, 3 items, total 1299 NOK") == ("order 12345678, 3 items, total 1299 NOK", {})


def test_multilingual_text_around_redactions_is_untouched():
    text = "Здравствуйте, моя карта 4111 1111 1111 1111 не работает. Hvala lepa! ありがとう"
    assert redact(text)[0] == "Здравствуйте, моя карта 4111 11** **** 1111 не работает. Hvala lepa! ありがとう"
