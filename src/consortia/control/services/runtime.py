"""``ChainRuntime``: what the control plane runs — the provisioner it owns, the handoff of
node statuses into the database, the ports it gives nodes, and the node API it talks to.

::

    runtime = ChainRuntime(control, provisioner, HttpNodeGateway(), files)
    runtime.start()        # open the provisioner (adopting running nodes), reconcile
    runtime.provision(node)
    runtime.flush()        # wait until every status change seen so far is in the database
    runtime.close()        # nodes keep running, adopted by the next start

**Status handoff.** The provisioner reports transitions from its own threads
(``StatusChange``); the observer only puts them on a queue. One writer thread drains the
queue and, per change, updates the node's row (status, reason, health) and settles its
network (``chains.settle_network``) in one transaction. So provisioner threads never wait
for the database, changes of one node are written in the order they happened, and no
two writers race on a network's status. A node the services are deleting (DELETING,
DELETED) is never changed by a late report.

**Reconciliation** at start: each live node of the database that the provisioner knows
gets its current status; one it does not know (the control plane stopped between writing
the row and starting the process) becomes FAILED with that reason — delete it and create
another; an interrupted deletion is finished.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from consortia.control.provision.base import NodeState, StatusChange
from consortia.control.provision.base import NodeStatus as ProvStatus
from consortia.control.provision.base import Provisioner as NodeProvisioner
from consortia.control.services.chains import (
    GONE,
    ChainFiles,
    fail_network,
    open_member_ca,
    port_of,
    settle_channel,
    settle_network,
    validators_of,
)
from consortia.control.services.external_health import ExternalHealth, Target, http_probe
from consortia.control.services.placement import Placement, placement_for
from consortia.control.store.enums import NodeHealth, NodeStatus, Provisioner, ResourceStatus
from consortia.control.store.models import Channel, Member, Network, Node
from consortia.crypto import CryptoError
from consortia.sdk.client import NodeClient
from consortia.sdk.tx import SignedTx
from consortia.types.errors import Conflict, ConsortiaError, NotFound, Unavailable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from consortia.control.services.control import Control

log = logging.getLogger("consortia.control.runtime")

_STATUS = {
    ProvStatus.CREATING: NodeStatus.CREATING, ProvStatus.AVAILABLE: NodeStatus.AVAILABLE,
    ProvStatus.UNHEALTHY: NodeStatus.UNHEALTHY, ProvStatus.FAILED: NodeStatus.FAILED,
}
"""Provisioner statuses the writer persists; STOPPED, DELETING and DELETED follow the
services' own actions, which write them."""
RESERVATION_SECONDS = 300.0
"""How long an allocated port stays reserved in memory (its row has long committed)."""
_HEALTH = {NodeStatus.AVAILABLE: NodeHealth.PASSING, NodeStatus.UNHEALTHY: NodeHealth.FAILING,
           NodeStatus.FAILED: NodeHealth.FAILING, NodeStatus.CREATING: NodeHealth.UNKNOWN}


class NodeGateway(Protocol):
    """What the control plane asks of a running node's public API."""

    def chain_info(self, api_url: str) -> dict[str, Any]:
        """``GET /v1/chain``: height, validators, the configuration in force."""
        ...

    def commit(self, api_url: str, tx: SignedTx, *, timeout: float) -> dict[str, Any]:
        """Submit ``tx`` and wait up to ``timeout`` seconds for it to leave the pool; its
        receipt (``status``: committed, pending, or a refusal)."""
        ...


