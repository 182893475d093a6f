"""Validator set changes during a simulated run (``Faults.reconfigure``).

Spare nodes run from the start outside the initial validator set: they run the
protocol like every other node but, not being validators, only follow (no one counts
their votes; they hear from a validator once its configuration includes them). At
seeded random times the scheduler submits one configuration transaction to every
node's pool — ``cfg:add:<spare>`` or ``cfg:remove:<id>`` of an honest validator of the
initial set — and submits it again to nodes that lost their pool in a crash, until it
commits. One change at a time: the next waits until every honest member of the new
set has committed the last one (a member that is down is waited for).

Sizes stay safe: raft keeps at least three validators; pbft at least 3b + 1 (and four)
for b Byzantine validators, which are never removed. A change also waits while it
would leave more members down than the set before it or the set after it tolerates.
Everything random comes from its own generator seeded by the run's seed, so runs
without reconfiguration replay as they did before it existed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consortia.testing.sim import Simulation

PERIOD_MS = 50
"""How often the scheduler looks at the network."""
RESUBMIT_MS = 300
"""How often a change not yet committed is submitted again (pools die with crashes)."""
GAP_MS = (200, 1_500)
"""Pause between one change done everywhere and the next one's submission."""


def tolerated(protocol: str, n: int) -> int:
    """How many of n validators may be faulty (down or Byzantine) with progress."""
    return (n - 1) // (3 if protocol == "pbft" else 2)


def min_size(protocol: str, byzantine: int) -> int:
    """The smallest validator set the scheduler leaves (removals stop there)."""
    if protocol == "pbft":
        return max(4, 3 * byzantine + 1)
    return 3


@dataclass
class Change:
    """One validator set change, from submission to commit everywhere."""

    kind: str
    """``add`` or ``remove``."""
    node: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    submitted_ms: int
    height: int | None = None
    """The height of its configuration block (first committed by an honest node)."""
    done_ms: int | None = None
    """When the last honest member of ``after`` committed it."""

    @property
    def tx(self) -> bytes:
        return f"cfg:{self.kind}:{self.node}".encode()


class Reconfigurer:
    """Schedules the changes of one run; the simulation calls ``tick`` every
    ``PERIOD_MS`` and ``on_commit`` for every block an honest node commits."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.seed}:reconfig")
        self.members: tuple[str, ...] = sim.ids
        """The set in force everywhere (the last change done)."""
        self.pending: Change | None = None
        self.changes: list[Change] = []
        self.added: set[str] = set()
        self.min_size = min_size(sim.protocol, len(sim.byzantine))
        f = sim.faults
        self.deadline_ms = f.fault_ms + f.healed_ms // 4
        """No change is submitted after this: the rest of the run shows it completes."""
        self.next_ms = self.rng.randint(*GAP_MS)
        self.sent_ms = 0

    # -- what the simulation asks --------------------------------------------------------

    def sets_in_force(self) -> list[tuple[str, ...]]:
        """The validator sets some honest node may be working with now."""
        p = self.pending
        return [self.members] if p is None else [p.before, p.after]

    def max_down(self, sets: list[tuple[str, ...]] | None = None) -> int:
        """How many members of ``sets`` may be down at once (Byzantine ones count)."""
        sets = sets or self.sets_in_force()
        return min(tolerated(self.sim.protocol, len(s)) for s in sets) - len(self.sim.byzantine)

    def down_members(self, sets: list[tuple[str, ...]] | None = None) -> int:
        union = set().union(*(sets or self.sets_in_force()))
        return sum(1 for i in self.sim.instances.values()
                   if not i.up and not i.byzantine and i.node_id in union)

    def final_set(self) -> tuple[str, ...]:
        """The validator set at the top of the honest chain."""
        honest = [i for i in self.sim.instances.values() if not i.byzantine]
        top = max(honest, key=lambda i: i.support.height)
        return top.support.validators()

    def unfinished(self) -> Change | None:
        """A change submitted that never committed (a liveness failure at the end)."""
        p = self.pending
        return p if p is not None and p.height is None else None

    # -- events --------------------------------------------------------------------------

    def on_commit(self, height: int, envelopes: tuple[bytes, ...]) -> None:
        p = self.pending
        if p is not None and p.height is None and envelopes == (p.tx,):
            p.height = height
            self.sim.trace.append(f"t={self.sim.now} RECONFIG {p.tx.decode()} committed at "
                                  f"height {height}")

    def tick(self) -> None:
        sim = self.sim
        p = self.pending
        if p is not None:
            if p.height is not None and self._done_everywhere(p):
                p.done_ms = sim.now
                self.members = p.after
                self.pending = None
                self.next_ms = sim.now + self.rng.randint(*GAP_MS)
                sim.trace.append(f"t={sim.now} RECONFIG {p.tx.decode()} done everywhere: "
                                 f"{list(p.after)}")
            elif p.height is None and sim.now - self.sent_ms >= RESUBMIT_MS:
                self._submit(p)
        elif self.next_ms <= sim.now <= self.deadline_ms:
            change = self._choose()
            if change is None:
                self.next_ms = sim.now + 4 * PERIOD_MS  # (a member is down: later)
            else:
                self.pending = change
                self.changes.append(change)
                sim.trace.append(f"t={sim.now} RECONFIG submit {change.tx.decode()}")
                self._submit(change)
        sim._push(sim.now + PERIOD_MS, "reconfig", None)

    # -- inside --------------------------------------------------------------------------

    def _done_everywhere(self, p: Change) -> bool:
        assert p.height is not None
        return all(i.support.height >= p.height for i in self.sim.instances.values()
                   if not i.byzantine and i.node_id in p.after)

    def _submit(self, p: Change) -> None:
        self.sent_ms = self.sim.now
        for inst in self.sim.instances.values():
            if inst.up:
                inst.support.submit(p.tx)

    def _choose(self) -> Change | None:
        """An add of a spare that is up, or a removal of an honest validator of the initial
        set, whichever are possible (chosen at random between them)."""
        sim, members = self.sim, self.members
        options: list[tuple[str, list[str]]] = []
        adds = [s for s in sim.spares if s not in self.added and sim.instances[s].up]
        if adds:
            options.append(("add", adds))
        if len(members) - 1 >= self.min_size:
            removes = [v for v in members if v in sim.ids and v not in sim.byzantine]
            if removes:
                options.append(("remove", removes))
        if not options:
            return None
        kind, candidates = options[self.rng.randrange(len(options))]
        node = self.rng.choice(candidates)
        after = (*members, node) if kind == "add" else tuple(v for v in members if v != node)
        sets = [members, after]
        if self.down_members(sets) > self.max_down(sets):
            return None
        if kind == "add":
            self.added.add(node)
        return Change(kind, node, members, after, sim.now)
