"""Nonce stores: remember each (access key, nonce) for as long as its request could be replayed.

A request timestamped ``t`` is accepted while the server clock reads ``t ± window``, so its
nonce must be remembered until ``t + window`` (inclusive) and may be forgotten after.
``verify_request`` claims a nonce only once the request's signature verified, so nobody
without the secret can fill the store or burn a client's nonces.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

from consortia.types.errors import Unavailable

DEFAULT_MAX_ENTRIES = 100_000
"""About 110 accepted requests a second, sustained over a 15-minute window."""


class NonceStore(Protocol):
    """Where used nonces live: in memory (``MemoryNonceStore``) or in the control-plane
    database (``consortia.control.store.SqlNonceStore``)."""

    def claim(self, access_key_id: str, nonce: str, *, expires_at: float, now: float) -> bool:
        """Record ``nonce`` as used by ``access_key_id`` until ``expires_at`` (inclusive).

        Returns False, recording nothing, when that pair is already recorded with an
        expiry ``>= now``. Atomic: of two concurrent claims of one pair, one returns True.
        May raise ``Unavailable`` (``nonce_store_full``) rather than forget a live entry.
        """
        ...


class MemoryNonceStore:
    """A bounded, thread-safe, in-process ``NonceStore``.

    Entries expire by time, never by pressure: evicting a live entry would reopen a replay,
    so when ``max_entries`` live entries are held a new claim raises ``Unavailable`` with
    code ``nonce_store_full`` (HTTP 503). Expired entries are dropped on every claim, in
    O(log n) each, from a heap ordered by expiry. Suits one control-plane process; several
    processes behind a load balancer need the shared ``control.store.SqlNonceStore``.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def claim(self, access_key_id: str, nonce: str, *, expires_at: float, now: float) -> bool:
        key = (access_key_id, nonce)
        with self._lock:
            self._purge(now)
            if key in self._expiry:  # every entry left after the purge is live
                return False
            if len(self._expiry) >= self.max_entries:
                raise Unavailable(
                    f"the nonce store holds {self.max_entries} live entries; try again later",
                    code="nonce_store_full")
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, access_key_id, nonce))
            return True

    def purge(self, now: float) -> None:
        """Drop the entries that expired before ``now``."""
        with self._lock:
            self._purge(now)

    def _purge(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] < now:
            expires_at, key_id, nonce = heapq.heappop(heap)
            if expiry.get((key_id, nonce)) == expires_at:
                del expiry[(key_id, nonce)]
