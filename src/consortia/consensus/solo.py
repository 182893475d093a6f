"""``solo``: one validator orders every block and signs its commit certificate.

For development and single-organization chains. The certificate holds one
vote, the validator's signature over (chain id, height, round 0, block hash),
and verifies offline like any other (``ChainConfig.commit_quorum`` is 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from consortia.consensus.support import PreparedBlock, Support
from consortia.types.block import Block, Certificate, Vote, vote_message
from consortia.types.tx import Tx


class Solo:
    def __init__(self, support: Support, validator_id: str) -> None:
        self.support = support
        self.validator_id = validator_id

    def order(self, batch: Sequence[Tx], now_ms: int) -> tuple[Block, PreparedBlock]:
        """Turn one batch into a final block: prepare, then vote alone."""
        p = self.support.prepare(batch, now_ms, self.validator_id)
        msg = vote_message(self.support.chain_id, p.header.height, 0, p.hash)
        cert = Certificate(p.header.height, 0, p.hash,
                           (Vote(self.validator_id, self.support.sign(msg)),))
        return Block(p.header, p.header_bytes, cert, p.envelopes), p
