"""Raft log entries and messages, and their canonical bytes (docs/spec/raft.md).

The simulator hands these objects from core to core as they are; the network
transport carries ``encode_message`` bytes and rebuilds them with
``decode_message``, which accepts only the canonical encoding (ADR 0001) and
checks every field's type and size, so a peer cannot make a core hold an object
the encoder could not have produced.

Wire layout: every message is an array whose first item is its tag::

    PreVote       = [1, term, last_index, last_term]
    PreVoteReply  = [2, term, granted]
    RequestVote   = [3, term, last_index, last_term]
    VoteReply     = [4, term, granted]
    AppendEntries = [5, term, prev_index, prev_term, [Entry...], leader_commit,
                     certified_height, compact_height, [certificate bytes...]]
    AppendReply   = [6, term, success, match_index, applied_height, [BlockVote...]]
    Snapshot      = [7, term, base_index, base_term, base_height]
    BlockRequest  = [8, term, from_height]
    BlockBatch    = [9, term, [block bytes...]]
    Entry         = [0, term] (Noop) | [1, term, height, block_hash, header, [envelope...]]
    BlockVote     = [height, block_hash, signature]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consortia.types.block import MAX_BLOCK_TXS, MAX_HEADER, Certificate
from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed
from consortia.types.tx import MAX_ENVELOPE_BYTES

MAX_ENTRIES = 1024
"""Entries one AppendEntries may carry (the leader sends far fewer)."""
MAX_CERTIFICATES = 1024
MAX_BLOCK_VOTES = 1024
MAX_BATCH_BLOCKS = 256
"""Blocks one ``BlockBatch`` may carry (the sender caps it by bytes well below)."""
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""Decoder cap for one message; the transport's frame limit is the real bound."""


# -- log entries ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Noop:
    """The entry a new leader appends in its term. Raft commits an entry of an earlier
    term only through a later entry of the current term (the Figure-8 rule), so without
    it a block left over from a crashed leader would wait for the next transaction."""

    term: int


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """A block the leader of ``term`` built with ``Support.propose``, not yet final.

    ``height`` and ``block_hash`` repeat what the header says so a replica can map log
    indexes to heights and sign votes without decoding or hashing (the hash function is
    the chain's suite's); ``Support.validate`` re-derives both when the block commits.
    """

    term: int
    height: int
    block_hash: bytes
    header_bytes: bytes
    envelopes: tuple[bytes, ...]


Entry = Noop | BlockEntry


# -- messages -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PreVote:
    """Asks whether the receiver would vote for the sender in ``term``, before a real
    election and without changing anyone's term, so a node cut off from the leader
    cannot disrupt it when it comes back (Raft thesis §9.6)."""

    term: int
    """The term the sender would campaign in: its current term + 1."""
    last_index: int
    last_term: int


@dataclass(frozen=True, slots=True)
class PreVoteReply:
    term: int
    """The asked term when granted; the replier's own term when refused."""
    granted: bool


@dataclass(frozen=True, slots=True)
class RequestVote:
    term: int
    last_index: int
    last_term: int


@dataclass(frozen=True, slots=True)
class VoteReply:
    term: int
    granted: bool


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Replication, heartbeat and commit news from the leader of ``term`` in one message."""

    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    """The leader's commit index (a log index, not a height)."""
    certified_height: int
    """Highest height the leader holds certificates up to: replicas send votes only for
    blocks above it."""
    compact_height: int
    """Every validator has applied this height: replicas may drop their log up to it."""
    certificates: tuple[Certificate, ...]
    """Commit certificates for blocks the receiver has not applied yet, lowest first."""


