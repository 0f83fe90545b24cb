"""structlog set-up: console lines for humans, JSON lines in production.

A last processor scrubs anything that looks like a secret, so a careless ``log.info(key=...)``
cannot leak an API key or transcript text into the logs.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, MutableMapping, TextIO

import msgspec
import structlog

from config.settings import Settings

# Field names whose values are never logged, whatever the caller passed.
_SCRUBBED_FIELDS = frozenset(
    {"key", "secret", "api_key", "authorization", "password", "master_key", "text", "message_text", "body", "token"}
)
_KEY_PATTERN = re.compile(r"prl_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")


def _scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Runs on every log line, the access log included: keep it to set lookups and substring tests.
    for field, value in event_dict.items():
        if field in _SCRUBBED_FIELDS:
            event_dict[field] = "<scrubbed>"
        elif isinstance(value, str) and "prl_" in value:
            event_dict[field] = _KEY_PATTERN.sub("prl_<scrubbed>", value)
    return event_dict


def _json_line(event_dict: Any, **_: Any) -> str:
    return msgspec.json.encode(event_dict, enc_hook=str).decode()


def _wants_json(log_format: str, stream: TextIO) -> bool:
    """``auto``: console lines for a person at a terminal, JSON lines for whatever collects them.

    A server's stderr is a pipe or a file under systemd, Docker or a process manager; there the
    JSON renderer is what log pipelines parse, and it costs a third of the console renderer on
    every access-log line (measured in-process on GET /v1/whoami)."""
    if log_format != "auto":
        return log_format == "json"
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream: machine output
        return True


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    level = getattr(logging, settings.log_level.upper())
    out = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if _wants_json(settings.log_format, out)
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(),
            # Rich tracebacks print local variables, which can hold transcript text or keys.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
