"""Every public test card, typed the ways customers type card numbers in a chat, is masked; the
same digits with a wrong check digit are not a card.

Sources (each card's list is named in the table):
* Stripe, https://docs.stripe.com/testing (cards by brand: Diners 14-digit 36227206271667,
  UnionPay 19-digit 6205500000000000004 …)
* Adyen POS test cards, https://docs.adyen.com/point-of-sale/testing-pos-payments/test-card-v2 and
  test-card-v1 (Maestro 19-digit 6799 9989 0000 0099 990, 6000 0707 3616 9237 003; UnionPay 6243 0300 0000 0001)
* Braintree, https://developer.paypal.com/braintree/docs/reference/general/testing/ (Maestro
  6304000000000000, Diners 36259600000004)
* Authorize.Net testing guide (as listed in github.com/processwith/test-payment-cards: JCB
  3088000000000017, Diners 38000000000006, Visa 13-digit 4007000000027)
* Worldpay, https://developer.worldpay.com/docs/access-worldpay/testing/payments-test-values/ (Maestro
  6759649826438453, Visa 13 4911830000000, Visa Debit 19 4917610000000000003)
* Worldline/Ingenico, https://epayments.developer-ingenico.com/payment-product/maestro/testing
  (Maestro 18 and 19 digits)
* Opayo (Sage Pay) test cards, as listed in
  https://gist.github.com/DominicWatts/2d46d975794f5ad1c38e18cccb34c58c (13-digit Maestro)
* YooKassa's Mir test card 2201 3820 0000 0013.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from stdnum import luhn

from archive.redaction import ChatLine, RedactionOptions, redact_conversation
from archive.redaction.options import NATIONAL_IDS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ALL_IDS = RedactionOptions(national_ids=list(NATIONAL_IDS))

CARDS = {
    "stripe": """4242424242424242 4000056655665556 5555555555554444 2223003122003222 5200828282828210
        5105105105105100 378282246310005 371449635398431 6011111111111117 6011000990139424 6011981111111113
        3056930009020004 36227206271667 6555900000604105 3566002020360505 6200000000000005 6200000000000047
        6205500000000000004 30569309025904 38520000023237 4012888888881881""",
    "adyen_pos": """5413330089099999 6799998900000099990 6799998900000999991 5413330089999990 5100060000000002
        6000070736169237003 5520330000000001 6243030000000001 2308880000000000 4151500000000008""",
    "braintree": "6304000000000000 6011000991300009 3530111333300000 36259600000004",
    "authorize_net": "370000000000002 6011000000000012 4007000000027 3088000000000017 38000000000006 5424000000000015",
    "worldpay": "343434343434343 6011000400000000 3528000700000000 6759649826438453 2221000000000009 4911830000000 4917610000000000003",
    "ingenico_maestro": "6331101999990073 633478111298873700 6304939304310009610",
    "opayo_maestro": "6759000000005 6705000000008 6766000000000 5185570760000008",
    "yookassa_mir": "2201382000000013",
}
PUBLIC_CARDS = [(source, card) for source, cards in CARDS.items() for card in cards.split()]

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def grouped(card: str, separator: str) -> str:
    sizes = {14: (4, 6, 4), 15: (4, 6, 5)}.get(len(card), (4,) * (len(card) // 4) + ((len(card) % 4,) if len(card) % 4 else ()))
    groups, at = [], 0
    for size in sizes:
        groups.append(card[at : at + size])
        at += size
    return separator.join(groups)


def typings(card: str) -> list[str]:
    forms = [card, card.translate(FULL_WIDTH)]
    forms += [grouped(card, sep) for sep in (" ", ".", "-", "\u00a0", "\u202f", "\u2009", " - ")]
    forms.append(grouped(card, " ").translate(FULL_WIDTH))
    parts = grouped(card, " ").split(" ")
    forms.append("".join(p + ("-. " * 3)[i] for i, p in enumerate(parts[:-1])) + parts[-1])  # mixed separators
    return forms


SENTENCES = [
    ("en", "({})"),
    ("nb", "kortnummer: {}"),
    ("ru", "номер карты {}"),
    ("sl", "številka kartice {}"),
    ("nb", "kortnummer:{}"),
    ("ru", "карта:{}"),
]


def redact(text: str, language: str | None) -> tuple[str, dict[str, int]]:
    result = redact_conversation([ChatLine("visitor:v1", T0, text)], ALL_IDS, language)
    return result.texts[0], result.counts


def digits_of(text: str) -> str:
    return "".join(str(int(ch)) for ch in text if ch.isdigit())


@pytest.mark.parametrize("source,card", PUBLIC_CARDS)
def test_every_public_test_card_is_masked_however_it_is_typed(source, card):
    assert luhn.is_valid(card), (source, card)
    for form in typings(card):
        for language, sentence in SENTENCES:
            text = sentence.format(form)
            out, counts = redact(text, language)
            assert counts == {"card": 1}, (source, text, out, counts)
            assert card not in digits_of(out), (source, text, out)


@pytest.mark.parametrize("source,card", PUBLIC_CARDS)
def test_the_same_digits_with_a_wrong_check_digit_are_not_a_card(source, card):
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    # Grouped, a longer number may still hold a card-shaped window of whole groups (the way
    # "4111 1111 1111 1111 2026" holds a card): only numbers of at most 16 digits are grouped here.
    for form in (wrong, grouped(wrong, " ")) if len(card) <= 16 else (wrong,):
        out, counts = redact(f"Ordre {form}", "nb")
        assert "card" not in counts, (source, form, out, counts)
