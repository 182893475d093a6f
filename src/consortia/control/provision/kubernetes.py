"""The ``kubernetes`` provisioner: each node a StatefulSet of one pod in a cluster.

::

    settings = KubernetesSettings(image="registry.example/consortia:0.1.0",
                                  namespace="consortia", kubeconfig=Path("~/.kube/config"))
    print(dump_manifests(render_node_manifests(spec, settings)))   # review, no cluster
    with KubernetesProvisioner(settings, observers=[persist]) as prov:   # open(): adopt
        prov.create(spec)                       # Secret, PVC, Service, StatefulSet applied
        prov.wait_for(spec.node_id, NodeStatus.AVAILABLE, timeout=300)

Per node it renders (``_manifests.py``) a **Secret** with the node's files (its
configuration rewritten for the pod, genesis, keystore entry, passphrase), a
**PersistentVolumeClaim** for its ledger, a **Service** (API and p2p ports) and a
**StatefulSet** of one replica running the local provisioner's command line, sized by the
node's resource class, probed on ``/healthz``, as a non-root user on a read-only root
file system. They are written by server-side apply (``_kubeapi.py``), every call with a
timeout.

Supervising is the kubelet's: it restarts a crashed container with its own backoff. This
provisioner maps what the cluster says onto the same ``NodeStatus`` as the local one, from
one polling thread (``refresh``: two list calls per poll for all nodes). Adoption is
free: the cluster holds the state; ``open`` finds the StatefulSets by label and reads each
node's spec from an annotation. One control plane per namespace. Statuses, mapping and
layout: ``docs/spec/provisioning.md``; decision: ADR 0014.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from consortia.control.provision import _kubeapi
from consortia.control.provision import _manifests as mf
from consortia.control.provision._supervisor import _write_atomically
from consortia.control.provision.base import (
    Health,
    NodeSpec,
    NodeState,
    NodeStatus,
    Provisioner,
    StatusChange,
    StatusObserver,
)
from consortia.types.errors import ConfigError, Conflict, NotFound

log = logging.getLogger("consortia.control.provision")


@dataclass(frozen=True)
class KubernetesSettings:
    """The ``kubernetes`` provisioner's settings (``ControlSettings.kubernetes``). There is no
    default image: the operator names the one holding their Consortia release."""

    image: str
    """The node image: Consortia installed, ``python`` on its ``PATH``."""
    namespace: str = "consortia"
    """Where nodes' objects go (a DNS-1123 label); one control plane per namespace."""
    kubeconfig: Path | None = None
    """The cluster to apply to; None: manifests can be rendered, not applied."""
    context: str | None = None
    """The kubeconfig context; None: its current context."""
    storage_class: str | None = None
    """Of the nodes' volume claims; None: the cluster's default class."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, for peers' Service names."""
    image_pull_policy: str = "IfNotPresent"
    request_timeout: float = 10.0
    """Of each API call (connect and read), seconds."""
    poll_interval: float = 5.0
    """Between two reads of the nodes' StatefulSets and pods."""
    crash_limit: int = 5
    """Restarts of a pod in ``CrashLoopBackOff`` that make its node FAILED."""
    stop_grace_seconds: int = 15
    """SIGTERM → SIGKILL, and how long ``stop`` waits beyond it for the pod to go (+30 s)."""
    start_timeout_seconds: int = 60
    """How long a starting node may take to answer ``/healthz`` (the startup probe)."""
    api_port: int = 7050
    """The port of every node's API on its Service (each node has a Service, a DNS name
    of its own: no two nodes compete for a port, unlike on one machine)."""
    p2p_port: int = 7051
    """The port of every validator's p2p transport on its Service (raft, pbft)."""
    retain_volumes: bool = True
    """Deleting a node keeps its volume claim (its ledger), as the local provisioner keeps
    a deleted node's directory; False deletes the claim with the node."""

    def __post_init__(self) -> None:
        self.target()  # validates namespace, image, storage class, domain, timings
        if not (0 < self.api_port < 65536 and 0 < self.p2p_port < 65536) \
                or self.api_port == self.p2p_port:
            raise ConfigError("kubernetes api_port and p2p_port must be two distinct ports "
                              "within 1..65535")
        if not 0 < self.request_timeout <= 300:
            raise ConfigError("kubernetes request_timeout must be within (0, 300] seconds")
        if not 0 < self.poll_interval <= 600:
            raise ConfigError("kubernetes poll_interval must be within (0, 600] seconds")
        if self.crash_limit < 1:
            raise ConfigError("kubernetes crash_limit must be at least 1")
        if self.kubeconfig is not None and not self.kubeconfig.expanduser().is_file():
            raise ConfigError(f"kubeconfig {self.kubeconfig} is not a file")

    def target(self) -> mf.Target:
        return mf.Target(namespace=self.namespace, image=self.image,
                         storage_class=self.storage_class, cluster_domain=self.cluster_domain,
                         image_pull_policy=self.image_pull_policy,
                         stop_grace_seconds=self.stop_grace_seconds,
                         start_timeout_seconds=self.start_timeout_seconds)


