"""The narrow interface between a consensus core and the rest of the node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from consortia.types.block import Header


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
