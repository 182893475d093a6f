"""``pbft``: Byzantine fault tolerant ordering for n = 3f+1 validators.

Practical Byzantine Fault Tolerance (Castro and Liskov) with the block height as
sequence number and one height in flight: pre-prepare, prepare and commit per
height; view change with a new-view that re-proposes the highest prepared block;
each block's commit certificate (2f+1 commit votes, each a signature over
``vote_message(chain_id, height, view, block_hash)``) as its stable checkpoint.
The normative description is docs/spec/pbft.md.

``make_core`` is the factory the node and the simulator call; ``mutate`` is the
simulator's Byzantine behaviour (``consortia.testing.sim``).
"""

from __future__ import annotations

import random
from dataclasses import replace

from consortia.consensus.pbft.byzantine import mutate, register
from consortia.consensus.pbft.core import PbftCore
from consortia.consensus.pbft.messages import decode_message, encode_message
from consortia.consensus.pbft.state import Params
from consortia.consensus.support import ReplicaSupport

PROTOCOL = "pbft"

__all__ = ["PROTOCOL", "Params", "PbftCore", "decode_message", "encode_message", "make_core",
           "mutate"]


def make_core(node_id: str, support: ReplicaSupport, rng: random.Random,
              durable: bytes | None, params: Params | None = None, *,
              retain_blocks: int | None = None) -> PbftCore:
    """A PBFT core for validator ``node_id``, resuming from ``durable`` (the bytes of its
    last ``Persist``) after a restart; ``retain_blocks`` overrides how many committed
    blocks it keeps in memory for lagging peers (older ones are read from the ledger)."""
    register(node_id, support)
    params = params or Params()
    if retain_blocks is not None:
        params = replace(params, retain_blocks=retain_blocks)
    return PbftCore(node_id, support, rng, durable, params)
