"""CPU-heavy work off the event loop.

The loop that answers requests also runs the engagement engine's timers and every invitation
stream, so a 10 MB transcript being redacted on it would stall them all. Work that scales with
input size — redaction and encryption of large bodies, index analysis, backtests, exports,
rescans — runs in a small pool of worker threads instead. (AES-GCM and hashing release the GIL;
pure-Python work still shares it, but the loop gets its turn every switch interval instead of
waiting for the whole job.)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class Workers:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The limiter belongs to the running event loop, so it is made on first use there.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=self._limiter)
