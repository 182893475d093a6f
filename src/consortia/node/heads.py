"""The committed-height feed of a node: who wants to hear of each new block, hears of all.

The node calls :meth:`HeadFeed.publish` on its event-loop thread after each commit (one
height or a jump of several when blocks are committed together, as in catch-up). A
follower (:meth:`HeadFeed.follow`) is an async iterator of heights from the moment it
starts, in order, **none skipped**: the feed keeps only the latest height, and a
follower yields every height between the last it yielded and that latest one. So a slow
consumer costs no memory and loses nothing; it just falls behind and catches up.
:meth:`HeadFeed.close` (node stop) ends every follower.

The JSON-RPC adapter (``node/ethbackend.py``) turns each height into a ``NewHead`` for the
``newHeads`` / ``logs`` subscriptions and the polling filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class HeadFeed:
    """The latest committed height and a wake-up for its followers (module doc).

    Not thread safe: :meth:`publish` and :meth:`close` must run on the event loop the
    followers iterate on (from another thread: ``loop.call_soon_threadsafe(feed.publish, h)``).
    """

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise ValueError(f"a height is never negative, got {start}")
        self._latest = start
        self._closed = False
        self._changed = asyncio.Event()
        """Set (and replaced by a fresh one) at each publish and at close."""

    @property
    def latest(self) -> int:
        """The last height published (or the start height)."""
        return self._latest

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, height: int) -> None:
        """Announce that every height up to ``height`` is committed. Heights only grow: an
        equal or lower one is a broken invariant of the caller and raises ``ValueError``."""
        if self._closed:
            return
        if height <= self._latest:
            raise ValueError(f"published height {height} is not above the last one "
                             f"({self._latest})")
        self._latest = height
        self._wake()

    def close(self) -> None:
        """End every follower (they stop after the height they are at); idempotent."""
        if not self._closed:
            self._closed = True
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def follow(self) -> AsyncIterator[int]:
        """Heights committed after this call, in order, each once, until :meth:`close`."""
        return self._follow(self._latest)

    async def _follow(self, last: int) -> AsyncIterator[int]:
        while not self._closed:
            if last < self._latest:
                last += 1
                yield last
                continue
            changed = self._changed
            await changed.wait()
