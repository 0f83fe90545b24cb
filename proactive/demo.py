"""The demo shop at /demo: a tenant, a site and a rule, created on first start, so a newcomer who
runs ``make run`` and opens http://127.0.0.1:8000/demo sees an invitation within a minute."""

from __future__ import annotations

import json
from pathlib import Path

from archive.db import json_column
from archive.errors import Conflict
from archive.runtime import Runtime
from archive.tables import Site, Tenant
from archive.tenancy import Principal, create_site, create_tenant, tenant_by_slug
from proactive import service

DEMO_TENANT, DEMO_SITE = "demo", "demo-shop"
DEMO_RULE = {
    "name": "demo-welcome",
    "site": DEMO_SITE,
    "when": {"any": [
        {"field": "session.pageviews", "op": "gte", "value": 2},
        {"field": "page.time_on_page", "op": "gte", "value": "10s"},
    ]},
    "invite": {"message": "Hi! Looking for the right tent? An expert is online and happy to help.", "expires": "5m"},
    "caps": {"per_session": 1},
}
PAGE = Path(__file__).parent / "static" / "demo.html"


def origins(host: str, port: int) -> list[str]:
    hosts = {host, "127.0.0.1", "localhost"} - {"0.0.0.0", "::"}
    return sorted(f"http://{h}:{port}" for h in hosts)


async def ensure_demo(rt: Runtime) -> str:
    """Create the demo tenant, site and rule if missing; returns the site key."""
    tenant = await Tenant.select(Tenant.id).where(Tenant.slug == DEMO_TENANT).first()
    if tenant is None:
        try:
            tenant_id = (await create_tenant(rt, DEMO_TENANT, "Demo shop", actor="system:demo")).id
        except Conflict:  # another process won the race
            tenant_id = (await tenant_by_slug(DEMO_TENANT))["id"]
    else:
        tenant_id = tenant["id"]
    site = await Site.select(Site.id, Site.site_key, Site.allowed_origins).where((Site.tenant == tenant_id) & (Site.name == DEMO_SITE)).first()
    wanted = origins(rt.settings.host, rt.settings.port)
    if site is None:
        created = await create_site(tenant_id, DEMO_SITE, wanted)
        site_key = created.site_key
    else:
        site_key = site["site_key"]
        current = json_column(site["allowed_origins"])
        if sorted(set(current) | set(wanted)) != sorted(current):
            await Site.update({Site.allowed_origins: json.dumps(sorted(set(current) | set(wanted)))}).where(Site.id == site["id"])
    principal = Principal(key_id=tenant_id, key_prefix="demo", tenant_id=tenant_id, tenant_slug=DEMO_TENANT, role="marketing")
    if not await service.list_rules(tenant_id):
        await service.create_rule(rt, principal, DEMO_RULE)
    return site_key


def page(site_key: str) -> str:
    embed = f'<script async src="/v1/snippet.js" data-site="{site_key}"></script>'
    return PAGE.read_text(encoding="utf-8").replace("__EMBED__", embed)
