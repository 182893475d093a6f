"""``solo``: one validator orders every block and signs its commit certificate.

For development and single-organization chains. On ``BatchReady`` it asks the
support for a block and commits it at once with a certificate of one vote, the
validator's signature over (chain id, height, round 0, block hash), which
verifies offline like any other (``ChainConfig.commit_quorum`` is 1).
"""

from __future__ import annotations

from typing import Any

from consortia.consensus.core import Action, BatchReady, Commit, Event
from consortia.consensus.support import Support
from consortia.types.block import Block, Certificate, Vote, vote_message


class Solo:
    def __init__(self, support: Support, node_id: str) -> None:
        self.support = support
        self.node_id = node_id
        self._committed = support.next_height() - 1

    def step(self, event: Event) -> list[Action]:
        if not isinstance(event, BatchReady):
            return []
        p = self.support.propose(event.now_ms, self.node_id)
        if p is None:
            return []
        msg = vote_message(self.support.chain_id, p.header.height, 0, p.hash)
        cert = Certificate(p.header.height, 0, p.hash,
                           (Vote(self.node_id, self.support.sign(msg)),))
        self._committed = p.header.height
        return [Commit(Block(p.header, p.header_bytes, cert, p.envelopes), p)]

    def status(self) -> dict[str, Any]:
        return {"protocol": "solo", "role": "leader", "leader": self.node_id, "round": 0,
                "committed_height": self._committed}
