"""Per-caller token buckets: the rate limits that answer 429 with ``Retry-After``.

Each key (an access key id, a console user, a login's source address) has a bucket of
``burst`` tokens refilled at ``per_second``; a call takes one token, or is refused with the
number of whole seconds after which one will be there. Buckets live in memory, at most
``max_entries`` of them: the least recently used is dropped beyond that (a dropped bucket
comes back full, so the bound can only make the limiter more lenient, never refuse a call
it should let through). Limits hold per control-plane process.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

from consortia.control.settings import RateLimit


class TokenBuckets:
    def __init__(self, limit: RateLimit, *, max_entries: int,
                 clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.limit = limit
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key → (tokens, time of the last refill), least recently used first."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def take(self, key: str) -> int | None:
        """Take a token for ``key``: None when allowed, else the seconds to wait (>= 1)."""
        now = self._clock()
        rate, burst = self.limit.per_second, float(self.limit.burst)
        with self._lock:
            tokens, last = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = None
            else:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / rate))
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        return wait
