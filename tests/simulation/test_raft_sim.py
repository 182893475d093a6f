"""Raft under the seeded simulator: drops, duplicates, delays and reordering, partitions
(random halves and around the leader), crashes and restarts from durable state — with
safety (no two validators commit different blocks at a height) checked after every
commit and liveness (every validator commits past the height of the heal) at the end.

``CONSORTIA_SIM_SEEDS`` sets how many seeds run per configuration (default 500). A
failure names its seed and the command that replays it with its trace.
"""

from __future__ import annotations

import os
import time

import pytest

from consortia.testing import Faults, SimulationFailure, run_simulation
from consortia.types.errors import ConsortiaError

SEEDS = int(os.environ.get("CONSORTIA_SIM_SEEDS", "500"))


@pytest.mark.parametrize("nodes", [3, 5])
def test_raft_is_safe_and_live_under_faults(nodes: int) -> None:
    faults = Faults()  # the CLI's defaults, so the replay command below is exact
    started = time.perf_counter()
    heights = []
    for seed in range(SEEDS):
        try:
            result = run_simulation("raft", nodes, seed, faults)
        except (SimulationFailure, ConsortiaError) as exc:  # ConsortiaError: a core gave up
            pytest.fail(f"{exc}; replay: python -m consortia.testing.sim --protocol raft "
                        f"--nodes {nodes} --seed {seed}")
        heights.append(min(result.heights.values()))
    per_seed = (time.perf_counter() - started) / max(SEEDS, 1)
    print(f"raft, {nodes} nodes: {SEEDS} seeds, {per_seed * 1000:.0f} ms per seed, "
          f"lowest final height {min(heights, default=0)}")


@pytest.mark.parametrize("nodes", [3, 5])
def test_raft_catches_up_from_ledgers_when_logs_are_short(nodes: int) -> None:
    """The leader keeps only 4 blocks of log behind it: a validator that was down or cut
    off gets a snapshot (where the log starts) and fetches the committed blocks from its
    peers' ledgers, verifying each certificate, while the network keeps committing."""
    faults = Faults(retain_blocks=4)
    for seed in range(max(1, SEEDS // 5)):
        try:
            run_simulation("raft", nodes, seed, faults)
        except (SimulationFailure, ConsortiaError) as exc:
            pytest.fail(f"{exc}; replay: python -m consortia.testing.sim --protocol raft "
                        f"--nodes {nodes} --retain 4 --seed {seed}")


def test_a_run_replays_exactly() -> None:
    a = run_simulation("raft", 5, 42, Faults())
    b = run_simulation("raft", 5, 42, Faults())
    assert a == b
    assert min(a.heights.values()) > a.height_at_heal


def test_raft_stays_safe_on_a_lossy_slow_network() -> None:
    """Heavier faults than the default run: a third of messages lost, delays a third of
    the election timeout. Fewer seeds; the point is that safety never depends on timing."""
    faults = Faults(drop=0.3, duplicate=0.1, delay_ms=(1, 100))
    for nodes in (3, 5):
        for seed in range(max(SEEDS // 25, 2)):
            try:
                run_simulation("raft", nodes, seed, faults)
            except (SimulationFailure, ConsortiaError) as exc:  # ConsortiaError: a core gave up
                pytest.fail(f"{exc} (faults {faults})")
