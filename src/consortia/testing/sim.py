"""The seeded network simulator: run consensus cores under faults and check invariants.

A run has a *fault phase* (message drop, duplication, delay and reordering;
partitions into random halves or around the current leader; crashes and restarts
from durable state; up to f Byzantine validators) followed by a *healed phase*
(links and nodes restored, Byzantine validators still misbehaving). After every
commit it checks safety: no two honest nodes commit different blocks (or reach
different states) at one height — which, commits being contiguous, also makes every
committed chain a prefix of every other — and, for raft and pbft, that the block's
certificate is a quorum of valid votes of the validator set in force at its height.
At the end it checks liveness: every honest validator of the final set committed a
height above the best height known when the faults healed. With
``Faults.reconfigure``, spare nodes follow outside the set and the validator set
changes during the run (``consortia.testing.reconfig``). Everything random comes
from the seed.

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
from consortia.consensus.pbft.verify import quorum_size
from consortia.testing.reconfig import PERIOD_MS, Reconfigurer, tolerated
from consortia.testing.simsupport import SimSupport
from consortia.types.block import Block, Certificate, vote_message
from consortia.types.errors import ConsortiaError

_QUORUM: dict[str, Callable[[int], int]] = {"raft": lambda n: n // 2 + 1, "pbft": quorum_size}
"""Votes a commit certificate needs, by protocol, for a set of n validators."""


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
    reconfigure: int = 0
    """Spare nodes started outside the initial validator set (0: the set never changes).
    They follow as non-voters; during the run the set changes one validator at a time —
    a spare added, an honest validator of the initial set removed — by configuration
    transactions, never below a safe size (``consortia.testing.reconfig``)."""


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
    validators: tuple[str, ...] = ()
    """The validator set at the top of the honest chain when the run ended."""
    changes: tuple[tuple[str, str, int], ...] = ()
    """Validator set changes committed: (``add``/``remove``, node, height)."""


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
        """The initial validator set."""
        self.spares = tuple(f"v{i}" for i in range(nodes, nodes + faults.reconfigure))
        """Nodes outside the initial set, which the reconfiguration may add."""
        self.all_ids = self.ids + self.spares
        keys = {v: random.Random(f"{seed}:{v}").randbytes(32) for v in self.all_ids}
        self.keys = keys
        byz = set(self.rng.sample(self.ids, faults.byzantine)) if faults.byzantine else set()
        self.byzantine = byz
        self.instances: dict[str, _Instance] = {}
        honest = [v for v in self.all_ids if v not in byz]
        for i, v in enumerate(self.all_ids):
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
        self.certified: set[tuple[Certificate, tuple[str, ...]]] = set()
        """Certificates already checked, with the set they were checked against."""
        self.reconf = Reconfigurer(self) if self.spares else None

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
        try:
            actions: list[Action] = inst.core.step(event)
        except ConsortiaError as exc:  # a core that detects a broken invariant stops loudly
            raise self._fail(f"{inst.name} stopped: {type(exc).__name__}: {exc}") from exc
        for action in actions:
            if isinstance(action, Persist):
                inst.durable = action.state
            elif isinstance(action, Send):
                self._send(inst, action.to, action.message)
            elif isinstance(action, Broadcast):
                # To the validators of the configuration in force at the sender, as the
                # transport does (a spare hears from a validator once it is added there).
                for v in inst.support.validators():
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
        validators = inst.support.validators()  # the set in force at this height
        try:
            c = inst.support.commit(action.block)
        except Exception as exc:
            raise self._fail(f"{inst.name} committed a block its chain refuses: {exc}") from exc
        h = action.block.header.height
        self.commits += 1
        self.trace.append(f"t={self.now} {inst.name} COMMIT h={h} {c.hash.hex()[:12]}")
        if inst.byzantine:
            return
        self._check_certificate(inst, action.block, c.hash, validators)
        if self.reconf is not None:
            self.reconf.on_commit(h, action.block.envelopes)
        known = self.canon.get(h)
        if known is None:
            self.canon[h] = (c.hash, c.state, inst.name)
        elif known[0] != c.hash:
            raise self._fail(f"safety: {inst.name} committed block {c.hash.hex()[:16]} at "
                             f"height {h}, {known[2]} committed {known[0].hex()[:16]}")
        elif known[1] != c.state:
            raise self._fail(f"state: {inst.name} and {known[2]} differ at height {h}")

    def _check_certificate(self, inst: _Instance, block: Block, block_hash: bytes,
                           validators: tuple[str, ...]) -> None:
        """The certificate an honest node committed with: for this block, distinct voters
        of the set in force, each vote valid, at least the protocol's quorum of them."""
        quorum = _QUORUM.get(self.protocol)
        cert, h = block.certificate, block.header.height
        if quorum is None or (cert, validators) in self.certified:
            return
        voters = [v.validator_id for v in cert.votes]
        message = vote_message(inst.support.chain_id, h, cert.round, cert.block_hash)
        problem = (
            "certifies another block" if cert.height != h or cert.block_hash != block_hash
            else "has a vote twice" if len(set(voters)) != len(voters)
            else f"has votes of non-validators {sorted(set(voters) - set(validators))}"
            if not set(voters) <= set(validators)
            else f"has {len(voters)} votes, fewer than a quorum of {list(validators)}"
            if len(voters) < quorum(len(validators))
            else "has an invalid vote"
            if not all(inst.support.verify(v.validator_id, message, v.signature)
                       for v in cert.votes)
            else None)
        if problem is not None:
            raise self._fail(f"certificate: {inst.name} committed height {h} with a "
                             f"certificate that {problem}")
        if len(self.certified) >= 4096:
            self.certified.clear()
        self.certified.add((cert, validators))

    # -- faults -----------------------------------------------------------------------------

    def _members(self) -> tuple[str, ...]:
        """The validator set in force everywhere (the initial one without reconfiguration)."""
        return self.ids if self.reconf is None else self.reconf.members

    def _leader(self) -> str | None:
        members = self._members()
        for inst in self.instances.values():
            if inst.up and not inst.byzantine and inst.node_id in members:
                leader = inst.core.status().get("leader")
                if leader:
                    return str(leader)
        return None

    def _schedule_faults(self) -> None:
        f = self.faults
        t = 0
        honest = [v for v in self.all_ids if v not in self.byzantine]
        max_down = max(0, tolerated(self.protocol, len(self.ids)) - len(self.byzantine))
        if self.spares:
            max_down = 1  # (spares may crash whatever the set tolerates: ``_crash`` decides)
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
        ids = list(self.all_ids)
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
        inst = self.instances[node]
        if not inst.up:
            return
        if self.reconf is None:
            down = sum(1 for i in self.instances.values() if not i.up)
            if down >= tolerated(self.protocol, len(self.ids)) - len(self.byzantine):
                return
        else:
            # Members of any set in force stay within what every such set tolerates; a node
            # outside them all (a spare not added, a validator removed) may always crash.
            sets = self.reconf.sets_in_force()
            if any(node in s for s in sets) \
                    and self.reconf.down_members(sets) >= self.reconf.max_down(sets):
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
        if self.reconf is not None:
            self._push(PERIOD_MS, "reconfig", None)
        for inst in self.instances.values():
            self._step(inst, Tick(0))
        handlers: dict[str, Callable[[Any], None]] = {
            "deliver": self._on_deliver, "tick": self._on_tick, "client": self._on_client,
            "batch": self._on_batch, "partition": lambda d: self._partition(*d),
            "unpartition": self._on_unpartition, "crash": lambda d: self._crash(*d),
            "restart": self._restart, "heal": lambda _: self._heal(),
            "reconfig": self._on_reconfig,
        }
        while self.queue:
            ev = heapq.heappop(self.queue)
            if ev.at > end:
                break
            self.now = ev.at
            handlers[ev.kind](ev.data)
        return self._check_liveness()

    def _check_liveness(self) -> SimulationResult:
        """Every honest validator of the final set committed above the height of the heal
        (a removed validator may stop; a spare never added only follows), and the last
        validator set change submitted committed."""
        f = self.faults
        heights = {i.name: i.support.height for i in self.instances.values()}
        final = self.reconf.final_set() if self.reconf is not None else self.ids
        honest = [i for i in self.instances.values() if not i.byzantine and i.node_id in final]
        lagging = [i.name for i in honest if i.support.height <= self.height_at_heal]
        if lagging:
            raise self._fail(f"liveness: {', '.join(lagging)} committed nothing above height "
                             f"{self.height_at_heal} in the {f.healed_ms} ms after faults "
                             f"healed (heights {heights}, validators {list(final)})")
        changes: tuple[tuple[str, str, int], ...] = ()
        if self.reconf is not None:
            stuck = self.reconf.unfinished()
            if stuck is not None:
                raise self._fail(f"liveness: {stuck.tx.decode()}, submitted at "
                                 f"t={stuck.submitted_ms}, never committed (heights {heights})")
            changes = tuple((c.kind, c.node, c.height) for c in self.reconf.changes
                            if c.height is not None)
        return SimulationResult(self.protocol, len(self.ids), self.seed, heights,
                                self.height_at_heal, self.delivered, self.commits, self.now,
                                tuple(final), changes)

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

    def _on_reconfig(self, _: None) -> None:
        assert self.reconf is not None
        self.reconf.tick()

    def _on_unpartition(self, groups: list[frozenset[str]]) -> None:
        if self.groups == groups:
            self.groups = None
            self.trace.append(f"t={self.now} PARTITION healed")


