"""The raft state machine for one validator (docs/spec/raft.md).

Raft (Ongaro & Ousterhout) with pre-vote and check-quorum, ordering blocks: the
leader turns a ``BatchReady`` into a log entry holding a block built by
``Support.propose``; an entry is committed by Raft's rule (stored on a majority,
and of the leader's term — earlier entries only through a later one); every
replica commits a block to its ledger only with a *commit certificate*, a
majority of validator signatures over ``vote_message(chain_id, height, term,
block_hash)``.

A replica signs that message for term T only for a block it received from the
leader of T and that is either an entry of term T it has durably stored, or
covered by the leader of T's commit index. A majority of the first kind is Raft's
own commit rule; one signature of the second kind is the leader's commit decision.
Either way a valid certificate exists only for a committed block — under crash
faults, where the leader's word is trusted.

The core is deterministic: time comes from ``Tick``/``BatchReady``, randomness
(election timeouts) from the ``rng`` it was built with. ``Support.validate``
checks a block against the last *committed* one, and the driver stores a
``Commit`` only after ``step`` returns, so a core commits at most one block per
step and asks for an immediate ``WakeAt`` when another is ready.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from consortia.consensus.core import (
    Action,
    BatchReady,
    Commit,
    Event,
    Persist,
    Receive,
    Send,
    Tick,
    WakeAt,
)
from consortia.consensus.raft.messages import (
    AppendEntries,
    AppendReply,
    BlockBatch,
    BlockEntry,
    BlockRequest,
    BlockVote,
    Message,
    Noop,
    PreVote,
    PreVoteReply,
    RequestVote,
    Snapshot,
    VoteReply,
)
from consortia.consensus.raft.state import DurableState, RaftLog, decode_state, encode_state
from consortia.consensus.support import PreparedBlock, ReplicaSupport
from consortia.types.block import Block, Certificate, Vote, vote_message
from consortia.types.errors import ConsortiaError

_FROM_ANYONE = (AppendEntries, Snapshot, BlockBatch)
"""Messages taken also from a sender outside this node's validator set. A node whose
ledger is behind a configuration block cannot know the validators that block (or a later
one) added, and one of them may lead now: ignoring it would leave the node behind for
good, since no one else sends it the log. Which leader to follow is decided by terms, as
in Raft; blocks still commit only with certificates that verify against this node's set,
and votes and election messages count from validators of that set only."""


class SafetyViolation(ConsortiaError):
    """Raft's guarantees were broken (a corrupted log, or a faulty leader): stop loudly
    rather than commit something other validators may not."""


class Role(StrEnum):
    FOLLOWER = "follower"
    PRECANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class RaftTimings:
    heartbeat_ms: int = 50
    election_ms: int = 300
    """Election timeouts are drawn from [election_ms, 2 * election_ms); a leader steps
    down when it has not heard from a majority for this long (check-quorum)."""
    max_entries: int = 64
    """Entries per AppendEntries."""
    max_certificates: int = 64
    """Certificates per AppendEntries."""
    compact_every: int = 16
    """Drop the applied-everywhere prefix of the log once it is this many entries long."""
    retain_blocks: int = 256
    """Blocks the log keeps behind the leader's applied height for a validator that lags
    or is down; one further behind fetches committed blocks from a ledger instead."""
    sync_blocks: int = 32
    """Committed blocks per ``BlockBatch``."""
    sync_bytes: int = 4 * 1024 * 1024
    """Bytes per ``BlockBatch`` (at least one block is sent, whatever its size)."""
    fetch_ms: int = 250
    """Ask another peer when a block request has not been answered this long."""


class RaftCore:
    """One validator's raft instance: ``step`` events in, actions out."""

    def __init__(self, node_id: str, support: ReplicaSupport, rng: random.Random,
                 durable: bytes | None, timings: RaftTimings | None = None) -> None:
        self.node_id = node_id
        self.support = support
        self._rng = rng
        self._t = timings or RaftTimings()
        self._validators = tuple(support.validators())
        self._peers = tuple(v for v in self._validators if v != node_id)
        self._quorum = len(self._validators) // 2 + 1
        applied = support.next_height() - 1
        state = (decode_state(durable) if durable is not None
                 else DurableState(log=RaftLog(base_height=applied)))
        self._term = state.term
        self._voted_for = state.voted_for
        self._log = state.log
        self._certs: dict[int, Certificate] = state.certificates
        """Verified certificates by height: above ``_applied_height`` waiting to commit,
        at or below it kept for peers that lag, until compaction."""
        self._cert_bytes = {h: c.encode() for h, c in self._certs.items()}
        self._applied_height = applied
        self._commit_index = self._index_of_applied()
        """Raft's commit index (a log index). Not durable: after a restart, everything up
        to the last block in the ledger is known committed."""
        self._role = Role.FOLLOWER
        self._leader: str | None = None
        self._now = 0
        self._election_due: int | None = None
        self._heard = False
        """A message from the leader arrived since the election timer was last checked."""
        self._last_heard: int | None = None
        self._granted: set[str] = set()
        """Pre-votes or votes received in the current campaign."""
        self._retries = 0
        """Campaigns in a row that ended without a leader."""
        self._signed: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        """(height, term) → (block hash, signature): votes already signed."""
        self._proposed: dict[bytes, PreparedBlock] = {}
        """Blocks this node built as leader, by hash, so it commits its own work."""
        self._batch_wanted = False
        # catching up from ledgers (``_behind``)
        self._sync_to = self._log.base_height
        """Highest height known committed whose certificate will not come through the log
        (below the leader's compaction point, or applied by a peer when this node leads)."""
        self._fetched: dict[int, Block] = {}
        self._fetch_due: int | None = None
        self._fetch_attempts = 0
        self._served: dict[str, tuple[int, int]] = {}
        # leader state
        self._next: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        """Last index sent to each peer: entries in flight are resent on heartbeats only."""
        self._match: dict[str, int] = {}
        self._peer_applied: dict[str, int] = {}
        self._votes: dict[int, dict[str, bytes]] = {}
        self._active: set[str] = set()
        self._heartbeat_due = 0
        self._quorum_due = 0
        # per-step output
        self._dirty = False
        self._out: list[Action] = []
        self._commits: list[Action] = []
        self._append_to: set[str] = set()
        self._append_all = False
        self._step_applied = applied

    def _index_of_applied(self) -> int:
        """The log index of the last block the ledger holds (they must agree)."""
        log, h = self._log, self._applied_height
        if h <= log.base_height:
            return log.base_index  # (below it: catching up, the entries up to base committed)
        index = log.index_of_height(h)
        if index is None:
            raise SafetyViolation(f"{self.node_id}: the ledger is at height {h} but the raft "
                                  f"log holds heights {log.base_height}..{log.last_block_height}")
        return index

    # -- the Core interface ---------------------------------------------------------------

    def step(self, event: Event) -> list[Action]:
        self._step_applied = self._applied_height
        if self.support.validators() != self._validators:
            self._reconfigure()
        if isinstance(event, Tick):
            self._now = max(self._now, event.now_ms)
            self._on_tick()
        elif isinstance(event, BatchReady):
            self._now = max(self._now, event.now_ms)
            if self._role is Role.LEADER:
                self._batch_wanted = True
                if self._log.last_block_height != self._applied_height:
                    return []       # proposed once the block in flight commits
            elif self._election_due is not None:
                return []           # the node forwards transactions to the leader
        elif isinstance(event, Receive) and (event.sender in self._peers
                                             or isinstance(event.message, _FROM_ANYONE)):
            self._on_message(event.sender, event.message)
        if self._election_due is None:
            self._reset_election_timer()
        self._maybe_propose()
        self._apply_next()
        self._maybe_fetch()
        return self._flush()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": "raft", "role": self._role.value,
                               "term": self._term, "leader": self._leader,
                               "committed_height": self._applied_height}
        if self._behind():
            out["catching_up_to"] = self._fetch_target()
        return out

    def _reconfigure(self) -> None:
        """A configuration block changed the validator set; it governs every height after
        it. Changes add or remove one validator at a time, so any majority of the old set
        and any majority of the new one share a validator (Raft's single-server changes,
        applied at commit: only one block is ever in flight). A validator that left stops
        leading and campaigning; one that joined is caught up like any follower."""
        self._validators = tuple(self.support.validators())
        self._peers = tuple(v for v in self._validators if v != self.node_id)
        self._quorum = len(self._validators) // 2 + 1
        if self._role is not Role.LEADER:
            if self.node_id not in self._validators and self._role is not Role.FOLLOWER:
                self._become_follower(self._term, None)
            return
        if self.node_id not in self._validators:
            self._become_follower(self._term, None)
            return
        last = self._log.last_index
        for table, default in ((self._next, last + 1), (self._sent, 0), (self._match, 0),
                               (self._peer_applied, 0)):
            for p in [p for p in table if p not in self._peers]:
                del table[p]
            for p in self._peers:
                table.setdefault(p, default)
        self._active &= set(self._peers)
        self._append_all = True
        self._advance_commit()

    # -- time -------------------------------------------------------------------------------

    def _reset_election_timer(self) -> None:
        """A timeout in [E, 2E), its range doubling (up to 8E) with each campaign that
        failed in a row: when messages take nearly as long as E, campaigns keep timing
        out before their votes arrive, and only a wider spread lets one finish."""
        e = self._t.election_ms
        span = e << min(self._retries, 3)
        self._election_due = self._now + self._rng.randint(e, e + span - 1)

    def _on_tick(self) -> None:
        now = self._now
        if self._role is Role.LEADER:
            if now >= self._heartbeat_due:
                self._heartbeat_due = now + self._t.heartbeat_ms
                self._append_all = True
            if now >= self._quorum_due:
                if len(self._active) + 1 < self._quorum:
                    self._become_follower(self._term, None)  # cut off from a majority
                    return
                self._active = set()
                self._quorum_due = now + self._t.election_ms
            return
        if self._election_due is None or now < self._election_due:
            return
        if self._role is Role.FOLLOWER and self._heard:
            # The leader spoke since the last check: it is alive, wait another timeout.
            self._heard = False
            self._last_heard = now
            self._reset_election_timer()
            return
        self._start_prevote()

    def _in_lease(self) -> bool:
        """Whether this node believes a leader is alive: it then refuses to help anyone
        start an election, so a node that was cut off cannot depose a working leader."""
        if self._role is Role.LEADER:
            return True
        if self._leader is None:
            return False
        return self._heard or (self._last_heard is not None
                               and self._now - self._last_heard < self._t.election_ms)

    # -- roles ------------------------------------------------------------------------------

    def _set_term(self, term: int) -> None:
        if term > self._term:
            self._term, self._voted_for = term, None
            self._signed.clear()
            self._dirty = True

    def _become_follower(self, term: int, leader: str | None) -> None:
        self._set_term(term)
        self._role = Role.FOLLOWER
        self._leader = leader
        self._heard = leader is not None
        if leader is not None:
            self._retries = 0
        self._votes.clear()
        self._batch_wanted = False
        self._append_all = False
        self._append_to = set()
        self._reset_election_timer()

    def _start_prevote(self) -> None:
        if self.node_id not in self._validators:
            return
        if self._role in (Role.PRECANDIDATE, Role.CANDIDATE):
            self._retries += 1
        self._role = Role.PRECANDIDATE
        self._leader = None
        self._heard = False
        self._granted = {self.node_id}
        self._reset_election_timer()
        if len(self._granted) >= self._quorum:
            self._become_candidate()
            return
        self._broadcast(PreVote(self._term + 1, self._log.last_index, self._log.last_term))

    def _become_candidate(self) -> None:
        self._set_term(self._term + 1)
        self._voted_for = self.node_id
        self._dirty = True
        self._role = Role.CANDIDATE
        self._granted = {self.node_id}
        self._reset_election_timer()
        if len(self._granted) >= self._quorum:
            self._become_leader()
            return
        self._broadcast(RequestVote(self._term, self._log.last_index, self._log.last_term))

    def _become_leader(self) -> None:
        self._role = Role.LEADER
        self._leader = self.node_id
        self._retries = 0
        last = self._log.last_index
        self._next = dict.fromkeys(self._peers, last + 1)
        self._sent = dict.fromkeys(self._peers, 0)
        self._match = dict.fromkeys(self._peers, 0)
        self._peer_applied = dict.fromkeys(self._peers, 0)  # until each one replies
        self._votes = {}
        self._active = set()
        self._heartbeat_due = self._now + self._t.heartbeat_ms
        self._quorum_due = self._now + self._t.election_ms
        self._log.append([Noop(self._term)])
        self._dirty = True
        self._append_all = True
        self._advance_commit()

    def _up_to_date(self, last_index: int, last_term: int) -> bool:
        return (last_term, last_index) >= (self._log.last_term, self._log.last_index)

    # -- messages ---------------------------------------------------------------------------

    def _on_message(self, sender: str, m: Message) -> None:
        if isinstance(m, AppendEntries):
            self._on_append(sender, m)
        elif isinstance(m, AppendReply):
            self._on_append_reply(sender, m)
        elif isinstance(m, PreVote):
            grant = (m.term > self._term and not self._in_lease()
                     and self._up_to_date(m.last_index, m.last_term))
            self._send(sender, PreVoteReply(m.term if grant else self._term, grant))
        elif isinstance(m, PreVoteReply):
            if not m.granted and m.term > self._term:
                self._become_follower(m.term, None)
            elif self._role is Role.PRECANDIDATE and m.granted and m.term == self._term + 1:
                self._granted.add(sender)
                if len(self._granted) >= self._quorum:
                    self._become_candidate()
        elif isinstance(m, RequestVote):
            self._on_request_vote(sender, m)
        elif isinstance(m, VoteReply):
            if m.term > self._term:
                self._become_follower(m.term, None)
            elif self._role is Role.CANDIDATE and m.term == self._term and m.granted:
                self._granted.add(sender)
                if len(self._granted) >= self._quorum:
                    self._become_leader()
        elif isinstance(m, Snapshot):
            self._on_snapshot(sender, m)
        elif isinstance(m, BlockRequest):
            self._on_block_request(sender, m)
        elif isinstance(m, BlockBatch):
            self._on_block_batch(m)

    def _on_request_vote(self, sender: str, m: RequestVote) -> None:
        if m.term < self._term or (m.term > self._term and self._in_lease()):
            self._send(sender, VoteReply(self._term, False))
            return
        if m.term > self._term:
            self._become_follower(m.term, None)
        grant = (self._voted_for in (None, sender)
                 and self._up_to_date(m.last_index, m.last_term))
        if grant:
            self._voted_for = sender
            self._dirty = True
            self._reset_election_timer()
        self._send(sender, VoteReply(self._term, grant))

    def _on_append(self, sender: str, m: AppendEntries) -> None:
        if m.term < self._term:
            self._send(sender, AppendReply(self._term, False, 0, self._applied_height, ()))
            return
        if m.term > self._term or self._role is not Role.FOLLOWER or self._leader != sender:
            self._become_follower(m.term, sender)
        self._heard = True
        log = self._log
        if m.prev_index > log.last_index:
            self._reply(sender, False, log.last_index)
            return
        if m.prev_index >= log.base_index and log.term_at(m.prev_index) != m.prev_term:
            hint = max(log.first_index_of_term(m.prev_index) - 1, self._commit_index)
            self._reply(sender, False, hint)
            return
        index = m.prev_index
        for k, entry in enumerate(m.entries):
            index += 1
            if index <= log.base_index:
                continue
            term = log.term_at(index)
            if term == entry.term:
                continue
            if term is not None:
                if index <= self._commit_index:
                    raise SafetyViolation(f"{self.node_id}: leader {sender} of term {m.term} "
                                          f"overwrites committed index {index}")
                log.truncate_from(index)
            log.append(m.entries[k:])
            self._dirty = True
            break
        match = m.prev_index + len(m.entries)
        self._commit_index = max(self._commit_index, min(m.leader_commit, match))
        for cert in m.certificates:
            self._accept_certificate(cert)
        self._compact(m.compact_height)
        self._sync_to = max(self._sync_to, m.compact_height)
        self._reply(sender, True, match, self._votes_for(m.term, match, m.certified_height))

    def _reply(self, leader: str, success: bool, match: int,
               votes: tuple[BlockVote, ...] = ()) -> None:
        self._send(leader, AppendReply(self._term, success, match, self._applied_height, votes))

    def _votes_for(self, term: int, match: int, certified: int) -> tuple[BlockVote, ...]:
        """Votes for the leader of ``term``: for its own entries this node stored, and for
        entries its commit index covers. Nothing else, ever (module docstring)."""
        out: list[BlockVote] = []
        log = self._log
        for h in range(max(certified, log.base_height) + 1, log.last_block_height + 1):
            found = log.block_at(h)
            if found is None or found[0] > match or len(out) >= self._t.max_certificates:
                break
            index, entry = found
            if entry.term != term and index > self._commit_index:
                continue
            out.append(BlockVote(h, entry.block_hash, self._sign(h, term, entry.block_hash)))
        return tuple(out)

    def _sign(self, height: int, term: int, block_hash: bytes) -> bytes:
        cached = self._signed.get((height, term))
        if cached is not None and cached[0] == block_hash:
            return cached[1]
        sig = self.support.sign(vote_message(self.support.chain_id, height, term, block_hash))
        self._signed[(height, term)] = (block_hash, sig)
        return sig

    def _accept_certificate(self, cert: Certificate) -> None:
        """Keep a certificate for a block not yet committed here, if its votes verify."""
        h = cert.height
        if h <= self._applied_height or h in self._certs \
                or h > self._applied_height + 16 * self._t.max_certificates:
            return
        if self._certificate_valid(cert):
            self._add_certificate(cert)

    # -- leader -----------------------------------------------------------------------------

    def _on_append_reply(self, sender: str, m: AppendReply) -> None:
        if m.term > self._term:
            self._become_follower(m.term, None)
            return
        if self._role is not Role.LEADER or m.term != self._term:
            return
        self._active.add(sender)
        self._peer_applied[sender] = max(self._peer_applied[sender], m.applied_height)
        self._sync_to = max(self._sync_to, m.applied_height)
        log = self._log
        if not m.success:
            # (Below the log's base, the next message to the peer is a ``Snapshot``.)
            retry = min(m.match_index, log.last_index) + 1
            self._next[sender] = max(retry, self._match[sender] + 1)
            self._append_to.add(sender)
            return
        self._match[sender] = max(self._match[sender], min(m.match_index, log.last_index))
        self._next[sender] = max(self._next[sender], self._match[sender] + 1)
        for v in m.votes:
            self._take_vote(sender, v)
        self._advance_commit()
        if self._next[sender] <= log.last_index and self._sent[sender] < log.last_index:
            self._append_to.add(sender)

    def _take_vote(self, sender: str, v: BlockVote) -> None:
        if v.height <= self._applied_height or v.height in self._certs:
            return
        found = self._log.block_at(v.height)
        if found is None or found[1].block_hash != v.block_hash:
            return
        msg = vote_message(self.support.chain_id, v.height, self._term, v.block_hash)
        if self.support.verify(sender, msg, v.signature):
            self._votes.setdefault(v.height, {})[sender] = v.signature

    def _advance_commit(self) -> None:
        """Raft's commit rule, then certificates for whatever it made committed."""
        log = self._log
        matches = sorted([log.last_index, *self._match.values()], reverse=True)
        n = matches[self._quorum - 1]
        if n > self._commit_index and log.term_at(n) == self._term:
            self._commit_index = n
            self._append_all = True
        h = self._applied_height
        while (found := log.block_at(h + 1)) is not None:
            h += 1
            if h in self._certs:
                continue
            index, entry = found
            votes = self._votes.setdefault(h, {})
            if entry.term == self._term or index <= self._commit_index:
                votes[self.node_id] = self._sign(h, self._term, entry.block_hash)
            if len(votes) < self._quorum:
                break
            self._add_certificate(Certificate(h, self._term, entry.block_hash, tuple(
                Vote(v, votes[v]) for v in self._validators if v in votes)))
            self._append_all = True

    def _maybe_propose(self) -> None:
        """Build the next block when the previous one is committed here: ``propose``
        builds on the last committed block, so only one block is ever in flight."""
        if (self._role is not Role.LEADER or not self._batch_wanted
                or self._log.last_block_height != self._applied_height
                or self.support.next_height() != self._applied_height + 1):
            return
        self._batch_wanted = False
        p = self.support.propose(self._now, self.node_id)
        if p is None:
            return
        if p.header.height != self._applied_height + 1:
            raise SafetyViolation(f"support proposed height {p.header.height}, expected "
                                  f"{self._applied_height + 1}")
        self._proposed[p.hash] = p
        self._log.append([BlockEntry(self._term, p.header.height, p.hash, p.header_bytes,
                                     p.envelopes)])
        self._dirty = True
        self._append_all = True
        self._advance_commit()

    def _add_certificate(self, cert: Certificate) -> None:
        self._certs[cert.height] = cert
        self._cert_bytes[cert.height] = cert.encode()
        self._dirty = True

    def _certified_height(self) -> int:
        h = self._applied_height
        while h + 1 in self._certs:
            h += 1
        return h

    def _compact_height(self) -> int:
        """What every validator applied, or ``retain_blocks`` behind this leader: a peer
        further behind catches up from ledgers rather than hold every log long. Never
        below this log's base: a validator added after the log was compacted must fetch
        the blocks up to the base from ledgers, their certificates are gone from here."""
        applied = self._applied_height
        return max(min([applied, *self._peer_applied.values()]),
                   applied - self._t.retain_blocks, self._log.base_height)

    def _message_for(self, peer: str) -> AppendEntries | Snapshot:
        if self._next[peer] - 1 < self._log.base_index:
            log = self._log
            return Snapshot(self._term, log.base_index, log.base_term, log.base_height)
        return self._append_entries(peer)

    def _append_entries(self, peer: str) -> AppendEntries:
        log = self._log
        prev = self._next[peer] - 1
        prev_term = log.term_at(prev)
        assert prev_term is not None
        applied = max(self._peer_applied[peer], log.base_height)
        certified = self._certified_height()
        certs: list[Certificate] = []
        for h in range(applied + 1, min(certified, applied + self._t.max_certificates) + 1):
            cert = self._certs.get(h)
            if cert is None:
                break  # (applied before this node held it; the peer fetches it from a ledger)
            certs.append(cert)
        entries = log.slice(prev + 1, self._t.max_entries)
        self._sent[peer] = prev + len(entries)
        return AppendEntries(self._term, prev, prev_term, entries, self._commit_index, certified,
                             self._compact_height(), tuple(certs))

    # -- commit and compaction --------------------------------------------------------------

    def _ready_block(self) -> tuple[BlockEntry, Certificate] | None:
        """The next block to commit, if certified, committed in this log, and the ledger
        holds its parent (it will once the driver stores this step's commit)."""
        h = self._applied_height + 1
        cert = self._certs.get(h)
        found = self._log.block_at(h)
        if cert is None or found is None or found[0] > self._commit_index:
            return None
        if self._applied_height == self._step_applied and self.support.next_height() != h:
            return None
        return found[1], cert

    def _apply_next(self) -> None:
        """Commit the next block if it is certified and committed in this log: one per
        step, since ``validate`` checks against the ledger as the driver left it."""
        if self._applied_height != self._step_applied:
            return
        ready = self._ready_block()
        if ready is None:
            if self._behind():
                self._apply_fetched()
            return
        entry, cert = ready
        if entry.block_hash != cert.block_hash:
            raise SafetyViolation(f"{self.node_id}: certificate for height {cert.height} "
                                  "signs another block than the committed log entry")
        prepared = self._proposed.pop(entry.block_hash, None)
        if prepared is None:
            prepared = self.support.validate(entry.header_bytes, entry.envelopes)
        if prepared.hash != cert.block_hash:
            raise SafetyViolation(f"{self.node_id}: block at height {cert.height} hashes "
                                  "differently from its log entry")
        self._commits.append(Commit(Block(prepared.header, prepared.header_bytes, cert,
                                          prepared.envelopes), prepared))
        self._applied_height = cert.height
        self._votes.pop(cert.height, None)
        self._fetched.pop(cert.height, None)
        self._proposed = {k: p for k, p in self._proposed.items()
                          if p.header.height > cert.height}

    def _compact(self, height: int) -> None:
        """Drop the log up to ``height`` once long enough, never past what the ledger held
        when this step began (the driver stores this step's commits after persisting)."""
        height = min(height, self._step_applied)
        index = self._log.index_of_height(height)
        if index is None or index - self._log.base_index < self._t.compact_every:
            return
        self._log.compact_through(index)
        self._certs = {h: c for h, c in self._certs.items() if h > height}
        self._cert_bytes = {h: c for h, c in self._cert_bytes.items() if h > height}
        self._signed = {k: s for k, s in self._signed.items() if k[0] > height}
        self._dirty = True

    # -- catching up from ledgers ------------------------------------------------------------

    def _fetch_target(self) -> int:
        """How far to fetch from ledgers: up to the log's base (the blocks below it are
        committed and only ledgers hold them), or to a height known committed elsewhere
        whose certificate will not come otherwise — but never past the log's last block,
        so the ledger is never ahead of the log above its base."""
        log = self._log
        return max(log.base_height, min(self._sync_to, log.last_block_height))

    def _behind(self) -> bool:
        return self._applied_height < self._fetch_target()

    def _on_snapshot(self, sender: str, m: Snapshot) -> None:
        """The leader's log starts at ``m.base_index``: restart ours there (keeping what
        follows if our log holds that entry too), then fetch the blocks we lack."""
        if m.term < self._term:
            self._send(sender, AppendReply(self._term, False, 0, self._applied_height, ()))
            return
        if m.term > self._term or self._role is not Role.FOLLOWER or self._leader != sender:
            self._become_follower(m.term, sender)
        self._heard = True
        log = self._log
        if m.base_index > log.base_index:
            term = log.term_at(m.base_index)
            if term == m.base_term:
                log.compact_through(m.base_index)
            else:
                if term is not None and m.base_index <= self._commit_index:
                    raise SafetyViolation(f"{self.node_id}: leader {sender} of term {m.term} "
                                          f"contradicts committed index {m.base_index}")
                log.reset(m.base_index, m.base_term, m.base_height)
            self._certs = {h: c for h, c in self._certs.items() if h > log.base_height}
            self._cert_bytes = {h: c for h, c in self._cert_bytes.items()
                                if h > log.base_height}
            self._dirty = True
        self._commit_index = max(self._commit_index, log.base_index)
        if self._behind() and self._fetch_due is None:
            self._fetch_due = self._now
        self._reply(sender, True, log.base_index)

    def _maybe_fetch(self) -> None:
        """While behind, ask for the next blocks: the leader first, then other peers in
        turn when one does not answer (or answered with blocks that did not verify)."""
        if not self._behind() or self._applied_height + 1 in self._fetched \
                or self._ready_block() is not None:
            return
        if self._fetch_due is None:
            self._fetch_due = self._now  # (after a restart in the middle of catching up)
        if self._now < self._fetch_due:
            return
        if self._role is Role.LEADER:
            targets = sorted(self._peers, key=lambda p: -self._peer_applied.get(p, 0))
        else:
            targets = [p for p in self._peers if p != self._leader]
            if self._leader is not None:
                targets.insert(0, self._leader)
        if not targets:
            return
        peer = targets[self._fetch_attempts % len(targets)]
        self._fetch_attempts += 1
        self._fetch_due = self._now + self._t.fetch_ms
        self._send(peer, BlockRequest(self._term, self._applied_height + 1))

    def _on_block_request(self, sender: str, m: BlockRequest) -> None:
        """Serve committed blocks from the ledger (at most one batch per peer and
        ``fetch_ms`` for the same height: a retry comes only after that)."""
        if m.from_height > self._step_applied:
            return
        last = self._served.get(sender)
        if last is not None and last[0] == m.from_height \
                and self._now - last[1] < self._t.fetch_ms // 2:
            return
        self._served[sender] = (m.from_height, self._now)
        out: list[bytes] = []
        size = 0
        top = min(self._step_applied, m.from_height + self._t.sync_blocks - 1)
        for h in range(m.from_height, top + 1):
            block = self.support.block(h)
            if block is None:
                break
            raw = block.encode()
            if out and size + len(raw) > self._t.sync_bytes:
                break
            out.append(raw)
            size += len(raw)
        if out:
            self._send(sender, BlockBatch(self._term, tuple(out)))

    def _on_block_batch(self, m: BlockBatch) -> None:
        """Keep the blocks we lack; each is verified when its turn to commit comes, with
        the validators of the configuration then in force."""
        if not self._behind():
            return
        lo, hi = self._applied_height, self._fetch_target()
        for raw in m.blocks:
            try:
                block = Block.decode(raw)
            except ConsortiaError:
                break
            h = block.header.height
            if lo < h <= hi and h <= lo + 2 * self._t.sync_blocks:
                self._fetched.setdefault(h, block)

    def _certificate_valid(self, cert: Certificate) -> bool:
        """A majority of distinct validators of the configuration in force signed it."""
        msg = vote_message(self.support.chain_id, cert.height, cert.round, cert.block_hash)
        seen: set[str] = set()
        for v in cert.votes:
            if v.validator_id in seen or v.validator_id not in self._validators \
                    or not self.support.verify(v.validator_id, msg, v.signature):
                return False
            seen.add(v.validator_id)
        return len(seen) >= self._quorum

    def _apply_fetched(self) -> None:
        """Commit the next fetched block if its certificate verifies and it re-executes to
        the certified hash; otherwise drop what that peer sent and ask another."""
        h = self._applied_height + 1
        block = self._fetched.get(h)
        if block is None or self.support.next_height() != h:
            return
        del self._fetched[h]
        cert = block.certificate
        prepared: PreparedBlock | None = None
        if cert.height == h and self._certificate_valid(cert):
            try:
                prepared = self.support.validate(block.header_bytes, block.envelopes)
            except ConsortiaError:
                prepared = None
        if prepared is None or prepared.hash != cert.block_hash:
            self._fetched.clear()
            self._fetch_due = self._now
            return
        self._commits.append(Commit(Block(prepared.header, prepared.header_bytes, cert,
                                          prepared.envelopes), prepared))
        self._applied_height = h
        self._fetch_attempts = 0
        if self._log.index_of_height(h) is not None:
            self._add_certificate(cert)  # (a peer that lags may need it from this log)
        self._fetched = {x: b for x, b in self._fetched.items() if x > h}
        if self._behind() and h + 1 not in self._fetched:
            self._fetch_due = self._now

    # -- output -----------------------------------------------------------------------------

    def _send(self, to: str, message: Message) -> None:
        self._out.append(Send(to, message))

    def _broadcast(self, message: Message) -> None:
        for p in self._peers:
            self._out.append(Send(p, message))

    def _flush(self) -> list[Action]:
        actions: list[Action] = []
        if self._role is Role.LEADER:
            self._compact(self._compact_height())
        if self._dirty:
            actions.append(Persist(encode_state(self._term, self._voted_for, self._log, [
                self._cert_bytes[h] for h in sorted(self._cert_bytes)])))
            self._dirty = False
        wake = self._next_wake()
        if self._role is Role.LEADER and not (wake <= self._now and self._batch_wanted):
            # (When about to propose, the news rides with the next block instead.)
            for p in self._peers if self._append_all else sorted(self._append_to):
                actions.append(Send(p, self._message_for(p)))
            self._append_all = False
            self._append_to = set()
        actions.extend(self._out)
        actions.extend(self._commits)
        self._out, self._commits = [], []
        actions.append(WakeAt(wake))
        return actions

    def _next_wake(self) -> int:
        leader = self._role is Role.LEADER
        if (self._certs.get(self._applied_height + 1) is not None
                and self._ready_block() is not None) or (
                leader and self._batch_wanted
                and self._log.last_block_height == self._applied_height) or (
                self._behind() and self._applied_height + 1 in self._fetched):
            return self._now
        if leader:
            wake = min(self._heartbeat_due, self._quorum_due)
        else:
            assert self._election_due is not None
            wake = self._election_due
        if self._behind() and self._fetch_due is not None:
            wake = min(wake, max(self._fetch_due, self._now))
        return wake
