"""The OpenAPI document tells the truth about the server: the errors each operation can answer,
as problem+json of one shared schema; the bodies that refuse unknown fields; the methods OPTIONS
advertises. (tests/test_fuzz.py checks every response schemathesis provokes against it.)"""

from __future__ import annotations

from typing import Any

import msgspec

from api.openapi import Problem

PROBLEM = {"$ref": "#/components/schemas/Problem"}


async def _document(client: Any) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, methods in document["paths"].items() for method, operation in methods.items()]


def _problem_schema(operation: dict[str, Any], status: int) -> Any:
    return operation["responses"][str(status)]["content"]["application/problem+json"]["schema"]


async def test_every_authenticated_operation_documents_401_and_the_bearer_scheme(client):
    document = await _document(client)
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "prl_…",
        "description": "An API key: 'Authorization: Bearer prl_…' (parley keys create)",
    }
    public = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/audit/public-key"), ("POST", "/v1/collect"),
              ("GET", "/v1/invitations/stream"), ("GET", "/v1/snippet.js"), ("POST", "/v1/connectors/{connector_id}/events")}
    for method, path, operation in _operations(document):
        if (method, path) in public:
            # The browser and platform endpoints check a site key or a signature, not an API key.
            assert "security" not in operation, (method, path)
        else:
            assert _problem_schema(operation, 401) == PROBLEM, (method, path)
            assert operation["security"] == [{"apiKey": []}], (method, path)


async def test_guarded_operations_document_403_and_named_objects_404(client):
    operation = (await _document(client))["paths"]["/v1/holds/{hold_id}"]["get"]
    assert _problem_schema(operation, 403) == PROBLEM
    assert _problem_schema(operation, 404) == PROBLEM


async def test_operations_with_a_body_document_400_413_422_and_409(client):
    operation = (await _document(client))["paths"]["/v1/holds"]["post"]
    for status in (400, 409, 413, 422):
        assert _problem_schema(operation, status) == PROBLEM, status
    listing = (await _document(client))["paths"]["/v1/holds"]["get"]
    assert not {"400", "409", "413", "422"} & set(listing["responses"])


async def test_rate_limited_browser_operations_document_429_and_their_site_key_problems(client):
    paths = (await _document(client))["paths"]
    for status in (401, 403, 429):
        assert _problem_schema(paths["/v1/collect"]["post"], status) == PROBLEM
    assert "429" not in paths["/v1/holds"]["post"]["responses"]


async def test_the_problem_schema_is_what_the_server_emits(client, tenant):
    schema = (await _document(client))["components"]["schemas"]
    assert set(schema["Problem"]["required"]) == {"type", "title", "status", "detail", "instance", "request_id"}
    assert schema["FieldProblem"]["required"] == ["message", "path"]
    refused = await client.post("/v1/holds", json={"name": 5, "colour": "red"}, headers=tenant.headers("compliance"))
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    problem = msgspec.convert(refused.json(), Problem)
    assert problem.status == 422 and problem.instance == "/v1/holds" and problem.errors


async def test_bodies_that_refuse_unknown_fields_say_so(client, tenant):
    document = await _document(client)
    body = document["paths"]["/v1/holds"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["additionalProperties"] is False
    refused = await client.post("/v1/holds", json={"name": "x", "reason": "y", "criteria": {}, "colour": "red"},
                                headers=tenant.headers("compliance"))
    assert refused.status_code == 422 and "colour" in {e["path"] for e in refused.json()["errors"]}


async def test_options_advertises_every_method_of_the_path_without_a_key(client):
    for path, methods in (("/v1/holds", "GET, OPTIONS, POST"),
                          ("/v1/cases/00000000-0000-0000-0000-000000000000", "DELETE, GET, OPTIONS, PATCH"),
                          ("/v1/rules", "GET, OPTIONS, POST")):
        response = await client.options(path)
        assert response.status_code == 204 and response.headers["allow"] == methods, (path, response.status_code)


async def test_bodies_a_handler_reads_itself_are_documented_under_every_media_type_it_reads(client):
    """Handlers that read their body as bytes (browsers' text/plain, YAML rules, a body a site
    signature covers) declare it: a client generated from the document can send them."""
    document = await _document(client)
    declared = {
        ("/v1/collect", "post"): ("CollectIn", {"text/plain", "application/json"}),
        ("/v1/rules/import", "post"): ("RulesDocument", {"application/yaml", "application/json"}),
        ("/v1/visitors/{visitor_id}/attributes", "post"): ("AttributesIn", {"application/json"}),
        ("/v1/visitors/{visitor_id}/events", "post"): ("EventsIn", {"application/json"}),
    }
    schemas = document["components"]["schemas"]
    for (path, method), (name, media_types) in declared.items():
        body = document["paths"][path][method]["requestBody"]
        assert body["required"] is True, path
        assert set(body["content"]) == media_types, path
        for media_type in media_types:
            assert body["content"][media_type]["schema"] == {"$ref": f"#/components/schemas/{name}"}, (path, media_type)
        assert name in schemas, name
    # Validation takes any text and judges it in its answer (200, "valid": false, the errors).
    body = document["paths"]["/v1/rules/validate"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/yaml", "application/json"}
    assert all(set(media["schema"]) == {"description"} for media in body["content"].values())
    # What the schemas require is what the endpoints refuse a body without.
    assert set(schemas["CollectIn"]["required"]) == {"visitor_id", "session_id", "events"}
    assert set(schemas["EventsIn"]["required"]) == {"site", "events"}
    assert set(schemas["AttributesIn"]["required"]) == {"site", "attributes"}


async def test_every_operation_that_reads_a_body_documents_it(client):
    """The POSTs without a documented body are exactly those that read none (or, for a connector,
    the platform's own payload, described per platform in docs/connectors.md)."""
    bodiless = {
        (method, path) for method, path, operation in _operations(await _document(client))
        if method in ("POST", "PUT", "PATCH") and "requestBody" not in operation
    }
    assert bodiless == {
        ("POST", "/v1/admin/keys/{key_id}/revoke"), ("POST", "/v1/audit/checkpoints"), ("POST", "/v1/retention/preview"),
        ("POST", "/v1/retention/sweep"), ("POST", "/v1/rules/{rule_id}/backtest"), ("POST", "/v1/connectors/{connector_id}/events"),
    }
