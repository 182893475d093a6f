"""The ``local`` provisioner: node processes on this machine, supervised by threads.

::

    with LocalProvisioner(state_dir, observers=[persist]) as prov:   # open(): adopt
        prov.create(NodeSpec("nd-1", config, data_dir, log_file, "http://127.0.0.1:7050"))
        prov.wait_for("nd-1", NodeStatus.AVAILABLE, timeout=60)
        prov.reconfigure("nd-1", new_toml)
        prov.stop("nd-1")
    # close(): supervision ends, the nodes keep running; the next open() adopts them

Why threads, not asyncio tasks: supervising is blocking work — fork/exec, waiting for a
process to exit after SIGTERM, reading ``/proc``, copying a log for rotation, sleeping
out a backoff. On threads none of it can stall the control plane's event loop (uvicorn),
whatever a future change adds, and the provisioner works the same in a script, a test
or under any event loop, with a lifetime of its own. One thread per node keeps a slow or
hung node (a health check waiting out its timeout, a SIGTERM grace period) from delaying
the others; a local machine runs tens of nodes, not thousands. The methods block until
their action is done; an asyncio caller wraps them in ``asyncio.to_thread``, and
observers hand changes to the loop with ``loop.call_soon_threadsafe``.

Statuses, transitions, backoff and adoption: ``docs/spec/provisioning.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

from consortia.control.provision._records import Record, Records, Wanted
from consortia.control.provision._supervisor import Kind, NodeSupervisor
from consortia.control.provision.base import (
    NodeSpec,
    NodeState,
    NodeStatus,
    Provisioner,
    StatusChange,
    StatusObserver,
)
from consortia.control.provision.policy import SupervisionPolicy
from consortia.types.errors import ConfigError, Conflict, NotFound

log = logging.getLogger("consortia.control.provision")


class LocalProvisioner:
    """Runs nodes as child processes of this machine and keeps them running.

    ``state_dir`` holds one record per node (spec, wanted state, last status) and its PID
    file, so that a later instance — after the control plane restarts — adopts the nodes
    that still run and restarts those that died meanwhile. One open instance per state
    directory at a time (a lock file; a second ``open`` is a ``Conflict``).
    """

    def __init__(self, state_dir: Path | str, *, policy: SupervisionPolicy | None = None,
                 observers: Iterable[StatusObserver] = (),
                 rng: random.Random | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.policy = policy or SupervisionPolicy()
        self._records = Records(self.state_dir)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._observers: list[StatusObserver] = list(observers)
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._nodes: dict[str, NodeSupervisor] = {}
        self._open = False
        self._lock_fd: int | None = None

    # -- lifetime -----------------------------------------------------------------------

    def open(self) -> list[NodeState]:
        """Take over the nodes recorded in the state directory: adopt each running one
        whose PID file names its process (a PID reused by another program is never
        adopted nor signalled), restart those that died meanwhile (a crash), leave stopped
        and failed ones as they are, finish interrupted deletions."""
        with self._lock:
            if self._open:
                raise RuntimeError("this provisioner is already open")
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._hold_state_dir()
            try:
                records = self._records.load_all()
            except ConfigError:
                self._release_state_dir()
                raise
            self._open = True
            begun = [self._supervise(rec, fresh=False) for rec in records]
        for _, done in begun:
            done.result()
        return [sup.state() for sup, _ in begun if sup.status is not NodeStatus.DELETED]

    def close(self, *, stop_nodes: bool = False) -> None:
        """Stop supervising. The nodes keep running for the next ``open`` to adopt, unless
        ``stop_nodes``: then each is stopped first (and stays STOPPED for the next open)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            sups = list(self._nodes.values())
        try:
            if stop_nodes:
                for sup in sups:
                    self._quietly(sup, Kind.STOP)
        finally:
            for sup in sups:
                self._quietly(sup, Kind.DETACH)
            for sup in sups:
                sup.join()
            self._release_state_dir()

    def __enter__(self) -> LocalProvisioner:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- nodes --------------------------------------------------------------------------

    def create(self, spec: NodeSpec) -> NodeState:
        """Register ``spec`` and start its node (CREATING; adopted if a process of it
        already runs). Paths are made absolute. The same spec again returns the node's
        state; another spec under a taken id is a ``Conflict``. The configuration file
        must exist; whether it is valid is the node's to say (a crash loop, FAILED, with
        the node's own message as the reason)."""
        spec = dataclasses.replace(spec, config=spec.config.resolve(),
                                   data_dir=spec.data_dir.resolve(),
                                   log_file=spec.log_file.resolve())
        with self._lock:
            self._check_open()
            existing = self._nodes.get(spec.node_id)
            if existing is not None and existing.status is not NodeStatus.DELETED:
                if existing.spec == spec:
                    return existing.state()
                raise Conflict(f"node {spec.node_id} already exists with another spec")
            if not spec.config.is_file():
                raise ConfigError(f"node {spec.node_id}: no configuration file {spec.config}")
            rec = Record(spec, Wanted.RUNNING, NodeStatus.CREATING, None, 0, time.time())
            _, done = self._supervise(rec, fresh=True)
        return done.result()

    def start(self, node_id: str) -> NodeState:
        """Start a STOPPED or FAILED node again (CREATING), its crash history forgotten; a
        running node is left as it is."""
        return self._node(node_id).submit(Kind.START).result()

    def stop(self, node_id: str) -> NodeState:
        """SIGTERM the node's process, SIGKILL it after ``policy.stop_grace``; STOPPED once
        it has exited. No restart follows."""
        return self._node(node_id).submit(Kind.STOP).result()

    def reconfigure(self, node_id: str, config: str) -> NodeState:
        """Write ``config`` (TOML text) over the node's configuration file (aside, then
        renamed) and restart the node on it: CREATING, crash history forgotten, not counted
        as a restart. A STOPPED node only gets the new file; a FAILED one is started."""
        return self._node(node_id).submit(Kind.RECONFIGURE, config=config).result()

    def delete(self, node_id: str, *, remove_data: bool = False) -> NodeState:
        """Stop the node and forget it (DELETING, then DELETED): its record and PID file go;
        its data directory only with ``remove_data``. Its configuration and log stay."""
        return self._node(node_id).submit(Kind.DELETE, remove_data=remove_data).result()

    def status(self, node_id: str) -> NodeState:
        return self._node(node_id, alive=False).state()

    def nodes(self) -> list[NodeState]:
        with self._lock:
            sups = list(self._nodes.values())
        return [s.state() for s in sups]

    def subscribe(self, observer: StatusObserver) -> Callable[[], None]:
        with self._lock:
            self._observers.append(observer)

        def unsubscribe() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)
        return unsubscribe

    def wait_for(self, node_id: str, *statuses: NodeStatus, timeout: float,
                 where: Callable[[NodeState], bool] | None = None) -> NodeState:
        """Block until the node is in one of ``statuses`` (any, when none are given) and
        ``where`` holds of its state; its state then. ``TimeoutError`` after ``timeout``
        seconds, naming the state it was in."""
        deadline = time.monotonic() + timeout
        sup = self._node(node_id, alive=False)
        with self._changed:
            while True:
                state = sup.state()
                if (not statuses or state.status in statuses) and (where is None
                                                                   or where(state)):
                    return state
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"node {node_id} did not reach {', '.join(statuses) or 'the state'} "
                        f"within {timeout:g} s; it is {state.status}"
                        + (f": {state.reason}" if state.reason else ""))
                self._changed.wait(remaining)

    # -- internals ----------------------------------------------------------------------

    def _hold_state_dir(self) -> None:
        """Lock the state directory for this instance: two provisioners supervising the
        same nodes would each restart them."""
        fd = os.open(self.state_dir / "provisioner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(f"another provisioner has the state directory {self.state_dir} "
                           "open") from None
        self._lock_fd = fd

    def _release_state_dir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)      # closing the descriptor releases the lock
            self._lock_fd = None

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("the provisioner is not open (call open() or use it in a "
                               "with block)")

    def _supervise(self, rec: Record, *,
                   fresh: bool) -> tuple[NodeSupervisor, Future[NodeState]]:
        """A supervisor for ``rec``, registered and running, its first command (BEGIN)
        queued before any other can be; the caller holds the lock."""
        sup = NodeSupervisor(rec, fresh=fresh, policy=self.policy, records=self._records,
                             rng=self._rng, on_change=self._emit)
        self._nodes[rec.spec.node_id] = sup
        sup.start_thread()
        return sup, sup.submit(Kind.BEGIN)

    def _node(self, node_id: str, *, alive: bool = True) -> NodeSupervisor:
        with self._lock:
            if alive:
                self._check_open()
            sup = self._nodes.get(node_id)
        if sup is None:
            raise NotFound(f"no node {node_id!r} in this provisioner")
        return sup

    def _emit(self, change: StatusChange | None) -> None:
        """From a supervisor thread, after any change of a node's state: observers first
        (for a transition), then ``wait_for``."""
        if change is not None:
            with self._lock:
                observers = list(self._observers)
            for observer in observers:
                try:
                    observer(change)
                except Exception:
                    log.exception("node %s: a status observer failed on %s", change.node_id,
                                  change.status)
        with self._changed:
            self._changed.notify_all()

    @staticmethod
    def _quietly(sup: NodeSupervisor, kind: Kind) -> None:
        """Run ``kind`` on ``sup`` at close; a node already deleted needs nothing."""
        with contextlib.suppress(Conflict):
            sup.submit(kind).result()


def _is_a_provisioner(p: LocalProvisioner) -> Provisioner:
    """Never called: mypy checks here that ``LocalProvisioner`` meets the protocol."""
    return p
