"""Builders shared by the supervision, review and case tests."""

from __future__ import annotations

from typing import Any

from archive.tenancy import create_api_key
from tests.factories import conversation


def policy_body(name: str = "guarantees", query: str = '"guaranteed returns"', **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "query": query, "patterns": [], "scope": {}, "sample_percent": 0, "severity": "high", "enabled": True}
    body.update(overrides)
    return body


async def create_policy(client: Any, tenant: Any, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/supervision/policies", json=policy_body(**fields), headers=tenant.headers("compliance"))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ingest(client: Any, tenant: Any, *bodies: dict[str, Any]) -> dict[str, str]:
    """external_id → conversation id."""
    response = await client.post("/v1/transcripts", json={"conversations": list(bodies)}, headers=tenant.headers("ingest"))
    assert response.status_code in (200, 201), response.text
    return {r["external_id"]: r["id"] for r in response.json()["results"]}


def chat(external_id: str, *texts: str, **overrides: Any) -> dict[str, Any]:
    return conversation(external_id, *texts, **overrides)


async def reviewer(tenant: Any, sites: list[str], channels: list[str] | None = None) -> dict[str, str]:
    """Authorization headers of a new reviewer key scoped to ``sites`` (and ``channels``)."""
    key = await create_api_key(tenant.id, "reviewer", "reviewer", sites, channels)
    return {"Authorization": f"Bearer {key.key}", "x-actor": f"key:{key.prefix}"}


async def queue(client: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/reviews", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())
