"""Rate-limit counters in memory, bounded.

Litestar's ``MemoryStore`` frees an expired counter only when the same key is read again, so
every distinct client address or site key an attacker invents would stay in memory for good
(issue 23: unauthenticated memory growth). This store sweeps expired counters once it holds
``MAX_RATE_LIMIT_KEYS`` (archive.limits) and, should live ones alone exceed that, forgets the
oldest down to nine tenths of the bound (so the sweep runs once per thousands of writes, not on
each): a forgotten counter starts again from zero, which errs towards serving a client.
"""

from __future__ import annotations

from datetime import timedelta

from litestar.stores.memory import MemoryStore

from archive.limits import MAX_RATE_LIMIT_KEYS


class BoundedMemoryStore(MemoryStore):
    __slots__ = ("max_keys",)

    def __init__(self, max_keys: int = MAX_RATE_LIMIT_KEYS) -> None:
        super().__init__()
        self.max_keys = max_keys

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        await super().set(key, value, expires_in)
        if len(self) > self.max_keys:
            await self.delete_expired()
            async with self._lock:
                # Dicts keep insertion order: the first keys are the oldest.
                for stale in list(self._store)[: max(0, len(self._store) - self.max_keys * 9 // 10)]:
                    del self._store[stale]

    def __len__(self) -> int:
        return len(self._store)
