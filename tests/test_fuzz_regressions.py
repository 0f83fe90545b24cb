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
