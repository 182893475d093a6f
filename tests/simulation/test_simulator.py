"""The simulator itself: it must catch a forking protocol and a stalled one, and replay
a seed exactly; with reconfiguration its changes must really commit, reach joined
validators (crashes included), and catch a protocol that ignores them. Deliberately
broken toy protocols stand in for real ones."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest

from consortia.consensus.core import Action, BatchReady, Commit, Event, Tick, WakeAt
from consortia.testing import Faults, SimSupport, SimulationFailure, run_simulation
from consortia.testing.sim import Simulation, main, replay_command
from consortia.types.block import Block, Certificate


class _Selfish:
    """Every node commits its own proposals at once: forks as soon as two propose."""

    def __init__(self, node_id: str, support: SimSupport) -> None:
        self.node_id = node_id
        self.support = support

    def step(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            return [WakeAt(event.now_ms + 100)]
        if isinstance(event, BatchReady):
            p = self.support.propose(event.now_ms, self.node_id)
            if p is not None:
                cert = Certificate(p.header.height, 0, p.hash, ())
                return [Commit(Block(p.header, p.header_bytes, cert, p.envelopes), p)]
        return []

    def status(self) -> dict[str, Any]:
        return {"leader": None}


class _Mute(_Selfish):
    """Never commits anything: every run must fail liveness."""

    def step(self, event: Event) -> list[Action]:
        return []


def _module(name: str, cls: type) -> ModuleType:
    mod = ModuleType(name)
    mod.PROTOCOL = name  # type: ignore[attr-defined]
    mod.make_core = lambda node_id, support, rng, durable: cls(node_id, support)  # type: ignore[attr-defined]
    sys.modules.setdefault(name, mod)
    return mod


QUIET = Faults(partitions=False, crashes=False, drop=0, duplicate=0, fault_ms=500,
               healed_ms=1000)


def test_a_forking_protocol_is_caught_with_its_seed() -> None:
    with pytest.raises(SimulationFailure) as exc:
        run_simulation(_module("selfish", _Selfish), 3, seed=7, faults=QUIET)
    assert exc.value.seed == 7
    assert "safety" in exc.value.reason and "height 1" in exc.value.reason
    assert exc.value.trace, "a failure carries the trace of the last events"


def test_a_protocol_that_never_commits_fails_liveness() -> None:
    with pytest.raises(SimulationFailure) as exc:
        run_simulation(_module("mute", _Mute), 4, seed=3, faults=QUIET)
    assert "liveness" in exc.value.reason


def test_a_single_node_cannot_fork_and_the_run_replays_exactly() -> None:
    mod = _module("selfish", _Selfish)
    faults = Faults(fault_ms=1500, healed_ms=1500)
    a = run_simulation(mod, 1, seed=11, faults=faults)
    b = run_simulation(mod, 1, seed=11, faults=faults)
    assert a.heights["v0"] > 10
    assert a == b


def test_sim_support_refuses_bad_blocks() -> None:
    keys = {"v0": b"k" * 32, "v1": b"j" * 32}
    s = SimSupport("v0", ("v0", "v1"), keys)
    s.submit(b"tx:1")
    p = s.propose(5, "v0")
    assert p is not None
    assert s.validate(p.header_bytes, p.envelopes).hash == p.hash
    forged = s.propose_with((b"bad:1",), 5, "v0")
    with pytest.raises(Exception, match="invalid"):
        s.validate(forged.header_bytes, forged.envelopes)
    assert s.verify("v0", b"m", s.sign(b"m"))
    assert not s.verify("v1", b"m", s.sign(b"m"))
    assert not s.verify("v9", b"m", s.sign(b"m"))


# -- validator set changes (``Faults.reconfigure``) -----------------------------------------

RECONFIG = Faults(fault_ms=4_000, healed_ms=4_000, reconfigure=2)


@pytest.mark.parametrize(("protocol", "nodes", "byzantine"), [("raft", 3, 0), ("pbft", 4, 1)])
def test_reconfiguration_adds_spares_and_removes_validators(protocol: str, nodes: int,
                                                            byzantine: int) -> None:
    """The scheduler's changes commit: the final set is the initial one plus the spares
    added minus the validators removed (never a Byzantine one, never below the safe
    size), added validators vote in later certificates and removed ones never again."""
    faults = replace(RECONFIG, byzantine=byzantine)
    initial = {f"v{i}" for i in range(nodes)}
    spares = {f"v{nodes}", f"v{nodes + 1}"}
    smallest = 3 if protocol == "raft" else 4
    changed = voted = 0
    for seed in range(4):
        sim = Simulation(protocol, nodes, seed, faults)
        r = sim.run()
        expected = set(initial)
        for kind, node, _ in r.changes:
            if kind == "add":
                assert node in spares - expected
                expected.add(node)
            else:
                assert node in expected & initial - sim.byzantine
                expected.remove(node)
            assert len(expected) >= smallest
        assert set(r.validators) == expected
        changed += expected != initial
        top = max((i for i in sim.instances.values() if not i.byzantine),
                  key=lambda i: i.support.height)
        voters = {h: {v.validator_id for v in c.block.certificate.votes}
                  for h, c in enumerate(top.support.chain, 1)}
        for kind, node, height in r.changes:
            later = set().union(*(voters[h] for h in voters if h > height))
            if kind == "add" and node in expected:
                voted += node in later
            elif kind == "remove":
                assert node not in later
    assert changed == 4, "the validator set ended as it began"
    assert voted >= 4, "validators added hardly ever voted"


@pytest.mark.parametrize(("protocol", "nodes"), [("raft", 3), ("pbft", 4)])
def test_joined_validators_crash_and_restart_from_durable_state(protocol: str,
                                                                 nodes: int) -> None:
    """Crashes hit validators added during the run too; they restart from their durable
    state and ledger and keep committing."""
    restarts: list[tuple[str, int, int]] = []
    for seed in range(16):
        sim = Simulation(protocol, nodes, seed, RECONFIG)
        restart = sim._restart

        def record(node: str, sim: Simulation = sim, restart: Any = restart,
                   seed: int = seed) -> None:
            assert sim.reconf is not None
            if node in sim.spares and node in sim.reconf.members:
                restarts.append((node, seed, sim.instances[node].support.height))
            restart(node)

        sim._restart = record  # type: ignore[method-assign]
        r = sim.run()
        assert all(r.heights[n] > h for n, s, h in restarts if s == seed and n in r.validators)
    assert len(restarts) >= 3, f"joined validators hardly ever crashed: {restarts}"


class _Blind:
    """A support that hides validator set changes from the core (a protocol that ignores
    them): certificates go on counting the initial set."""

    def __init__(self, support: SimSupport) -> None:
        self._support = support
        self._initial = support.validators()

    def validators(self) -> tuple[str, ...]:
        return self._initial

    def __getattr__(self, name: str) -> Any:
        return getattr(self._support, name)


def test_a_protocol_blind_to_validator_set_changes_is_caught() -> None:
    import consortia.consensus.raft as raft

    blind = ModuleType("raft")
    blind.PROTOCOL = "raft"  # type: ignore[attr-defined]
    blind.make_core = lambda node_id, support, rng, durable: raft.make_core(  # type: ignore[attr-defined]
        node_id, _Blind(support), rng, durable)
    with pytest.raises(SimulationFailure) as exc:
        run_simulation(blind, 3, seed=1, faults=RECONFIG)
    assert "certificate" in exc.value.reason and "fewer than a quorum" in exc.value.reason


def test_a_reconfiguring_run_replays_exactly_and_the_cli_names_it() -> None:
    a = run_simulation("pbft", 4, 5, replace(RECONFIG, byzantine=1, byzantine_mode="mutate"))
    b = run_simulation("pbft", 4, 5, replace(RECONFIG, byzantine=1, byzantine_mode="mutate"))
    assert a == b and a.changes
    assert replay_command("pbft", 4, 5, replace(RECONFIG, byzantine=1)) == (
        "python -m consortia.testing.sim --protocol pbft --nodes 4 --byzantine 1 --mode twins "
        "--fault-ms 4000 --healed-ms 4000 --reconfig 2 --seed 5")
    assert main(["--protocol", "raft", "--nodes", "3", "--seed", "5", "--fault-ms", "4000",
                 "--healed-ms", "4000", "--reconfig"]) == 0
