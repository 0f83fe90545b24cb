"""Every input limit, in one place, enforced before work starts (issue 23; listed in docs/errors.md).

An attack pass found inputs that were valid JSON, YAML or query text but made the server recurse,
overflow a date, or grow memory: JSON and YAML nested hundreds deep, dates at the ends of the
calendar, ``NOT NOT … a``, forged cursor offsets. Each limit below sits well above what a real
client sends and well below what breaks a parser, the index or ``datetime`` arithmetic. Limits an
operator may tune (body size, batch size, messages) are settings in ``config.settings``; these are
not, because nothing legitimate comes near them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import yaml

from archive.errors import FieldError, InvalidInput, MalformedBody

# --- documents ---------------------------------------------------------------------------------
# Arrays and objects inside each other. A conversation is 4 deep, a rule with nested all/any/not
# at most a few dozen; Python's recursion limit (1,000) is where the 500s began.
MAX_JSON_DEPTH = 64
MAX_YAML_DEPTH = 64
# Nodes of a YAML document once aliases are expanded (the "billion laughs" shape is a few lines).
MAX_YAML_NODES = 100_000
MAX_YAML_BYTES = 1_000_000

# --- requests ----------------------------------------------------------------------------------
# Below Granian's own limits, so the app answers with problem+json (api/screen.py); the body size
# is the setting PARLEY_MAX_BODY_BYTES.
MAX_URL_BYTES = 8192  # path and query string
MAX_HEADER_BYTES = 16384  # names and values together

# --- dates -------------------------------------------------------------------------------------
# Every date a client sends (conversation and message times, search and hold ranges, `date:`
# terms, audit filters, cursors) lies in this range: far enough from year 1 and 9999 that adding
# a day or a time zone offset cannot overflow, and wide enough for any archive.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

# --- query language (archive.query) --------------------------------------------------------------
MAX_QUERY_CHARS = 2000
MAX_QUERY_PARTS = 200  # words, operators and fields together
MAX_QUERY_DEPTH = 16  # parentheses and NOT/- inside each other

# --- paging --------------------------------------------------------------------------------------
# Relevance pages go by offset; past this, narrow the query (OpenSearch's own max_result_window).
MAX_RESULT_WINDOW = 10_000
# Ledger sequence numbers are 32-bit integers in the store.
MAX_LEDGER_SEQ = 2**31 - 1

# --- engagement ------------------------------------------------------------------------------------
# Site keys are "ps_" and 24 characters; a longer one is refused before any lookup or cache.
MAX_SITE_KEY_CHARS = 64
# Rate-limit counters kept in memory per distinct client address or site key (api/stores.py).
MAX_RATE_LIMIT_KEYS = 20_000
# Behaviour event times as epoch numbers (seconds or milliseconds) beyond this are not times.
MAX_EPOCH_NUMBER = 10**15

# --- names -----------------------------------------------------------------------------------------
# People's names travel into e-mail headers (EML exports) and logs: control characters (CR/LF
# above all) are refused at ingest rather than sanitised later.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def date_problem(value: datetime | None) -> str | None:
    """Why ``value`` is out of range, or None. Naive values are read as UTC."""
    if value is None:
        return None
    # Compare without converting: converting year 1 at +01:00 to UTC is itself the overflow.
    naive = value.replace(tzinfo=None)
    offset = value.utcoffset()
    if naive.year < EARLIEST.year or naive.year > LATEST.year or (
        offset is not None and not (EARLIEST.replace(tzinfo=None) <= naive - offset <= LATEST.replace(tzinfo=None))
    ):
        return f"must lie between {EARLIEST.date()} and {LATEST.date()}"
    return None


def date_errors(path_prefix: str, **values: datetime | None) -> list[FieldError]:
    """A FieldError per out-of-range date, named ``{path_prefix}{name}``."""
    errors = []
    for name, value in values.items():
        problem = date_problem(value)
        if problem is not None:
            errors.append(FieldError(f"{path_prefix}{name.rstrip('_')}", problem))
    return errors


def control_character_problem(text: str | None) -> str | None:
    if text is not None and CONTROL_CHARACTERS.search(text):
        return "must not contain control characters (line breaks, tabs, NUL)"
    return None


# Strings are blanked before brackets are counted: brackets inside strings do not nest anything.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (0 for a scalar), without decoding it."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_json_document(body: bytes, what: str = "the request body") -> None:
    """UTF-8 and nesting, checked before anything decodes the body (a 400 naming the cause)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"{what} is not valid UTF-8: byte {exc.start}", [FieldError("$", f"invalid UTF-8 at byte {exc.start}")]) from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise MalformedBody(f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels of arrays and objects)",
                            [FieldError("$", f"at most {MAX_JSON_DEPTH} levels of nesting")])


def load_yaml(text: str | bytes, what: str = "the document") -> Any:
    """``yaml.safe_load`` after a streaming pass that bounds size, nesting and alias expansion.

    The pass reads parser events (no recursion, no objects built), so a hostile document costs
    one linear scan; only a document inside the limits is constructed.
    """
    if len(text) > MAX_YAML_BYTES:
        raise InvalidInput(f"{what} is larger than {MAX_YAML_BYTES} bytes", [FieldError("$", f"at most {MAX_YAML_BYTES} bytes")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody(f"{what} is not valid UTF-8: byte {exc.start}", [FieldError("$", f"invalid UTF-8 at byte {exc.start}")]) from None
    try:
        _check_yaml_events(text, what)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{what} cannot be parsed as YAML: {exc}", [FieldError("$", str(exc)[:300])]) from None


def _check_yaml_events(text: str, what: str) -> None:
    depth = nodes = 0
    starts: list[tuple[str | None, int]] = []  # (anchor, nodes before it) per open collection
    sizes: dict[str, int] = {}  # anchor → nodes it stands for
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            nodes += 1
            depth += 1
            starts.append((event.anchor, nodes))
            if depth > MAX_YAML_DEPTH:
                raise MalformedBody(f"{what} is nested too deeply (at most {MAX_YAML_DEPTH} levels)",
                                    [FieldError("$", f"at most {MAX_YAML_DEPTH} levels of nesting")])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
            anchor, before = starts.pop()
            if anchor:
                sizes[anchor] = nodes - before + 1
        if nodes > MAX_YAML_NODES:
            raise MalformedBody(f"{what} expands to more than {MAX_YAML_NODES} nodes (aliases counted at their full size)",
                                [FieldError("$", f"at most {MAX_YAML_NODES} nodes")])
