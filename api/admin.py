"""Admin endpoints: keys, sites and settings of the admin's own tenant."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from api.auth import requires
from api.schemas import CreateKeyIn, CreateSiteIn, UpdateSiteIn, WhoAmI
from archive import ledger, tenancy
from archive.tenancy import ApiKeyOut, CreatedKey, Principal, SiteOut, TenantSettings


def _public_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


async def _audit(principal: Principal, action: str, subject: str, **details: Any) -> None:
    await ledger.append(principal.tenant_id, ledger.Entry(actor=principal.actor, action=action, subject=subject, details=details))


class AdminController(Controller):
    path = "/v1/admin"
    guards = [requires("admin")]
    tags = ["admin"]

    @get("/keys", summary="List API keys (secrets are never shown again)")
    async def list_keys(self, request: Request[Principal, Any, Any]) -> list[ApiKeyOut]:
        return await tenancy.list_api_keys(request.user.tenant_id)

    @post("/keys", summary="Create an API key; the secret is in this response only")
    async def create_key(self, request: Request[Principal, Any, Any], data: JSONBody[CreateKeyIn]) -> CreatedKey:
        created = await tenancy.create_api_key(request.user.tenant_id, data.role, data.name)
        await _audit(request.user, "key.create", created.prefix, role=created.role)
        return created

    @post("/keys/{key_id:uuid}/revoke", summary="Revoke an API key, effective immediately", status_code=200)
    async def revoke_key(self, request: Request[Principal, Any, Any], key_id: FromPath[UUID]) -> ApiKeyOut:
        revoked = await tenancy.revoke_api_key(key_id, request.user.tenant_id)
        await _audit(request.user, "key.revoke", revoked.prefix)
        return revoked

    @get("/sites", summary="List sites")
    async def list_sites(self, request: Request[Principal, Any, Any]) -> list[SiteOut]:
        return [self._with_embed(request, s) for s in await tenancy.list_sites(request.user.tenant_id)]

    @post("/sites", summary="Create a site with its public site key and allowed origins")
    async def create_site(self, request: Request[Principal, Any, Any], data: JSONBody[CreateSiteIn]) -> SiteOut:
        site = await tenancy.create_site(request.user.tenant_id, data.name, data.allowed_origins)
        await _audit(request.user, "site.create", site.name)
        return self._with_embed(request, site)

    @get("/sites/{site_id:uuid}", summary="One site")
    async def get_site(self, request: Request[Principal, Any, Any], site_id: FromPath[UUID]) -> SiteOut:
        return self._with_embed(request, await tenancy.get_site(request.user.tenant_id, site_id))

    @patch("/sites/{site_id:uuid}", summary="Replace a site's allowed origins")
    async def update_site(self, request: Request[Principal, Any, Any], site_id: FromPath[UUID], data: JSONBody[UpdateSiteIn]) -> SiteOut:
        site = await tenancy.update_site_origins(request.user.tenant_id, site_id, data.allowed_origins)
        await _audit(request.user, "site.update", site.name, allowed_origins=site.allowed_origins)
        return self._with_embed(request, site)

    @delete("/sites/{site_id:uuid}", summary="Delete a site")
    async def delete_site(self, request: Request[Principal, Any, Any], site_id: FromPath[UUID]) -> None:
        site = await tenancy.get_site(request.user.tenant_id, site_id)
        await tenancy.delete_site(request.user.tenant_id, site_id)
        await _audit(request.user, "site.delete", site.name)

    @get("/settings", summary="Tenant settings (redaction options, default languages)")
    async def get_settings(self, request: Request[Principal, Any, Any]) -> TenantSettings:
        return await tenancy.get_tenant_settings(request.user.tenant_id)

    @put("/settings", summary="Replace tenant settings")
    async def put_settings(self, request: Request[Principal, Any, Any], data: JSONBody[TenantSettings]) -> TenantSettings:
        saved = await tenancy.put_tenant_settings(request.user.tenant_id, data)
        await _audit(request.user, "settings.change", request.user.tenant_slug, settings=msgspec.structs.asdict(data))
        return saved

    @staticmethod
    def _with_embed(request: Request[Any, Any, Any], site: SiteOut) -> SiteOut:
        site.embed = tenancy.embed_tag(_public_url(request), site.site_key)
        return site


@get("/v1/whoami", tags=["operations"], summary="Which tenant and role this key has")
async def whoami(request: Request[Principal, Any, Any]) -> WhoAmI:
    return WhoAmI(tenant=request.user.tenant_slug, role=request.user.role, key_prefix=request.user.key_prefix)
