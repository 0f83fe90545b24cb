"""The parley command: the verbs and --json shapes integrations rely on."""

from __future__ import annotations

import json

from tests.cli import run_cli


async def test_tenant_key_and_site_created_from_the_cli_work_against_the_api(client):
    slug = "cli-" + __import__("secrets").token_hex(3)
    tenant = await run_cli("tenants", "create", slug, "--json")
    assert tenant.returncode == 0, tenant.stderr
    assert json.loads(tenant.stdout)["slug"] == slug

    key = json.loads((await run_cli("keys", "create", "--tenant", slug, "--role", "admin", "--json")).stdout)
    assert set(key) >= {"id", "key", "role", "tenant"}
    headers = {"Authorization": f"Bearer {key['key']}"}
    who = await client.get("/v1/whoami", headers=headers)
    assert who.json()["tenant"] == slug and who.json()["role"] == "admin"

    site = await run_cli("sites", "create", "--tenant", slug, "--name", "shop", "--origin", "https://shop.example.com", "--json")
    assert site.returncode == 0, site.stderr
    site_body = json.loads(site.stdout)
    assert site_body["site_key"].startswith("ps_") and "<script" in site_body["embed"]
    listed = await client.get("/v1/admin/sites", headers=headers)
    assert [s["site_key"] for s in listed.json()] == [site_body["site_key"]]

    ingest_key = json.loads((await run_cli("keys", "create", "--tenant", slug, "--role", "ingest", "--json")).stdout)
    forbidden = await client.get("/v1/admin/keys", headers={"Authorization": f"Bearer {ingest_key['key']}"})
    assert forbidden.status_code == 403


async def test_the_embed_tag_points_where_parley_serves():
    """Without --public-url the tag names the host and port `parley serve` listens on (PARLEY_HOST,
    PARLEY_PORT), as a connector's webhook URL does; with it, the address browsers reach."""
    slug = "cli-" + __import__("secrets").token_hex(3)
    await run_cli("tenants", "create", slug)
    served = await run_cli("sites", "create", "--tenant", slug, "--name", "shop", "--origin", "https://shop.example.com", "--json",
                           env={"PARLEY_HOST": "127.0.0.1", "PARLEY_PORT": "8080"})
    assert served.returncode == 0, served.stderr
    assert 'src="http://127.0.0.1:8080/v1/snippet.js"' in json.loads(served.stdout)["embed"]
    public = await run_cli("sites", "create", "--tenant", slug, "--name", "blog", "--origin", "https://blog.example.com",
                           "--public-url", "https://parley.example.com/", "--json", env={"PARLEY_PORT": "8080"})
    assert 'src="https://parley.example.com/v1/snippet.js"' in json.loads(public.stdout)["embed"]


async def test_plain_output_prints_the_key_once_and_guidance_on_stderr(client):
    slug = "cli-" + __import__("secrets").token_hex(3)
    await run_cli("tenants", "create", slug)
    result = await run_cli("keys", "create", "--tenant", slug, "--role", "compliance")
    assert result.stdout.strip().startswith("prl_") and len(result.stdout.strip().splitlines()) == 1
    assert "shown once" in result.stderr


async def test_errors_say_what_to_do():
    missing = await run_cli("keys", "create", "--tenant", "no-such-tenant", "--role", "admin")
    assert missing.returncode == 1
    assert "parley tenants create no-such-tenant" in missing.stderr
    bad_origin = await run_cli("sites", "create", "--tenant", "no-such-tenant", "--name", "x", "--origin", "ftp://x")
    assert bad_origin.returncode == 1


async def test_bad_role_is_a_usage_error():
    result = await run_cli("keys", "create", "--tenant", "x", "--role", "root")
    assert result.returncode == 2 and "invalid choice" in result.stderr
