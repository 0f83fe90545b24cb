"""Who may call what: keys, roles, tenants."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.cli import run_cli
from tests.factories import conversation

# (method, path, body) -> roles admitted. Paths with {id} get a random id: a 404 proves the role
# passed the guard, a 403 proves it did not.
MATRIX = [
    ("GET", "/v1/whoami", None, {"admin", "compliance", "marketing", "ingest"}),
    ("GET", "/v1/admin/keys", None, {"admin"}),
    ("POST", "/v1/admin/keys", {"role": "ingest"}, {"admin"}),
    ("GET", "/v1/admin/sites", None, {"admin"}),
    ("GET", "/v1/admin/settings", None, {"admin"}),
    ("POST", "/v1/transcripts", "conversation", {"ingest"}),
    ("GET", "/v1/transcripts/{id}", None, {"compliance"}),
    ("GET", "/v1/audit", None, {"compliance", "admin"}),
    ("GET", "/v1/audit/verify", None, {"compliance", "admin"}),
]
ROLES = ["admin", "compliance", "marketing", "ingest"]


@pytest.mark.parametrize("method,path,body,allowed", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
@pytest.mark.parametrize("role", ROLES)
async def test_role_matrix(client, tenant, method, path, body, allowed, role):
    url = path.replace("{id}", str(uuid.uuid4()))
    payload = conversation() if body == "conversation" else body
    response = await client.request(method, url, json=payload, headers=tenant.headers(role))
    if role in allowed:
        assert response.status_code in (200, 201, 404), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert role in response.json()["detail"]


@pytest.mark.parametrize("method,path,body,allowed", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
async def test_missing_or_invalid_key_is_401(client, method, path, body, allowed):
    url = path.replace("{id}", str(uuid.uuid4()))
    for headers in ({}, {"Authorization": "Bearer prl_abcdefgh_" + "x" * 43}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = await client.request(method, url, json=body if isinstance(body, dict) else None, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["type"] == "/problems/unauthenticated"
        assert "WWW-Authenticate" in response.headers


async def test_another_tenants_conversation_is_not_found(client, tenant, other_tenant):
    created = await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
    assert created.status_code == 201
    conversation_id = created.json()["id"]
    mine = await client.get(f"/v1/transcripts/{conversation_id}", headers=tenant.headers("compliance"))
    theirs = await client.get(f"/v1/transcripts/{conversation_id}", headers=other_tenant.headers("compliance"))
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert "other" not in theirs.text and tenant.slug not in theirs.text


async def test_another_tenants_key_and_site_are_not_found(client, tenant, other_tenant):
    site = await client.post("/v1/admin/sites", json={"name": "shop"}, headers=tenant.headers("admin"))
    assert site.status_code == 201
    site_id = site.json()["id"]
    key_id = tenant.keys["ingest"].id
    assert (await client.get(f"/v1/admin/sites/{site_id}", headers=other_tenant.headers("admin"))).status_code == 404
    assert (await client.delete(f"/v1/admin/sites/{site_id}", headers=other_tenant.headers("admin"))).status_code == 404
    assert (await client.post(f"/v1/admin/keys/{key_id}/revoke", headers=other_tenant.headers("admin"))).status_code == 404
    # ... and the key still works for its own tenant.
    assert (await client.get("/v1/whoami", headers=tenant.headers("ingest"))).status_code == 200


async def test_key_lists_only_show_own_tenant_and_never_secrets(client, tenant, other_tenant):
    response = await client.get("/v1/admin/keys", headers=tenant.headers("admin"))
    assert response.status_code == 200
    listed = response.json()
    assert {k["prefix"] for k in listed} == {k.prefix for k in tenant.keys.values()}
    for key in tenant.keys.values():
        assert key.key not in response.text


async def test_key_revoked_through_api_stops_working_immediately(client, tenant):
    headers = tenant.headers("compliance")
    assert (await client.get("/v1/whoami", headers=headers)).status_code == 200  # now cached
    revoke = await client.post(f"/v1/admin/keys/{tenant.keys['compliance'].id}/revoke", headers=tenant.headers("admin"))
    assert revoke.status_code == 200 and revoke.json()["revoked_at"]
    assert (await client.get("/v1/whoami", headers=headers)).status_code == 401


async def test_key_revoked_through_cli_stops_working_immediately(client, tenant):
    """The CLI is another process; the server's auth cache (TTL 30 s in tests) must still drop it."""
    headers = tenant.headers("ingest")
    assert (await client.get("/v1/whoami", headers=headers)).status_code == 200  # now cached
    result = await run_cli("keys", "revoke", str(tenant.keys["ingest"].id))
    assert result.returncode == 0, result.stderr
    status = None
    for _ in range(20):  # NOTIFY is delivered asynchronously, milliseconds after the commit
        status = (await client.get("/v1/whoami", headers=headers)).status_code
        if status == 401:
            break
        await asyncio.sleep(0.05)
    assert status == 401


async def test_admin_creates_key_that_works_with_its_role(client, tenant):
    created = await client.post("/v1/admin/keys", json={"role": "marketing", "name": "campaigns"}, headers=tenant.headers("admin"))
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("prl_") and body["role"] == "marketing"
    who = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {body['key']}"})
    assert who.json() == {"tenant": tenant.slug, "role": "marketing", "key_prefix": body["prefix"]}


async def test_unknown_role_is_rejected_with_the_field(client, tenant):
    response = await client.post("/v1/admin/keys", json={"role": "root"}, headers=tenant.headers("admin"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "role"
