"""A value that was redacted cannot be found by search, however the searcher spells it."""

from __future__ import annotations

import pytest

from archive.search import indexing
from tests.factories import conversation

SECRETS = {
    "iban": ("Kontoen min er NO93 8601 1117 947", ["NO9386011117947", "no93 8601 1117 947", "86011117947", '"NO93 8601 1117 947"']),
    "email": ("skriv til kari.nordmann+chat@example.no", ["kari.nordmann+chat@example.no", "kari.nordmann", "example.no"]),
    "phone": ("ring meg på +47 912 34 567", ["+4791234567", "91234567", "912 34 567", '"912 34 567"']),
    "national_id": ("fødselsnummeret er 151086 95088", ["15108695088", "151086 95088", "151086", "95088"]),
    "card": ("kortet er 5200.8282.8282.8210", ["5200828282828210", "5200.8282.8282.8210", "82828282"]),
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
async def test_a_redacted_value_is_not_findable_in_any_spelling(client, tenant, search_backend, runtime, kind):
    text, spellings = SECRETS[kind]
    marker = f"marker{kind}"
    created = await client.post("/v1/transcripts", json=conversation(None, f"{text} {marker}", "takk"), headers=tenant.headers("ingest"))
    assert created.status_code == 201 and created.json()["redactions"], created.json()
    await indexing.drain_all(runtime)
    found = await client.post("/v1/search", json={"q": marker}, headers=tenant.headers("compliance"))
    assert found.json()["total"] == 1  # the conversation itself is indexed
    for spelling in spellings:
        response = await client.post("/v1/search", json={"q": spelling}, headers=tenant.headers("compliance"))
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 0, (kind, spelling)
