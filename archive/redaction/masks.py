"""What replaces a detected span, and how the replacement is spread over the original messages.

Cards keep at most their first six and last four digits (PCI DSS 3.4), or become ``[card]`` when
the tenant masks cards fully; IBANs keep country, check digits and the last four characters
(enough for a customer to recognise their account, too little to pay from it). Both keep the
original layout: separators, spacing and line breaks stay where they were. National identity
numbers, phone numbers, e-mail addresses and card security codes become a label, because any part of them identifies
a person.
"""

from __future__ import annotations

from typing import NamedTuple

from archive.redaction.detectors import Candidate

LABELS = {"phone": "[phone]", "email": "[email]", "card": "[card]", "card_security_code": "[cvc]"}
NATIONAL_ID_LABEL = "[national-id]"


def _keep_ends(original: str, folded: str, head: int, tail: int, counts: str) -> str:
    """Star every character of kind ``counts`` ("digit" or "alnum") except the first ``head`` and
    the last ``tail`` of them; everything else (separators) stays."""
    is_counted = str.isdigit if counts == "digit" else str.isalnum
    total = sum(1 for ch in folded if ch.isascii() and is_counted(ch))
    out, seen = [], 0
    for ch, f in zip(original, folded):
        if f.isascii() and is_counted(f):
            out.append(ch if seen < head or seen >= total - tail else "*")
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


class Mask(NamedTuple):
    text: str
    # True: ``text`` has the span's length and replaces it character by character, so a span
    # split over two messages is split the same way. False: ``text`` is a label that replaces
    # each message's part of the span.
    layout: bool


def mask_for(candidate: Candidate, original: str, folded: str, card_mask: str) -> Mask:
    if candidate.kind == "card" and card_mask == "partial":
        return Mask(_keep_ends(original, folded, 6, 4, "digit"), True)
    if candidate.kind == "iban":
        return Mask(_keep_ends(original, folded, 4, 4, "alnum"), True)
    if candidate.kind.startswith("national_id"):
        return Mask(NATIONAL_ID_LABEL, False)
    return Mask(LABELS[candidate.kind], False)
