"""The simulator itself: it must catch a forking protocol and a stalled one, and replay
a seed exactly. Two deliberately broken toy protocols stand in for real ones."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import pytest

from consortia.consensus.core import Action, BatchReady, Commit, Event, Tick, WakeAt
from consortia.testing import Faults, SimSupport, SimulationFailure, run_simulation
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
