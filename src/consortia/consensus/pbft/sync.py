"""Catching up inside the protocol (docs/spec/pbft.md §6-7): checkpoints, serving
committed blocks to validators behind, asking for blocks and proposal contents, and
showing stragglers the new-view of the current view.

Functions over the core's state rather than methods, to keep each module of the
core one phase of the protocol. A validator behind trusts nothing it is sent until a
certificate verifies and the block validates to the certified hash.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from consortia.consensus.pbft.messages import BlockRequest, BlockResponse, Checkpoint
from consortia.types.block import Block, Certificate

if TYPE_CHECKING:
    from consortia.consensus.pbft.core import PbftCore


def sync(core: PbftCore) -> None:
    """Ask one peer (preferably one known to be ahead) for the block at our height."""
    peers = [s for s, _ in core.ahead] or [v for v in core.validators if v != core.node_id]
    core._rr += 1
    request(core, peers[core._rr % len(peers)])


def probe(core: PbftCore) -> None:
    """Ask the next peer in turn for blocks from our height on, whatever is happening (see
    ``Params.probe_ms``); it answers only if it is ahead."""
    peers = [v for v in core.validators if v != core.node_id]
    if not peers:
        return
    core._rr += 1
    core._send(peers[core._rr % len(peers)], _block_request(core, b""))


def _block_request(core: PbftCore, digest: bytes) -> BlockRequest:
    """Our signed request for the block at our height (``digest`` empty: any committed
    blocks from there on)."""
    r = BlockRequest(core.height, digest, core.node_id, b"")
    return replace(r, signature=core._sign(r.signing_bytes(core.chain_id)))


def request(core: PbftCore, peer: str) -> None:
    """Ask ``peer`` for committed blocks from our height on (rate-limited per peer)."""
    t = core.last_req.get(peer)
    if t is not None and core.now - t < core.params.resend_ms:
        return
    core.last_req[peer] = core.now
    core._send(peer, _block_request(core, b""))
    if core.resend_at is None:
        core.resend_at = core.now + core.params.resend_ms


def want(core: PbftCore, digest: bytes) -> None:
    """A quorum committed a block whose content we lack: ask everyone for it."""
    if core.now - core.last_want < core.params.resend_ms:
        return
    core.last_want = core.now
    core._broadcast(_block_request(core, digest))


def committed(core: PbftCore, h: int) -> Block | None:
    """Committed block ``h``: from memory while retained, else from the ledger."""
    if not 1 <= h < core.height:
        return None
    b = core.ring.get(h)
    return b if b is not None else core.support.block(h)


def response(core: PbftCore, h: int) -> BlockResponse | None:
    """The signed response carrying committed block ``h`` (signed once and kept while the
    block is retained in memory; signed again when read back from the ledger)."""
    r = core.responses.get(h)
    if r is not None:
        return r
    b = committed(core, h)
    if b is None:
        return None
    c = b.certificate
    r = BlockResponse(h, c.block_hash, b.header_bytes, b.envelopes, c, core.node_id, b"")
    r = replace(r, signature=core._sign(r.signing_bytes(core.chain_id)))
    if h in core.ring:
        core.responses[h] = r
    return r


def push(core: PbftCore, peer: str, h: int) -> None:
    """Send a peer that is behind the committed blocks from its height on (rate-limited
    per peer: the ledger serves any height, so a request must not cost unbounded work)."""
    if not 1 <= h < core.height:
        return
    last = core.last_push.get(peer)
    if last is not None and last[0] >= h and core.now - last[1] < core.params.resend_ms:
        return
    core.last_push[peer] = (h, core.now)
    for x in range(h, min(h + core.params.sync_batch, core.height)):
        r = response(core, x)
        if r is None:
            break
        core._send(peer, r)


def learn(core: PbftCore, cert: Certificate, sender: str) -> None:
    """A verified certificate at or above our height: the chain is ahead of us."""
    h = cert.height
    if h < core.height:
        return
    if h > core.height + core.params.max_ahead:
        # Far ahead: nothing to keep yet, but fetch towards it (from the ledgers of peers).
        core.sync_target = max(core.sync_target, h + 1)
        request(core, sender)
        return
    core.known.setdefault(h, cert)
    core.sync_target = max(core.sync_target, h + 1)
    if h == core.height:
        core._try_commit()
    else:
        request(core, sender)


def on_checkpoint(core: PbftCore, sender: str, m: Checkpoint) -> None:
    """A peer's verified checkpoint: catch up to it, or help the peer catch up to us."""
    learn(core, m.cert, sender)
    if m.height + 1 < core.height:
        push(core, sender, m.height + 1)
    if m.view < core.view:
        forward_new_view(core, sender)


def on_block_request(core: PbftCore, sender: str, m: BlockRequest) -> None:
    """Serve committed blocks, or the validated content of a proposal at our height."""
    if not m.digest or m.height < core.height:
        b = committed(core, m.height)
        if b is not None and m.digest in (b"", b.certificate.block_hash):
            push(core, sender, m.height)
        return
    p = core.hs.contents.get(m.digest)
    if m.height == core.height and p is not None:
        t = core.last_fwd.get("content:" + sender)
        if t is None or core.now - t >= core.params.resend_ms:
            core.last_fwd["content:" + sender] = core.now
            r = BlockResponse(m.height, m.digest, p.header_bytes, p.envelopes, None,
                              core.node_id, b"")
            core._send(sender, replace(r, signature=core._sign(
                r.signing_bytes(core.chain_id))))


def on_block_response(core: PbftCore, m: BlockResponse) -> None:
    """Keep a certified block (verified now, validated when its height comes) or a
    proposal's content (a candidate until it validates to the digest)."""
    h = m.height
    if m.cert is None:
        if h == core.height:
            core._add_candidate(m.digest, (m.header_bytes, m.envelopes))
            core._advance()
        return
    if h < core.height or h > core.height + core.params.max_ahead or h in core.certified:
        return
    if m.cert.height != h or m.cert.block_hash != m.digest or not core.verifier.cert(m.cert):
        return
    core.certified[h] = m
    core.sync_target = max(core.sync_target, h + 1)
    if core.resend_at is None:
        core.resend_at = core.now + core.params.resend_ms
    if h == core.height:
        core._try_commit()


def checkpoint(core: PbftCore) -> Checkpoint:
    """The announcement of our stable checkpoint: the last commit certificate."""
    assert core.last_cert is not None
    cp = Checkpoint(core.view, core.height - 1, core.last_cert, core.node_id, b"")
    return replace(cp, signature=core._sign(cp.signing_bytes(core.chain_id)))


def forward_new_view(core: PbftCore, peer: str) -> None:
    """A peer is in an older view: show it the new-view that started ours."""
    nv = core.new_view
    if not core.normal or nv is None or nv.view != core.view:
        return
    t = core.last_fwd.get(peer)
    if t is not None and core.now - t < core.params.resend_ms:
        return
    core.last_fwd[peer] = core.now
    core._send(peer, nv)
