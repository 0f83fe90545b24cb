"""Every finding of the schemathesis run (tests/test_fuzz.py), kept as a test of its own."""

from __future__ import annotations


async def test_an_audit_cursor_beyond_the_ledger_range_is_a_client_error_naming_it(client, tenant):
    # Found by schemathesis: after_seq=233728544130678896868720640 answered 500 (the store's integer overflowed).
    for cursor in (2**31, 2**63, 233728544130678896868720640):
        response = await client.get("/v1/audit", params={"after_seq": cursor}, headers=tenant.headers("compliance"))
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["path"] == "after_seq"
    last = await client.get("/v1/audit", params={"after_seq": 2**31 - 1}, headers=tenant.headers("compliance"))
    assert last.status_code == 200 and last.json() == []


async def test_the_rules_export_is_declared_as_the_yaml_document_it_returns(client, tenant):
    # Found by schemathesis: the 200 response was declared a string while it is a YAML mapping.
    schema = (await client.get("/schema/openapi.json")).json()
    declared = schema["paths"]["/v1/rules/export"]["get"]["responses"]["200"]["content"]["application/yaml"]["schema"]
    assert declared == {"$ref": "#/components/schemas/RulesDocument"}
    assert schema["components"]["schemas"]["RulesDocument"]["required"] == ["rules"]
    exported = await client.get("/v1/rules/export", headers=tenant.headers("marketing"))
    assert exported.status_code == 200 and exported.text.startswith("rules:")


async def test_csv_reports_are_declared_and_name_their_charset_once(client, tenant):
    # Found by schemathesis' content-type conformance: ?format=csv answered
    # "text/csv; charset=utf-8; charset=utf-8", a media type the document did not list.
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/v1/reports/support", "/v1/supervision/reports/{kind}"):
        assert set(schema["paths"][path]["get"]["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    for url in ("/v1/reports/support?format=csv", "/v1/supervision/reports/ageing?format=csv"):
        response = await client.get(url, headers=tenant.headers("compliance"))
        assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8", url


async def test_query_problems_the_domain_finds_are_declared(client, tenant):
    # Found by schemathesis' status-code conformance: these answer 422 for a query the domain
    # refuses (a bad limit, an unknown report format, an unknown site), which was undocumented.
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/v1/reviews", "/v1/supervision/reports/{kind}", "/v1/visitors/{visitor_id}/explain"):
        assert "422" in schema["paths"][path]["get"]["responses"], path
    refused = await client.get("/v1/supervision/reports/ageing?format=xml", headers=tenant.headers("compliance"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "format"


async def test_typed_bodies_refuse_values_of_another_json_type_naming_the_field(client, tenant):
    # Found by schemathesis' negative_data_rejection (run with more examples): Litestar converts a
    # handler's body leniently, so a number was read as a date (1970-01-01 + n seconds), "5" as 5
    # and 0 as false. A hold whose criteria read {"from": 0} held everything since 1970.
    cases = [
        ("POST", "/v1/search", "compliance", {"q": "", "size": "5"}, "size"),
        ("POST", "/v1/search", "compliance", {"filters": {"to": 0}}, "filters.to"),
        ("POST", "/v1/exports", "compliance", {"filters": {"from": 1700000000}}, "filters.from"),
        ("POST", "/v1/holds", "compliance", {"name": "h", "reason": "r", "criteria": {"from": 0}}, "criteria.from"),
        ("PUT", "/v1/admin/settings", "admin", {"typo_tolerance": 0}, "typo_tolerance"),
        ("POST", "/v1/redaction/rescans", "admin", {"dry_run": 1}, "dry_run"),
    ]
    for method, path, role, body, field in cases:
        response = await client.request(method, path, json=body, headers=tenant.headers(role))
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["path"] for e in response.json()["errors"]] == [field], response.json()
    holds = await client.get("/v1/holds", headers=tenant.headers("compliance"))
    assert holds.json() == [], holds.text


async def test_a_typed_body_that_is_not_json_is_a_400_naming_the_body(client, tenant):
    response = await client.post("/v1/search", content=b'{"q": ', headers={**tenant.headers("compliance"), "content-type": "application/json"})
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "$", response.text


async def test_a_repeated_ingest_and_a_download_too_early_are_declared(client, tenant):
    # Found by the API audit: a batch that only repeats what is archived answers 200 (not 201),
    # and downloading an export that is still queued answers 409; neither was in the document.
    schema = (await client.get("/schema/openapi.json")).json()
    ingest = schema["paths"]["/v1/transcripts"]["post"]["responses"]
    assert ingest["200"]["content"] == ingest["201"]["content"]
    assert "409" in schema["paths"]["/v1/exports/{export_id}/download"]["get"]["responses"]
