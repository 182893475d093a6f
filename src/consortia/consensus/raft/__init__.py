"""``raft``: crash-fault-tolerant ordering by a leader elected among 2f+1 validators.

The core (``core.py``) is a deterministic state machine behind the consensus
interface (``consortia.consensus.core``); ``messages.py`` holds its messages and
their canonical bytes, ``state.py`` its log and durable state. The protocol, and
what a raft commit certificate proves, are specified in docs/spec/raft.md.
"""

from __future__ import annotations

import random
from dataclasses import replace

from consortia.consensus.raft.core import RaftCore, RaftTimings, Role, SafetyViolation
from consortia.consensus.raft.messages import decode_message, encode_message
from consortia.consensus.support import ReplicaSupport

PROTOCOL = "raft"


def make_core(node_id: str, support: ReplicaSupport, rng: random.Random,
              durable: bytes | None, timings: RaftTimings | None = None, *,
              retain_blocks: int | None = None) -> RaftCore:
    """A raft core for ``node_id``; ``durable`` is the state of its last ``Persist`` (None
    for a fresh validator), ``rng`` the source of its election timeouts; ``retain_blocks``
    overrides how many committed blocks the log keeps for lagging peers."""
    timings = timings or RaftTimings()
    if retain_blocks is not None:
        timings = replace(timings, retain_blocks=retain_blocks,
                          compact_every=min(timings.compact_every, max(retain_blocks, 1)))
    return RaftCore(node_id, support, rng, durable, timings)


__all__ = ["PROTOCOL", "RaftCore", "RaftTimings", "Role", "SafetyViolation", "decode_message",
           "encode_message", "make_core"]
