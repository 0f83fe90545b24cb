"""A small multilingual archive with known answers: the relevance test set."""

from __future__ import annotations

from typing import Any

from tests.factories import conversation

# external_id: (language, site, channel, tags, day, [(sender, text), ...])
CORPUS: dict[str, tuple[str, str, str, list[str], str, list[tuple[str, str]]]] = {
    "en-1": ("en", "shop", "web", [], "2026-03-01", [
        ("visitor", "I want a refund for my broken headphones"),
        ("agent", "I have issued the refund, the invoice will follow."),
    ]),
    "en-2": ("en", "shop", "web", [], "2026-03-02", [
        ("visitor", "The delivery was late again"),
        ("agent", "Sorry, we refunded the shipping cost: https://shop.example.com/help/refunds"),
    ]),
    "en-3": ("en", "blog", "web", ["vip"], "2026-03-03", [
        ("visitor", "Can I change my sub\u00adscription plan?"),  # a soft hyphen, pasted from a web page
        ("agent", "Yes, choose the premium plan."),
    ]),
    "en-4": ("en", "shop", "whatsapp", [], "2026-03-04", [
        ("visitor", "My card was declined at checkout"),
        ("agent", "Please try another card."),
    ]),
    "nb-1": ("nb", "shop", "web", [], "2026-03-05", [
        ("visitor", "Jeg vil ha refusjon for pakken"),
        ("agent", "Refusjonen er sendt, fakturaen kommer."),
    ]),
    "nb-2": ("nb", "shop", "web", [], "2026-03-06", [
        ("visitor", "Pakkene kom aldri frem"),
        ("agent", "Vi sender nye pakker i dag, se e-postvarselet."),
    ]),
    "ru-1": ("ru", "shop", "web", [], "2026-03-07", [
        ("visitor", "Здравствуйте, где мой заказ?"),
        ("agent", "Ваш заказ отправлен вчера."),
    ]),
    "ru-2": ("ru", "shop", "web", [], "2026-03-08", [
        ("visitor", "Я хочу вернуть заказы"),
        ("agent", "Возврат №48213 оформлен."),
    ]),
    "sl-1": ("sl", "shop", "web", [], "2026-03-09", [
        ("visitor", "Pozdravljeni, imam vprašanje glede naročila"),
        ("agent", "Naročilo je bilo poslano."),
    ]),
    "sl-2": ("sl", "shop", "web", [], "2026-03-10", [
        ("visitor", "Račun ni prišel"),
        ("agent", "Račun pošljemo danes."),
    ]),
    "de-1": ("de", "shop", "web", [], "2026-03-11", [
        ("visitor", "Ich möchte eine Rückerstattung"),
        ("agent", "Die Rückerstattungen werden bearbeitet."),
    ]),
    "ja-1": ("ja", "shop", "web", [], "2026-03-12", [
        ("visitor", "注文した商品が届きません"),
        ("agent", "ご注文を確認します"),
    ]),
}

