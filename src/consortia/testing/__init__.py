"""Public test helpers: a seeded, deterministic simulator of whole consensus networks.

Every validator of a network runs in one process over a virtual clock and simulated
links (drop, duplication, delay, reordering, partitions), with crashes and
restarts from durable state and up to f Byzantine validators. Invariants are
checked after every step; a failing run names its seed, and the same seed
replays it exactly. ``python -m consortia.testing.sim --help``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Faults", "SimSupport", "SimulationFailure", "SimulationResult", "replay_command",
           "run_simulation"]


def __getattr__(name: str) -> Any:
    # Imported lazily so ``python -m consortia.testing.sim`` does not load ``sim`` twice.
    if name == "SimSupport":
        from consortia.testing.simsupport import SimSupport
        return SimSupport
    if name in __all__:
        from consortia.testing import sim
        return getattr(sim, name)
    raise AttributeError(name)
