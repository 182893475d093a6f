"""Where the processes of a local network-to-be listen: the validators' API and p2p
ports, the transaction managers' local and peer ports. ``init_network`` plans first and
writes only a plan that holds (every port in 1..65535, no port used twice), so a bad
argument writes nothing.

Node i serves its API on ``port + i`` and, for raft and pbft, talks to the other
validators on ``(p2p_port or port + 100) + i``. The transaction manager of organization i
(quorum networks) serves its local API on ``(tm_port or port + 200) + 2i`` and its peer
API on the port after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia.types.config import MAX_VALIDATORS, ConsensusKind
from consortia.types.errors import ConfigError

DEFAULT_VALIDATORS = {ConsensusKind.SOLO: 1, ConsensusKind.RAFT: 3, ConsensusKind.PBFT: 4}
"""Validators ``init_network`` creates when not told: raft 3 tolerate one crash, pbft 4
(n = 3f + 1) one arbitrary fault."""
P2P_PORT_OFFSET = 100
"""Without an explicit p2p port, node i listens for peers on ``port + 100 + i``."""
TM_PORT_OFFSET = 200
"""Without an explicit manager port, organization i's manager listens on
``port + 200 + 2i`` (local API) and ``port + 201 + 2i`` (peer API)."""


@dataclass(frozen=True)
class NodePlan:
    """Where node ``index`` of a network-to-be lives."""

    index: int
    id: str
    org: str
    api_port: int
    p2p_port: int | None


def validator_count(consensus: ConsensusKind, validators: int | None) -> int:
    """How many validators a new chain of ``consensus`` gets when asked for ``validators``
    (None: the default, ``DEFAULT_VALIDATORS``); ``ConfigError`` for a count the protocol
    cannot run (solo: exactly 1; pbft: at least 4)."""
    if consensus is ConsensusKind.SOLO:
        if validators not in (None, 1):
            raise ConfigError(f"solo consensus runs exactly one validator (asked for "
                              f"{validators}); choose raft or pbft for several")
        return 1
    n = DEFAULT_VALIDATORS[consensus] if validators is None else validators
    if consensus is ConsensusKind.RAFT and n < 1:
        raise ConfigError(f"raft needs at least 1 validator (asked for {n}); "
                          "3 tolerate one crashed validator")
    if consensus is ConsensusKind.PBFT and n < 4:
        raise ConfigError(f"pbft needs at least 4 validators (asked for {n}): n = 3f + 1 "
                          "validators tolerate f faulty ones, so tolerating one fault "
                          "takes 4")
    if n > MAX_VALIDATORS:
        raise ConfigError(f"a chain has at most {MAX_VALIDATORS} validators (asked for {n})")
    return n


def plan_nodes(consensus: ConsensusKind, validators: int | None, orgs: list[str], port: int,
          p2p_port: int | None) -> list[NodePlan]:
    n = validator_count(consensus, validators)
    if consensus is ConsensusKind.SOLO:
        if p2p_port is not None:
            raise ConfigError("a solo network has no p2p transport; the p2p port applies "
                              "to raft and pbft networks")
        return [NodePlan(0, "validator0", orgs[0], port, None)]
    p2p_base = port + P2P_PORT_OFFSET if p2p_port is None else p2p_port
    plans = [NodePlan(i, f"validator{i}", orgs[i % len(orgs)], port + i, p2p_base + i)
             for i in range(n)]
    api_ports = [p.api_port for p in plans]
    p2p_ports = [p.p2p_port for p in plans if p.p2p_port is not None]
    for what, ports in (("API", api_ports), ("p2p", p2p_ports)):
        if ports[0] < 1 or ports[-1] > 65535:
            raise ConfigError(f"{what} ports {ports[0]}..{ports[-1]} of {n} validators are "
                              "not all within 1..65535")
    if set(api_ports) & set(p2p_ports):
        raise ConfigError(f"API ports {api_ports[0]}..{api_ports[-1]} and p2p ports "
                          f"{p2p_ports[0]}..{p2p_ports[-1]} overlap; choose another p2p port")
    return plans


@dataclass(frozen=True)
class ManagerPlan:
    """Where organization ``org``'s transaction manager listens."""

    org: str
    local_port: int
    peer_port: int


def plan_managers(orgs: Sequence[str], port: int, tm_port: int | None,
                  nodes: Sequence[NodePlan]) -> list[ManagerPlan]:
    """One manager per organization, ports from ``tm_port`` (default ``port + 200``);
    ``ConfigError`` when a port is out of range or one the nodes use."""
    base = port + TM_PORT_OFFSET if tm_port is None else tm_port
    plans = [ManagerPlan(o, base + 2 * i, base + 2 * i + 1) for i, o in enumerate(orgs)]
    last = plans[-1].peer_port
    if base < 1 or last > 65535:
        raise ConfigError(f"transaction manager ports {base}..{last} are not all within "
                          "1..65535; choose another manager port")
    used = {n.api_port for n in nodes} | {n.p2p_port for n in nodes if n.p2p_port}
    if used & set(range(base, last + 1)):
        raise ConfigError(f"transaction manager ports {base}..{last} overlap the nodes' "
                          "API or p2p ports; choose another manager port")
    return plans
