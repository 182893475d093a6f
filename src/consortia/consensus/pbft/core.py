"""The PBFT core: one validator's deterministic state machine (docs/spec/pbft.md).

Sequence numbers are block heights and only one height is in flight: a backup can
only ``validate`` a block on top of the last committed one. Per height, in view v:
the primary (``validators[v % n]``) sends a pre-prepare, every validator that
validates it sends a prepare, a validator holding a quorum (2f+1 of n = 3f+1) of
prepares is *prepared* and sends a commit vote, and a quorum of commit votes is the
block's certificate. A validator that suspects the primary moves to view v+1 with a
view change carrying its highest prepared certificate; the new primary's new-view
carries a quorum of them and obliges everyone to prepare the highest prepared block
again, so a block that may have committed is never replaced.

Votes are persisted before they are sent, commits happen in strict height order,
and everything a peer sends is checked (signature, signer, view, height window)
before it changes anything. Catch-up is in-core: committed blocks of the last
``retain_blocks`` heights are served to peers that are behind, and any block whose
certificate verifies is committed.
"""

from __future__ import annotations

import random
from typing import Any

from consortia.consensus.core import (
    Action,
    BatchReady,
    Broadcast,
    Commit,
    Event,
    Persist,
    Receive,
    Send,
    Tick,
    WakeAt,
)
from consortia.consensus.pbft import sync, viewchange
from consortia.consensus.pbft.messages import (
    BlockRequest,
    BlockResponse,
    Checkpoint,
    CommitVote,
    Message,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    prepare_message,
    well_formed,
)
from consortia.consensus.pbft.state import Content, Durable, HeightState, Params
from consortia.consensus.pbft.verify import Verifier, quorum_size
from consortia.consensus.support import PreparedBlock, ReplicaSupport
from consortia.types.block import Block, Certificate, Vote, vote_message
from consortia.types.errors import ConsortiaError

VoteMessage = PrePrepare | Prepare | CommitVote


