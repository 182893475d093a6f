"""Watching a network come up: its status and its nodes' statuses until all are AVAILABLE.

``wait_until_ready(client, network_id, reporter)`` polls through the SDK and hands every
state to a ``Reporter``: ``LiveReporter`` draws it in the terminal (a rich live table with
a spinner), ``QuietReporter`` (``--json``, scripts) draws nothing. ``consortia network
create`` and ``consortia up``'s demo network share it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from rich.console import Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

from consortia.cli.context import err_console
from consortia.cli.remote import styled
from consortia.sdk.control import (
    AVAILABLE,
    FAILED_STATUSES,
    ApiError,
    ControlClient,
    Network,
    Node,
    ResourceFailed,
    WaitTimeout,
)

NODE_FAILED = frozenset({"FAILED"})


class Reporter(Protocol):
    """Where progress goes: a line of what is happening, and the nodes as they are."""

    def step(self, message: str) -> None: ...

    def nodes(self, network: Network, nodes: Sequence[Node]) -> None: ...


class QuietReporter:
    """Draws nothing (``--json``, scripts)."""

    def __enter__(self) -> QuietReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def step(self, message: str) -> None:
        pass

    def nodes(self, network: Network, nodes: Sequence[Node]) -> None:
        pass


class LiveReporter:
    """A spinner with the current step above a table of nodes, redrawn in place (stderr,
    so that stdout keeps only results)."""

    def __init__(self) -> None:
        self._message = ""
        self._table: Table | None = None
        self._live = Live(self._render(), console=err_console, refresh_per_second=8,
                          transient=False)

    def _render(self) -> Group:
        parts: list[Spinner | Table] = [Spinner("dots", text=self._message)]
        if self._table is not None:
            parts.append(self._table)
        return Group(*parts)

    def __enter__(self) -> LiveReporter:
        self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def step(self, message: str) -> None:
        self._message = message
        self._live.update(self._render())

    def nodes(self, network: Network, nodes: Sequence[Node]) -> None:
        t = Table(title=f"network {network.name} ({network.id}): {styled(network.status)}",
                  title_justify="left")
        for col in ("node", "member", "status", "health", "API"):
            t.add_column(col)
        for n in nodes:
            t.add_row(n.name, n.member_id, styled(n.status), styled(n.health),
                      n.api_endpoint or "-")
        self._table = t
        self._live.update(self._render())


def network_nodes(c: ControlClient, network_id: str) -> list[Node]:
    """The nodes of the network's chain the caller sees (its own tenant's members' nodes;
    not the validators of channels, which run chains of their own)."""
    out: list[Node] = []
    for member in c.iter_members(network_id):
        if member.status in ("DELETED", "DELETING"):
            continue
        try:
            out.extend(n for n in c.iter_nodes(network_id, member.id)
                       if n.status not in ("DELETED", "DELETING") and n.channel_id is None)
        except ApiError as exc:
            if exc.status != 404:  # another tenant's member: its nodes are not ours to see
                raise
    return out


def wait_until_ready(c: ControlClient, network_id: str, reporter: Reporter, *,
                     timeout: float) -> tuple[Network, list[Node]]:
    """Poll until the network and every node of it the caller sees are AVAILABLE.

    Raises ``ResourceFailed`` when the network is CREATE_FAILED (or deleted) or a node
    FAILED, ``WaitTimeout`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        network = c.get_network(network_id)
        nodes = network_nodes(c, network_id)
        reporter.nodes(network, nodes)
        if network.status in FAILED_STATUSES:
            raise ResourceFailed(f"network {network.name} is {network.status}: "
                                 f"{network.status_reason or 'no reason given'}", network)
        failed = [n for n in nodes if n.status in NODE_FAILED]
        if failed:
            raise ResourceFailed(f"node {failed[0].name} FAILED: "
                                 f"{failed[0].status_reason or 'no reason given'}", failed[0])
        pending = [n for n in nodes if n.status != AVAILABLE]
        if network.status == AVAILABLE and not pending:
            reporter.step(f"network {network.name} is AVAILABLE with {len(nodes)} node(s)")
            return network, nodes
        ready = len(nodes) - len(pending)
        reporter.step(f"network {network.name} is {network.status}; {ready} of {len(nodes)} "
                      "node(s) AVAILABLE …")
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"network {network.name} is not ready after {timeout:.0f} s "
                              f"({ready} of {len(nodes)} node(s) AVAILABLE)", network)
        time.sleep(c.poll_interval)
