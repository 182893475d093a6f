"""The narrow interface between a consensus protocol and the rest of the node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consortia.types.block import Header
from consortia.types.tx import Tx


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

    def next_height(self) -> int: ...

    def prepare(self, batch: Sequence[Tx], timestamp_ms: int, proposer: str) -> PreparedBlock:
        """Execute ``batch`` on top of the last block and seal it into a header."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign with this node's validator key."""
        ...
