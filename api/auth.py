"""Bearer-key authentication and role guards.

Missing or invalid key: 401. Valid key, wrong role: 403. Another tenant's object: 404 (the
domain functions scope every query to the caller's tenant, so it is simply not found).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from archive.tenancy import Principal, authenticate


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException(
                "send an API key as 'Authorization: Bearer prl_…' (create one with: parley keys create)",
                headers={"WWW-Authenticate": 'Bearer realm="parley"'},
            )
        runtime = connection.app.state.runtime
        principal = await authenticate(token.strip(), runtime.settings.auth_cache_seconds)
        if principal is None:
            raise NotAuthorizedException(
                "the API key is unknown or revoked", headers={"WWW-Authenticate": 'Bearer realm="parley", error="invalid_token"'}
            )
        connection.scope.setdefault("state", {})["key_prefix"] = principal.key_prefix
        return AuthenticationResult(user=principal, auth=token)


def requires(*roles: str) -> Any:
    """A guard admitting only the given roles."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if principal.role not in roles:
            raise PermissionDeniedException(
                f"this endpoint needs a key with role {' or '.join(roles)}; this key has role {principal.role}"
            )

    guard.__name__ = f"requires_{'_or_'.join(roles)}"
    return guard