def run_simulation(protocol: str | ModuleType, nodes: int, seed: int,
                   faults: Faults | None = None) -> SimulationResult:
    """Run one seeded simulation; raises ``SimulationFailure`` when an invariant breaks."""
    return Simulation(protocol, nodes, seed, faults or Faults()).run()


def replay_command(protocol: str, nodes: int, seed: int, faults: Faults) -> str:
    """The command line that replays one run (for the options the CLI has)."""
    d = Faults()
    parts = [f"python -m consortia.testing.sim --protocol {protocol} --nodes {nodes}"]
    if faults.byzantine:
        parts.append(f"--byzantine {faults.byzantine} --mode {faults.byzantine_mode}")
    if (faults.fault_ms, faults.healed_ms) != (d.fault_ms, d.healed_ms):
        parts.append(f"--fault-ms {faults.fault_ms} --healed-ms {faults.healed_ms}")
    if faults.retain_blocks is not None:
        parts.append(f"--retain {faults.retain_blocks}")
    if faults.reconfigure:
        parts.append(f"--reconfig {faults.reconfigure}")
    other = [k for k in ("drop", "duplicate", "delay_ms", "partitions", "crashes",
                         "client_every_ms", "batch_every_ms")
             if getattr(faults, k) != getattr(d, k)]
    if other:
        parts.append(f"(and Faults {', '.join(f'{k}={getattr(faults, k)!r}' for k in other)})")
    return " ".join([*parts, f"--seed {seed}"])


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
    ap.add_argument("--reconfig", type=int, nargs="?", const=2, default=0, metavar="SPARES",
                    help="start SPARES nodes (2 if omitted) outside the validator set and "
                         "change the set during the run: add spares, remove validators")
    args = ap.parse_args(argv)
    faults = Faults(byzantine=args.byzantine, byzantine_mode=args.mode,
                    fault_ms=args.fault_ms, healed_ms=args.healed_ms,
                    retain_blocks=args.retain, reconfigure=args.reconfig)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    t0 = time.perf_counter()
    for s in seeds:
        try:
            r = run_simulation(args.protocol, args.nodes, s, faults)
        except SimulationFailure as exc:
            print(f"FAILED {exc}", file=sys.stderr)
            if args.seed is not None:
                print("\n".join(exc.trace), file=sys.stderr)
            print(f"replay: {replay_command(args.protocol, args.nodes, s, faults)}",
                  file=sys.stderr)
            return 1
        if args.seed is not None:
            print(r)
    print(f"{len(seeds)} seeds passed: {args.protocol}, {args.nodes} nodes, "
          f"{args.byzantine} byzantine ({args.mode}), spares: {args.reconfig}, "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
