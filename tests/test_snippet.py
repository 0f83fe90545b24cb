"""The snippet as served: small, cacheable, and what the embed tag points at."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from api.browser import SNIPPET
from tests.conftest import IN_CI

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
