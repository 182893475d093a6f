"""The narrow interface between a consensus core and the rest of the node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from consortia.types.block import Block, Header


@dataclass(frozen=True)
class PreparedBlock:
    """A block body executed and sealed into a header, not yet final."""

    header: Header
    header_bytes: bytes
    hash: bytes
    envelopes: tuple[bytes, ...]
    artifacts: Any
    """Execution output the support needs at commit; opaque to consensus."""


class Support(Protocol):
    chain_id: str

    def next_height(self) -> int:
        """Height of the next block to commit (last committed + 1)."""
        ...

    def propose(self, now_ms: int, proposer: str) -> PreparedBlock | None:
        """Take the next batch of pending transactions and build the next block on top of
        the last committed one; None when nothing is pending."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign with this node's validator key."""
        ...


class ReplicaSupport(Support, Protocol):
    """What multi-validator protocols (raft, pbft) need beyond ``Support``."""

    def validators(self) -> tuple[str, ...]:
        """Ids of the validators of the configuration in force, in configuration order."""
        ...

    def last_hash(self) -> bytes:
        """Hash of the last committed block."""
        ...

    def previous_validators(self) -> tuple[tuple[str, ...], int] | None:
        """When the last committed block changed the validator set: the set before it and
        the height from which the current set governs (that block's height + 1); else
        None. A core rebuilt from durable state at that height still checks the
        configuration block's certificate — carried in the next height's checkpoints and
        view changes — under the set that signed it."""
        ...

    def validate(self, header_bytes: bytes, envelopes: tuple[bytes, ...]) -> PreparedBlock:
        """Check a block another validator proposed as the next block (height, link,
        transactions, execution results) and prepare it; raise ``InvalidBlock`` if wrong."""
        ...

    def verify(self, validator_id: str, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` by ``validator_id`` over ``message`` is valid."""
        ...

    def block(self, height: int) -> Block | None:
        """Committed block ``height`` from the ledger, certificate included, to serve a peer
        that is behind (None above the last committed height)."""
        ...