def render_node_manifests(spec: NodeSpec, settings: KubernetesSettings, *,
                          stopped: bool = False) -> list[dict[str, Any]]:
    """The objects the provisioner applies for ``spec`` — Secret, PersistentVolumeClaim,
    Service, StatefulSet — read from the node's directory, no cluster needed. The Secret's
    ``data`` holds the node's key material (base64): show it with ``dump_manifests``, which
    redacts it unless asked not to."""
    return mf.render(spec, mf.read_node_files(spec), settings.target(),
                     replicas=0 if stopped else 1)


def dump_manifests(manifests: list[dict[str, Any]], *, reveal_secrets: bool = False) -> str:
    """``manifests`` as one ``kind: List`` JSON document (``kubectl apply -f`` takes it),
    each Secret entry replaced by ``<redacted: N bytes, sha256 …>`` unless
    ``reveal_secrets``."""
    import base64
    import hashlib
    items = json.loads(json.dumps(manifests))
    if not reveal_secrets:
        for m in items:
            if m.get("kind") == "Secret":
                for key, value in m.get("data", {}).items():
                    raw = base64.b64decode(value)
                    m["data"][key] = (f"<redacted: {len(raw)} bytes, sha256 "
                                      f"{hashlib.sha256(raw).hexdigest()[:16]}>")
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2) + "\n"


@dataclass
class _Node:
    """What the provisioner knows of one node (guarded by the provisioner's lock)."""

    spec: NodeSpec
    status: NodeStatus
    reason: str | None
    since: float
    stopped: bool = False
    """0 replicas wanted (``stop``) rather than 1."""
    restarts: int = 0
    health: Health | None = None
    action: threading.Lock = field(default_factory=threading.Lock)
    """Held by an action on the node (create, stop, …): actions never interleave."""
    acted: int = 0
    """Actions finished on the node (guarded by ``action``): a refresh judges a node only
    if none finished since it began reading the cluster, whose answer may predate it."""

    def state(self) -> NodeState:
        return NodeState(self.spec, self.status, self.reason, None, self.restarts, self.since,
                         self.health)


