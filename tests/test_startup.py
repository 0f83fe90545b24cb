"""A server that cannot start says why (the worker that runs it exits without a word of its own)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from api.app import create_app


class _Unstartable:
    async def start(self, serve: bool = False) -> None:
        raise RuntimeError("a stored visitor memory does not decode")


async def test_a_server_that_cannot_start_logs_what_stopped_it(settings: Any) -> None:
    app = create_app(settings, _Unstartable())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(BaseExceptionGroup) as raised:  # Litestar's lifespan runs in a task group
            async with app.lifespan():
                pass
    assert raised.group_contains(RuntimeError, match="does not decode")
    failed = [e for e in logs if e["event"] == "parley_start_failed"]
    assert failed and failed[0]["error"] == "RuntimeError" and failed[0]["log_level"] == "error"
