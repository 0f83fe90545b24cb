"""The snippet as served: small, cacheable, and what the embed tag points at."""

from __future__ import annotations

import gzip

from api.browser import SNIPPET

BUDGET = 4608  # bytes, gzipped as served (the source: 4.4 KB; terser -c -m would make it 3.6 KB)


def test_snippet_is_under_four_and_a_half_kilobytes_gzipped():
    size = len(gzip.compress(SNIPPET, compresslevel=9))
    assert size <= BUDGET, f"snippet is {size} bytes gzipped"


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
