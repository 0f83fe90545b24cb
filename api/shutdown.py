"""Ending long-lived responses when the process is asked to stop.

An ASGI server stops in two steps: on SIGINT/SIGTERM it stops accepting and waits for open
responses to finish, and only then runs the lifespan shutdown. An invitation stream (SSE) never
finishes on its own, so without help the server would wait for every browser to go away. The
server's own signal handler is therefore chained: the process first ends its streams (they close
cleanly, as at the end of any response), then the server proceeds as it always does.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Callable


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
