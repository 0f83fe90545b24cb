"""Admin endpoints: keys, sites and settings of the admin's own tenant."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from api.auth import requires
from api.deps import Caller, Rt, public_url
from api.schemas import CreateKeyIn, CreateSiteIn, UpdateSiteIn, WhoAmI
from archive import ledger, tenancy
from archive.tenancy import ApiKeyOut, CreatedKey, Principal, SiteOut, TenantSettings, TenantSettingsChange


async def _audit(principal: Caller, action: str, subject: str, **details: Any) -> None:
    await ledger.append(principal.tenant_id, ledger.Entry(actor=principal.actor, action=action, subject=subject, details=details))


class AdminController(Controller):
    path = "/v1/admin"
    guards = [requires("admin")]
    tags = ["admin"]

    @get("/keys", summary="List API keys (secrets are never shown again)")
    async def list_keys(self, principal: Caller) -> list[ApiKeyOut]:
        return await tenancy.list_api_keys(principal.tenant_id)

    @post("/keys", summary="Create an API key; the secret is in this response only")
    async def create_key(self, principal: Caller, data: JSONBody[CreateKeyIn]) -> CreatedKey:
        created = await tenancy.create_api_key(principal.tenant_id, data.role, data.name, data.sites, data.channels)
        scope = {"sites": created.sites, "channels": created.channels} if created.sites else {}
        await _audit(principal, "key.create", created.prefix, role=created.role, **scope)
        return created

    @post("/keys/{key_id:str}/revoke", summary="Revoke an API key, effective immediately", status_code=200)
    async def revoke_key(self, rt: Rt, principal: Caller, key_id: FromPath[UUID]) -> ApiKeyOut:
        revoked = await tenancy.revoke_api_key(rt, key_id, principal.tenant_id)
        await _audit(principal, "key.revoke", revoked.prefix)
        return revoked

    @get("/sites", summary="List sites")
    async def list_sites(self, request: Request[Principal, Any, Any], principal: Caller) -> list[SiteOut]:
        return [self._with_embed(request, s) for s in await tenancy.list_sites(principal.tenant_id)]

    @post("/sites", summary="Create a site with its public site key and allowed origins")
    async def create_site(self, request: Request[Principal, Any, Any], principal: Caller, data: JSONBody[CreateSiteIn]) -> SiteOut:
        site = await tenancy.create_site(principal.tenant_id, data.name, data.allowed_origins)
        await _audit(principal, "site.create", site.name)
        return self._with_embed(request, site)

    @get("/sites/{site_id:str}", summary="One site")
    async def get_site(self, request: Request[Principal, Any, Any], principal: Caller, site_id: FromPath[UUID]) -> SiteOut:
        return self._with_embed(request, await tenancy.get_site(principal.tenant_id, site_id))

    @patch("/sites/{site_id:str}", summary="Replace a site's allowed origins")
    async def update_site(self, request: Request[Principal, Any, Any], rt: Rt, principal: Caller, site_id: FromPath[UUID],
                          data: JSONBody[UpdateSiteIn]) -> SiteOut:
        site = await tenancy.update_site_origins(principal.tenant_id, site_id, data.allowed_origins)
        rt.engagement.sites.forget(site.site_key)
        await _audit(principal, "site.update", site.name, allowed_origins=site.allowed_origins)
        return self._with_embed(request, site)

    @delete("/sites/{site_id:str}", summary="Delete a site")
    async def delete_site(self, rt: Rt, principal: Caller, site_id: FromPath[UUID]) -> None:
        site = await tenancy.get_site(principal.tenant_id, site_id)
        await tenancy.delete_site(principal.tenant_id, site_id)
        rt.engagement.sites.forget(site.site_key)
        await _audit(principal, "site.delete", site.name)

    @get("/settings", summary="Tenant settings (redaction options, default languages)")
    async def get_settings(self, principal: Caller) -> TenantSettings:
        return await tenancy.get_tenant_settings(principal.tenant_id)

    @put("/settings", summary="Replace tenant settings (a field left out returns to its default; PATCH changes only the fields given)")
    async def put_settings(self, rt: Rt, principal: Caller, data: JSONBody[TenantSettings]) -> TenantSettings:
        saved = await tenancy.put_tenant_settings(rt, principal.tenant_id, data)
        await _audit(principal, "settings.change", principal.tenant_slug, settings=msgspec.structs.asdict(data))
        return saved

    @patch("/settings", summary="Change the tenant settings given; the others keep their value")
    async def patch_settings(self, rt: Rt, principal: Caller, data: JSONBody[TenantSettingsChange]) -> TenantSettings:
        changed = data.applied_to(await tenancy.get_tenant_settings(principal.tenant_id))
        saved = await tenancy.put_tenant_settings(rt, principal.tenant_id, changed)
        await _audit(principal, "settings.change", principal.tenant_slug, settings=msgspec.structs.asdict(changed))
        return saved

    @staticmethod
    def _with_embed(request: Request[Any, Any, Any], site: SiteOut) -> SiteOut:
        site.embed = tenancy.embed_tag(public_url(request), site.site_key)
        return site


@get("/v1/whoami", tags=["operations"], summary="Which tenant and role this key has")
async def whoami(principal: Caller) -> WhoAmI:
    return WhoAmI(tenant=principal.tenant_slug, role=principal.role, key_prefix=principal.key_prefix)