class HttpNodeGateway:
    """``NodeGateway`` over HTTP with the SDK's ``NodeClient``."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def chain_info(self, api_url: str) -> dict[str, Any]:
        with NodeClient(api_url, timeout=self.timeout) as c:
            return c.chain_info()

    def commit(self, api_url: str, tx: SignedTx, *, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with NodeClient(api_url, timeout=self.timeout) as c:
            r = c.submit(tx, wait=True, timeout=min(timeout, 20.0))
            while r["status"] == "pending" and time.monotonic() < deadline:
                r = c.wait(tx.id, timeout=min(10.0, max(0.1, deadline - time.monotonic())))
        return r


class ChainRuntime:
    def __init__(self, control: Control, provisioner: NodeProvisioner, gateway: NodeGateway,
                 files: ChainFiles) -> None:
        self._c = control
        self.provisioner = provisioner
        self.gateway = gateway
        self.files = files
        self._lock = threading.Lock()
        self._start_lock = threading.RLock()
        self._started = False
        self._unsubscribe: Callable[[], None] | None = None
        self._queue: queue.SimpleQueue[StatusChange | None] = queue.SimpleQueue()
        self._pending = 0
        self._drained = threading.Condition()
        self._writer: threading.Thread | None = None
        self._reserved: dict[int, float] = {}
        """Ports handed out, with when: they protect a create between its allocation and
        its row's commit, after which the database query sees the port."""
        self._rng = random.Random()  # noqa: S311 - where to start looking for a free port
        settings = control.settings
        self.placement: Placement = placement_for(provisioner, settings.node_host,
                                                  self.allocate_ports)
        """Where the provisioner puts new nodes and the endpoints they get there."""
        self.external = ExternalHealth(self._external_targets, self._observe,
                                       http_probe(settings.external_probe_timeout_seconds),
                                       settings.external_poll_seconds)
        """Statuses of the nodes members run themselves (ADR 0019)."""

    # --- lifetime --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the provisioner and the status writer, then reconcile (once; idempotent).
        Every service that changes nodes calls it first, so none can write a node row
        while the reconciliation reads them."""
        with self._start_lock:
            if self._started:
                return
            self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                            name="consortia-node-status")
            self._writer.start()
            self._unsubscribe = self.provisioner.subscribe(self._observe)
            states = self.provisioner.open()
            self._started = True
            self._reconcile(states)
            self.external.start()

    def close(self, *, stop_nodes: bool = False) -> None:
        """Stop reporting and supervising; nodes keep running for the next ``start`` to
        adopt, unless ``stop_nodes`` (tests)."""
        with self._start_lock:
            if not self._started:
                return
            self._started = False
            self.external.close()
            if self._unsubscribe is not None:
                self._unsubscribe()
        try:
            if stop_nodes:
                for state in self.provisioner.nodes():
                    if state.status not in (ProvStatus.DELETED, ProvStatus.STOPPED):
                        self.provisioner.stop(state.spec.node_id)
        finally:
            self.provisioner.close()
            self._queue.put(None)
            if self._writer is not None:
                self._writer.join(timeout=30)

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every status change reported so far is in the database."""
        with self._drained:
            if not self._drained.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise TimeoutError(f"node statuses not written within {timeout} s")

    # --- chains and nodes ------------------------------------------------------------------

    def launch(self, network_id: str) -> None:
        """Write the chain of ``network_id`` — founded by its first member, whose rows (and
        its validators') exist — and start its validators. A failure makes the network
        CREATE_FAILED with the reason; success shows later, as the validators report
        AVAILABLE (``chains.settle_network``)."""
        self.start()
        with self._c.transaction() as db:
            network = db.get(Network, network_id)
            member = db.scalar(select(Member).where(Member.network_id == network_id)
                               .order_by(Member.created_at, Member.id).limit(1))
            if network is None or member is None:
                raise NotFound(f"network {network_id} has no member to found its chain")
            nodes = validators_of(db, network_id)
        try:
            ca = open_member_ca(self._c.box, member)
            genesis_hash = self.files.write_chain(network, member, ca, nodes,
                                                  self.placement.listen_host)
        except (ConsortiaError, CryptoError, OSError, ValueError) as exc:
            self._fail_launch(network_id, [n.id for n in nodes],
                              f"could not write the chain's files: {exc}")
            return
        with self._c.transaction() as db:
            row = db.get(Network, network_id)
            assert row is not None
            row.genesis_hash = genesis_hash
            for node in db.scalars(select(Node).where(Node.id.in_([n.id for n in nodes]))):
                node.provisioner_ref = node.id
        for i, node in enumerate(nodes):
            try:
                self.provision(node)
            except (ConsortiaError, OSError, ValueError) as exc:
                self._fail_launch(network_id, [n.id for n in nodes[i:]],
                                  f"could not start validator {node.name}: {exc}")
                return

    def _fail_launch(self, network_id: str, node_ids: list[str], reason: str) -> None:
        log.warning("network %s: %s", network_id, reason)
        with self._c.transaction() as db:
            for node in db.scalars(select(Node).where(Node.id.in_(node_ids))):
                if node.status not in GONE:
                    node.status = NodeStatus.FAILED
                    node.status_reason = reason[:1024]
            network = db.get(Network, network_id)
            if network is not None and network.status is ResourceStatus.CREATING:
                fail_network(db, network, reason)


    def provision(self, node: Node) -> NodeState:
        """Start ``node``'s process under the provisioner (its files are written)."""
        self.start()
        return self.provisioner.create(self.files.spec(node))

    def unprovision(self, node_id: str) -> None:
        """Stop and forget ``node_id``'s process, if the provisioner has it; its data stays."""
        self.start()
        try:
            self.provisioner.delete(node_id)
        except NotFound:
            pass
        except Conflict:  # deleted already
            pass

    def allocate_ports(self, db: Session, count: int) -> list[int]:
        """``count`` ports of ``settings.node_ports`` that no live node of this control
        plane has, none reserved by a create in flight, each bindable now."""
        first, last = self._c.settings.node_ports
        host = self._c.settings.node_host
        with self._lock:
            now = time.monotonic()
            self._reserved = {p: t for p, t in self._reserved.items()
                              if now - t < RESERVATION_SECONDS}
            used = set(self._reserved)
            for api, p2p in db.execute(select(Node.api_endpoint, Node.p2p_endpoint).where(
                    Node.status != NodeStatus.DELETED)):
                used |= {port_of(e) for e in (api, p2p) if e}
            span = last - first
            start = self._rng.randrange(span)
            picked: list[int] = []
            for i in range(span):
                port = first + (start + i) % span
                if port not in used and _bindable(host, port):
                    picked.append(port)
                    if len(picked) == count:
                        self._reserved.update(dict.fromkeys(picked, now))
                        return picked
        raise Unavailable(f"no {count} free ports left in {first}..{last - 1} on {host}")

    def poll_external(self) -> None:
        """One round of external nodes' health probes, reported like the provisioner's
        (``flush`` to see them in the database)."""
        self.start()
        self.external.poll_once()

    def _external_targets(self) -> list[Target]:
        with self._c.transaction() as db:
            return [Target(n.id, n.api_endpoint, n.status) for n in db.scalars(
                select(Node).where(Node.provisioner == Provisioner.EXTERNAL,
                                   Node.status.not_in(GONE))) if n.api_endpoint]

    # --- status handoff --------------------------------------------------------------------

    def _observe(self, change: StatusChange) -> None:
        """From a provisioner thread: hand the change over, never wait."""
        with self._drained:
            self._pending += 1
        self._queue.put(change)

    def _write_loop(self) -> None:
        while True:
            change = self._queue.get()
            if change is None:
                return
            try:
                self._write(change)
            except Exception:  # the writer must outlive one bad write; it is logged
                log.exception("node %s: could not record status %s", change.node_id,
                              change.status)
            finally:
                with self._drained:
                    self._pending -= 1
                    self._drained.notify_all()

    def _write(self, change: StatusChange) -> None:
        status = _STATUS.get(change.status)
        if status is None:
            return
        with self._c.transaction() as db:
            node = db.get(Node, change.node_id)
            if node is None or node.status in GONE:
                return
            node.status = status
            node.status_reason = None if change.reason is None else change.reason[:1024]
            node.health = _HEALTH[status]
            node.health_checked_at = datetime.fromtimestamp(change.at, UTC)
            db.flush()
            if node.channel_id is not None:
                settle_channel(db, node.channel_id)
            else:
                settle_network(db, node.network_id)

    def _reconcile(self, states: list[NodeState]) -> None:
        known = {s.spec.node_id: s for s in states}
        with self._c.transaction() as db:
            rows = [(n.id, n.status, n.provisioner) for n in db.scalars(
                select(Node).where(Node.status != NodeStatus.DELETED))]
        for node_id, status, provisioner in rows:
            state = known.get(node_id)
            if status is not NodeStatus.DELETING and provisioner is Provisioner.EXTERNAL:
                continue  # run by its member: its health poller reports on it
            if status is NodeStatus.DELETING:  # an interrupted deletion: finish it
                if state is not None:
                    self.unprovision(node_id)
                with self._c.transaction() as db:
                    node = db.get(Node, node_id)
                    if node is not None:
                        node.status = NodeStatus.DELETED
            elif state is not None:
                self._observe(StatusChange(node_id, None, state.status, state.reason,
                                           state.since, state.restarts))
            elif status is not NodeStatus.FAILED:
                placed = self.placement.provisioner
                reason = ("its process is not supervised by this control plane (it stopped "
                          "while the node was being created); delete the node and create "
                          "another") if provisioner is placed else (
                          f"it was placed by the {provisioner.value} provisioner; this control "
                          f"plane places nodes with the {placed.value} one (delete the node "
                          "and create another, or serve with the placement that runs it)")
                self._observe(StatusChange(node_id, None, ProvStatus.FAILED, reason,
                                           time.time(), 0))


def teardown(control: Control, network_id: str, node_ids: list[str],
             member_ids: list[str]) -> None:
    """The end of a network (deleted, or left by its last member): stop and forget the
    nodes' processes (their directories stay on disk), then mark the nodes, the members,
    the network and its channels DELETED. The rows were marked DELETING, and audited,
    before (``node_ids`` include the channels' validators)."""
    if node_ids:
        runtime = control.runtime
        runtime.start()
        for node_id in node_ids:
            runtime.unprovision(node_id)
    with control.transaction() as db:
        for node in db.scalars(select(Node).where(Node.id.in_(node_ids))):
            node.status = NodeStatus.DELETED
        for member in db.scalars(select(Member).where(Member.id.in_(member_ids))):
            member.status = ResourceStatus.DELETED
        network = db.get(Network, network_id)
        if network is not None:
            network.status = ResourceStatus.DELETED
            network.status_reason = None
        for channel in db.scalars(select(Channel).where(
                Channel.network_id == network_id, Channel.status != ResourceStatus.DELETED)):
            channel.status = ResourceStatus.DELETED
            channel.status_reason = None


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
