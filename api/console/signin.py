"""Signing in with an API key, signing out, and the page's heartbeat."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from api.console.render import home_for, page
from api.console.security import COOKIE, SIGN_IN_COOKIE, SIGN_IN_PATH, expired_cookie, safe_next, session_cookie, sign_in_cookie
from api.deps import Rt
from archive import sessions
from archive.errors import Forbidden, Unauthenticated


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", summary="The console's start page for the caller's role")
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        info: sessions.SessionInfo = request.auth
        return Redirect(home_for(info.principal.role), status_code=303)

    @get("/sign-in", opt={"console_public": True})
    async def form(self, request: Request[Any, Any, Any], rt: Rt, next: FromQuery[str | None] = None, signed_out: FromQuery[bool] = False) -> Template | Redirect:
        if isinstance(request.scope.get("auth"), sessions.SessionInfo):
            return Redirect(safe_next(next), status_code=303)
        cookie = sign_in_cookie(request, rt)
        response = page(request, "sign_in.html", next=safe_next(next), sign_in_csrf=cookie.value, error=None, signed_out=signed_out)
        response.cookies.append(cookie)
        return response

    @post("/sign-in", opt={"console_public": True, "console_sign_in": True}, status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], rt: Rt) -> Template | Redirect:
        form = await request.form()
        key, target = str(form.get("key") or ""), safe_next(str(form.get("next") or ""))
        try:
            token, info = await sessions.sign_in(rt, key)
        except (Unauthenticated, Forbidden) as exc:
            cookie = sign_in_cookie(request, rt)
            response = page(request, "sign_in.html", status=exc.status, next=target, sign_in_csrf=cookie.value, error=exc.detail, signed_out=False)
            response.cookies.append(cookie)
            return response
        lifetime = int((info.expires_at - info.created_at).total_seconds())
        return Redirect(target, status_code=303, cookies=[session_cookie(request, rt, token, lifetime), expired_cookie(request, rt, SIGN_IN_COOKIE)])

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], rt: Rt) -> Redirect:
        await sessions.sign_out(rt, request.cookies.get(COOKIE))
        return Redirect(SIGN_IN_PATH + "?signed_out=true", status_code=303, cookies=[expired_cookie(request, rt)])

    @get("/account", summary="Who is signed in, and until when")
    async def account(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "account.html", section="account")

    @get("/session", opt={"console_heartbeat": True}, summary="Is the session still good, and until when")
    async def heartbeat(self, request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
        info: sessions.SessionInfo = request.auth
        return Response({"idle_expires_at": info.idle_expires_at.isoformat(), "expires_at": info.expires_at.isoformat()})
