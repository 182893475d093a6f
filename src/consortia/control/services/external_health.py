"""``ExternalHealth``: the statuses of external nodes, from polling their ``/healthz``.

The control plane runs no process for an external node (ADR 0019), so no provisioner
reports on it; this poller does, through the runtime's status handoff (the same queue and
writer as the provisioner's reports). Each round reads the live external nodes, asks each
``GET <api_endpoint>/healthz`` with a timeout, and reports:

- 200 → AVAILABLE (a peer answers 200 once it has caught up: docs/spec/peers.md);
- anything else while CREATING → still CREATING, the reason saying what it answered;
- ``FAILURES_BEFORE_UNHEALTHY`` failed probes in a row once it had answered → UNHEALTHY
  with the reason; the next 200 makes it AVAILABLE again.

``poll_once`` is one synchronous round (tests call it); ``start`` runs rounds every
``interval`` seconds on a daemon thread until ``close``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from consortia.control.provision.base import NodeStatus as ProvStatus
from consortia.control.provision.base import StatusChange
from consortia.control.store.enums import NodeStatus

log = logging.getLogger("consortia.control.external")

FAILURES_BEFORE_UNHEALTHY = 2
"""Failed probes in a row that make an AVAILABLE external node UNHEALTHY (one lost probe
over a member's network is not an outage)."""


@dataclass(frozen=True)
class Target:
    """A live external node as the database has it."""

    node_id: str
    api_endpoint: str
    status: NodeStatus


Probe = Callable[[str], str | None]
"""``probe(api_endpoint)``: None when ``/healthz`` answered 200, else why not."""


def http_probe(timeout: float) -> Probe:
    """A probe asking ``GET <endpoint>/healthz`` within ``timeout`` seconds."""

    def probe(endpoint: str) -> str | None:
        try:
            r = httpx.get(f"{endpoint}/healthz", timeout=timeout)
        except httpx.HTTPError as exc:
            return f"{exc.__class__.__name__}: {exc}"[:300]
        if r.status_code == 200:
            return None
        return f"/healthz answered {r.status_code} {r.text[:200]}"

    return probe


def verdict(target: Target, failure: str | None, failures: int) -> StatusChange | None:
    """The status change one probe makes (``failures``: failed probes in a row, this one
    included), or None when it changes nothing worth recording."""
    now = time.time()
    if failure is None:
        return StatusChange(target.node_id, None, ProvStatus.AVAILABLE, None, now, 0)
    if target.status is NodeStatus.CREATING:
        return StatusChange(target.node_id, None, ProvStatus.CREATING,
                            f"not answering yet at {target.api_endpoint}: {failure}", now, 0)
    if failures >= FAILURES_BEFORE_UNHEALTHY:
        return StatusChange(target.node_id, None, ProvStatus.UNHEALTHY,
                            f"stopped answering at {target.api_endpoint}: {failure}", now, 0)
    return None


class ExternalHealth:
    def __init__(self, targets: Callable[[], list[Target]],
                 report: Callable[[StatusChange], None], probe: Probe,
                 interval: float) -> None:
        self._targets = targets
        self._report = report
        self._probe = probe
        self.interval = interval
        self._failures: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round = threading.Lock()

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="consortia-external-health")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def poll_once(self) -> None:
        """Probe every live external node once and report what changed."""
        with self._round:
            targets = self._targets()
            live = {t.node_id for t in targets}
            self._failures = {k: v for k, v in self._failures.items() if k in live}
            for target in targets:
                failure = self._probe(target.api_endpoint)
                count = 0 if failure is None else self._failures.get(target.node_id, 0) + 1
                self._failures[target.node_id] = count
                change = verdict(target, failure, count)
                if change is not None:
                    self._report(change)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # the poller must outlive one bad round; it is logged
                log.exception("external node health round failed")
