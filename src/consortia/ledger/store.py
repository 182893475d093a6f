"""The block store, state and indexes in one SQLite database (WAL, synchronous=FULL).

``commit`` writes a block, its transactions, their results, the notary record
indexes and any new configuration in one database transaction: after a crash
the block is there whole or not at all, and a transaction acknowledged as
committed was fsynced before the acknowledgement (ADR 0002).

Tables::

    meta(key, value)                   genesis hash, chain id, configuration in force
                                       (and the one before it)
    blocks(height, hash, header, certificate, first_seq, tx_count, is_config)
                                       a block's certificate is replaced, in the commit of
                                       the next block, by the one that block's header carries
    txs(seq, txid, height, idx, type, status, code, envelope)   seq = global order
    records(seq, business_id, category, business_time)           notary indexes

Quorum chains (ADR 0026) add, written in the same transaction as their block::

    evm_state(key, value)              trie nodes and contract codes under their keccak256
                                       (content addressed: insert-or-ignore, never deleted)
    eth_blocks(height, hash, header)   this height's Ethereum block: hash, RLP header
    eth_receipts(txid, height, idx, receipt)   one encoded receipt per Ethereum transaction
    eth_logs(height, idx, log_index, address, topic0..topic3, data)   eth_getLogs index
    private_roots(height, root)        this node's private state root after a height whose
                                       block carried a private transaction it took part in
    private_receipts(txid, height, idx, receipt)   the private receipts of those (ADR 0027)

The private tables are this node's own (a participant's view); nothing of them is in the
block's hashes, so ``verify`` ignores them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia.types.block import Block, Result, TxStatus
from consortia.types.config import ChainConfig
from consortia.types.errors import ChainCorrupted, ConsortiaError
from consortia.types.tx import NotaryMeta, TxType

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL,
    certificate BLOB NOT NULL,
    first_seq INTEGER NOT NULL,
    tx_count INTEGER NOT NULL,
    is_config INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    seq INTEGER PRIMARY KEY,
    txid BLOB NOT NULL UNIQUE,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    type INTEGER NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    business_id TEXT NOT NULL,
    category TEXT NOT NULL,
    business_time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_bid ON records (business_id, seq);
CREATE INDEX IF NOT EXISTS records_by_cat ON records (category, business_time, seq);
CREATE TABLE IF NOT EXISTS evm_state (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS eth_blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS eth_receipts (
    txid BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    receipt BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS eth_logs (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    address BLOB NOT NULL,
    topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB,
    data BLOB NOT NULL,
    PRIMARY KEY (height, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS eth_logs_by_address ON eth_logs (address, height);
CREATE INDEX IF NOT EXISTS eth_logs_by_topic0 ON eth_logs (topic0, height);
CREATE TABLE IF NOT EXISTS private_roots (height INTEGER PRIMARY KEY, root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS private_receipts (
    txid BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    receipt BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class LogRow:
    """One Ethereum log as the ``eth_logs`` index holds it."""

    height: int
    index: int
    """The transaction's index in the block."""
    log_index: int
    """Position among the block's logs."""
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class EvmWrite:
    """What a quorum block adds besides the generic rows, already encoded by the node."""

    eth_hash: bytes
    eth_header: bytes
    """The RLP Ethereum header whose keccak256 is ``eth_hash``."""
    state: dict[bytes, bytes]
    """New state nodes and codes (``BlockOutcome.writes``)."""
    receipts: Sequence[tuple[bytes, int, bytes]]
    """(transaction hash, index in block, encoded receipt) per Ethereum transaction."""
    logs: Sequence[LogRow]
    private_root: bytes | None = None
    """This node's private state root after the block, when the block changed it."""
    private_receipts: Sequence[tuple[bytes, int, bytes]] = ()
    """(transaction hash, index in block, encoded private receipt) of this node's private
    transactions in the block (ADR 0027)."""


