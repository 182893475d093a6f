"""Byzantine behaviour for the simulator: ``mutate`` turns a validator's honest outgoing
message into a forged or conflicting one.

The simulator calls ``mutate(message, rng)`` for every message a "mutate"-mode Byzantine
validator sends, once per recipient, so recipients get different variants (the
validator equivocates). To produce *validly signed* conflicting messages — the
dangerous kind — it needs the validator's own key: ``make_core`` registers each
validator's support here (weakly, so nothing is kept alive), and ``mutate`` signs
with the support of the message's signer. Honest cores never call anything here.
"""

from __future__ import annotations

import contextlib
import random
import weakref
from dataclasses import replace
from typing import Any

from consortia.consensus.pbft.messages import (
    MESSAGE_TYPES,
    BlockRequest,
    BlockResponse,
    Checkpoint,
    CommitVote,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    prepare_message,
)
from consortia.consensus.support import ReplicaSupport
from consortia.types.block import Certificate, Header, Vote

_SUPPORTS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def register(node_id: str, support: ReplicaSupport) -> None:
    """Remember a validator's support so its Byzantine variant can sign (see above)."""
    with contextlib.suppress(TypeError):  # not weak-referenceable: cannot be Byzantine
        _SUPPORTS[node_id] = support


def _resign(m: Any, support: Any) -> Any:
    return replace(m, signature=support.sign(m.signing_bytes(support.chain_id)))


def _forge_votes(votes: tuple[Vote, ...], rng: random.Random) -> tuple[Vote, ...]:
    return tuple(Vote(v.validator_id, rng.randbytes(len(v.signature))) for v in votes)


def _junk(m: Any, rng: random.Random) -> object:
    """Objects a sloppy or hostile peer might send: wrong types, unknown messages."""
    return rng.choice([None, b"\x00junk", ("prepare", 1), replace(m, signer=""),
                       replace(m, signature=b""), replace(m, signer=7),
                       replace(m, height=-1) if hasattr(m, "height") else 3.5])


def _preprepare(m: PrePrepare, support: Any, rng: random.Random) -> object:
    propose_with = getattr(support, "propose_with", None)
    choice = rng.random()
    if propose_with is not None and choice < 0.7:
        try:
            ts = Header.decode(m.header_bytes).timestamp_ms
        except Exception:  # noqa: BLE001 - a mutation never fails the run
            ts = 0
        tag = rng.randbytes(6).hex().encode()
        # A block with an invalid transaction, or a different valid one (equivocation).
        txs = (b"bad:" + tag,) if choice < 0.35 else (b"tx:byz:" + tag,)
        p = propose_with(txs, ts, m.signer)
        sig = support.sign(prepare_message(support.chain_id, m.view, m.height, p.hash))
        return PrePrepare(m.view, m.height, p.hash, p.header_bytes, p.envelopes, m.signer, sig)
    # The honest block under a digest it does not hash to.
    d = rng.randbytes(32)
    sig = support.sign(prepare_message(support.chain_id, m.view, m.height, d))
    return replace(m, digest=d, signature=sig)


def _view_change(m: ViewChange, support: Any, rng: random.Random) -> object:
    c = rng.random()
    if c < 0.3:
        return _resign(replace(m, prepared=None), support)  # withhold what it prepared
    if c < 0.6:
        return _resign(replace(m, view=m.view + rng.randint(1, 50)), support)
    if c < 0.8 and m.prepared is not None:
        p = m.prepared
        forged = PreparedProof(p.view, p.height, rng.randbytes(32), _forge_votes(p.votes, rng),
                               p.header_bytes, p.envelopes)
        return _resign(replace(m, prepared=forged), support)
    return _resign(replace(m, height=m.height + rng.randint(1, 5)), support)


def mutate(message: object, rng: random.Random) -> object:
    """A forged, conflicting or malformed variant of ``message`` (sometimes unchanged,
    so the Byzantine validator also takes part and its lies mix with truth)."""
    if not isinstance(message, MESSAGE_TYPES):
        return message
    m: Any = message
    support = _SUPPORTS.get(m.signer)
    r = rng.random()
    if support is None or r < 0.3:
        return m
    if r < 0.42:
        return replace(m, signature=rng.randbytes(max(1, len(m.signature))))
    if r < 0.48:
        return _junk(m, rng)
    if r < 0.56:
        return None  # selective silence: this recipient never hears it
    if isinstance(m, PrePrepare):
        return _preprepare(m, support, rng)
    if isinstance(m, Prepare | CommitVote):
        c = rng.random()
        if c < 0.5:
            return _resign(replace(m, digest=rng.randbytes(32)), support)
        if c < 0.75:
            return _resign(replace(m, view=m.view + 1), support)
        return _resign(replace(m, height=m.height + 1), support)
    if isinstance(m, ViewChange):
        return _view_change(m, support, rng)
    if isinstance(m, NewView):
        vcs = list(m.view_changes)
        if vcs and rng.random() < 0.5:
            vcs.pop(rng.randrange(len(vcs)))
        else:
            rng.shuffle(vcs)
        return _resign(replace(m, view_changes=tuple(vcs)), support)
    if isinstance(m, Checkpoint):
        cert = m.cert
        forged = Certificate(cert.height, cert.round, cert.block_hash,
                             _forge_votes(cert.votes, rng))
        return _resign(replace(m, cert=forged, height=m.height + 1), support)
    if isinstance(m, BlockRequest):
        return _resign(replace(m, height=m.height + rng.randint(0, 1 << 20)), support)
    assert isinstance(m, BlockResponse)
    if rng.random() < 0.5 and m.envelopes:
        return _resign(replace(m, envelopes=(b"tx:forged", *m.envelopes[1:])), support)
    return _resign(replace(m, digest=rng.randbytes(32)), support)
