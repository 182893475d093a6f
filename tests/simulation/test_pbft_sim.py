"""PBFT under the seeded simulator (consortia.testing): partitions, crashes and restarts,
message drop, duplication, delay and reordering, and f Byzantine validators — twins
(an equivocating validator) or mutate (forged, conflicting and malformed messages).
The simulator checks safety after every commit and liveness after the faults heal.

``CONSORTIA_SIM_SEEDS`` (default 500) seeds run per network size with Byzantine
validators; runs without Byzantine validators (where crashes happen: the simulator
keeps at most f validators down *including* the Byzantine ones) use a fifth of that.
The phases are shorter than the simulator's defaults so that 2 x 500 seeds take a few
minutes; every fault stays on.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any

import pytest

from consortia.consensus.pbft.messages import PrePrepare
from consortia.testing import Faults, SimulationFailure, SimulationResult, run_simulation
from consortia.testing.sim import Simulation

SEEDS = int(os.environ.get("CONSORTIA_SIM_SEEDS", "500"))
FAULT_MS = 4_000
HEALED_MS = 4_000


def _faults(byzantine: int, mode: str, retain: int | None = None) -> Faults:
    return Faults(byzantine=byzantine, byzantine_mode=mode, fault_ms=FAULT_MS,
                  healed_ms=HEALED_MS, retain_blocks=retain)


def _run(nodes: int, seed: int, byzantine: int, mode: str,
         retain: int | None = None) -> SimulationResult:
    try:
        return run_simulation("pbft", nodes, seed, _faults(byzantine, mode, retain))
    except SimulationFailure as exc:
        pytest.fail(
            f"{exc}; replay: python -m consortia.testing.sim --protocol pbft --nodes {nodes} "
            f"--byzantine {byzantine} --mode {mode} --fault-ms {FAULT_MS} "
            f"--healed-ms {HEALED_MS} " + (f"--retain {retain} " if retain else "")
            + f"--seed {seed}")


@pytest.mark.parametrize("nodes", [4, 7])
def test_byzantine_validators_twins_and_mutate(nodes: int) -> None:
    f = (nodes - 1) // 3
    progress = Counter[str]()
    for seed in range(SEEDS):
        mode = "twins" if seed % 2 == 0 else "mutate"
        r = _run(nodes, seed, f, mode)
        progress[mode] += min(r.heights.values()) - r.height_at_heal
    # Not just alive at the end: the honest majority keeps ordering with f liars present.
    for mode in ("twins", "mutate"):
        assert progress[mode] >= SEEDS // 2 * 5, progress


@pytest.mark.parametrize("nodes", [4, 7])
def test_crashes_without_byzantine_validators(nodes: int) -> None:
    for seed in range(max(1, SEEDS // 5)):
        _run(nodes, 100_000 + seed, 0, "twins")


def test_crashes_with_a_byzantine_validator() -> None:
    """Seven validators, one Byzantine: one more may crash and restart from durable state."""
    for seed in range(max(1, SEEDS // 5)):
        _run(7, 200_000 + seed, 1, "twins" if seed % 2 == 0 else "mutate")


@pytest.mark.parametrize("nodes", [4, 7])
def test_catching_up_from_ledgers_past_lying_peers(nodes: int) -> None:
    """Validators keep only 4 committed blocks in memory, so one that was down catches up
    from its peers' ledgers — with f Byzantine validators among those peers, forging or
    replacing what they serve (mutate) or equivocating (twins), and crashes for 7 nodes."""
    f = (nodes - 1) // 3
    for seed in range(max(1, SEEDS // 5)):
        byzantine = f if seed % 2 == 0 or nodes == 4 else f - 1
        _run(nodes, 300_000 + seed, byzantine, "mutate" if seed % 4 < 2 else "twins", retain=4)


def _seeds_where(nodes: int, byzantine: set[str], mode: str, count: int) -> list[int]:
    out: list[int] = []
    seed = 0
    while len(out) < count:
        if Simulation("pbft", nodes, seed, _faults(len(byzantine), mode)).byzantine == byzantine:
            out.append(seed)
        seed += 1
    return out


@pytest.mark.parametrize("nodes", [4, 7])
def test_an_equivocating_primary_forks_nothing(nodes: int) -> None:
    """The primary of view 0 is Byzantine (mutate): it sends different recipients
    different, validly signed, valid blocks for the same view and height. The honest
    validators still agree (the simulator checks every commit) and keep committing.

    (Twins would not do: both twins have the same pool and clock, so they build the same
    block byte for byte.)"""
    byz = {"v0"} if nodes == 4 else {"v0", "v1"}
    conflicts = 0
    for seed in _seeds_where(nodes, byz, "mutate", 4):
        sim = Simulation("pbft", nodes, seed, _faults(len(byz), "mutate"))
        proposals: dict[tuple[int, int], set[bytes]] = defaultdict(set)
        deliver = sim._on_deliver

        def record(data: tuple[str, str, Any], deliver: Any = deliver,
                   proposals: Any = proposals) -> None:
            _, sender, m = data
            if sender == "v0" and isinstance(m, PrePrepare) and m.signer == "v0":
                proposals[(m.view, m.height)].add(m.digest)
            deliver(data)

        sim._on_deliver = record  # type: ignore[method-assign]
        try:
            r = sim.run()
        except SimulationFailure as exc:
            pytest.fail(f"{exc}; mutate seed {seed}")
        assert min(h for name, h in r.heights.items() if name not in byz) > r.height_at_heal
        conflicts += sum(len(d) > 1 for d in proposals.values())
    assert conflicts >= 4, "the primary hardly equivocated: the test tests nothing"


def test_runs_replay_exactly() -> None:
    a = run_simulation("pbft", 4, 11, _faults(1, "mutate"))
    b = run_simulation("pbft", 4, 11, _faults(1, "mutate"))
    assert a == b