@dataclass(frozen=True, slots=True)
class BlockVote:
    """A signature over ``vote_message(chain_id, height, term, block_hash)``; the term is
    the term of the ``AppendReply`` that carries it."""

    height: int
    block_hash: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class AppendReply:
    term: int
    success: bool
    match_index: int
    """On success, the last index known to match the leader's log; on refusal, an index
    up to which the replier's log may match (where the leader should retry from)."""
    applied_height: int
    votes: tuple[BlockVote, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The leader of ``term`` no longer holds the entries the receiver needs: its log
    starts after ``base_index`` (of ``base_term``), which closes height ``base_height``.
    The committed chain up to that height is the snapshot; the receiver fetches the
    blocks it lacks with ``BlockRequest`` and restarts its log at the base."""

    term: int
    base_index: int
    base_term: int
    base_height: int


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Asks a peer for committed blocks from ``from_height`` on, out of its ledger."""

    term: int
    from_height: int


@dataclass(frozen=True, slots=True)
class BlockBatch:
    """Committed blocks (``Block.encode``: header, certificate, envelopes), consecutive
    and lowest first. The receiver trusts none of it: each block must carry a valid
    certificate of the configuration in force and re-execute to the certified hash."""

    term: int
    blocks: tuple[bytes, ...]


Message = (PreVote | PreVoteReply | RequestVote | VoteReply | AppendEntries | AppendReply
           | Snapshot | BlockRequest | BlockBatch)


# -- encoding -------------------------------------------------------------------------------

def entry_fields(e: Entry) -> list[Any]:
    if isinstance(e, Noop):
        return [0, e.term]
    return [1, e.term, e.height, e.block_hash, e.header_bytes, list(e.envelopes)]


def entry_from_fields(item: Any, what: str) -> Entry:
    if not isinstance(item, list) or not item:
        raise Malformed(f"{what}: expected an array")
    r = Reader(item, what, length=2 if item[0] == 0 else 6)
    kind = r.int_("kind", hi=1)
    term = r.int_("term")
    if kind == 0:
        return Noop(term)
    height = r.int_("height", lo=1)
    block_hash = r.bytes_("block_hash", max_len=64, min_len=32)
    header = r.bytes_("header", max_len=MAX_HEADER, min_len=1)
    envs = r.list_("envelopes", max_len=MAX_BLOCK_TXS)
    for i, env in enumerate(envs):
        if not isinstance(env, bytes) or not 0 < len(env) <= MAX_ENVELOPE_BYTES:
            raise Malformed(f"{what}.envelopes[{i}]: expected a non-empty byte string")
    return BlockEntry(term, height, block_hash, header, tuple(envs))


def encode_entry(entry: Entry) -> bytes:
    return encode(entry_fields(entry))


def decode_entry(data: bytes) -> Entry:
    return entry_from_fields(decode(data, what="raft entry", max_size=MAX_MESSAGE_BYTES),
                       "raft entry")


def encode_message(m: Message) -> bytes:
    """Canonical bytes of a raft message."""
    fields: list[Any]
    if isinstance(m, PreVote):
        fields = [1, m.term, m.last_index, m.last_term]
    elif isinstance(m, PreVoteReply):
        fields = [2, m.term, m.granted]
    elif isinstance(m, RequestVote):
        fields = [3, m.term, m.last_index, m.last_term]
    elif isinstance(m, VoteReply):
        fields = [4, m.term, m.granted]
    elif isinstance(m, AppendEntries):
        fields = [5, m.term, m.prev_index, m.prev_term, [entry_fields(e) for e in m.entries],
                  m.leader_commit, m.certified_height, m.compact_height,
                  [c.encode() for c in m.certificates]]
    elif isinstance(m, AppendReply):
        fields = [6, m.term, m.success, m.match_index, m.applied_height,
                  [[v.height, v.block_hash, v.signature] for v in m.votes]]
    elif isinstance(m, Snapshot):
        fields = [7, m.term, m.base_index, m.base_term, m.base_height]
    elif isinstance(m, BlockRequest):
        fields = [8, m.term, m.from_height]
    else:
        fields = [9, m.term, list(m.blocks)]
    return encode(fields)


_LENGTHS = {1: 4, 2: 3, 3: 4, 4: 3, 5: 9, 6: 6, 7: 5, 8: 3, 9: 3}


def decode_message(data: bytes) -> Message:
    """Rebuild a message from canonical bytes; raise ``Malformed``/``TooLarge`` otherwise."""
    value = decode(data, what="raft message", max_size=MAX_MESSAGE_BYTES)
    if not isinstance(value, list) or not value or value[0] not in _LENGTHS \
            or isinstance(value[0], bool):
        raise Malformed("raft message: unknown message tag")
    r = Reader(value, "raft message", length=_LENGTHS[value[0]])
    tag = r.int_("tag")
    term = r.int_("term")
    if tag in (1, 3):
        last_index, last_term = r.int_("last_index"), r.int_("last_term")
        return (PreVote if tag == 1 else RequestVote)(term, last_index, last_term)
    if tag in (2, 4):
        return (PreVoteReply if tag == 2 else VoteReply)(term, r.bool_("granted"))
    if tag == 5:
        prev_index, prev_term = r.int_("prev_index"), r.int_("prev_term")
        entries = tuple(entry_from_fields(item, f"raft message.entries[{i}]")
                        for i, item in enumerate(r.list_("entries", max_len=MAX_ENTRIES)))
        leader_commit = r.int_("leader_commit")
        certified = r.int_("certified_height")
        compact = r.int_("compact_height")
        certs = []
        for i, c in enumerate(r.list_("certificates", max_len=MAX_CERTIFICATES)):
            if not isinstance(c, bytes):
                raise Malformed(f"raft message.certificates[{i}]: expected bytes")
            certs.append(Certificate.decode(c))
        return AppendEntries(term, prev_index, prev_term, entries, leader_commit, certified,
                             compact, tuple(certs))
    if tag == 7:
        return Snapshot(term, r.int_("base_index"), r.int_("base_term"),
                        r.int_("base_height"))
    if tag == 8:
        return BlockRequest(term, r.int_("from_height", lo=1))
    if tag == 9:
        blocks = r.list_("blocks", max_len=MAX_BATCH_BLOCKS)
        for i, b in enumerate(blocks):
            if not isinstance(b, bytes) or not b:
                raise Malformed(f"raft message.blocks[{i}]: expected a non-empty byte string")
        return BlockBatch(term, tuple(blocks))
    success = r.bool_("success")
    match_index, applied = r.int_("match_index"), r.int_("applied_height")
    votes = []
    for i, item in enumerate(r.list_("votes", max_len=MAX_BLOCK_VOTES)):
        v = Reader(item, f"raft message.votes[{i}]", length=3)
        votes.append(BlockVote(v.int_("height", lo=1), v.bytes_("block_hash", max_len=64,
                                                                 min_len=32),
                               v.bytes_("signature", max_len=132, min_len=1)))
    return AppendReply(term, success, match_index, applied, tuple(votes))
