"""The seeded network simulator: run consensus cores under faults and check invariants.

A run has a *fault phase* (message drop, duplication, delay and reordering;
partitions into random halves or around the current leader; crashes and restarts
from durable state; up to f Byzantine validators) followed by a *healed phase*
(links and nodes restored, Byzantine validators still misbehaving). After every
commit it checks safety: no two honest validators commit different blocks (or
reach different states) at one height — which, commits being contiguous, also
makes every committed chain a prefix of every other. At the end it checks
liveness: every honest validator committed a height above the best height known
when the faults healed. Everything random comes from the seed.

Protocols plug in by module (``consortia.consensus.<name>``) exposing
``make_core(node_id, support, rng, durable) -> Core`` and, for Byzantine runs,
``mutate(message, rng) -> message`` (a forged or conflicting variant).
"""

from __future__ import annotations

import argparse
import heapq
import importlib
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from consortia.consensus.core import (
    Action,
    BatchReady,
    Broadcast,
    Commit,
    Core,
    Event,
    Persist,
    Receive,
    Send,
    Tick,
    WakeAt,
)
from consortia.testing.simsupport import SimSupport


class SimulationFailure(AssertionError):
    """An invariant broke; the message names the seed and how to replay it."""

    def __init__(self, seed: int, message: str, trace: list[str]) -> None:
        super().__init__(f"seed {seed}: {message}")
        self.seed = seed
        self.reason = message
        self.trace = trace


@dataclass(frozen=True)
class Faults:
    """What can go wrong, and for how long (virtual milliseconds)."""

    drop: float = 0.05
    duplicate: float = 0.03
    delay_ms: tuple[int, int] = (1, 30)
    partitions: bool = True
    crashes: bool = True
    byzantine: int = 0
    """How many validators misbehave (≤ f); see ``byzantine_mode``."""
    byzantine_mode: str = "twins"
    """``twins``: two instances share a validator's key, each talking to half the
    network, so the validator equivocates; ``mutate``: its outgoing messages are
    forged or replaced by conflicting ones with the protocol's ``mutate``."""
    fault_ms: int = 6_000
    healed_ms: int = 8_000
    client_every_ms: int = 25
    batch_every_ms: int = 20
    retain_blocks: int | None = None
    """Not a fault but a squeeze: how many committed blocks a core keeps for peers
    that lag (None: the protocol's default). Small, a validator that was down must
    catch up from its peers' ledgers."""


@dataclass
class SimulationResult:
    protocol: str
    nodes: int
    seed: int
    heights: dict[str, int]
    height_at_heal: int
    delivered: int
    commits: int
    virtual_ms: int


@dataclass
class _Instance:
    name: str
    """Instance name: the validator id, or ``id#a``/``id#b`` for Byzantine twins."""
    node_id: str
    core: Core
    support: SimSupport
    rng: random.Random
    byzantine: bool = False
    side: frozenset[str] | None = None
    """For twins: the honest validators this instance talks to."""
    up: bool = True
    durable: bytes | None = None
    next_wake: int | None = None


@dataclass(order=True)
class _Event:
    at: int
    seq: int
    kind: str = field(compare=False)
    data: Any = field(compare=False)


def _protocol(protocol: str | ModuleType) -> ModuleType:
    if isinstance(protocol, ModuleType):
        return protocol
    return importlib.import_module(f"consortia.consensus.{protocol}")


