"""How the local provisioner supervises: polling, health thresholds, restart backoff, crash
loops, stopping, log rotation. Pure values and arithmetic; no I/O.

Backoff (docs/spec/provisioning.md): the n-th crash within the crash window (n ≥ 1) waits
``d = min(cap, base · 2^(n-1))`` scaled by "equal jitter", uniformly in ``[d/2, d]``: never
less than half the nominal delay, and nodes that crashed together (a shared disk, a
killed host process) do not all come back in the same instant. The ``crash_limit``-th
crash within the window makes the node FAILED instead.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SupervisionPolicy:
    """Timings and thresholds of the local provisioner (seconds unless said otherwise)."""

    poll_interval: float = 1.0
    """Between two checks (process alive? health?) of a node."""
    health_timeout: float = 2.0
    """Of one ``GET /healthz`` (connect, read, write, pool)."""
    unhealthy_after: int = 3
    """Consecutive failed checks that turn an AVAILABLE node UNHEALTHY."""
    start_timeout: float = 60.0
    """A CREATING node that has not answered its health check by then is stopped and the
    attempt counts as a crash."""
    backoff_base: float = 1.0
    """Nominal delay before the restart after a first crash."""
    backoff_cap: float = 30.0
    """Longest nominal delay before a restart."""
    crash_limit: int = 5
    """Crashes within ``crash_window`` that make a node FAILED (a crash loop)."""
    crash_window: float = 300.0
    """The sliding window over which crashes are counted."""
    stop_grace: float = 15.0
    """After SIGTERM, before SIGKILL."""
    log_max_bytes: int = 10 * 1024 * 1024
    """A node's log is rotated when it reaches this size."""
    log_backups: int = 3
    """Rotated logs kept (``node.log.1`` newest … ``node.log.<n>``)."""
    tail_lines: int = 20
    """Lines of the node's last output kept in a failure reason."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value <= 0:
                raise ValueError(f"supervision policy: {f.name} must be positive, "
                                 f"not {value!r}")
        if self.backoff_cap < self.backoff_base:
            raise ValueError("supervision policy: backoff_cap is below backoff_base")
        if self.log_max_bytes < 1024:
            raise ValueError("supervision policy: log_max_bytes is below 1024")


def nominal_delay(policy: SupervisionPolicy, crashes: int) -> float:
    """``min(cap, base · 2^(crashes-1))`` for the ``crashes``-th crash in the window."""
    exponent = min(max(crashes, 1) - 1, 62)  # 2^62 · base is past any cap
    return float(min(policy.backoff_cap, policy.backoff_base * 2 ** exponent))


def backoff_delay(policy: SupervisionPolicy, crashes: int, rng: random.Random) -> float:
    """The jittered delay before restarting after the ``crashes``-th crash in the window:
    uniform in ``[d/2, d]`` for the nominal delay ``d``."""
    d = nominal_delay(policy, crashes)
    return d / 2 + rng.uniform(0.0, d / 2)


class CrashHistory:
    """Monotonic times of recent crashes, forgetting those older than the window."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def record(self, now: float) -> int:
        """Note a crash at ``now``; the crashes within the window, this one included."""
        self._times.append(now)
        return self.count(now)

    def count(self, now: float) -> int:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        return len(self._times)

    def clear(self) -> None:
        self._times.clear()
