"""Validator set changes under the seeded simulator (``Faults.reconfigure``): two spare
nodes follow outside the initial set; during the run the simulator adds them and removes
honest validators of the initial set by configuration blocks, one change at a time,
while every fault stays on — drops, duplicates, delays, partitions, crashes and
restarts (of joined validators too) and, for pbft, Byzantine validators (twins or
mutate). Safety and certificates (a quorum of the set in force at each height) are
checked after every commit; at the end every honest validator of the final set must
have committed past the heal, and the last change submitted must have committed.

``CONSORTIA_SIM_SEEDS`` (default 500) / 5 seeds run per configuration, with phases of
4 s each (the pbft runs' lengths): a failure prints the command that replays it.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from consortia.testing import Faults, SimulationFailure, SimulationResult, run_simulation
from consortia.testing.sim import replay_command
from consortia.types.errors import ConsortiaError

SEEDS = int(os.environ.get("CONSORTIA_SIM_SEEDS", "500"))
RUNS = max(1, SEEDS // 5)
FAULT_MS = 4_000
HEALED_MS = 4_000


def faults_for(protocol: str, nodes: int, seed: int) -> Faults:
    """pbft: f Byzantine validators, one fewer every third seed (so that members crash
    too: the simulator keeps at most f validators faulty, Byzantine ones included)."""
    byzantine, mode = 0, "twins"
    if protocol == "pbft":
        f = (nodes - 1) // 3
        byzantine = f if seed % 3 != 2 else f - 1
        mode = "twins" if seed % 2 == 0 else "mutate"
    return Faults(byzantine=byzantine, byzantine_mode=mode, fault_ms=FAULT_MS,
                  healed_ms=HEALED_MS, reconfigure=2)


def run(protocol: str, nodes: int, seed: int) -> SimulationResult:
    faults = faults_for(protocol, nodes, seed)
    try:
        return run_simulation(protocol, nodes, seed, faults)
    except (SimulationFailure, ConsortiaError) as exc:  # ConsortiaError: a core gave up
        pytest.fail(f"{exc}; replay: {replay_command(protocol, nodes, seed, faults)}")


@pytest.mark.parametrize(("protocol", "nodes"), [("raft", 3), ("raft", 5), ("pbft", 4),
                                                 ("pbft", 7)])
def test_validator_set_changes_under_faults(protocol: str, nodes: int) -> None:
    started = time.perf_counter()
    kinds = Counter[str]()
    for seed in range(400_000, 400_000 + RUNS):
        r = run(protocol, nodes, seed)
        kinds.update(kind for kind, _, _ in r.changes)
    # Not only safe and live: the set really changed, again and again.
    assert kinds["add"] >= RUNS and kinds["remove"] >= RUNS // 2, kinds
    per_seed = (time.perf_counter() - started) / RUNS
    print(f"{protocol}, {nodes} validators + 2 spares: {RUNS} seeds, "
          f"{per_seed * 1000:.0f} ms per seed, changes {dict(kinds)}")


@pytest.mark.parametrize(("nodes", "seed"), [(3, 6), (3, 122), (3, 142), (5, 20), (5, 101)])
def test_raft_runs_that_found_bugs(nodes: int, seed: int) -> None:
    """Runs (the CLI's phases, ``--reconfig 2``) that failed liveness before two raft
    fixes: a node whose ledger was behind a configuration block ignored a leader that
    validators added after it (6, 122, 20, 101: a spare, or a validator behind an add);
    a validator added after the leader compacted its log was told too low a compaction
    height and waited for certificates the leader no longer had (142)."""
    faults = Faults(reconfigure=2)
    try:
        run_simulation("raft", nodes, seed, faults)
    except (SimulationFailure, ConsortiaError) as exc:
        pytest.fail(f"{exc}; replay: {replay_command('raft', nodes, seed, faults)}")


def test_pbft_restart_right_after_a_configuration_block() -> None:
    """v0 and v6 crash and restart at height 7, the block that added v8, before height 8
    commits. Each view change at height 8 carries the certificate of block 7, signed under
    the old set: a core rebuilt there must still check it under that set (the support's
    ``previous_validators``), or no quorum of 6 forms in any view and nothing commits again.
    Also seeds 1028 (pbft 4, retain 4) and 1178 (pbft 7, twins, retain 4)."""
    for nodes, seed, faults in [
            (7, 1207, Faults(byzantine=1, byzantine_mode="mutate", reconfigure=2)),
            (4, 1028, Faults(retain_blocks=4, reconfigure=2)),
            (7, 1178, Faults(byzantine=1, byzantine_mode="twins", retain_blocks=4,
                             reconfigure=2))]:
        try:
            run_simulation("pbft", nodes, seed, faults)
        except (SimulationFailure, ConsortiaError) as exc:
            pytest.fail(f"{exc}; replay: {replay_command('pbft', nodes, seed, faults)}")
