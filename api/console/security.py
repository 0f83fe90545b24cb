"""What keeps the console's pages to their signed-in reader: the session cookie, CSRF, and headers.

* **Session.** ``ConsoleSessionMiddleware`` reads the session cookie on every console request and
  asks ``archive.sessions.resolve`` (one indexed query) whether it is still good; the caller it
  acts as is then ``request.user`` exactly as an API key's caller is, so the API's role guards
  (``api.auth.requires``) and domain functions apply unchanged. No session: a redirect to the
  sign-in page (``HX-Redirect`` for htmx requests, which would otherwise swap the sign-in page
  into a fragment).
* **Cookie.** ``HttpOnly``, ``SameSite=Strict``, ``Path=/console``, and ``Secure`` when the
  request came over HTTPS — directly, or through a proxy listed in ``PARLEY_TRUSTED_PROXIES``
  that says so in ``X-Forwarded-Proto``. It lives no longer than the session's absolute limit.
* **CSRF.** A per-session token (``archive.sessions.csrf_token``: an HMAC of the session token,
  so nothing more is stored) must come with every unsafe request, in the ``_csrf`` form field or
  the ``X-CSRF-Token`` header (console.js adds it to htmx requests). The sign-in form, which has
  no session yet, uses a double-submit cookie. Requests whose ``Origin`` is another site are
  refused outright. SameSite=Strict already keeps the cookie off cross-site requests; the token
  covers browsers and proxies that get that wrong.
* **Headers.** A strict Content-Security-Policy (every script and style is a file Parley
  serves: no inline code, no CDN), no framing, no sniffing, no referrer to other sites, and
  ``Cache-Control: no-store`` on pages — they hold decrypted conversations, which must not end
  up in a browser's disk cache.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.screen import screen_body
from archive import sessions
from archive.runtime import Runtime
from config.settings import trusted_networks

COOKIE = "parley_console"
SIGN_IN_COOKIE = "parley_console_sign_in"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
PATH = "/console"
SIGN_IN_PATH = "/console/sign-in"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope["headers"]:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is treated as no cookies
                return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def is_https(scope: Scope, rt: Runtime) -> bool:
    """Did the browser use HTTPS? Directly, or by the word of a trusted proxy."""
    if scope.get("scheme") == "https":
        return True
    forwarded = _header(scope, b"x-forwarded-proto")
    client = scope.get("client")
    if not forwarded or not client or not rt.settings.trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    trusted = any(address in network for network in trusted_networks(rt.settings.trusted_proxies))
    return trusted and forwarded.split(",")[0].strip().lower() == "https"


def session_cookie(request: Request[Any, Any, Any], rt: Runtime, token: str, max_age: int) -> Cookie:
    return Cookie(key=COOKIE, value=token, path=PATH, httponly=True, samesite="strict", secure=is_https(request.scope, rt), max_age=max_age)


def expired_cookie(request: Request[Any, Any, Any], rt: Runtime, key: str = COOKIE) -> Cookie:
    return Cookie(key=key, value="", path=PATH, httponly=True, samesite="strict", secure=is_https(request.scope, rt), max_age=0)


def sign_in_cookie(request: Request[Any, Any, Any], rt: Runtime) -> Cookie:
    """The double-submit token of the sign-in form (there is no session to bind it to yet)."""
    return Cookie(key=SIGN_IN_COOKIE, value=secrets.token_urlsafe(24), path=PATH, httponly=True, samesite="strict",
                  secure=is_https(request.scope, rt), max_age=3600)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no open redirect)."""
    if not target:
        return PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PATH) or parts.path.startswith("//") or "\\" in target:
        return PATH
    return target


class ConsoleSessionMiddleware:
    """Resolves the session cookie to the caller on every console route (see the module doc).
    Routes marked ``console_public`` (sign-in, static files) are served without one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        opt = scope["route_handler"].opt
        rt: Runtime = scope["litestar_app"].state.runtime
        token = _cookies(scope).get(COOKIE)
        info = await sessions.resolve(rt, token, touch=not opt.get("console_heartbeat")) if token else None
        send = _with_headers(send, static=bool(opt.get("console_static")))
        if info is not None:
            scope["user"] = info.principal
            scope["auth"] = info
            scope["state"]["key_prefix"] = info.principal.key_prefix
        elif not opt.get("console_public"):
            await _to_sign_in(scope, send, rt, clear=token is not None)
            return
        await self.app(scope, receive, send)


def _with_headers(send: Send, static: bool) -> Send:
    extra = SECURITY_HEADERS if static else [*SECURITY_HEADERS, (b"cache-control", b"no-store")]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
        await send(message)

    return wrapped


async def _to_sign_in(scope: Scope, send: Send, rt: Runtime, clear: bool) -> None:
    current = _header(scope, b"hx-current-url")
    if current is None and (scope.get("method", "GET") not in _SAFE_METHODS or scope["route_handler"].opt.get("console_heartbeat")):
        # A form posted after the session ended (signing out, a plain-form action), or the page's
        # heartbeat noticing that it ended: come back to the page, not to this address (a form's
        # answers only POST, a 405; the heartbeat's is a line of JSON).
        current = _header(scope, b"referer") or PATH
    if current:  # an htmx fragment: come back to the page it was on, not to the fragment
        target = urlsplit(current).path + (("?" + urlsplit(current).query) if urlsplit(current).query else "")
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
    location = SIGN_IN_PATH + ("" if target in (PATH, PATH + "/") else "?next=" + quote(safe_next(target), safe=""))
    headers: list[tuple[bytes, bytes]] = [(b"location", location.encode()), (b"content-length", b"0")]
    status = 303
    if _header(scope, b"hx-request"):
        status, headers = 200, [(b"hx-redirect", location.encode()), (b"content-length", b"0")]
    if clear:
        secure = "; Secure" if is_https(scope, rt) else ""
        headers.append((b"set-cookie", f"{COOKIE}=; Max-Age=0; Path={PATH}; HttpOnly; SameSite=Strict{secure}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


CSRF_FAILED = "this form is out of date or came from another site (CSRF check failed); reload the page and try again"


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of every console route: unsafe methods need the session's CSRF token
    (or, on the sign-in form, the double-submit cookie's value) and a same-site Origin. The app's
    body screening (api/screen.py) runs first: this hook replaces the app-level one here."""
    if request.method in _SAFE_METHODS:
        return None
    await screen_body(request)
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise PermissionDeniedException(CSRF_FAILED)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if request.route_handler.opt.get("console_sign_in"):
        expected = request.cookies.get(SIGN_IN_COOKIE)
    else:
        info = request.scope.get("auth")
        expected = info.csrf_token if isinstance(info, sessions.SessionInfo) else None
    # Compared as bytes: compare_digest refuses non-ASCII str, and a forged form may hold anything.
    if not presented or not expected or not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")):
        raise PermissionDeniedException(CSRF_FAILED)
    return None
