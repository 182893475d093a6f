"""Placement: where the control plane's nodes run, and the addresses they are reached at.

The services that create nodes (``members.add_founder``, ``NodeService.create``,
``ChannelService``) do not build addresses themselves: they ask the runtime's placement,
which answers from the provisioner actually in use (docs/spec/provisioning.md,
"Placement"; ADR 0014):

- ``LocalPlacement`` — processes on this machine: ``http://<node_host>:<port>`` and
  ``<node_host>:<port>``, ports allocated from ``settings.node_ports`` (each node needs its
  own: they share one address); the node listens on ``node_host``.
- ``KubernetesPlacement`` — a StatefulSet and a Service per node: the Service's DNS name
  (``consortia-<node id>.<namespace>.svc.<cluster domain>``) and the settings' fixed API and
  p2p ports (each node has a name of its own); the node listens on the pod's addresses.

What a placement answers is what the node's row records (``provisioner``,
``api_endpoint``, ``p2p_endpoint``), and from the row it reaches every file that names a
node: the chain configuration's validator endpoints, each validator's ``[p2p] peers``, a
peer's ``[follow] validators``, a ``validator_update``'s endpoint, and the ``NodeSpec`` the
provisioner runs. Nothing else in the services knows which placement is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from consortia.control.provision.base import Provisioner as NodeProvisioner
from consortia.control.provision.kubernetes import KubernetesProvisioner
from consortia.control.store.enums import Provisioner

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - a pod's own addresses; its Service is the way in
"""Where a node in a pod listens (``pod_config`` writes the same into the pod's file)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one node is reached: what its row records."""

    api: str
    """Base URL of its HTTP API (``http://host:port``)."""
    p2p: str | None
    """``host:port`` of its p2p transport; None for a solo validator or a peer."""


class Placement(Protocol):
    """Where new nodes go, and how they are addressed there."""

    @property
    def provisioner(self) -> Provisioner:
        """What the nodes' rows record as their ``provisioner``."""
        ...

    @property
    def listen_host(self) -> str:
        """The address written into a node's ``node.toml`` for its API and p2p to listen
        on."""
        ...

    def endpoints(self, db: Session, node_ids: Sequence[str], *,
                  p2p: bool) -> list[Endpoints]:
        """The endpoints of the new nodes ``node_ids`` (in their order), with a p2p address
        each when ``p2p``; none of them collides with a live node's."""
        ...


class LocalPlacement:
    """Nodes as processes on this machine, each on ports of its own (``allocate``: the
    runtime's port allocator, which reserves the ports it hands out)."""

    provisioner = Provisioner.LOCAL

    def __init__(self, host: str, allocate: Callable[[Session, int], list[int]]) -> None:
        self.listen_host = host
        self._allocate = allocate

    def endpoints(self, db: Session, node_ids: Sequence[str], *,
                  p2p: bool) -> list[Endpoints]:
        per = 2 if p2p else 1
        ports = self._allocate(db, len(node_ids) * per)
        host = self.listen_host
        return [Endpoints(f"http://{host}:{ports[per * i]}",
                          f"{host}:{ports[per * i + 1]}" if p2p else None)
                for i in range(len(node_ids))]


class KubernetesPlacement:
    """Nodes as StatefulSets: each reached at its Service's DNS name, on the settings'
    ports. Nothing to allocate: the name is the node id's."""

    provisioner = Provisioner.KUBERNETES
    listen_host = ANY_ADDRESS

    def __init__(self, kubernetes: KubernetesProvisioner) -> None:
        self._k8s = kubernetes

    def endpoints(self, db: Session, node_ids: Sequence[str], *,
                  p2p: bool) -> list[Endpoints]:
        return [Endpoints(self._k8s.api_url(n), self._k8s.p2p_address(n) if p2p else None)
                for n in node_ids]


def placement_for(provisioner: NodeProvisioner, host: str,
                  allocate: Callable[[Session, int], list[int]]) -> Placement:
    """The placement of ``provisioner``: kubernetes for a ``KubernetesProvisioner``, local
    (on ``host``, ports from ``allocate``) for any other."""
    if isinstance(provisioner, KubernetesProvisioner):
        return KubernetesPlacement(provisioner)
    return LocalPlacement(host, allocate)


def _checks(local: LocalPlacement, k8s: KubernetesPlacement) -> tuple[Placement, Placement]:
    """Never called: mypy checks here that both meet the protocol."""
    return local, k8s
