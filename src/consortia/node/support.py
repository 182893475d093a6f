"""The node's ``consensus.support.Support``: the chain plus the transaction pool."""

from __future__ import annotations

from typing import Any

from consortia.consensus.support import PreparedBlock
from consortia.node.chain import Chain
from consortia.txpool.pool import Pool


class NodeSupport:
    def __init__(self, chain: Chain, pool: Pool) -> None:
        self.chain = chain
        self.pool = pool
        self.chain_id = chain.chain_id

    def next_height(self) -> int:
        return self.chain.next_height()

    def propose(self, now_ms: int, proposer: str) -> PreparedBlock | None:
        batch = self._take_batch()
        if not batch:
            return None
        return self.chain.prepare(batch, now_ms, proposer)

    def _take_batch(self) -> list[Any]:
        limits = self.chain.config.limits
        return self.pool.take_batch(limits.max_block_txs, limits.max_block_bytes)

    def sign(self, message: bytes) -> bytes:
        return self.chain.sign(message)
