"""Getting an invitation to the visitor's browser.

An invitation waits here until the browser reports it shown (or it closes): pushed at once to
the visitor's open invitation streams (server-sent events), and carried by the visitor's next
``/v1/collect`` response when no stream took it. Handing it to a stream or a response is no
proof that the browser got it (a connection can drop at that very moment), so an invitation
still not shown ``REOFFER_SECONDS`` after it was last offered goes in the next response again.
Delivery is at least once; the snippet shows an invitation id once (it remembers the ids it
showed), so a second copy changes nothing on the page.

Streams end when the process shuts down (``close_all``): an open SSE connection must not keep
the server from stopping.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import AsyncIterator

from proactive.model import Invitation, VisitorKey

_CLOSED = None
# An invitation offered (to a stream or in a collect answer) and not reported shown after this
# long is offered again: long enough for the snippet's next batch to say "shown".
REOFFER_SECONDS = 15.0
PRUNE_FLOOR = 1024  # visitors with something pending before the first look for expired ones


class Offer:
    """An invitation waiting to be shown, and when it was last handed to the browser."""

    __slots__ = ("invitation", "offered_at")

    def __init__(self, invitation: Invitation) -> None:
        self.invitation = invitation
        self.offered_at: float | None = None


class Subscription:
    """One open stream: invitations for one visitor, in order, until closed."""

    def __init__(self, delivery: InvitationDelivery, key: VisitorKey) -> None:
        self._delivery = delivery
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Invitation | None] = asyncio.Queue()

    def push(self, invitation: Invitation | None) -> None:
        # The engine's tick may run on another loop or thread than the request that holds the
        # stream (it depends on the ASGI server): hand over through the stream's own loop.
        self._loop.call_soon_threadsafe(self._queue.put_nowait, invitation)

    async def next(self, timeout: float) -> Invitation | None:
        """The next invitation, or None after ``timeout`` seconds; raises StopAsyncIteration
        once the stream is closed."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if item is _CLOSED:
            raise StopAsyncIteration
        self._delivery.offered(self.key, item.id)
        return item


class InvitationDelivery:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._pending: dict[VisitorKey, list[Offer]] = {}
        self._streams: dict[VisitorKey, set[Subscription]] = defaultdict(set)
        self.closed = False
        self._prune_at = PRUNE_FLOOR

    def deliver(self, key: VisitorKey, invitation: Invitation) -> None:
        self.hold(key, invitation)
        for subscription in self._streams.get(key, ()):
            subscription.push(invitation)

    def hold(self, key: VisitorKey, invitation: Invitation) -> None:
        """Pending without pushing to streams (engine replicas: the store decides who shows it)."""
        self._pending.setdefault(key, []).append(Offer(invitation))
        if len(self._pending) >= self._prune_at:
            # Not only the scheduler's job prunes: a replica that runs no scheduler must not keep
            # every visitor it ever pushed an invitation to (amortised: the size at least doubles).
            self.prune(self._clock())
            self._prune_at = max(PRUNE_FLOOR, 2 * len(self._pending))

    def offered(self, key: VisitorKey, invitation_id: str) -> None:
        """A stream handed the invitation to the browser: not in a collect answer for a while."""
        for offer in self._pending.get(key, ()):
            if offer.invitation.id == invitation_id:
                offer.offered_at = self._clock()

    def ack(self, key: VisitorKey, invitation_id: str) -> None:
        """The invitation was shown, answered or closed: nothing more to deliver."""
        offers = self._pending.get(key)
        if offers:
            remaining = [o for o in offers if o.invitation.id != invitation_id]
            if remaining:
                self._pending[key] = remaining
            else:
                del self._pending[key]

    def take_pending(self, key: VisitorKey, now: float) -> list[Invitation]:
        """What a collect answer carries: open invitations not offered in the last
        ``REOFFER_SECONDS`` (they stay, until shown, for the next answers)."""
        offers = [o for o in self._pending.get(key, ()) if o.invitation.expires_at.timestamp() > now]
        if not offers:
            self._pending.pop(key, None)
            return []
        self._pending[key] = offers
        due = [o for o in offers if o.offered_at is None or o.offered_at <= now - REOFFER_SECONDS]
        for offer in due:
            offer.offered_at = now
        return [o.invitation for o in due]

    def forget(self, visitor_hash: str) -> None:
        """Erasure: nothing waits for this visitor any more, on any site."""
        for key in [k for k in self._pending if k[1] == visitor_hash]:
            del self._pending[key]

    def drop_sites(self, sites: set[object]) -> None:
        """Another process owns these sites now: what waits here is delivered from the store."""
        for key in [k for k in self._pending if k[0] in sites]:
            del self._pending[key]

    def pending_for(self, key: VisitorKey) -> bool:
        return key in self._pending

    def prune(self, now: float) -> int:
        """Drop expired invitations nobody came for (visitors who left for good)."""
        stale = [k for k, offers in self._pending.items() if all(o.invitation.expires_at.timestamp() <= now for o in offers)]
        for key in stale:
            del self._pending[key]
        return len(stale)

    def has_stream(self, key: VisitorKey) -> bool:
        return bool(self._streams.get(key))

    @asynccontextmanager
    async def subscribe(self, key: VisitorKey) -> AsyncIterator[Subscription]:
        """``async with delivery.subscribe(key) as sub``: one stream, removed when the caller is
        done (the client went away, or the process is stopping)."""
        subscription = Subscription(self, key)
        self._streams[key].add(subscription)
        if self.closed:
            subscription.push(_CLOSED)
        try:
            yield subscription
        finally:
            streams = self._streams.get(key)
            if streams is not None:
                streams.discard(subscription)
                if not streams:
                    del self._streams[key]

    def open_streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def close_all(self) -> None:
        """Shutdown: every open stream ends now, so the server is not held open by clients."""
        self.closed = True
        for subscriptions in list(self._streams.values()):
            for subscription in list(subscriptions):
                subscription.push(_CLOSED)
