"""What every provisioner offers the control plane: node specs, statuses, the protocol.

A provisioner places node processes somewhere (this machine: ``local``; later a
Kubernetes cluster) and keeps them running. The control plane tells it *what* to run — a
``NodeSpec`` — and learns *how it goes* from ``NodeState`` snapshots and ``StatusChange``
events. Statuses and transitions: ``docs/spec/provisioning.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESOURCE_CLASSES = ("small", "medium", "large")
"""The sizes a node may be given (the control plane's ``ResourceClass`` values); each
provisioner maps them to real figures (the local one ignores them)."""


class NodeStatus(StrEnum):
    """Where a node stands, as the control plane reports it (docs/spec/provisioning.md)."""

    CREATING = "CREATING"
    """Started (created, started again, reconfigured); not yet answering its health check."""
    AVAILABLE = "AVAILABLE"
    """Running and answering its health check."""
    UNHEALTHY = "UNHEALTHY"
    """Was available; now fails its health checks, or crashed and is being restarted."""
    FAILED = "FAILED"
    """Crash loop: it exited too often within the crash window; no longer restarted."""
    STOPPED = "STOPPED"
    """Stopped on request; its configuration and data are kept, ``start`` resumes it."""
    DELETING = "DELETING"
    """Being stopped and removed."""
    DELETED = "DELETED"
    """Gone from the provisioner (its data directory too when that was asked)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node to run: what the provisioner needs to start, watch and clean up after it."""

    node_id: str
    """The control plane's name for the node, unique within a provisioner: 1-64 of
    ``A-Z a-z 0-9 . _ -``, starting with a letter or digit (it names files)."""
    config: Path
    """The node's configuration file (``node.toml``)."""
    data_dir: Path
    """Its data directory (the one ``config`` names); removed by ``delete`` on request."""
    log_file: Path
    """Where its standard output and error go (rotated by size)."""
    api_url: str
    """Base URL of its HTTP API, e.g. ``http://127.0.0.1:7050``; health is ``/healthz``."""
    resource_class: str = "small"
    """CPU, memory and disk granted to it: one of ``RESOURCE_CLASSES`` (the kubernetes
    provisioner's requests, limits and volume size; the local provisioner ignores it)."""

    def __post_init__(self) -> None:
        if not _NODE_ID.fullmatch(self.node_id):
            raise ValueError(f"node id {self.node_id!r}: 1-64 of A-Z a-z 0-9 . _ -, "
                             "starting with a letter or digit")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"api url {self.api_url!r} is not http(s)://host:port")
        if self.resource_class not in RESOURCE_CLASSES:
            raise ValueError(f"resource class {self.resource_class!r} is not one of "
                             f"{', '.join(RESOURCE_CLASSES)}")


@dataclass(frozen=True)
class Health:
    """The outcome of one health check (``GET <api_url>/healthz``)."""

    ok: bool
    """HTTP 200 within the timeout."""
    checked_at: float
    """Wall-clock time of the check (seconds since the epoch)."""
    detail: str
    """``ok``, or what went wrong (``HTTP 503 failed``, ``ConnectError: …``)."""
    height: int | None = None
    """The chain height the node reported, when it answered."""


@dataclass(frozen=True)
class NodeState:
    """A snapshot of one node as its provisioner sees it."""

    spec: NodeSpec
    status: NodeStatus
    reason: str | None
    """Why it is in this status, when that needs saying: the failure (with the last lines
    of the node's output), the failed health check, the pending restart."""
    pid: int | None
    """Its process, while it has one (local provisioner)."""
    restarts: int
    """Automatic restarts after crashes since it was created (not reconfigurations)."""
    since: float
    """Wall-clock time the node entered ``status``."""
    health: Health | None
    """The latest health check, None before the first."""


@dataclass(frozen=True)
class StatusChange:
    """A transition, as handed to observers (the control plane persists them)."""

    node_id: str
    previous: NodeStatus | None
    """None for a node's first status."""
    status: NodeStatus
    reason: str | None
    at: float
    """Wall-clock time of the transition."""
    restarts: int


StatusObserver = Callable[[StatusChange], None]
"""Called once per transition, in order for each node, from the provisioner's own thread:
it must return quickly and must not call back into the provisioner. An asyncio control
plane hands the change to its loop with ``loop.call_soon_threadsafe``."""


class Provisioner(Protocol):
    """Places nodes and keeps them running. Methods block until the action is done
    (``stop`` waits for the process to exit); from asyncio, call them through
    ``asyncio.to_thread``. Unknown ids raise ``NotFound``; acting on a deleted node or
    re-creating an id with another spec raises ``Conflict``."""

    def open(self) -> list[NodeState]:
        """Take over the nodes recorded by an earlier instance (adopting those still
        running); the nodes it now supervises."""
        ...

    def close(self) -> None:
        """Stop supervising. Nodes keep running, to be adopted by the next ``open``."""
        ...

    def create(self, spec: NodeSpec) -> NodeState:
        """Register ``spec`` and start its node (CREATING); the same spec again is a
        no-op returning the current state."""
        ...

    def start(self, node_id: str) -> NodeState:
        """Start a STOPPED or FAILED node again (CREATING), its crash history forgotten."""
        ...

    def stop(self, node_id: str) -> NodeState:
        """Stop the node's process (STOPPED); configuration and data stay."""
        ...

    def reconfigure(self, node_id: str, config: str) -> NodeState:
        """Replace the node's configuration file with ``config`` (TOML text) and restart it
        on it (CREATING); a STOPPED node only gets the new file."""
        ...

    def delete(self, node_id: str, *, remove_data: bool = False) -> NodeState:
        """Stop and forget the node (DELETING, then DELETED); its data directory is removed
        only with ``remove_data``."""
        ...

    def status(self, node_id: str) -> NodeState:
        """The node's current state, including its latest health check."""
        ...

    def nodes(self) -> list[NodeState]:
        """Every node this provisioner knows, deleted ones included until it closes."""
        ...

    def subscribe(self, observer: StatusObserver) -> Callable[[], None]:
        """Call ``observer`` on every transition from now on; returns the unsubscribe."""
        ...
