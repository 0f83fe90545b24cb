"""Ending long-lived responses when the process is asked to stop.

An ASGI server stops in two steps: on SIGINT/SIGTERM it stops accepting and waits for open
responses to finish, and only then runs the lifespan shutdown. An invitation stream (SSE) never
finishes on its own, so without help the server would wait for every browser to go away. The
server's own signal handler is therefore chained: the process first ends its streams (they close
cleanly, as at the end of any response), then the server proceeds as it always does.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, Callable

import structlog

log = structlog.get_logger(__name__)

# Set by ``parley serve`` to its own pid before it starts the server's worker process.
SUPERVISOR_ENV = "PARLEY_SERVE_SUPERVISOR_PID"


def on_termination(callback: Callable[[], None]) -> None:
    """Call ``callback`` as soon as a stop signal arrives, before the server's own handling.

    Only chains handlers the server installed on the running loop (asyncio's unix loop keeps them
    in ``_signal_handlers``); where none is installed (tests, embedded use) it changes nothing.
    """
    loop = asyncio.get_running_loop()
    installed: dict[int, Any] | None = getattr(loop, "_signal_handlers", None)
    if not installed:
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = installed.get(signum)
        if previous is None:
            continue

        def chained(previous: Any = previous) -> None:
            callback()
            previous._run()

        loop.add_signal_handler(signum, chained)


def stop_when_orphaned(interval: float = 1.0) -> asyncio.Task[None] | None:
    """In a worker of ``parley serve``: stop as a stop signal would when the serving process is
    gone. Killed with kill -9, it cannot stop its worker, which would go on answering on the port
    (and holding its leases) on its own, so that a restart cannot listen there. Elsewhere (tests,
    another ASGI server) nothing is watched."""
    parent = os.getppid()
    if os.environ.get(SUPERVISOR_ENV) != str(parent):
        return None

    async def watch() -> None:
        while True:  # polled: a change of parent signals nothing
            await asyncio.sleep(interval)
            if os.getppid() != parent:
                break
        log.warning("parley_server_process_gone", pid=parent, action="stopping this worker as on SIGTERM")
        os.kill(os.getpid(), signal.SIGTERM)

    return asyncio.ensure_future(watch())
