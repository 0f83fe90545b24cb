"""Rendering console pages: the Jinja environment, its filters, and the context every page gets.

Every page knows who is signed in (``request.auth``, a ``SessionInfo``), the session's CSRF token
(put in a ``<meta>`` for console.js and in every form), and which sections the caller's role may
open — the same roles the API's guards admit, so the navigation never offers a page that would
answer 403.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from archive.errors import FieldError
from archive.sessions import SessionInfo

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _asset_version() -> str:
    """A hash of the static files: asset URLs carry it, so browsers may cache them for good."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


ASSET_VERSION = _asset_version()

# (section, label, path, roles that may open it, shortcut after "g")
SECTIONS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("search", "Search", "/console/search", ("compliance",), "s"),
    ("reviews", "Review queue", "/console/reviews", ("reviewer", "compliance"), "r"),
    ("cases", "Cases", "/console/cases", ("compliance", "admin"), "c"),
    ("audit", "Audit", "/console/audit", ("compliance", "admin"), "a"),
)

# What redaction left in the text (docs/redaction.md): labels, and numbers with masked digits.
_LABEL = r"\[(?:card|phone|email|national-id)\]"
_CARD = r"(?<![\w*])[0-9*]{2,}(?:[ .\-][0-9*]{2,})*(?![\w*])"
_IBAN = r"(?<![\w*])[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9*]{1,4})+(?![\w*])"
_REDACTION = re.compile(f"{_LABEL}|{_IBAN}|{_CARD}")
_KINDS = {"[card]": "card number", "[phone]": "phone number", "[email]": "e-mail address", "[national-id]": "national identity number"}


def _redaction_kind(found: str) -> str | None:
    if found in _KINDS:
        return _KINDS[found]
    if found.count("*") < 4 or not any(ch.isdigit() for ch in found):
        return None  # stars in ordinary text, not a mask
    return "account number" if found[:2].isalpha() else "card number"


def mark_redactions(text: str | Markup) -> Markup:
    """Escape ``text`` (unless it is already markup) and set every redaction apart, so a reader
    sees at once what was removed at ingest and never takes ``[phone]`` for what was typed."""
    source = str(text if isinstance(text, Markup) else escape(text))

    def wrap(match: re.Match[str]) -> str:
        kind = _redaction_kind(match.group(0))
        if kind is None:
            return match.group(0)
        return f'<span class="redaction" title="redacted at ingest: {kind}">{match.group(0)}</span>'

    return Markup(_REDACTION.sub(wrap, source))


def marked_segments(segments: list[Any]) -> Markup:
    """A review item's message: its runs (``mark`` on what a detector matched) with the matches
    marked and the redactions set apart as ``mark_redactions`` sets them apart. Redactions are
    found in the whole text, not run by run: a policy matching ``****`` cuts a card mask
    (``4111 11** **** 1111``) into three runs, none of which alone looks like a mask."""
    text = "".join(seg.text for seg in segments)
    cuts = {0, len(text)}
    marked: list[tuple[int, int]] = []
    at = 0
    for seg in segments:
        if seg.mark:
            marked.append((at, at + len(seg.text)))
        at += len(seg.text)
        cuts.add(at)
    hidden = [(m.start(), m.end(), kind) for m in _REDACTION.finditer(text) if (kind := _redaction_kind(m.group(0)))]
    cuts.update(p for start, end, _ in hidden for p in (start, end))
    out: list[str] = []
    open_redaction: tuple[int, int, str] | None = None
    points = sorted(cuts)
    for start, end in zip(points, points[1:]):
        redaction = next((r for r in hidden if r[0] <= start and end <= r[1]), None)
        if redaction != open_redaction:
            if open_redaction is not None:
                out.append("</span>")
            if redaction is not None:
                out.append(f'<span class="redaction" title="redacted at ingest: {redaction[2]}">')
            open_redaction = redaction
        piece = str(escape(text[start:end]))
        out.append(f'<mark class="match">{piece}</mark>' if any(s <= start and end <= e for s, e in marked) else piece)
    if open_redaction is not None:
        out.append("</span>")
    return Markup("".join(out))


def isolate(value: Any) -> Markup:
    """A value the archive holds (an id, a name, a tag), shown inside a line of other text, in its
    own bidirectional isolate (``<bdi>``): a right-to-left override or an Arabic name in it cannot
    reorder what the console writes after it ("· visitor v-9" shown as "9-v rotisiv ·")."""
    inner = value if isinstance(value, Markup) else escape(value)
    return Markup("<bdi>") + inner + Markup("</bdi>")


def day_bound(value: str | None, name: str, errors: list[FieldError], end: bool = False) -> datetime | None:
    """A date field of a filter form as the instant it bounds: the start of the day, or with
    ``end`` the start of the next (so "to 2026-11-01" includes that day)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(name, "a date as YYYY-MM-DD"))
        return None
    return datetime.combine(day + timedelta(days=1) if end else day, time(0), timezone.utc)


def when(value: datetime | str | None, precise: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if precise else "%Y-%m-%d %H:%M UTC")


def filesize(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]  # int becomes float on purpose
    return f"{size} bytes"


def plain(value: Any) -> str:
    """A ledger detail as text: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(redactions=mark_redactions, marked_segments=marked_segments, isolate=isolate, when=when, filesize=filesize, plain=plain)
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def sections_for(role: str) -> list[dict[str, str]]:
    return [{"id": s, "label": label, "path": path, "key": key} for s, label, path, roles, key in SECTIONS if role in roles]


# Where each role starts: the work it signs in for.
HOME = {"compliance": "search", "reviewer": "reviews", "admin": "audit"}


def home_for(role: str) -> str:
    allowed = sections_for(role)
    preferred = [s["path"] for s in allowed if s["id"] == HOME.get(role)]
    return (preferred or [s["path"] for s in allowed] or ["/console/account"])[0]


def page(request: Request[Any, Any, Any], template: str, *, section: str = "", status: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> Template:
    """A console page (or, for an htmx request, the fragment ``template`` renders on its own)."""
    info = request.scope.get("auth")
    session = info if isinstance(info, SessionInfo) else None
    return Template(
        template_name=template,
        status_code=status,
        headers=headers,
        context={
            "session": session,
            "csrf": session.csrf_token if session else "",
            "sections": sections_for(session.principal.role) if session else [],
            "section": section,
            "htmx": is_htmx(request),
            "asset": ASSET_VERSION,
            **context,
        },
        media_type="text/html",
    )