@dataclass(frozen=True, slots=True)
class BlockWrite:
    """Everything one block adds to the store, prepared before the write transaction."""

    block: Block
    hash: bytes
    txids: Sequence[bytes]
    types: Sequence[TxType]
    results: Sequence[Result]
    records: Sequence[tuple[int, NotaryMeta]]
    """(index in block, metadata) of each valid notary record."""
    new_config: ChainConfig | None
    evm: EvmWrite | None = None
    """Quorum chains: the Ethereum block, its receipts, logs and state (ADR 0026)."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    height: int
    hash: bytes
    header: bytes
    certificate: bytes
    first_seq: int
    tx_count: int
    is_config: bool


@dataclass(frozen=True, slots=True)
class StoredTx:
    seq: int
    txid: bytes
    height: int
    index: int
    type: TxType
    result: Result
    envelope: bytes


@dataclass(frozen=True, slots=True)
class RecordRow:
    seq: int
    txid: bytes
    business_id: str
    category: str
    business_time_ms: int
    height: int
    index: int
    type: TxType


class LedgerStore:
    """One node's ledger. Safe for one writer thread and concurrent readers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._height = -1
        self._tx_total = 0
        try:
            self._w = self._connect()
            self._w.executescript(_SCHEMA)
            self._r = self._connect()
            row = self._w.execute("SELECT MAX(height) FROM blocks").fetchone()
            if row[0] is not None:
                self._height = int(row[0])
                self._tx_total = int(self._w.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM txs").fetchone()[0])
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            raise ChainCorrupted(f"{self.path} is not a readable ledger database: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def close(self) -> None:
        with self._wlock, self._rlock:
            self._r.close()
            self._w.close()

    # -- state -------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the last committed block (-1 for an empty store)."""
        return self._height

    @property
    def tx_total(self) -> int:
        return self._tx_total

    def meta(self, key: str) -> bytes | None:
        with self._rlock:
            row = self._r.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def config_in_force(self) -> tuple[int, ChainConfig]:
        raw, h = self.meta("config"), self.meta("config_height")
        if raw is None or h is None:
            raise ChainCorrupted("the store has no configuration in force")
        try:
            return int(h.decode()), ChainConfig.decode(raw)
        except (ValueError, ConsortiaError) as exc:
            raise ChainCorrupted(f"the stored configuration in force is damaged: {exc}") from exc

    def previous_config(self) -> ChainConfig | None:
        """The configuration in force before the last configuration block (None before the
        first one after genesis): the last block's certificate, when that block changed the
        configuration, verifies under it."""
        raw = self.meta("previous_config")
        if raw is None:
            return None
        try:
            return ChainConfig.decode(raw)
        except ConsortiaError as exc:
            raise ChainCorrupted(f"the stored previous configuration is damaged: {exc}") from exc

    # -- writes ------------------------------------------------------------------------------

    def commit(self, w: BlockWrite) -> None:
        hd = w.block.header
        if hd.height != self._height + 1:
            raise ChainCorrupted(f"commit of height {hd.height} after {self._height}")
        first = self._tx_total + 1
        with self._wlock:
            c = self._w
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT INTO blocks VALUES (?,?,?,?,?,?,?)",
                          (hd.height, w.hash, w.block.header_bytes, w.block.certificate.encode(),
                           first, hd.tx_count, int(w.new_config is not None or hd.height == 0)))
                c.executemany("INSERT INTO txs VALUES (?,?,?,?,?,?,?,?)", [
                    (first + i, w.txids[i], hd.height, i, int(w.types[i]),
                     int(w.results[i].status), w.results[i].code, w.block.envelopes[i])
                    for i in range(len(w.txids))])
                c.executemany("INSERT INTO records VALUES (?,?,?,?)", [
                    (first + i, m.business_id, m.category, m.business_time_ms)
                    for i, m in w.records])
                if w.evm is not None:
                    _write_evm(c, hd.height, w.evm)
                if hd.last_commit:  # the agreed certificate replaces this node's own quorum
                    c.execute("UPDATE blocks SET certificate=? WHERE height=?",
                              (hd.last_commit, hd.height - 1))
                if w.new_config is not None:
                    c.execute("INSERT OR REPLACE INTO meta SELECT 'previous_config', value "
                              "FROM meta WHERE key='config'")
                    c.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", [
                        ("config", w.new_config.encode()),
                        ("config_height", str(hd.height).encode())])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        self._height = hd.height
        self._tx_total = first + len(w.txids) - 1

    def init_meta(self, items: dict[str, bytes]) -> None:
        with self._wlock:
            self._w.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", list(items.items()))

    # -- reads -------------------------------------------------------------------------------

    def known_txids(self, ids: Iterable[bytes]) -> set[bytes]:
        """Which of ``ids`` are already committed (the whole history, by unique index)."""
        ids = list(ids)
        found: set[bytes] = set()
        with self._rlock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                q = f"SELECT txid FROM txs WHERE txid IN ({marks})"  # noqa: S608
                found.update(bytes(r[0]) for r in self._r.execute(q, chunk))
        return found

    def block(self, height: int) -> StoredBlock | None:
        with self._rlock:
            row = self._r.execute("SELECT * FROM blocks WHERE height=?", (height,)).fetchone()
        return None if row is None else _block(row)

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        with self._rlock:
            row = self._r.execute("SELECT * FROM blocks WHERE hash=?", (block_hash,)).fetchone()
        return None if row is None else _block(row)

    def blocks_desc(self, limit: int, before: int | None = None) -> list[StoredBlock]:
        top = self._height if before is None else before - 1
        with self._rlock:
            rows = self._r.execute(
                "SELECT * FROM blocks WHERE height<=? ORDER BY height DESC LIMIT ?",
                (top, limit)).fetchall()
        return [_block(r) for r in rows]

    def block_txs(self, height: int) -> list[StoredTx]:
        with self._rlock:
            rows = self._r.execute("SELECT * FROM txs WHERE height=? ORDER BY seq",
                                   (height,)).fetchall()
        return [_tx(r) for r in rows]

    def tx(self, txid: bytes) -> StoredTx | None:
        with self._rlock:
            row = self._r.execute("SELECT * FROM txs WHERE txid=?", (txid,)).fetchone()
        return None if row is None else _tx(row)

    def config_blocks(self, up_to: int) -> list[StoredBlock]:
        """Configuration blocks after genesis up to height ``up_to``, in order."""
        with self._rlock:
            rows = self._r.execute(
                "SELECT * FROM blocks WHERE is_config=1 AND height>0 AND height<=? "
                "ORDER BY height", (up_to,)).fetchall()
        return [_block(r) for r in rows]

    _RECORD_SQL = ("SELECT r.seq, t.txid, r.business_id, r.category, r.business_time, t.height, "
                   "t.idx, t.type FROM records r JOIN txs t ON t.seq = r.seq ")

    def records_by_business_id(self, business_id: str, limit: int,
                               after_seq: int = 0) -> list[RecordRow]:
        with self._rlock:
            rows = self._r.execute(
                self._RECORD_SQL + "WHERE r.business_id=? AND r.seq>? ORDER BY r.seq LIMIT ?",
                (business_id, after_seq, limit)).fetchall()
        return [_record(r) for r in rows]

    def records_by_category(self, category: str, from_ms: int, to_ms: int, limit: int,
                            after: tuple[int, int] | None = None) -> list[RecordRow]:
        """Records of ``category`` with business time in [from_ms, to_ms], in time order.

        ``after`` is the (business_time, seq) of the last row of the previous page.
        """
        t0, s0 = after if after else (from_ms, -1)
        with self._rlock:
            rows = self._r.execute(
                self._RECORD_SQL + "WHERE r.category=? AND r.business_time<=? AND "
                "(r.business_time>? OR (r.business_time=? AND r.seq>?)) "
                "ORDER BY r.business_time, r.seq LIMIT ?",
                (category, to_ms, t0, t0, s0, limit)).fetchall()
        return [_record(r) for r in rows]

    def counts(self) -> tuple[int, int, int, int]:
        """(first height with transactions but no block row (-1: none), highest tx seq, sum
        of block tx counts, highest config block): what a consistency check compares."""
        with self._rlock:
            row = self._r.execute(
                "SELECT (SELECT COALESCE(MIN(t.height), -1) FROM txs t"
                "        LEFT JOIN blocks b ON b.height = t.height WHERE b.height IS NULL),"
                " (SELECT COALESCE(MAX(seq), 0) FROM txs),"
                " (SELECT COALESCE(SUM(tx_count), 0) FROM blocks),"
                " (SELECT COALESCE(MAX(height), -1) FROM blocks WHERE is_config=1)").fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    # -- quorum chains (ADR 0026) -----------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """A state node or code by its hash: the engine's ``StateReader`` over ``evm_state``."""
        with self._rlock:
            row = self._r.execute("SELECT value FROM evm_state WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def eth_block(self, height: int) -> tuple[bytes, bytes] | None:
        """(Ethereum hash, RLP header) of the Ethereum block at ``height``."""
        with self._rlock:
            row = self._r.execute("SELECT hash, header FROM eth_blocks WHERE height=?",
                                  (height,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def eth_height(self, eth_hash: bytes) -> int | None:
        """The height of the Ethereum block with hash ``eth_hash``."""
        with self._rlock:
            row = self._r.execute("SELECT height FROM eth_blocks WHERE hash=?",
                                  (eth_hash,)).fetchone()
        return None if row is None else int(row[0])

    def eth_receipt(self, txid: bytes) -> tuple[int, int, bytes] | None:
        """(height, index in block, encoded receipt) of an Ethereum transaction."""
        with self._rlock:
            row = self._r.execute("SELECT height, idx, receipt FROM eth_receipts WHERE txid=?",
                                  (txid,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def private_root(self) -> bytes | None:
        """This node's latest private state root (None: no private transaction yet)."""
        with self._rlock:
            row = self._r.execute("SELECT root FROM private_roots ORDER BY height DESC LIMIT 1"
                                  ).fetchone()
        return None if row is None else bytes(row[0])

    def private_root_at(self, height: int) -> bytes | None:
        """This node's private state root as it stood after ``height``."""
        with self._rlock:
            row = self._r.execute("SELECT root FROM private_roots WHERE height <= ? "
                                  "ORDER BY height DESC LIMIT 1", (height,)).fetchone()
        return None if row is None else bytes(row[0])

    def private_receipt(self, txid: bytes) -> tuple[int, int, bytes] | None:
        """(height, index, encoded private receipt) of a private transaction this node
        took part in."""
        with self._rlock:
            row = self._r.execute("SELECT height, idx, receipt FROM private_receipts "
                                  "WHERE txid=?", (txid,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def eth_logs(self, first: int, last: int, addresses: Sequence[bytes] = (),
                 topics: Sequence[Sequence[bytes] | None] = (), limit: int = 10_000
                 ) -> list[LogRow]:
        """Logs of heights ``first..last`` in chain order, as eth_getLogs filters them: any of
        ``addresses`` (all when empty); ``topics[i]`` any of its values at position i (any
        topic when None or empty)."""
        if len(topics) > 4:
            return []
        where = ["height BETWEEN ? AND ?"]
        params: list[Any] = [first, last]
        if addresses:
            where.append(f"address IN ({','.join('?' * len(addresses))})")
            params.extend(addresses)
        for i, options in enumerate(topics):
            if options:
                where.append(f"topic{i} IN ({','.join('?' * len(options))})")
                params.extend(options)
        q = ("SELECT height, idx, log_index, address, topic0, topic1, topic2, topic3, data "  # noqa: S608
             f"FROM eth_logs WHERE {' AND '.join(where)} ORDER BY height, log_index LIMIT ?")
        params.append(limit)
        with self._rlock:
            rows = self._r.execute(q, params).fetchall()
        return [LogRow(int(r[0]), int(r[1]), int(r[2]), bytes(r[3]),
                       tuple(bytes(t) for t in r[4:8] if t is not None), bytes(r[8]))
                for r in rows]

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total


def _write_evm(c: sqlite3.Connection, height: int, e: EvmWrite) -> None:
    c.executemany("INSERT OR IGNORE INTO evm_state VALUES (?,?)", list(e.state.items()))
    c.execute("INSERT INTO eth_blocks VALUES (?,?,?)", (height, e.eth_hash, e.eth_header))
    c.executemany("INSERT INTO eth_receipts VALUES (?,?,?,?)",
                  [(txid, height, idx, receipt) for txid, idx, receipt in e.receipts])
    c.executemany("INSERT INTO eth_logs VALUES (?,?,?,?,?,?,?,?,?)", [
        (height, g.index, g.log_index, g.address,
         *(g.topics[i] if i < len(g.topics) else None for i in range(4)), g.data)
        for g in e.logs])
    if e.private_root is not None:
        c.execute("INSERT INTO private_roots VALUES (?,?)", (height, e.private_root))
    c.executemany("INSERT INTO private_receipts VALUES (?,?,?,?)",
                  [(txid, height, idx, receipt) for txid, idx, receipt in e.private_receipts])


def _block(row: Sequence[Any]) -> StoredBlock:
    return StoredBlock(int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3]), int(row[4]),
                       int(row[5]), bool(row[6]))


def _tx(row: Sequence[Any]) -> StoredTx:
    return StoredTx(int(row[0]), bytes(row[1]), int(row[2]), int(row[3]), TxType(row[4]),
                    Result(TxStatus(row[5]), str(row[6])), bytes(row[7]))


def _record(row: Sequence[Any]) -> RecordRow:
    return RecordRow(int(row[0]), bytes(row[1]), str(row[2]), str(row[3]), int(row[4]),
                     int(row[5]), int(row[6]), TxType(row[7]))
