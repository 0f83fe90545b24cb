"""What browsers load: the snippet (cached, with an ETag) and the demo shop."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from litestar import Request, Response, get

from proactive import demo

# Served minified (``make snippet`` builds it from static/parley.js with terser, pinned in
# deploy/snippet; a test keeps the two in step): the tag loads on every page of every site.
SNIPPET = (Path(demo.__file__).parent / "static" / "parley.min.js").read_bytes()
SNIPPET_ETAG = '"' + hashlib.sha256(SNIPPET).hexdigest()[:32] + '"'


@get("/v1/snippet.js", exclude_from_auth=True, tags=["engagement: browser"], summary="The site snippet", media_type="application/javascript")
async def snippet(request: Request[Any, Any, Any]) -> Response[bytes]:
    headers = {"ETag": SNIPPET_ETAG, "Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"}
    if request.headers.get("if-none-match") == SNIPPET_ETAG:
        return Response(b"", status_code=304, headers=headers)
    return Response(SNIPPET, media_type="application/javascript; charset=utf-8", headers=headers)


@get(["/demo", "/demo/{rest:path}"], exclude_from_auth=True, tags=["engagement: browser"], summary="Demo shop", media_type="text/html",
     include_in_schema=False)
async def demo_shop(request: Request[Any, Any, Any]) -> Response[str]:
    site_key = request.app.state.demo_site_key
    if not site_key:
        return Response("The demo is off (PARLEY_DEMO=false).", status_code=404, media_type="text/plain")
    return Response(demo.page(site_key), media_type="text/html; charset=utf-8")
