"""What handlers receive through Litestar's dependency injection: the runtime and the caller."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from archive.runtime import Runtime
from archive.tenancy import Principal


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller (set by api.auth); only handlers behind authentication ask for it."""
    principal: Principal = request.user
    return principal


DEPENDENCIES = {
    "rt": Provide(provide_runtime, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
}

# Handlers name what they need by these annotations (Litestar's explicit named injection).
Rt = NamedDependency[Runtime]
Caller = NamedDependency[Principal]
