"""Small conversions every adapter needs to turn platform values into valid Parley fields.

Platforms send names longer than Parley keeps, tags with spaces, nested custom fields, HTML
bodies and files named only by their URL. These helpers make such values fit the archive's
shape without losing what matters: text is truncated only where the archive itself limits it
(names, tags, metadata), never in message bodies.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

from archive.models import Attachment, MetaValue, Ratings

NAME_LIMIT = 200
TAG_LIMIT = 64
MAX_TAGS = 50
META_KEY_LIMIT = 64
META_VALUE_LIMIT = 1000
MAX_META = 50
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")
_HTML_TAG = re.compile(
    r"</?(?:p|br|div|span|a|b|i|u|s|em|strong|ul|ol|li|img|h[1-6]|blockquote|pre|code|table|tr|td)\b[^<>]*>", re.I
)


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def short(value: Any, limit: int = NAME_LIMIT) -> str | None:
    text = text_or_none(value)
    return text[:limit] if text else None


def csat(rating: Any, comment: Any = None) -> Ratings | None:
    """A platform's 1-5 satisfaction rating as the conversation's ``ratings`` (the comment, free
    text, is redacted and sealed at ingest like a message); None when there is no such number."""
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        return None
    remark = text_or_none(comment)
    return Ratings(csat=rating, comment=remark[:4000] if remark else None)


def first(*values: Any) -> Any:
    """The first value that is not None or empty."""
    for value in values:
        if value not in (None, "", [], {}):
            return value
    return None


def ascii_slug(value: Any, limit: int) -> str | None:
    text = text_or_none(value)
    if not text:
        return None
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = _NOT_SLUG.sub("-", folded).strip("-_")[:limit].strip("-_")
    return slug or None


def site_or_none(value: Any) -> str | None:
    text = text_or_none(value)
    if text and _SITE.match(text):
        return text
    slug = ascii_slug(text, 64)
    return slug if slug and _SITE.match(slug) else None


def channel_slug(value: Any) -> str | None:
    return ascii_slug(value, 32)


def language_or_none(value: Any) -> str | None:
    text = text_or_none(value)
    return text if text and _LANGUAGE.match(text) else None


def tags(values: Any) -> list[str]:
    out: list[str] = []
    for value in values or []:
        name = value.get("name") if isinstance(value, dict) else value
        tag = short(name, TAG_LIMIT)
        if tag and tag not in out:
            out.append(tag)
    return out[:MAX_TAGS]


def metadata(pairs: dict[str, Any], prefix: str = "") -> dict[str, MetaValue]:
    """A flat map of scalars: nested values are flattened with dots, lists joined by commas."""
    out: dict[str, MetaValue] = {}

    def put(key: str, value: Any) -> None:
        if len(out) >= MAX_META or value is None:
            return
        if isinstance(value, dict):
            for sub, inner in value.items():
                put(f"{key}.{sub}", inner)
            return
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v is not None)
        if isinstance(value, str):
            value = value[:META_VALUE_LIMIT]
        elif not isinstance(value, (int, float, bool)):
            value = str(value)[:META_VALUE_LIMIT]
        out[key[:META_KEY_LIMIT]] = value

    for key, value in pairs.items():
        put(f"{prefix}{key}", value)
    return out


_LINK_SCHEMES = ("http://", "https://", "mailto:")


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.images: list[str] = []
        self._links: list[tuple[str | None, int]] = []  # (href, where its text starts in parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            href = (named.get("href") or "").strip()
            self._links.append((href if href.lower().startswith(_LINK_SCHEMES) else None, len(self.parts)))
        elif tag == "img":
            src = (named.get("src") or "").strip()
            if src.lower().startswith(("http://", "https://")) and src not in self.images:
                self.images.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._links:
            href, start = self._links.pop()
            shown = "".join(self.parts[start:]).strip()
            # The target is evidence too ("see the order" means which order): kept after the words.
            if href and shown != href and shown != href.removeprefix("mailto:"):
                self.parts.append(f" ({href})" if shown else href)
        elif tag in self._BREAKS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_content(value: Any) -> tuple[str, list[str]]:
    """Plain text from an HTML body (Intercom's), and the URLs of the images inline in it: tags
    dropped, block ends become line breaks, a link keeps its target as "words (https://…)".
    Text with no HTML tags in it is returned as it is."""
    text = text_or_none(value)
    if not text:
        return "", []
    if not _HTML_TAG.search(text):
        return text, []  # already plain: "a<b" or "I <3 it" must survive as written
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line), parser.images


def html_to_text(value: Any) -> str:
    return html_content(value)[0]


def name_from_url(url: Any) -> str | None:
    text = text_or_none(url)
    if not text:
        return None
    path = urlsplit(text).path
    tail = unquote(path.rsplit("/", 1)[-1]) if path else ""
    return short(tail, 255)


def attachment(
    *, name: Any = None, content_type: Any = None, size: Any = None, url: Any = None, sha256: Any = None
) -> Attachment:
    """An attachment from whatever a platform says; a missing name comes from the URL, a missing
    type from the name's extension."""
    file_name = short(name, 255) or name_from_url(url)
    kind = short(content_type, 255) or (mimetypes.guess_type(file_name)[0] if file_name else None)
    byte_size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    if byte_size is None and isinstance(size, str) and size.isdigit():
        byte_size = int(size)
    digest = sha256.lower() if isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256) else None
    link = text_or_none(url)
    return Attachment(name=file_name, content_type=kind, size=byte_size, sha256=digest, url=link[:4096] if link else None)