class KubernetesProvisioner:
    """Places nodes as StatefulSets in ``settings.namespace`` and reports their statuses.
    Methods block until the cluster has taken the change (``stop`` and ``delete`` until
    the pod is gone); statuses follow from ``refresh``, which a thread runs every
    ``poll_interval`` while open."""

    def __init__(self, settings: KubernetesSettings, *,
                 observers: Iterable[StatusObserver] = (), api_client: Any = None,
                 poll: bool = True) -> None:
        """``api_client``: a configured ``kubernetes.client.ApiClient`` instead of one made
        from ``settings.kubeconfig``; ``poll=False``: no polling thread (call ``refresh``)."""
        if settings.kubeconfig is None and api_client is None:
            raise ConfigError("the kubernetes provisioner applies to a cluster: set "
                              "kubernetes.kubeconfig (render_node_manifests needs none)")
        self.settings = settings
        self.target = settings.target()
        self._api_client = api_client
        self._poll = poll
        self._api: _kubeapi.KubeApi | None = None
        self._observers: list[StatusObserver] = list(observers)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._emit_lock = threading.Lock()
        """Held while a node's state changes and its observers run: changes in order."""
        self._nodes: dict[str, _Node] = {}
        self._open = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime -----------------------------------------------------------------------

    def open(self) -> list[NodeState]:
        """Connect and adopt the nodes whose StatefulSets carry this provisioner's labels."""
        with self._lock:
            if self._open:
                raise RuntimeError("this provisioner is already open")
        kubeconfig = self.settings.kubeconfig
        api = _kubeapi.KubeApi(
            kubeconfig=None if kubeconfig is None else str(kubeconfig.expanduser()),
            context=self.settings.context, timeout=self.settings.request_timeout,
            api_client=self._api_client)
        try:
            found = api.stateful_sets(self.target.namespace, mf.SELECTOR)
        except Exception:
            api.close()
            raise
        now = time.time()
        with self._lock:
            self._api, self._open = api, True
            self._stop.clear()
            for sts in found:
                annotation = (sts["metadata"].get("annotations") or {}).get(mf.ANNOTATION_SPEC)
                try:
                    spec = mf.spec_from_annotation(annotation or "")
                except (ValueError, KeyError, TypeError):
                    log.warning("StatefulSet %s carries no node spec; left alone",
                                sts["metadata"]["name"])
                    continue
                stopped = int(sts["spec"].get("replicas", 1)) == 0
                self._nodes[spec.node_id] = _Node(
                    spec, NodeStatus.STOPPED if stopped else NodeStatus.CREATING,
                    "adopted from the cluster", now, stopped=stopped)
        self.refresh()
        if self._poll:
            self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                            name="provision-kubernetes")
            self._thread.start()
        return [n.state() for n in self._snapshot()]

    def close(self) -> None:
        """Stop polling; the nodes keep running in the cluster."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            api, self._api = self._api, None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if api is not None:
            api.close()

    def __enter__(self) -> KubernetesProvisioner:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- nodes --------------------------------------------------------------------------

    def create(self, spec: NodeSpec) -> NodeState:
        """Apply the node's objects (CREATING); the same spec again returns its state,
        another spec under a taken id is a ``Conflict``. Its files must be readable."""
        api = self._check_open()
        with self._lock:
            node = self._nodes.get(spec.node_id)
            if node is not None and node.status is not NodeStatus.DELETED:
                if node.spec == spec:
                    return node.state()
                raise Conflict(f"node {spec.node_id} already exists with another spec")
        files = mf.read_node_files(spec)       # before anything is placed or recorded
        node = _Node(spec, NodeStatus.CREATING, None, time.time())
        with self._acting(node):
            with self._lock:
                if spec.node_id in self._nodes and \
                        self._nodes[spec.node_id].status is not NodeStatus.DELETED:
                    raise Conflict(f"node {spec.node_id} is being created already")
                self._nodes[spec.node_id] = node
            try:
                for m in mf.render(spec, files, self.target):
                    api.apply(m)
            except BaseException:
                with self._lock:     # not recorded: a retry applies the same objects again
                    del self._nodes[spec.node_id]
                raise
            self._set(node, NodeStatus.CREATING, None, first=True)
        return node.state()

    def start(self, node_id: str) -> NodeState:
        """Scale a STOPPED node back to one pod; a FAILED node's pod is deleted so that a
        fresh one (restart count 0) replaces it. CREATING; a running node is left alone."""
        node, api = self._node(node_id)
        with self._acting(node):
            self._alive(node)
            if node.status not in (NodeStatus.STOPPED, NodeStatus.FAILED):
                return node.state()
            self._apply_all(api, node, stopped=False)   # re-creates what went missing
            if not node.stopped:     # FAILED: a fresh pod, its restart count back to 0
                api.delete("Pod", f"{mf.resource_name(node_id)}-0", self.target.namespace)
            node.stopped = False
            self._set(node, NodeStatus.CREATING, None, restarts=0)
        return node.state()

    def stop(self, node_id: str) -> NodeState:
        """Scale the StatefulSet to zero and wait for the pod to go (STOPPED); the claim and
        the Secret stay."""
        node, api = self._node(node_id)
        with self._acting(node):
            self._alive(node)
            node.stopped = True
            self._apply_all(api, node, stopped=True)
            self._wait_pod_gone(api, node_id)
            self._set(node, NodeStatus.STOPPED, None, restarts=0)
        return node.state()

    def reconfigure(self, node_id: str, config: str) -> NodeState:
        """Write ``config`` over the node's configuration file, update its Secret and roll
        its pod (a new configuration hash): CREATING. A STOPPED node only gets the Secret."""
        node, api = self._node(node_id)
        with self._acting(node):
            self._alive(node)
            mf.read_node_files(node.spec, config)   # refuse what the pod could not carry
            _write_atomically(node.spec.config, config)
            self._apply_all(api, node, stopped=node.stopped)
            if not node.stopped:
                self._set(node, NodeStatus.CREATING, "restarted on a new configuration")
        return node.state()

    def delete(self, node_id: str, *, remove_data: bool = False) -> NodeState:
        """Scale to zero, wait for the pod to go, then delete the StatefulSet, Service and
        Secret, and the claim (the node's ledger) only with ``remove_data`` or when the
        settings do not ``retain_volumes``: DELETING, then DELETED."""
        remove_data = remove_data or not self.settings.retain_volumes
        node, api = self._node(node_id)
        with self._acting(node):
            self._alive(node)
            self._set(node, NodeStatus.DELETING, None)
            name, ns = mf.resource_name(node_id), self.target.namespace
            if api.stateful_sets(ns, f"app.kubernetes.io/instance={name}"):
                node.stopped = True
                self._apply_all(api, node, stopped=True, only_stateful_set=True)
                self._wait_pod_gone(api, node_id)
            for kind in ("StatefulSet", "Service", "Secret"):
                api.delete(kind, name, ns)
            if remove_data:
                api.delete("PersistentVolumeClaim", f"{name}-data", ns)
            self._set(node, NodeStatus.DELETED, None if remove_data
                      else f"its volume claim {name}-data is kept")
        return node.state()

    def status(self, node_id: str) -> NodeState:
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                raise NotFound(f"no node {node_id!r} in this provisioner")
            return node.state()

    def nodes(self) -> list[NodeState]:
        with self._lock:
            return [n.state() for n in self._nodes.values()]

    def subscribe(self, observer: StatusObserver) -> Callable[[], None]:
        with self._lock:
            self._observers.append(observer)

        def unsubscribe() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)
        return unsubscribe

    def wait_for(self, node_id: str, *statuses: NodeStatus, timeout: float) -> NodeState:
        """Block until the node is in one of ``statuses``; ``TimeoutError`` after
        ``timeout`` seconds, naming the state it was in."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                node = self._nodes.get(node_id)
                if node is None:
                    raise NotFound(f"no node {node_id!r} in this provisioner")
                if node.status in statuses:
                    return node.state()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"node {node_id} did not reach {', '.join(statuses)} "
                                       f"within {timeout:g} s; it is {node.status}"
                                       + (f": {node.reason}" if node.reason else ""))
                self._changed.wait(remaining)

    def api_url(self, node_id: str, port: int | None = None) -> str:
        """The in-cluster URL of ``node_id``'s API: its Service's DNS name and ``port``
        (default: ``settings.api_port``). What the control plane records as the node's
        endpoint and reaches it at."""
        port = self.settings.api_port if port is None else port
        return f"http://{mf.service_host(node_id, self.target)}:{port}"

    def p2p_address(self, node_id: str, port: int | None = None) -> str:
        """``host:port`` of ``node_id``'s p2p transport in the cluster (its Service's DNS
        name, ``settings.p2p_port`` by default): where other validators dial it, as the
        chain configuration and peers' configurations name it."""
        port = self.settings.p2p_port if port is None else port
        return f"{mf.service_host(node_id, self.target)}:{port}"

    # -- statuses -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read every node's StatefulSet and pod (two list calls) and move each node to the
        status they say. Nodes an action holds are left to it."""
        api = self._check_open()
        ns = self.target.namespace
        # The nodes as they stand before the cluster is read: one created, started or
        # stopped while the lists are read is judged by the next refresh, not by lists
        # that may predate it (a node created meanwhile would read as "StatefulSet gone").
        known = [(node, node.acted) for node in self._snapshot()]
        sets = {s["metadata"]["name"]: s for s in api.stateful_sets(ns, mf.SELECTOR)}
        pods = {p["metadata"]["name"]: p for p in api.pods(ns, mf.SELECTOR)}
        for node, acted in known:
            if node.status in (NodeStatus.DELETING, NodeStatus.DELETED):
                continue
            if not node.action.acquire(blocking=False):
                continue
            try:
                if node.acted != acted:
                    continue
                name = mf.resource_name(node.spec.node_id)
                status, reason, restarts, health = _kubeapi.observe(
                    sets.get(name), pods.get(f"{name}-0"), previous=node.status,
                    crash_limit=self.settings.crash_limit)
                self._set(node, status, reason, restarts=restarts, health=health)
            finally:
                node.action.release()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_interval):
            try:
                self.refresh()
            except RuntimeError:        # closed meanwhile
                return
            except Exception:
                log.exception("kubernetes provisioner: reading node statuses failed")

    # -- internals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _acting(self, node: _Node) -> Iterator[None]:
        """Hold ``node`` for one action; count it as finished however it ends."""
        with node.action:
            try:
                yield
            finally:
                node.acted += 1

    def _check_open(self) -> _kubeapi.KubeApi:
        with self._lock:
            if not self._open or self._api is None:
                raise RuntimeError("the provisioner is not open (call open() or use it in "
                                   "a with block)")
            return self._api

    def _node(self, node_id: str) -> tuple[_Node, _kubeapi.KubeApi]:
        api = self._check_open()
        with self._lock:
            node = self._nodes.get(node_id)
        if node is None:
            raise NotFound(f"no node {node_id!r} in this provisioner")
        return node, api

    @staticmethod
    def _alive(node: _Node) -> None:
        if node.status in (NodeStatus.DELETING, NodeStatus.DELETED):
            raise Conflict(f"node {node.spec.node_id} is {node.status.value.lower()}")

    def _apply_all(self, api: _kubeapi.KubeApi, node: _Node, *, stopped: bool,
                   only_stateful_set: bool = False) -> None:
        manifests = mf.render(node.spec, mf.read_node_files(node.spec), self.target,
                              replicas=0 if stopped else 1)
        for m in manifests[-1:] if only_stateful_set else manifests:
            api.apply(m)

    def _wait_pod_gone(self, api: _kubeapi.KubeApi, node_id: str) -> None:
        pod = f"{mf.resource_name(node_id)}-0"
        deadline = time.monotonic() + self.settings.stop_grace_seconds + 30
        while api.pod(pod, self.target.namespace) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {node_id}: pod {pod} still exists "
                                   f"{self.settings.stop_grace_seconds + 30} s after it was "
                                   "asked to stop")
            time.sleep(min(1.0, self.settings.poll_interval))

    def _snapshot(self) -> list[_Node]:
        with self._lock:
            return list(self._nodes.values())

    def _set(self, node: _Node, status: NodeStatus, reason: str | None, *,
             restarts: int | None = None, health: Health | None = None,
             first: bool = False) -> None:
        """Record the node's state; report a transition (or, with ``first``, its first
        status) to the observers, in order: under the emit lock."""
        with self._emit_lock:
            now = time.time()
            with self._changed:
                before = None if first else node.status
                moved = first or before is not status
                node.status, node.reason = status, reason
                if moved:
                    node.since = now
                if restarts is not None:
                    node.restarts = restarts
                if health is not None:
                    node.health = health
                observers = list(self._observers)
                self._changed.notify_all()
            if not moved:
                return
            change = StatusChange(node.spec.node_id, before, status, reason, now,
                                  node.restarts)
            for observer in observers:
                try:
                    observer(change)
                except Exception:
                    log.exception("node %s: a status observer failed on %s",
                                  change.node_id, status)


def _is_a_provisioner(p: KubernetesProvisioner) -> Provisioner:
    """Never called: mypy checks here that ``KubernetesProvisioner`` meets the protocol."""
    return p
