"""What a raft replica remembers: its log, and the durable state it survives a crash with.

The committed chain in the ledger *is* the state machine's snapshot. A replica
drops the prefix of its log once every validator has applied it, or once it is
more than ``retain_blocks`` blocks behind the leader (the leader says how far in
``compact_height``), so the durable state stays short even while a validator is
down. A replica that needs entries the leader dropped gets a ``Snapshot`` (where
the leader's log starts) and fetches the committed blocks up to there from its
peers' ledgers; while ``applied height < base_height`` it is catching up.

Durable state (``Persist`` bytes, canonical msgpack)::

    State = [version=1, term, voted_for ("" for none), base_index, base_term,
             base_height, [Entry...], [certificate bytes...]]

``base_*`` describe the last compacted entry (index, term, and how many blocks the
log held up to it). Certificates are kept for the blocks still in the log so a
replica that restarts and then leads can hand them to a peer that lags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consortia.consensus.raft.messages import (
    BlockEntry,
    Entry,
    entry_fields,
    entry_from_fields,
)
from consortia.types.block import Certificate
from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

STATE_VERSION = 1


class RaftLog:
    """Entries ``base_index + 1 .. last_index``, with the height of each block entry."""

    __slots__ = ("_by_height", "_fields", "_last_block_height", "base_height", "base_index",
                 "base_term", "entries")

    def __init__(self, base_index: int = 0, base_term: int = 0, base_height: int = 0,
                 entries: list[Entry] | None = None) -> None:
        self.base_index = base_index
        self.base_term = base_term
        self.base_height = base_height
        """Number of block entries up to and including ``base_index``."""
        self.entries: list[Entry] = []
        self._fields: list[list[Any]] = []
        """Each entry's encoding fields, made once: the log is persisted at every append."""
        self._by_height: dict[int, int] = {}
        self._last_block_height = base_height
        self.append(entries or [])

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.base_term

    @property
    def last_block_height(self) -> int:
        """Height of the last block entry (``base_height`` if the log holds none)."""
        return self._last_block_height

    @property
    def wire_fields(self) -> list[list[Any]]:
        """The entries as encoder fields (not to be modified)."""
        return self._fields

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index``; None when compacted away or beyond the end."""
        if index == self.base_index:
            return self.base_term
        if self.base_index < index <= self.last_index:
            return self.entries[index - self.base_index - 1].term
        return None

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.base_index - 1]

    def slice(self, start: int, limit: int) -> tuple[Entry, ...]:
        """Up to ``limit`` entries from index ``start`` (> base_index)."""
        lo = start - self.base_index - 1
        return tuple(self.entries[lo:lo + limit])

    def index_of_height(self, height: int) -> int | None:
        return self._by_height.get(height)

    def block_at(self, height: int) -> tuple[int, BlockEntry] | None:
        index = self._by_height.get(height)
        if index is None:
            return None
        entry = self.entry(index)
        assert isinstance(entry, BlockEntry)
        return index, entry

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries with the term of the entry at ``index``."""
        term = self.term_at(index)
        while index - 1 > self.base_index and self.term_at(index - 1) == term:
            index -= 1
        return index

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append entries; a block entry must be the next height (a broken leader or a
        corrupted message would otherwise desynchronize heights and indexes)."""
        for e in entries:
            if isinstance(e, BlockEntry):
                if e.height != self._last_block_height + 1:
                    raise Malformed(f"raft log: block entry of height {e.height} after "
                                    f"height {self._last_block_height}")
                self._last_block_height = e.height
                self._by_height[e.height] = self.last_index + 1
            self.entries.append(e)
            self._fields.append(entry_fields(e))

    def truncate_from(self, index: int) -> None:
        """Drop the entries at ``index`` and after (a conflicting suffix)."""
        assert index > self.base_index
        for e in self.entries[index - self.base_index - 1:]:
            if isinstance(e, BlockEntry):
                del self._by_height[e.height]
        del self.entries[index - self.base_index - 1:]
        del self._fields[index - self.base_index - 1:]
        self._last_block_height = max(self._by_height, default=self.base_height)

    def reset(self, base_index: int, base_term: int, base_height: int) -> None:
        """Start over as an empty log after ``base_index``: the leader's log starts there
        and this one holds nothing it can use (a ``Snapshot``)."""
        self.base_index, self.base_term, self.base_height = base_index, base_term, base_height
        self.entries.clear()
        self._fields.clear()
        self._by_height.clear()
        self._last_block_height = base_height

    def compact_through(self, index: int) -> None:
        """Forget the entries up to and including ``index`` (all applied everywhere)."""
        if index <= self.base_index:
            return
        assert index <= self.last_index
        term = self.term_at(index)
        assert term is not None
        dropped = self.entries[: index - self.base_index]
        for e in dropped:
            if isinstance(e, BlockEntry):
                del self._by_height[e.height]
                self.base_height = e.height
        del self.entries[: index - self.base_index]
        del self._fields[: index - self.base_index]
        self.base_index, self.base_term = index, term


@dataclass
class DurableState:
    term: int = 0
    voted_for: str | None = None
    log: RaftLog = field(default_factory=RaftLog)
    certificates: dict[int, Certificate] = field(default_factory=dict)
    """Certificates of blocks still in the log (by height)."""


def encode_state(term: int, voted_for: str | None, log: RaftLog,
                 certificates: list[bytes]) -> bytes:
    """The ``Persist`` bytes; ``certificates`` are already encoded (the core keeps them
    encoded: it persists often and certificates do not change)."""
    return encode([STATE_VERSION, term, voted_for or "", log.base_index, log.base_term,
                   log.base_height, log.wire_fields, certificates])


def decode_state(data: bytes) -> DurableState:
    """Rebuild the durable state; raise ``Malformed`` if the bytes are not one we wrote."""
    r = Reader(decode(data, what="raft state", max_size=1 << 31), "raft state", length=8)
    if r.int_("version") != STATE_VERSION:
        raise Malformed("raft state.version: unsupported")
    term = r.int_("term")
    voted_for = r.str_("voted_for", max_len=64) or None
    base_index, base_term, base_height = (r.int_("base_index"), r.int_("base_term"),
                                          r.int_("base_height"))
    entries = [entry_from_fields(item, f"raft state.entries[{i}]")
               for i, item in enumerate(r.list_("entries", max_len=1 << 24))]
    certs: dict[int, Certificate] = {}
    for i, c in enumerate(r.list_("certificates", max_len=1 << 24)):
        if not isinstance(c, bytes):
            raise Malformed(f"raft state.certificates[{i}]: expected bytes")
        cert = Certificate.decode(c)
        certs[cert.height] = cert
    return DurableState(term, voted_for, RaftLog(base_index, base_term, base_height, entries),
                        certs)
