"""The snippet as served: small, cacheable, and what the embed tag points at."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import msgspec
import pytest

from api.app import create_app
from api.browser import SNIPPET
from api.composition import build_runtime
from tests.conftest import IN_CI, app_client

BUDGET = 4096  # bytes, gzipped as served
ROOT = Path(__file__).resolve().parent.parent
TERSER = ROOT / "deploy" / "snippet" / "node_modules" / "terser" / "bin" / "terser"


def test_snippet_is_under_four_kilobytes_gzipped():
    size = len(gzip.compress(SNIPPET, compresslevel=9))
    assert size <= BUDGET, f"snippet is {size} bytes gzipped"


def test_the_served_snippet_is_the_minified_source():
    """/v1/snippet.js serves parley.min.js, which `make snippet` builds from parley.js: an edit
    to the source that was not rebuilt would never reach a browser."""
    if not TERSER.exists():
        if IN_CI:
            pytest.fail("the snippet's minifier is not installed: run `make snippet-tools` (npm ci in deploy/snippet)")
        pytest.skip("the snippet's minifier is not installed (make snippet-tools)")
    built = subprocess.run(["node", str(TERSER), str(ROOT / "proactive" / "static" / "parley.js"), "-c", "-m"],
                           capture_output=True, check=True, timeout=120).stdout
    assert built.strip() == SNIPPET.strip(), "proactive/static/parley.min.js is stale: run `make snippet`"


async def test_snippet_is_served_with_cache_headers_and_etag(client):
    first = await client.get("/v1/snippet.js")
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/javascript")
    assert "max-age" in first.headers["cache-control"] and first.headers["etag"]
    again = await client.get("/v1/snippet.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_embed_tag_points_at_the_snippet(client, tenant):
    site = (await client.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": ["https://shop.example.com"]},
                              headers=tenant.headers("admin"))).json()
    assert site["embed"] == f'<script async src="http://testserver.local/v1/snippet.js" data-site="{site["site_key"]}"></script>'


async def test_behind_a_trusted_tls_proxy_the_embed_tag_and_webhook_urls_say_https(settings, runtime, tenant):
    """An http:// snippet on an https page is blocked as mixed content: behind a proxy that ends
    TLS, the URLs Parley hands out follow the X-Forwarded-Proto of a trusted proxy (as the
    console's cookies do), and only of a trusted one."""
    admin = {**tenant.headers("admin"), "x-forwarded-proto": "https", "host": "parley.example.com"}
    for trusted, scheme in (("127.0.0.0/8", "https"), ("", "http"), ("10.0.0.0/8", "http")):
        proxied = msgspec.structs.replace(settings, trusted_proxies=trusted)
        rt = build_runtime(proxied, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
        async with app_client(create_app(proxied, rt)) as http:  # the test client connects from 127.0.0.1
            site = (await http.post("/v1/admin/sites", json={"name": f"shop-{scheme}-{len(trusted)}"}, headers=admin)).json()
            assert site["embed"].startswith(f'<script async src="{scheme}://parley.example.com/v1/snippet.js"'), (trusted, site)
            listed = (await http.get(f"/v1/admin/sites/{site['id']}", headers=admin)).json()
            assert listed["embed"] == site["embed"]
            connector = (await http.post("/v1/admin/connectors", json={"platform": "generic"}, headers=admin)).json()
            assert connector["webhook_url"].startswith(f"{scheme}://parley.example.com/v1/connectors/"), (trusted, connector)
