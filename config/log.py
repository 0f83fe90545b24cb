"""structlog set-up: console lines for humans, JSON lines in production.

A last processor scrubs anything that looks like a secret, so a careless ``log.info(key=...)``
cannot leak an API key or transcript text into the logs.
"""

from __future__ import annotations

import datetime
import logging
import re
import sys
import threading
from typing import Any, Callable, MutableMapping, TextIO

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


class _Lines(structlog.PrintLoggerFactory):
    """structlog's print factory, remembering where lines go, from what level and in which format,
    so the access log (below) writes the same line to the same place without the processor chain."""

    def __init__(self, stream: TextIO, level: int, json: bool) -> None:
        super().__init__(file=stream)
        self.stream = stream
        self.level = level
        self.json = json


AccessLine = Callable[[str, str, str, int, float, "str | None"], None]
"""``(request_id, method, path, status, ms, key_prefix)``: the one line written per request."""


def access_log() -> AccessLine:
    """The writer of the access log under the logging configured now.

    Every request writes one line, and structlog's chain (context merge, level, time stamp,
    scrubbing, rendering, a locked print) cost ~15 µs of a ~75 µs authenticated request in-process
    (bench/http_auth.py). For JSON lines the writer renders the same document itself:
    the same keys, the same ISO time stamp, scrubbed by the same processor (``_scrub``).
    Console lines (a person at a terminal) keep going through structlog."""
    factory = structlog.get_config()["logger_factory"]
    if isinstance(factory, _Lines) and factory.json:
        if factory.level > logging.INFO:
            return _no_access_line
        return _JsonAccessLine(factory.stream)
    log = structlog.get_logger("parley.access")

    def through_structlog(request_id: str, method: str, path: str, status: int, ms: float, key_prefix: str | None) -> None:
        # request_id is bound to the request's context and merged from there
        log.info("request", method=method, path=path, status=status, ms=ms, key_prefix=key_prefix)

    return through_structlog


def _no_access_line(*_: object) -> None:
    return None


class _JsonAccessLine:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # as structlog's PrintLogger: lines from worker threads never interleave

    def __call__(self, request_id: str, method: str, path: str, status: int, ms: float, key_prefix: str | None) -> None:
        line = msgspec.json.encode(_scrub(None, "info", {
            "method": method, "path": path, "status": status, "ms": ms, "key_prefix": key_prefix, "event": "request",
            "request_id": request_id, "level": "info",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        }))
        with self._lock:
            self._stream.write(line.decode() + "\n")
            self._stream.flush()


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    level = getattr(logging, settings.log_level.upper())
    out = stream or sys.stderr
    json = _wants_json(settings.log_format, out)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
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
        logger_factory=_Lines(out, level, json),
        cache_logger_on_first_use=True,
    )
