"""Bad input gets one problem naming every offending field, by the names the client used."""

from __future__ import annotations

import uuid

from tests.factories import conversation


async def test_every_missing_field_of_a_batch_item_is_named_at_once(client, tenant):
    item = conversation()
    for name in ("site", "channel", "visitor"):
        del item[name]
    response = await client.post("/v1/transcripts", json={"conversations": [item]}, headers=tenant.headers("ingest"))
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"conversations[0].site", "conversations[0].channel", "conversations[0].visitor"} <= paths


async def test_a_value_outside_a_fixed_set_is_told_the_values_accepted(client, tenant):
    item = conversation()
    item["messages"][0]["sender"]["role"] = "customer"  # what several platforms call the visitor
    response = await client.post("/v1/transcripts", json={"conversations": [item]}, headers=tenant.headers("ingest"))
    assert response.status_code == 422
    assert response.json()["errors"] == [{"path": "conversations[0].messages[0].sender.role",
                                          "message": "Invalid enum value 'customer'; expected one of visitor, agent, bot, system"}]


async def test_search_errors_use_the_public_field_names(client, tenant):
    response = await client.post("/v1/search", json={"q": "x", "filters": {"colour": "red", "from": "yesterday"}},
                                 headers=tenant.headers("compliance"))
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"filters.colour", "filters.from"}, response.json()


async def test_a_wrongly_typed_search_field_is_named_without_internal_prefixes(client, tenant):
    response = await client.post("/v1/search", json={"q": 5, "size": "many"}, headers=tenant.headers("compliance"))
    assert {e["path"] for e in response.json()["errors"]} == {"q", "size"}


async def test_query_parameters_are_named_as_sent(client, tenant):
    response = await client.get("/v1/audit", params={"from": "not-a-date"}, headers=tenant.headers("compliance"))
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["from"]


async def test_a_malformed_id_in_a_path_is_400_not_404(client, tenant):
    response = await client.get("/v1/transcripts/not-a-uuid", headers=tenant.headers("compliance"))
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "/problems/malformed-request" and body["errors"][0]["path"] == "conversation_id"
    absent = await client.get(f"/v1/transcripts/{uuid.uuid4()}", headers=tenant.headers("compliance"))
    assert absent.status_code == 404


async def test_the_access_log_records_the_status_the_client_received(client, log_stream):
    response = await client.get("/v1/whoami", headers={"Authorization": "Bearer prl_nope0000_" + "x" * 43})
    assert response.status_code == 401
    lines = [line for line in log_stream.getvalue().splitlines() if response.headers["x-request-id"] in line]
    assert any("status=401" in line or '"status":401' in line for line in lines), lines