class Simulation:
    def __init__(self, protocol: str | ModuleType, nodes: int, seed: int,
                 faults: Faults) -> None:
        self.module = _protocol(protocol)
        self.protocol = getattr(self.module, "PROTOCOL", str(protocol))
        self.seed = seed
        self.faults = faults
        self.rng = random.Random(seed)
        self.ids = tuple(f"v{i}" for i in range(nodes))
        keys = {v: random.Random(f"{seed}:{v}").randbytes(32) for v in self.ids}
        self.keys = keys
        byz = set(self.rng.sample(self.ids, faults.byzantine)) if faults.byzantine else set()
        self.byzantine = byz
        self.instances: dict[str, _Instance] = {}
        honest = [v for v in self.ids if v not in byz]
        for i, v in enumerate(self.ids):
            if v in byz and faults.byzantine_mode == "twins":
                half = frozenset(self.rng.sample(honest, len(honest) // 2))
                for tag, side in (("a", half), ("b", frozenset(honest) - half)):
                    self._add(f"{v}#{tag}", v, i, byzantine=True, side=side)
            else:
                self._add(v, v, i, byzantine=v in byz)
        self.queue: list[_Event] = []
        self.seq = 0
        self.now = 0
        self.groups: list[frozenset[str]] | None = None
        self.healed = False
        self.canon: dict[int, tuple[bytes, bytes, str]] = {}
        self.trace: deque[str] = deque(maxlen=60)
        self.delivered = 0
        self.commits = 0
        self.tx_counter = 0
        self.height_at_heal = 0

    def _add(self, name: str, node_id: str, index: int, *, byzantine: bool,
             side: frozenset[str] | None = None) -> None:
        support = SimSupport(node_id, self.ids, self.keys)
        rng = random.Random(f"{self.seed}:{name}:rng")
        core = self._make_core(node_id, support, rng, None)
        self.instances[name] = _Instance(name, node_id, core, support, rng, byzantine, side)

    def _make_core(self, node_id: str, support: SimSupport, rng: random.Random,
                   durable: bytes | None) -> Core:
        retain = self.faults.retain_blocks
        tuning = {} if retain is None else {"retain_blocks": retain}
        return self.module.make_core(node_id, support, rng, durable, **tuning)  # type: ignore[no-any-return]

    # -- scheduling -----------------------------------------------------------------------

    def _push(self, at: int, kind: str, data: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Event(at, self.seq, kind, data))

    def _fail(self, message: str) -> SimulationFailure:
        return SimulationFailure(self.seed, message, list(self.trace))

    # -- links ----------------------------------------------------------------------------

    def _linked(self, a: str, b: str) -> bool:
        if self.groups is None:
            return True
        return any(a in g and b in g for g in self.groups)

    def _targets(self, sender: _Instance, to_node: str) -> list[_Instance]:
        out = []
        for inst in self.instances.values():
            if inst.node_id != to_node or inst.name == sender.name:
                continue
            if sender.side is not None and to_node not in sender.side:
                continue  # a twin talks to its half only
            if inst.side is not None and sender.node_id not in inst.side:
                continue  # and hears from its half only
            out.append(inst)
        return out

    def _send(self, sender: _Instance, to_node: str, message: Any) -> None:
        f = self.faults
        if sender.byzantine and f.byzantine_mode == "mutate" and hasattr(self.module, "mutate"):
            message = self.module.mutate(message, sender.rng)
        for target in self._targets(sender, to_node):
            if not self._linked(sender.node_id, target.node_id):
                continue
            copies = 1
            if not self.healed:
                if self.rng.random() < f.drop:
                    continue
                if self.rng.random() < f.duplicate:
                    copies = 2
            for _ in range(copies):
                delay = self.rng.randint(*f.delay_ms)
                self._push(self.now + delay, "deliver", (target.name, sender.node_id, message))

    # -- stepping -------------------------------------------------------------------------

    def _step(self, inst: _Instance, event: Event) -> None:
        if not inst.up:
            return
        actions: list[Action] = inst.core.step(event)
        for action in actions:
            if isinstance(action, Persist):
                inst.durable = action.state
            elif isinstance(action, Send):
                self._send(inst, action.to, action.message)
            elif isinstance(action, Broadcast):
                for v in self.ids:
                    if v != inst.node_id:
                        self._send(inst, v, action.message)
            elif isinstance(action, Commit):
                self._commit(inst, action)
            elif isinstance(action, WakeAt):
                at = max(action.at_ms, self.now + 1)
                if inst.next_wake is None or at < inst.next_wake or inst.next_wake <= self.now:
                    inst.next_wake = at
                    self._push(at, "tick", inst.name)
            else:
                raise self._fail(f"{inst.name} returned an unknown action {action!r}")

    def _commit(self, inst: _Instance, action: Commit) -> None:
        try:
            c = inst.support.commit(action.block)
        except Exception as exc:
            raise self._fail(f"{inst.name} committed a block its chain refuses: {exc}") from exc
        h = action.block.header.height
        self.commits += 1
        self.trace.append(f"t={self.now} {inst.name} COMMIT h={h} {c.hash.hex()[:12]}")
        if inst.byzantine:
            return
        known = self.canon.get(h)
        if known is None:
            self.canon[h] = (c.hash, c.state, inst.name)
        elif known[0] != c.hash:
            raise self._fail(f"safety: {inst.name} committed block {c.hash.hex()[:16]} at "
                             f"height {h}, {known[2]} committed {known[0].hex()[:16]}")
        elif known[1] != c.state:
            raise self._fail(f"state: {inst.name} and {known[2]} differ at height {h}")

    # -- faults -----------------------------------------------------------------------------

    def _leader(self) -> str | None:
        for inst in self.instances.values():
            if inst.up and not inst.byzantine:
                leader = inst.core.status().get("leader")
                if leader:
                    return str(leader)
        return None

    def _schedule_faults(self) -> None:
        f = self.faults
        t = 0
        honest = [v for v in self.ids if v not in self.byzantine]
        max_down = (len(self.ids) - 1) // (3 if self.protocol == "pbft" else 2)
        max_down = max(0, max_down - len(self.byzantine))
        while f.partitions or f.crashes:
            t += self.rng.randint(300, 1500)
            if t >= f.fault_ms:
                break
            kind = self.rng.choice([k for k, on in (("partition", f.partitions),
                                                   ("crash", f.crashes)) if on])
            length = self.rng.randint(200, 2000)
            if kind == "partition":
                self._push(t, "partition", (self.rng.random() < 0.5, length))
            elif max_down:
                victim = self.rng.choice(honest)
                self._push(t, "crash", (victim, length))
        self._push(f.fault_ms, "heal", None)

    def _partition(self, around_leader: bool, length: int) -> None:
        ids = list(self.ids)
        leader = self._leader() if around_leader else None
        if leader is not None:
            groups = [frozenset([leader]), frozenset(ids) - {leader}]
        else:
            self.rng.shuffle(ids)
            cut = self.rng.randint(1, len(ids) - 1)
            groups = [frozenset(ids[:cut]), frozenset(ids[cut:])]
        self.groups = groups
        self.trace.append(f"t={self.now} PARTITION {[sorted(g) for g in groups]}")
        self._push(self.now + length, "unpartition", groups)

    def _crash(self, node: str, length: int) -> None:
        down = sum(1 for i in self.instances.values() if not i.up)
        limit = (len(self.ids) - 1) // (3 if self.protocol == "pbft" else 2)
        inst = self.instances[node]
        if not inst.up or down >= limit - len(self.byzantine):
            return
        inst.up = False
        self.trace.append(f"t={self.now} CRASH {node}")
        self._push(self.now + length, "restart", node)

    def _restart(self, node: str) -> None:
        inst = self.instances[node]
        if inst.up:
            return
        inst.support.lose_pool()
        inst.core = self._make_core(inst.node_id, inst.support, inst.rng, inst.durable)
        inst.up = True
        inst.next_wake = None
        self.trace.append(f"t={self.now} RESTART {node} at height {inst.support.height}")
        self._step(inst, Tick(self.now))

    def _heal(self) -> None:
        self.healed = True
        self.groups = None
        for name, inst in self.instances.items():
            if not inst.up:
                self._restart(name)
        self.height_at_heal = max((i.support.height for i in self.instances.values()
                                   if not i.byzantine), default=0)
        self.trace.append(f"t={self.now} HEAL at height {self.height_at_heal}")

    # -- run ----------------------------------------------------------------------------------

    def run(self) -> SimulationResult:
        f = self.faults
        end = f.fault_ms + f.healed_ms
        self._schedule_faults()
        self._push(0, "client", None)
        self._push(0, "batch", None)
        for inst in self.instances.values():
            self._step(inst, Tick(0))
        handlers: dict[str, Callable[[Any], None]] = {
            "deliver": self._on_deliver, "tick": self._on_tick, "client": self._on_client,
            "batch": self._on_batch, "partition": lambda d: self._partition(*d),
            "unpartition": self._on_unpartition, "crash": lambda d: self._crash(*d),
            "restart": self._restart, "heal": lambda _: self._heal(),
        }
        while self.queue:
            ev = heapq.heappop(self.queue)
            if ev.at > end:
                break
            self.now = ev.at
            handlers[ev.kind](ev.data)
        honest = [i for i in self.instances.values() if not i.byzantine]
        lagging = [i.name for i in honest if i.support.height <= self.height_at_heal]
        if lagging:
            heights = {i.name: i.support.height for i in self.instances.values()}
            raise self._fail(f"liveness: {', '.join(lagging)} committed nothing above height "
                             f"{self.height_at_heal} in the {f.healed_ms} ms after faults "
                             f"healed (heights {heights})")
        return SimulationResult(self.protocol, len(self.ids), self.seed,
                                {i.name: i.support.height for i in self.instances.values()},
                                self.height_at_heal, self.delivered, self.commits, self.now)

    def _on_deliver(self, data: tuple[str, str, Any]) -> None:
        name, sender, message = data
        inst = self.instances[name]
        if not inst.up or not self._linked(sender, inst.node_id):
            return
        self.delivered += 1
        self._step(inst, Receive(sender, message))

    def _on_tick(self, name: str) -> None:
        inst = self.instances[name]
        if inst.next_wake is not None and inst.next_wake <= self.now:
            inst.next_wake = None
        self._step(inst, Tick(self.now))

    def _on_client(self, _: None) -> None:
        self.tx_counter += 1
        tx = f"tx:{self.seed}:{self.tx_counter}".encode()
        for inst in self.instances.values():
            if inst.up:
                inst.support.submit(tx)
        self._push(self.now + self.faults.client_every_ms, "client", None)

    def _on_batch(self, _: None) -> None:
        for inst in self.instances.values():
            if inst.up and inst.support.pending:
                # Twins share a pool and a clock; a 1 ms skew makes the ``#b`` twin build a
                # different block than ``#a`` when both lead, so a twin primary equivocates.
                skew = 1 if inst.name.endswith("#b") else 0
                self._step(inst, BatchReady(self.now + skew))
        self._push(self.now + self.faults.batch_every_ms, "batch", None)

    def _on_unpartition(self, groups: list[frozenset[str]]) -> None:
        if self.groups == groups:
            self.groups = None
            self.trace.append(f"t={self.now} PARTITION healed")


def run_simulation(protocol: str | ModuleType, nodes: int, seed: int,
                   faults: Faults | None = None) -> SimulationResult:
    """Run one seeded simulation; raises ``SimulationFailure`` when an invariant breaks."""
    return Simulation(protocol, nodes, seed, faults or Faults()).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m consortia.testing.sim",
                                 description="Seeded fault simulation of a consensus protocol.")
    ap.add_argument("--protocol", required=True, choices=["raft", "pbft"])
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    ap.add_argument("--first", type=int, default=0, help="first seed")
    ap.add_argument("--seed", type=int, help="replay exactly this seed (prints its trace)")
    ap.add_argument("--byzantine", type=int, default=0)
    ap.add_argument("--mode", default="twins", choices=["twins", "mutate"])
    ap.add_argument("--fault-ms", type=int, default=Faults.fault_ms)
    ap.add_argument("--healed-ms", type=int, default=Faults.healed_ms)
    ap.add_argument("--retain", type=int, default=None,
                    help="committed blocks a core keeps for lagging peers (default: the "
                         "protocol's); small values force catching up from ledgers")
    args = ap.parse_args(argv)
    faults = Faults(byzantine=args.byzantine, byzantine_mode=args.mode,
                    fault_ms=args.fault_ms, healed_ms=args.healed_ms,
                    retain_blocks=args.retain)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    t0 = time.perf_counter()
    for s in seeds:
        try:
            r = run_simulation(args.protocol, args.nodes, s, faults)
        except SimulationFailure as exc:
            print(f"FAILED {exc}", file=sys.stderr)
            if args.seed is not None:
                print("\n".join(exc.trace), file=sys.stderr)
            print(f"replay: python -m consortia.testing.sim --protocol {args.protocol} "
                  f"--nodes {args.nodes} --byzantine {args.byzantine} --mode {args.mode} "
                  f"--fault-ms {args.fault_ms} --healed-ms {args.healed_ms} "
                  + (f"--retain {args.retain} " if args.retain is not None else "")
                  + f"--seed {s}",
                  file=sys.stderr)
            return 1
        if args.seed is not None:
            print(r)
    print(f"{len(seeds)} seeds passed: {args.protocol}, {args.nodes} nodes, "
          f"{args.byzantine} byzantine ({args.mode}) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
