"""Console sessions: an API key exchanged once for a browser session that expires.

A person signs in to the review console by pasting an API key of a role that may use it. The key
is checked like any API request (``TenantDirectory.authenticate``) and never stored; the browser
gets a random session token in a cookie, and the database keeps only the token's SHA-256, so a
copy of the sessions table cannot be replayed as cookies.

A session is good while all of these hold, checked on every request from the database (no cache,
so no process can keep honouring a session another one ended):

* it has not been signed out;
* its key has not been revoked — revoking a key ends its sessions at the next request, in every
  process, with nothing to invalidate;
* it is younger than ``console_session_hours`` and was used within ``console_idle_minutes``.

Starting and ending a session are ledger entries (``session.start``, ``session.end`` with the
reason), so the audit trail shows who worked in the console and for how long; a session nobody
came back to is ended by the ``console.sessions`` job (``sweep``), so every start has its end. The CSRF token of
a session is derived from its token (an HMAC), so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID, uuid4

import msgspec
from apscheduler.triggers.interval import IntervalTrigger

from archive import ledger
from archive.db import json_column, write_transaction
from archive.errors import Forbidden, Unauthenticated
from archive.jobs import JobSpec
from archive.tables import ConsoleSession
from archive.tenancy import Principal

if TYPE_CHECKING:
    from archive.runtime import Runtime

# Roles that may sign in: the ones whose work the console is for. Marketing and ingest keys are
# integrations' keys; they have nothing to read here.
CONSOLE_ROLES: tuple[str, ...] = ("compliance", "reviewer", "admin")
# ``last_seen_at`` is written at most this often: the idle limit is minutes, a write per click is
# not needed to keep it.
TOUCH_EVERY = timedelta(seconds=60)
# Ended and expired rows are kept this long (they say when a session ended and why), then purged.
KEEP_ENDED = timedelta(days=30)

EndReason = Literal["signed out", "key revoked", "expired", "idle"]


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    principal: Principal
    created_at: datetime
    expires_at: datetime  # the absolute limit
    idle_expires_at: datetime  # when it ends if nothing more happens
    csrf_token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token that goes with a session token: only the session's own pages know it."""
    return hmac.new(token.encode(), b"parley-console-csrf", hashlib.sha256).hexdigest()


def _limits(rt: Runtime) -> tuple[timedelta, timedelta]:
    s = rt.settings
    return timedelta(minutes=s.console_idle_minutes), timedelta(hours=s.console_session_hours)


async def sign_in(rt: Runtime, key: str) -> tuple[str, SessionInfo]:
    """A new session for the holder of ``key``. Returns the token (for the cookie, never stored)
    and the session. Unknown or revoked keys: Unauthenticated; other roles: Forbidden."""
    key = key.strip()
    principal = await rt.tenants.authenticate(key)
    if principal is None:
        raise Unauthenticated("this API key is unknown or revoked; paste the whole key, prl_…")
    if principal.role not in CONSOLE_ROLES:
        raise Forbidden(f"a key with role {principal.role} cannot sign in to the console; use a key of role {' or '.join(CONSOLE_ROLES)}")
    token = secrets.token_urlsafe(32)
    now = rt.clock.now()
    idle, lifetime = _limits(rt)
    session_id = uuid4()
    async with write_transaction():
        await ConsoleSession.insert(
            ConsoleSession(
                id=session_id, token_sha256=token_hash(token), tenant=principal.tenant_id, api_key=principal.key_id,
                created_at=now, last_seen_at=now, expires_at=now + lifetime,
            )
        )
        await ledger.append(
            principal.tenant_id,
            ledger.Entry(actor=principal.actor, action="session.start", subject=str(session_id), details={"via": "console"}),
        )
    info = SessionInfo(
        id=session_id, principal=principal, created_at=now, expires_at=now + lifetime,
        idle_expires_at=min(now + idle, now + lifetime), csrf_token=csrf_token(token),
    )
    return token, info


_COLUMNS = (
    ConsoleSession.id, ConsoleSession.created_at, ConsoleSession.last_seen_at, ConsoleSession.expires_at,
    ConsoleSession.ended_at, ConsoleSession.tenant.as_alias("tenant_id"), ConsoleSession.tenant.slug.as_alias("tenant_slug"),
    ConsoleSession.api_key.as_alias("key_id"), ConsoleSession.api_key.prefix.as_alias("key_prefix"),
    ConsoleSession.api_key.role.as_alias("role"), ConsoleSession.api_key.revoked_at.as_alias("revoked_at"),
    ConsoleSession.api_key.sites.as_alias("sites"), ConsoleSession.api_key.channels.as_alias("channels"),
)