class PbftCore:
    """One validator's PBFT instance (see the module docstring)."""

    def __init__(self, node_id: str, support: ReplicaSupport, rng: random.Random,
                 durable: bytes | None = None, params: Params | None = None) -> None:
        self.node_id = node_id
        self.support = support
        self.rng = rng
        self.params = params or Params()
        self.chain_id = support.chain_id
        self.validators = tuple(support.validators())
        self.n = len(self.validators)
        self.f = (self.n - 1) // 3
        self.q = quorum_size(self.n)
        self.verifier = self._initial_verifier()
        self.now = 0
        self.view = 0
        self.normal = True
        """False while changing to ``view`` (no new-view accepted yet)."""
        self.height = support.next_height()
        self.last_cert: Certificate | None = None
        self.constraint: tuple[int, bytes] | None = None
        self.new_view: NewView | None = None
        self.hs = HeightState(self.height, 0)
        self.saved: HeightState | None = None
        self.vcs: dict[int, dict[str, ViewChange]] = {}
        self.vc_high: dict[str, int] = {}
        self.my_vc: ViewChange | None = None
        self.deadline: int | None = None
        self.resend_at: int | None = None
        self.attempts = 0
        self.height_since = 0
        self.ring: dict[int, Block] = {}
        self.responses: dict[int, BlockResponse] = {}
        self.certified: dict[int, BlockResponse] = {}
        self.known: dict[int, Certificate] = {}
        self.sync_target = self.height
        self.ahead: list[tuple[str, VoteMessage]] = []
        """Verified votes for the next height, replayed once this one commits."""
        self.last_push: dict[str, tuple[int, int]] = {}
        self.last_req: dict[str, int] = {}
        self.last_fwd: dict[str, int] = {}
        self.last_want = -(1 << 62)
        self.probe_at = 0
        self._rr = 0
        self._out: list[Action] = []
        self._dirty = False
        self._wake: int | None = None
        self._asap = False
        if durable is not None:
            self._restore(Durable.decode(durable))

    # -- interface ---------------------------------------------------------------------------

    def step(self, event: Event) -> list[Action]:
        out: list[Action] = []
        self._out = out
        if isinstance(event, Receive):
            self._resume()
            self._receive(event.sender, event.message)
        else:
            self.now = max(self.now, event.now_ms)
            self._resume()
            if isinstance(event, Tick):
                self._tick()
            elif isinstance(event, BatchReady):
                self._batch()
        self._flush()
        self._schedule()
        return out

    def status(self) -> dict[str, Any]:
        primary = self.verifier.primary(self.view)
        role = ("view-change" if not self.normal
                else "primary" if primary == self.node_id else "backup")
        return {"protocol": "pbft", "role": role, "leader": primary, "view": self.view,
                "round": self.view, "normal": self.normal,
                "committed_height": self.height - 1}

    # -- plumbing ----------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self._out.append(Persist(self._durable().encode()))

    def _send(self, to: str, m: Message) -> None:
        self._flush()  # a vote is remembered before it leaves
        self._out.append(Send(to, m))

    def _broadcast(self, m: Message) -> None:
        self._flush()
        self._out.append(Broadcast(m))

    def _sign(self, message: bytes) -> bytes:
        return self.support.sign(message)

    def _schedule(self) -> None:
        at = self.now + 1 if self._asap else None
        for t in (self.deadline, self.resend_at, self.probe_at):
            if t is not None and (at is None or t < at):
                at = t
        if at is None:
            return
        if at != self._wake or at <= self.now:
            self._wake = at
            self._out.append(WakeAt(at))

    def _ready(self) -> bool:
        """Whether the support's chain is at our height (commits are applied by the driver
        after the step, so a block of the next height is validated in a later step)."""
        return self.support.next_height() == self.height

    def _timeout(self) -> int:
        """The base timeout for the first view change after a commit, doubling for each
        further one (so views get long enough once the network is slower than assumed)."""
        return self.params.view_timeout_ms << min(max(self.attempts - 1, 0),
                                                  self.params.max_backoff)

    def _arm(self) -> None:
        """Work is pending: expect progress, and retransmit while there is none."""
        if self.normal and self.deadline is None:
            self.deadline = self.now + self._timeout()
        if self.resend_at is None:
            self.resend_at = self.now + self.params.resend_ms

    def _durable(self) -> Durable:
        hs = self.saved or self.hs
        cert = self.known.get(hs.height - 1, self.last_cert)
        return Durable(self.view, self.normal, hs.height, cert, self.constraint,
                       hs.prepare_sent, hs.prepared)

    def _restore(self, d: Durable) -> None:
        """Resume after a restart: same view, and the votes signed at this height."""
        self.view, self.normal = d.view, d.normal
        h = self.height
        if d.constraint is not None and d.constraint[0] >= h:
            self.constraint = d.constraint
        c = d.last_cert
        if c is not None and c.height == h - 1:
            self.last_cert = c
        elif c is not None and c.height >= h:  # the ledger lost a commit we had made
            self.known[c.height] = c
            self.sync_target = c.height + 1
        hs = None
        if d.height == h:
            hs = self.hs
        elif d.height > h:
            hs = self.saved = HeightState(d.height, self.view)
        if hs is not None:
            hs.reset_view(self.view)
            hs.prepare_sent, hs.prepared = d.prepare_sent, d.prepared
            p = d.prepared
            if p is not None:
                hs.candidates[p.digest] = [(p.header_bytes, p.envelopes)]
        self.hs.reset_view(self.view)
        self.resend_at = 0

    def _resume(self) -> None:
        """Catch up with the driver: once our last commit is applied, replay what arrived
        for the new height and continue."""
        sh = self.support.next_height()
        if sh > self.height:
            self._jump(sh)
        if sh == self.height and self.support.validators() != self.validators:
            self._reconfigure()
        if sh == self.height and self._asap:
            self._asap = False
            pending, self.ahead = self.ahead, []
            for sender, m in pending:
                self._vote(sender, m)
            self._advance()

    def _initial_verifier(self) -> Verifier:
        """The current set's verifier; right after a block that changed the set (a restart
        there), with the set before it for that block's certificate, as ``_reconfigure``
        would have left it without the restart."""
        prev = self.support.previous_validators()
        since = self.support.next_height()
        if prev is None or prev[1] != since:
            return Verifier(self.support, self.validators, self.q)
        old = Verifier(self.support, tuple(prev[0]), quorum_size(len(prev[0])))
        return Verifier(self.support, self.validators, self.q, old, since)

    def _reconfigure(self) -> None:
        """The block just committed changed the validator set: the new set governs this
        height and every later one (docs/spec/pbft.md §6a). What was received for this
        height was checked against the old set, so it is dropped; peers resend."""
        self.validators = tuple(self.support.validators())
        self.n = len(self.validators)
        self.f = (self.n - 1) // 3
        self.q = quorum_size(self.n)
        old = self.verifier
        old.previous = None  # one set back is all a height in flight can refer to
        self.verifier = Verifier(self.support, self.validators, self.q, old, self.height)
        self.hs = HeightState(self.height, self.view)
        self.saved = None
        self.ahead = []
        self.vcs.clear()
        self.vc_high.clear()
        self.my_vc = None
        self.certified.clear()
        self.known.clear()
        self.constraint = None
        self._dirty = True

    def _jump(self, height: int) -> None:
        """The chain advanced without us (committed by other means): follow it."""
        self.last_cert = self.known.get(height - 1)
        b = self.ring.get(height - 1)
        if b is not None:
            self.last_cert = b.certificate
        self._enter_height(height)

    def _enter_height(self, height: int) -> None:
        """Garbage-collect everything about lower heights and start on ``height``."""
        self.height = height
        saved = self.saved
        if saved is not None and saved.height == height:
            self.hs, self.saved = saved, None
            self.hs.reset_view(self.view)
        else:
            self.hs = HeightState(height, self.view)
        if self.saved is not None and self.saved.height < height:
            self.saved = None
        for table in (self.certified, self.known):
            for x in [x for x in table if x < height]:
                del table[x]
        self.ahead = [(s, m) for s, m in self.ahead if m.height >= height]
        if self.constraint is not None and self.constraint[0] < height:
            self.constraint = None
        self.sync_target = max(self.sync_target, height)
        self.height_since = self.now
        self.my_vc = None
        self._dirty = True
        self._asap = True

    # -- events ------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.now >= self.probe_at:
            self.probe_at = self.now + self.params.probe_ms
            sync.probe(self)
        if self.deadline is not None and self.now >= self.deadline:
            self.deadline = None
            if self.node_id not in self.verifier.validators:
                sync.sync(self)  # not a validator (yet, or any more): only follow the chain
            elif self.normal and self.sync_target > self.height:
                self.deadline = self.now + self._timeout()  # behind, not stuck: catch up
                sync.sync(self)
            else:
                viewchange.start_view_change(self, self.view + 1)
        if self.resend_at is not None and self.now >= self.resend_at:
            self.resend_at = None
            self._resend()

    def _batch(self) -> None:
        if not self.normal:
            return
        self._arm()
        self._propose()

    def _receive(self, sender: str, m: object) -> None:
        if not well_formed(m):
            return
        assert isinstance(m, PrePrepare | Prepare | CommitVote | ViewChange | NewView
                          | Checkpoint | BlockRequest | BlockResponse)
        if m.signer == self.node_id or m.signer not in self.verifier.validators:
            return
        v = self.verifier
        if isinstance(m, PrePrepare | Prepare | CommitVote):
            if isinstance(m, PrePrepare) and m.signer != v.primary(m.view):
                return
            if v.signed(m.signer, m.signing_bytes(self.chain_id), m.signature):
                self._vote(sender, m)
        elif isinstance(m, ViewChange):
            if v.view_change(m):
                viewchange.on_view_change(self, sender, m)
        elif isinstance(m, NewView):
            viewchange.on_new_view(self, sender, m)
        elif not v.signed(m.signer, m.signing_bytes(self.chain_id), m.signature):
            return
        elif isinstance(m, Checkpoint):
            if m.cert.height == m.height and v.cert(m.cert):
                sync.on_checkpoint(self, sender, m)
        elif isinstance(m, BlockRequest):
            sync.on_block_request(self, sender, m)
        else:
            sync.on_block_response(self, m)

    # -- normal case -------------------------------------------------------------------------

    def _vote(self, sender: str, m: VoteMessage) -> None:
        """A verified vote: only our height counts; the next one waits, others make us help
        the sender or ask it for blocks."""
        h = m.height
        if h < self.height:
            # A peer still at an old height: help it if it seems stuck there.
            if h + 2 <= self.height or self.now - self.height_since >= self.params.resend_ms:
                sync.push(self, sender, h)
            return
        if h > self.height:
            if h == self.height + 1:
                if len(self.ahead) < 8 * self.n:
                    self.ahead.append((sender, m))
            else:
                sync.request(self, sender)
            return
        if m.view < self.view:
            sync.forward_new_view(self, sender)
        hs = self.hs
        # Only a pre-prepare or a vote that completes a quorum can move this height on.
        if isinstance(m, CommitVote):
            if self._add_commit(m.view, m.digest, m.signer, m.signature) >= self.q:
                self._try_commit()
            return
        if isinstance(m, PrePrepare):
            self._add_candidate(m.digest, (m.header_bytes, m.envelopes))
            if m.view == self.view and hs.pp is None:
                hs.pp = m.digest
                self._arm()  # a proposal is work: expect it to commit
        quorum = (m.view == self.view
                  and self._add_prepare(m.signer, m.digest, m.signature) >= self.q)
        if quorum or isinstance(m, PrePrepare):
            self._advance()

    def _add_candidate(self, digest: bytes, content: Content) -> None:
        """Keep block content claimed to hash to ``digest`` (bounded: anyone can claim)."""
        hs = self.hs
        if digest in hs.contents:
            return
        lst = hs.candidates.get(digest)
        if lst is None:
            if len(hs.candidates) >= 4 * self.n:
                return
            lst = hs.candidates[digest] = []
        if len(lst) < 4 and content not in lst:
            lst.append(content)

    def _add_prepare(self, signer: str, digest: bytes, sig: bytes) -> int:
        """Record a prepare of this view; return how many validators prepared ``digest``."""
        hs = self.hs
        if signer in hs.prepare_of:
            return 0  # one prepare per validator and view; duplicates and equivocation ignored
        hs.prepare_of[signer] = digest
        sigs = hs.prepares.setdefault(digest, {})
        sigs[signer] = sig
        return len(sigs)

    def _add_commit(self, view: int, digest: bytes, signer: str, sig: bytes) -> int:
        """Record a commit vote (any view: each view's quorum is a certificate); return how
        many validators voted for (view, digest)."""
        hs = self.hs
        key = (signer, view)
        if key in hs.commit_of:
            return 0
        n = hs.commit_views.get(signer, 0)
        if n >= self.params.max_views_per_signer:
            return 0  # bounded memory against a validator voting in endless views
        hs.commit_views[signer] = n + 1
        hs.commit_of[key] = digest
        sigs = hs.commits.setdefault((view, digest), {})
        sigs[signer] = sig
        return len(sigs)

    def _validate(self, content: Content) -> PreparedBlock | None:
        """The support's verdict on a block for our height (None when refused)."""
        try:
            p = self.support.validate(*content)
        except ConsortiaError:
            return None
        return p if p.header.height == self.height else None

    def _content(self, digest: bytes) -> PreparedBlock | None:
        """The validated block with this hash, validating candidates on demand."""
        hs = self.hs
        p = hs.contents.get(digest)
        if p is not None:
            return p
        cands = hs.candidates.get(digest)
        if not cands or not self._ready():
            return None
        while cands:
            p = self._validate(cands.pop())
            if p is not None and p.hash == digest:
                hs.contents[digest] = p
                del hs.candidates[digest]
                return p
        del hs.candidates[digest]
        return None

    def _propose(self) -> None:
        """As the primary, propose this height's block (once per view and height)."""
        hs = self.hs
        if (not self.normal or self.verifier.primary(self.view) != self.node_id
                or not self._ready() or hs.pp is not None
                or (hs.prepare_sent is not None and hs.prepare_sent[0] == self.view)):
            return
        c = self.constraint
        if c is not None and c[0] == self.height and c[1]:
            return  # the new-view decided this height's block
        p = self.support.propose(self.now, self.node_id)
        if p is None or p.header.height != self.height:
            return
        d = p.hash
        hs.contents[d] = p
        hs.pp = d
        hs.prepare_sent = (self.view, d)
        self._dirty = True
        sig = self._sign(prepare_message(self.chain_id, self.view, self.height, d))
        hs.my_pp = PrePrepare(self.view, self.height, d, p.header_bytes, p.envelopes,
                              self.node_id, sig)
        self._broadcast(hs.my_pp)
        self._add_prepare(self.node_id, d, sig)
        self._arm()
        self._advance()

    def _target(self) -> bytes | None:
        """The block to prepare in this view: the new-view's, else the primary's."""
        c = self.constraint
        if c is not None and c[0] == self.height and c[1]:
            return c[1]
        return self.hs.pp

    def _advance(self) -> None:
        """Take every step the current state allows: prepare, commit vote, commit."""
        hs = self.hs
        if self.normal and self._ready():
            v = self.view
            if hs.prepare_sent is None or hs.prepare_sent[0] != v:
                d = self._target()
                if d is not None and self._content(d) is not None:
                    self._send_prepare(d)
            ps = hs.prepare_sent
            if ps is not None and ps[0] == v and (hs.prepared is None or hs.prepared.view < v):
                votes = hs.prepares.get(ps[1], {})
                if len(votes) >= self.q:
                    p = self._content(ps[1])
                    if p is not None:
                        self._send_commit(p, votes)
        self._try_commit()

    def _send_prepare(self, d: bytes) -> None:
        """Vote for ``d`` in this view; persisted first, so never another digest here."""
        hs = self.hs
        hs.prepare_sent = (self.view, d)
        self._dirty = True
        sig = self._sign(prepare_message(self.chain_id, self.view, self.height, d))
        hs.my_prepare = Prepare(self.view, self.height, d, self.node_id, sig)
        self._broadcast(hs.my_prepare)
        self._add_prepare(self.node_id, d, sig)
        self._arm()

    def _votes(self, sigs: dict[str, bytes]) -> tuple[Vote, ...]:
        return tuple(Vote(s, sigs[s]) for s in self.validators if s in sigs)

    def _send_commit(self, p: PreparedBlock, prepares: dict[str, bytes]) -> None:
        hs = self.hs
        hs.prepared = PreparedProof(self.view, self.height, p.hash,
                                    self._votes(prepares)[: self.q], p.header_bytes,
                                    p.envelopes)
        self._dirty = True
        self._commit_vote()
        assert hs.my_commit is not None
        self._broadcast(hs.my_commit)

    def _commit_vote(self) -> None:
        """Sign (again, after a restart) the commit vote implied by our prepared proof."""
        hs = self.hs
        p = hs.prepared
        if p is None or (hs.my_commit is not None and hs.my_commit.view == p.view):
            return
        sig = self._sign(vote_message(self.chain_id, p.height, p.view, p.digest))
        hs.my_commit = CommitVote(p.view, p.height, p.digest, self.node_id, sig)
        self._add_commit(p.view, p.digest, self.node_id, sig)

    def _try_commit(self) -> None:
        """Commit our height from a quorum of commit votes, or a verified certificate, once
        the block is validated and hashes to the certified digest."""
        if not self._ready():
            return
        hs, h = self.hs, self.height
        for (v, d), sigs in hs.commits.items():
            if len(sigs) >= self.q:
                p = self._content(d)
                if p is not None:
                    self._commit(p, Certificate(h, v, d, self._votes(sigs)))
                    return
                sync.want(self, d)
        r = self.certified.get(h)
        if r is not None:
            assert r.cert is not None
            p = self._validate((r.header_bytes, r.envelopes))
            if p is not None and p.hash == r.cert.block_hash:
                self._commit(p, r.cert)
                return
            del self.certified[h]
        c = self.known.get(h)
        if c is not None:
            p = self._content(c.block_hash)
            if p is not None:
                self._commit(p, c)
                return
            sync.want(self, c.block_hash)

    def _commit(self, p: PreparedBlock, cert: Certificate) -> None:
        """Emit the final block; it becomes a stable checkpoint and the next height starts."""
        h = self.height
        block = Block(p.header, p.header_bytes, cert, p.envelopes)
        self._out.append(Commit(block, p))
        self.ring[h] = block
        while len(self.ring) > self.params.retain_blocks:
            old = next(iter(self.ring))
            del self.ring[old]
            self.responses.pop(old, None)
        self.last_cert = cert
        self.attempts = 0
        if self.normal:
            self.deadline = None
        self._enter_height(h + 1)
        if h % self.params.checkpoint_interval == 0:
            self._broadcast(sync.checkpoint(self))

    def _resend(self) -> None:
        """Retransmit what this validator last said, while it is stuck (messages get lost)."""
        hs = self.hs
        busy = False
        if not self.normal:
            self._broadcast(viewchange.my_vc(self))
            busy = True
        elif (self.deadline is not None or hs.prepare_sent is not None
              or hs.prepared is not None):
            busy = True
            if self.now - self.height_since >= self.params.resend_ms:
                self._commit_vote()
                ps = hs.prepare_sent
                if hs.my_prepare is None and ps is not None and ps[0] == self.view \
                        and hs.my_pp is None:
                    sig = self._sign(prepare_message(self.chain_id, ps[0], self.height, ps[1]))
                    hs.my_prepare = Prepare(ps[0], self.height, ps[1], self.node_id, sig)
                    self._add_prepare(self.node_id, ps[1], sig)
                sent = False
                for m in (hs.my_pp, hs.my_prepare, hs.my_commit):
                    if m is not None:
                        self._broadcast(m)
                        sent = True
                if not sent and self.last_cert is not None:
                    self._broadcast(sync.checkpoint(self))
        if self.sync_target > self.height or self.ahead:
            sync.sync(self)
            busy = True
        if busy:
            self.resend_at = self.now + self.params.resend_ms
