"""Public test helpers: a seeded, deterministic simulator of whole consensus networks.

Every validator of a network runs in one process over a virtual clock and simulated
links (drop, duplication, delay, reordering, partitions), with crashes and
restarts from durable state and up to f Byzantine validators. Invariants are
checked after every step; a failing run names its seed, and the same seed
replays it exactly. ``python -m consortia.testing.sim --help``.
"""

from consortia.testing.sim import Faults, SimulationFailure, SimulationResult, run_simulation
from consortia.testing.simsupport import SimSupport

__all__ = ["Faults", "SimSupport", "SimulationFailure", "SimulationResult", "run_simulation"]
