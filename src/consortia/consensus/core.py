"""The consensus interface: deterministic state machines, events in, actions out.

A consensus core never does I/O and never reads a clock. The driver (the node
process, or the simulator in ``consortia.testing``) feeds it ``Event``s — time
passing, a message from a peer, "a batch is ready" — and carries out the
``Action``s it returns, in order: ``Persist`` durably *before* any later
``Send``/``Broadcast`` of the same step (a vote must not be sent before it is
remembered), then messages, then ``Commit``s. Given the same events, a core
returns the same actions, so a seeded simulator replays a run exactly.

The core reaches the chain only through ``Support`` (Fabric's ConsenterSupport):
it asks it to build a block from pending transactions, to check a block a peer
proposed, to sign and verify votes. Support calls are synchronous and, for the
same chain state, deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from consortia.consensus.support import PreparedBlock
from consortia.types.block import Block

# -- events -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed; ``now_ms`` is the driver's clock (virtual in the simulator)."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class BatchReady:
    """The pool holds a batch worth ordering (full, or its oldest transaction waited the
    batch timeout). A leader proposes; other nodes ignore it."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Receive:
    """A message from peer ``sender`` (already authenticated by the transport)."""

    sender: str
    message: Any


Event = Tick | BatchReady | Receive


# -- actions ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    to: str
    message: Any


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator."""

    message: Any


@dataclass(frozen=True, slots=True)
class Persist:
    """Durable protocol state (term, vote, log...) to write before later messages go out."""

    state: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """A block is final: store it. ``prepared`` is the support's work for it, when this node
    built or validated it (None for a block learned from a certificate alone)."""

    block: Block
    prepared: PreparedBlock | None


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Deliver a ``Tick`` no later than ``at_ms`` (the earliest pending timer)."""

    at_ms: int


Action = Send | Broadcast | Persist | Commit | WakeAt


class Core(Protocol):
    """A consensus protocol instance for one validator."""

    node_id: str

    def step(self, event: Event) -> list[Action]:
        """Consume one event; return what the driver must do, in order."""
        ...

    def status(self) -> dict[str, Any]:
        """Role, term/view, leader and committed height, for APIs and the simulator."""
        ...