# query → the conversations it must find (exactly: precision and recall are both asserted).
EXPECTED: dict[str, set[str]] = {
    # English: inflections meet at the stem
    "refund": {"en-1", "en-2"},
    "refunds": {"en-1", "en-2"},
    "refun*": {"en-1", "en-2"},
    '"card was declined"': {"en-4"},
    '"declined was card"': set(),
    # typographic quotes delimit phrases too (pasted from mail, typed on Norwegian/German keyboards)
    "“card was declined”": {"en-4"},
    "“declined card”": set(),
    "«declined card»": set(),
    "„card was declined“": {"en-4"},
    "refund NEAR/1 invoice": {"en-1"},
    "refund NEAR/0 invoice": set(),
    "refund -invoice": {"en-2"},
    "refund NOT invoice": {"en-2"},
    "sender:visitor refund": {"en-1"},
    # a prefix, and a form, written by some senders only
    "sender:visitor refun*": {"en-1"},
    "sender:agent refun*": {"en-1", "en-2"},
    "sender:bot refun*": set(),
    "sender:agent pakk*": {"nb-2"},
    "sender:visitor naroč*": {"sl-1"},
    "sender:agent zakaz": {"ru-1"},
    "sender:visitor zakaz": {"ru-1", "ru-2"},
    "plan site:blog": {"en-3"},
    "tag:vip": {"en-3"},
    "channel:whatsapp": {"en-4"},
    "card OR plan": {"en-3", "en-4"},
    # a word with nothing searchable in it (emoji, punctuation) is left out, wherever it stands
    "refund OR 😡": {"en-1", "en-2"},
    "refund -😡": {"en-1", "en-2"},
    "refund AND NOT !!!": {"en-1", "en-2"},
    "(refund OR ...) AND invoice": {"en-1"},
    "(refund OR card) AND channel:web": {"en-1", "en-2"},
    # field names in any case; a web address is text, not a field named "https"
    "Sender:Agent refun*": {"en-1", "en-2"},
    "SITE:blog plan": {"en-3"},
    "https://shop.example.com/help/refunds": {"en-2"},
    # invisible characters inside a word (soft hyphen, zero-width joiners) do not cut it in two
    "subscription": {"en-3"},
    "subscript*": {"en-3"},
    "re\u00adfund": {"en-1", "en-2"},
    # Norwegian
    "refusjon": {"nb-1"},
    "pakke": {"nb-1", "nb-2"},
    "pakk*": {"nb-1", "nb-2"},
    "faktura": {"nb-1"},
    "refund OR refusjon": {"en-1", "en-2", "nb-1"},
    "lang:nb": {"nb-1", "nb-2"},
    # Norwegian as a macrolanguage: "no" covers Bokmål (nb) and Nynorsk (nn), in any case
    "lang:no": {"nb-1", "nb-2"},
    "lang:NO pakke": {"nb-1", "nb-2"},
    # a prefix of a hyphenated word: the parts before it, then a word starting with the last part
    "e-post*": {"nb-2"},
    "e-postvarsel*": {"nb-2"},
    "sender:visitor e-post*": set(),
    # Russian
    "заказ": {"ru-1", "ru-2"},
    # the numero sign glued to a number ("№48213") separates it as a space would
    "48213": {"ru-2"},
    "№48213": {"ru-2"},
    "заказов": {"ru-1", "ru-2"},
    '"ваш заказ"': {"ru-1"},
    "agent:a-ru": {"ru-1", "ru-2"},
    # Slovenian (no stemmer: surface forms, folded diacritics, prefixes)
    "naročilo": {"sl-1"},
    "narocilo": {"sl-1"},
    "naroč*": {"sl-1"},
    "račun": {"sl-2"},
    # German
    "Rückerstattung": {"de-1"},
    "ruckerstattungen": {"de-1"},
    # Japanese (character bigrams)
    "注文": {"ja-1"},
    "確認": {"ja-1"},
    # dates and people
    "date:2026-03-02": {"en-2"},
    "date:2026-03-11..": {"de-1", "ja-1"},
    "date:..2026-03-01": {"en-1"},
    "visitor:v-en-1": {"en-1"},
}

LANGUAGE_OF_QUERY = {
    "en": ["refund", "refunds", "refun*", '"card was declined"', "refund NEAR/1 invoice", "refund -invoice", "sender:visitor refund", "plan site:blog"],
    "nb": ["refusjon", "pakke", "pakk*", "faktura"],
    "ru": ["заказ", "заказов", '"ваш заказ"'],
    "sl": ["naročilo", "narocilo", "naroč*", "račun"],
    "de": ["Rückerstattung", "ruckerstattungen"],
    "ja": ["注文", "確認"],
}


def chat(external_id: str, language: str, day: str, messages: list[tuple[str, str]], agent: str, **fields: Any) -> dict[str, Any]:
    """One conversation body: (sender role, text) messages a minute apart on ``day`` from 10:00."""
    body = conversation(
        external_id, *[text for _, text in messages], language=language, started_at=f"{day}T10:00:00Z",
        ended_at=f"{day}T10:30:00Z", visitor={"id": f"v-{external_id}"}, agents=[{"id": agent, "name": "Agent"}], **fields,
    )
    for i, (message, (sender, _)) in enumerate(zip(body["messages"], messages)):
        message["sender"] = {"role": sender}
        message["at"] = f"{day}T10:{i + 1:02d}:00Z"
    return body


def bodies() -> list[dict[str, Any]]:
    return [
        chat(external_id, language, day, messages, f"a-{external_id.split('-')[0]}", site=site, channel=channel, tags=tags)
        for external_id, (language, site, channel, tags, day, messages) in CORPUS.items()
    ]