async def resolve(rt: Runtime, token: str | None, *, touch: bool = True) -> SessionInfo | None:
    """The live session a cookie names, or None. A session found over its limits or with its key
    revoked is ended here (and ledgered) so the row says why. ``touch=False``: a check that must
    not count as activity (the page's heartbeat)."""
    if not token or len(token) > 64:
        return None
    row = await ConsoleSession.select(*_COLUMNS).where(ConsoleSession.token_sha256 == token_hash(token)).first()
    if row is None or row["ended_at"] is not None:
        return None
    now = rt.clock.now()
    idle, _ = _limits(rt)
    reason = _over(row, now, idle)
    principal = _principal(row)
    if reason is not None:
        await _end(row["id"], principal, reason, now)
        return None
    last_seen = row["last_seen_at"]
    if touch and now - last_seen >= TOUCH_EVERY:
        await ConsoleSession.update({ConsoleSession.last_seen_at: now}).where(ConsoleSession.id == row["id"])
        last_seen = now
    return SessionInfo(
        id=row["id"], principal=principal, created_at=row["created_at"], expires_at=row["expires_at"],
        idle_expires_at=min(last_seen + idle, row["expires_at"]), csrf_token=csrf_token(token),
    )


def _over(row: dict[str, Any], now: datetime, idle: timedelta) -> EndReason | None:
    """Why a session that was not signed out is over, or None while it is good."""
    if row["revoked_at"] is not None:
        return "key revoked"
    if now >= row["expires_at"]:
        return "expired"
    if now >= row["last_seen_at"] + idle:
        return "idle"
    return None


def _principal(row: dict[str, Any]) -> Principal:
    """The caller a session acts as: the same principal its key authenticates as over the API,
    scope included (a reviewer's session sees what its key sees, nothing more)."""
    return Principal(
        key_id=row["key_id"], key_prefix=row["key_prefix"], tenant_id=row["tenant_id"], tenant_slug=row["tenant_slug"], role=row["role"],
        sites=tuple(json_column(row["sites"])), channels=tuple(json_column(row["channels"])),
    )


async def sign_out(rt: Runtime, token: str | None) -> bool:
    """End the session a cookie names; False when there was none to end."""
    info = await resolve(rt, token, touch=False)
    if info is None:
        return False
    await _end(info.id, info.principal, "signed out", rt.clock.now())
    return True


async def _end(session_id: UUID, principal: Principal, reason: EndReason, now: datetime) -> None:
    async with write_transaction():
        ended = await (
            ConsoleSession.update({ConsoleSession.ended_at: now, ConsoleSession.ended_reason: reason})
            .where((ConsoleSession.id == session_id) & ConsoleSession.ended_at.is_null())
            .returning(ConsoleSession.id)
        )
        if ended:  # another request may have ended it first: one ledger entry per session end
            await ledger.append(
                principal.tenant_id,
                ledger.Entry(actor=principal.actor, action="session.end", subject=str(session_id), details={"reason": reason}),
            )


async def sweep(rt: Runtime) -> dict[str, int]:
    """End the sessions that are over though no request came to notice it (a revoked key, a
    browser closed and left), so the ledger holds an end for every session; then forget rows of
    sessions that ended more than ``KEEP_ENDED`` ago (their start and end stay in the ledger)."""
    now = rt.clock.now()
    idle, _ = _limits(rt)
    stale = await ConsoleSession.select(*_COLUMNS).where(
        ConsoleSession.ended_at.is_null()
        & (ConsoleSession.api_key.revoked_at.is_not_null() | (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - idle))
    )
    ended = 0
    for row in stale:
        reason = _over(row, now, idle)
        if reason is not None:
            await _end(row["id"], _principal(row), reason, now)
            ended += 1
    cutoff = now - KEEP_ENDED
    gone = await ConsoleSession.delete().where(ConsoleSession.ended_at.is_not_null() & (ConsoleSession.ended_at < cutoff)).returning(ConsoleSession.id)
    return {"ended": ended, "purged": len(gone)}


def jobs() -> list[JobSpec]:
    return [JobSpec("console.sessions", sweep, lambda rt: IntervalTrigger(minutes=5))]
