"""Browser data is kept like transcripts (issue 23): everything a page sends — custom event names,
titles, URLs (paths and the UTM values that are kept), referrers, ``props`` keys and values — is
redacted by the transcript detectors with the tenant's settings before the engine, the store or a
log sees it; props no rule can read are not kept; what is stored of a page is sealed. Rules
decide exactly as before on values that hold nothing sensitive, and erasure still removes it all."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import json
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from archive.crypto import DecryptionError
from archive.redaction import RedactionOptions, Redactor
from proactive import store
from proactive.events import as_stored
from proactive.tables import BehaviourEvent, VisitorMemory
from tests.engagement_support import (  # noqa: F401  (fixtures)
    ORIGIN,
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    pageview,
    report_capacity,
    rule,
    runtime,
    shop,
)
from tests.test_no_plaintext import _database_bytes, _readable_files

CORPUS = Path(__file__).parent / "redaction_corpus" / "corpus.jsonl"


def _corpus_cards() -> list[str]:
    """Card numbers of the redaction corpus (Stripe's and the networks' test numbers)."""
    cards = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        for expected in json.loads(line).get("expect", []):
            if expected["kind"] == "card" and len(expected["value"]) == 16 and expected["value"] not in cards:
                cards.append(expected["value"])
    return cards[:4]


def _forms(digits: str) -> list[str]:
    """The ways people and forms write a card: grouped by spaces, dots, dashes, no-break spaces."""
    groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return [digits, " ".join(groups), ".".join(groups), "-".join(groups), "\u00a0".join(groups)]


class Canaries:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.cards = [form for digits in _corpus_cards() for form in _forms(digits)]
        self.emails = [f"canary.{tag}.{i}@example.org" for i in range(6)]
        self.ibans = ["NO93 8601 1117 947", "DE89370400440532013000"]
        self.phones = ["+47 912 34 567", "+4791234567"]

    def all(self) -> list[str]:
        return [*self.cards, *self.emails, *self.ibans, *self.phones]

    def needles(self) -> set[bytes]:
        """Each canary as it could appear anywhere: as sent, digits only, URL-encoded, JSON-escaped,
        and hex (PostgreSQL renders bytea so)."""
        found: set[bytes] = set()
        for value in self.all():
            forms = {value, quote(value), quote_plus(value), json.dumps(value)[1:-1]}
            if not any(c.isalpha() for c in value.replace("NO", "").replace("DE", "")) and "@" not in value:
                forms.add("".join(c for c in value if c.isalnum()))
            for form in forms:
                found |= {form.encode(), form.encode().hex().encode()}
        return found


def _hostile_events(c: Canaries) -> list[dict]:
    card, email = c.cards, c.emails
    return [
        {"type": "pageview", "url": f"{ORIGIN}/account/{quote(email[0])}/pay/{quote(card[0])}?email={quote(email[1])}"
                                    f"&utm_term={quote_plus(card[1])}&utm_source={quote(email[2])}&utm_campaign={quote_plus(c.phones[0])}#{card[2]}",
         "title": f"Receipt for {email[3]} paid with {card[3]} IBAN {c.ibans[0]}",
         "referrer": f"https://user:{card[4]}@mail.example.org/inbox/{quote(email[4])}/?q={quote_plus(card[5])}",
         "props": {"product_id": card[6], "device": email[5], "language": c.phones[1], "currency": c.ibans[1], "value": int(card[0]),
                   "items": 2, "card": card[7], "email": email[0], email[1]: "yes", card[8]: 1}},
        *({"type": "custom", "name": f"paid {form}"} for form in card[9:]),
        {"type": "custom", "name": f"signup {email[2]}"},
        {"type": "goal", "name": f"iban {c.ibans[0]}"},
        {"type": "cart", "props": {"value": 12.5, "items": 1, "currency": "EUR", "product": card[3]}},
        {"type": "scroll", "props": {"depth": 50, "note": card[2]}},
    ]


async def _files(data_dir: Path) -> bytes:
    """The database (on SQLite its file and WAL; on PostgreSQL every table's contents via SQL)
    and every other file in the data directory: the index, exports, the keyring's neighbours."""
    return await _database_bytes(data_dir) + b"".join(_readable_files(data_dir))


async def test_no_canary_sent_by_a_browser_is_in_any_file_or_the_log(client, shop, clock, runtime, data_dir, log_stream):
    c = Canaries()
    visitor = Visitor(client, shop, clock)
    response = await visitor.send(*_hostile_events(c))
    assert response.status_code == 200 and response.json()["accepted"] == len(_hostile_events(c)), response.text
    advance(runtime, clock, 60)
    await runtime.engagement.settle()
    await runtime.engagement.journal.drain()
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == len(_hostile_events(c))
    assert await VisitorMemory.count().where(VisitorMemory.tenant == shop.id) == 1
    raw = await _files(data_dir)
    logs = log_stream.getvalue().encode()
    assert sorted(n for n in c.needles() if n in raw) == []
    assert sorted(n for n in c.needles() if n in logs) == []


async def test_the_engine_itself_holds_only_redacted_values(client, shop, clock, runtime):
    c = Canaries()
    visitor = Visitor(client, shop, clock)
    await visitor.send(*_hostile_events(c))
    state = await runtime.engagement.peek(*(await visitor.key(runtime)))
    held = json.dumps([state.field(f, clock.time()) for f in ("page.url", "page.title", "session.referrer", "session.landing_url",
                                                              "session.utm_source", "visitor.device", "visitor.language", "goals")]
                      + [state.session.custom])
    assert [v for v in c.all() if v in held] == []
    assert "[email]" in held  # redacted, not dropped: a rule can still see that something was there


async def test_what_is_kept_of_a_page_reads_as_sent_when_nothing_in_it_is_sensitive(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    await visitor.send(
        pageview("/pricing/plan%20pro", title="Plans & pricing — Pro", referrer="https://www.google.com/search?q=x",
                 props={"product_id": "SKU-2024-17", "device": "mobile", "language": "nb", "campaign_notes": "free text"}),
        {"type": "custom", "name": "compare_plans"},
        {"type": "cart", "props": {"value": 1999.0, "items": 3, "currency": "NOK"}},
    )
    crypto = (await runtime.tenants.context(shop.id)).crypto
    page, custom, cart = await store.opened_events(shop.id, crypto)
    assert page["url"] == f"{ORIGIN}/pricing/plan%20pro" and page["title"] == "Plans & pricing — Pro"
    assert page["referrer"] == "https://www.google.com/search"
    assert page["props"] == {"product_id": "SKU-2024-17", "device": "mobile", "language": "nb"}  # no rule reads campaign_notes
    assert custom["name"] == "compare_plans" and cart["props"] == {"value": 1999.0, "items": 3, "currency": "NOK"}


async def test_rules_reading_pages_and_custom_events_decide_as_before(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule("plans", when={"all": [
        {"field": "page.url", "op": "glob", "value": "*/pricing*"},
        {"field": "page.title", "op": "contains", "value": "Pricing"},
        {"field": "custom.compare_plans", "op": "gte", "value": 1},
        {"field": "session.referrer", "op": "starts_with", "value": "https://www.google."},
        {"field": "visitor.device", "op": "eq", "value": "mobile"},
        {"field": "session.product_views", "op": "gte", "value": 1},
    ]}))
    await report_capacity(client, shop, free=1)
    visitor = Visitor(client, shop, clock)
    await visitor.send(pageview("/pricing?utm_source=news", title="Pricing", referrer="https://www.google.com/",
                                props={"product_id": "4242", "device": "mobile"}),
                       {"type": "custom", "name": "compare_plans"})
    advance(runtime, clock, 5)
    await runtime.engagement.settle()
    received = visitor.received + await visitor.beat()
    assert [i["rule"] for i in received] == ["plans"], ids
    [outcome] = await visitor.explain()
    assert outcome["decision"].startswith("sent")


async def test_a_card_sent_as_a_number_is_not_kept(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    await visitor.send({"type": "cart", "props": {"value": 4242424242424242, "items": 2}})
    crypto = (await runtime.tenants.context(shop.id)).crypto
    [cart] = await store.opened_events(shop.id, crypto)
    assert cart["props"] == {"value": None, "items": 2}


def test_the_tenants_redaction_settings_apply_to_browser_data():
    event = {"type": "custom", "name": "call +47 912 34 567", "at_epoch": 1.7e9, "url": None, "title": "ann@example.org",
             "referrer": None, "props": {}}
    off = Redactor(RedactionOptions(redact_phone=False, redact_email=False))
    kept = as_stored(event, off)
    assert kept["name"] == "call +47 912 34 567" and kept["title"] == "ann@example.org"
    redacted = as_stored(event, Redactor(RedactionOptions()))
    assert redacted["name"] == "call [phone]" and redacted["title"] == "[email]"


def test_user_names_and_passwords_in_urls_are_never_kept():
    event = {"type": "pageview", "name": None, "at_epoch": 1.7e9, "url": "https://ann:hunter2@shop.example.com/a", "title": None,
             "referrer": "https://bob@mail.example.org/inbox", "props": {}}
    stored = as_stored(event, Redactor(RedactionOptions()))
    assert stored["url"] == "https://shop.example.com/a" and stored["referrer"] == "https://mail.example.org/inbox"


@pytest.mark.parametrize("value,kept", [("0123456789abcdef0123456789abcdef", True), ("01234567012345670123456701234567", True),
                                        ("inv-a1", True), ("4242424242424242", False), ("ann@example.org", False)])
def test_an_invitation_id_is_kept_when_it_is_an_id_and_holds_nothing_sensitive(value, kept):
    event = {"type": "invitation_shown", "name": None, "at_epoch": 1.7e9, "url": None, "title": None, "referrer": None,
             "props": {"invitation_id": value}}
    assert as_stored(event, Redactor(RedactionOptions()))["props"] == {"invitation_id": value if kept else None}


async def test_a_sealed_payload_does_not_open_as_another_visitors(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    [row] = await BehaviourEvent.select().where(BehaviourEvent.tenant == shop.id)
    crypto = (await runtime.tenants.context(shop.id)).crypto
    assert b"/pricing" in crypto.open_event(row["visitor_hash"], bytes(row["payload"]))
    with pytest.raises(DecryptionError):
        crypto.open_event("0" * 64, bytes(row["payload"]))


async def test_erasure_still_removes_every_stored_event(client, shop, clock, runtime):
    c = Canaries()
    visitor = Visitor(client, shop, clock, visitor_id="erase-me-1")
    await visitor.send(*_hostile_events(c))
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) > 0
    receipt = (await client.post("/v1/erasure", json={"visitor_id": "erase-me-1"}, headers=shop.headers("compliance"))).json()
    assert receipt["behaviour_events_deleted"] == len(_hostile_events(c))
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 0
    assert await VisitorMemory.count().where(VisitorMemory.tenant == shop.id) == 0


@pytest.mark.parametrize("text", ["ann\uff20example.org", "\uff0b\uff14\uff17 \uff19\uff11\uff12 \uff13\uff14 \uff15\uff16\uff17",
                                  "\u0664\u0662\u0664\u0662 \u0664\u0662\u0664\u0662 \u0664\u0662\u0664\u0662 \u0664\u0662\u0664\u0662",
                                  "call 912\u200b34\u200b567"])
def test_numbers_and_addresses_in_other_scripts_are_not_skipped_by_the_fast_path(text):
    event = {"type": "custom", "name": None, "at_epoch": 1.7e9, "url": None, "title": text, "referrer": None, "props": {}}
    redactor = Redactor(RedactionOptions(phone_regions=["NO"]))
    assert as_stored(event, redactor)["title"] == redactor.redact(text) != text
