"""Bearer-key authentication and role guards.

Missing or invalid key: 401. Valid key, wrong role: 403. Another tenant's object: 404 (the
domain functions scope every query to the caller's tenant, so it is simply not found).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from archive.runtime import Runtime
from archive.tenancy import Principal

# Litestar's own OpenAPI routes cannot carry our opt, so they are public by path.
PUBLIC_PREFIXES = ("/schema",)
# Longer than any key we issue: rejected before hashing or lookup.
MAX_KEY_LENGTH = 128


class ApiKeyAuthentication:
    """Sets ``scope["user"]`` to the caller's Principal. Handlers opt out with ``exclude_from_auth``.

    A plain ASGI middleware rather than Litestar's AbstractAuthenticationMiddleware: it runs on
    every request, and the lighter wrapper measurably raises authenticated throughput (bench/).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and not scope["route_handler"].opt.get("exclude_from_auth")
            and not scope["path"].startswith(PUBLIC_PREFIXES)
        ):
            token = _bearer_token(scope)
            runtime: Runtime = scope["litestar_app"].state.runtime
            principal = await runtime.tenants.authenticate(token) if len(token) <= MAX_KEY_LENGTH else None
            if principal is None:
                raise NotAuthorizedException(
                    "the API key is unknown or revoked",
                    headers={"WWW-Authenticate": 'Bearer realm="parley", error="invalid_token"'},
                )
            scope["user"] = principal
            scope["auth"] = token
            scope["state"]["key_prefix"] = principal.key_prefix
        await self.app(scope, receive, send)


def _bearer_token(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            break
    raise NotAuthorizedException(
        "send an API key as 'Authorization: Bearer prl_…' (create one with: parley keys create)",
        headers={"WWW-Authenticate": 'Bearer realm="parley"'},
    )


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
