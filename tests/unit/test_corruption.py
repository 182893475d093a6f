"""A damaged store is refused: verify_chain names the first bad block, and a node's Chain
will not start on it (ledger/verify.py, node/chain.py)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from consortia.ledger.proof import build_proof, verify_proof
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.node.chain import Chain
from consortia.types.errors import ChainCorrupted
from tests.unit.conftest import SUITE, World, build_sample

Mutation = Callable[[sqlite3.Connection], None]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World, dict[str, bytes]]:
    """The sample chain (5 blocks, a configuration block at 3), closed on disk."""
    d = tmp_path_factory.mktemp("pristine")
    sample = build_sample(d / "ledger.db")
    sample.harness.close()
    assert not Path(str(d / "ledger.db") + "-wal").exists() or \
        Path(str(d / "ledger.db") + "-wal").stat().st_size == 0
    return d / "ledger.db", sample.world, sample.ids


def _copy(pristine: tuple[Path, World, dict[str, bytes]], tmp_path: Path) -> Path:
    src, _, _ = pristine
    dst = tmp_path / "ledger.db"
    shutil.copyfile(src, dst)
    return dst


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def _one(con: sqlite3.Connection, sql: str, *args: object) -> bytes:
    row = con.execute(sql, args).fetchone()
    assert row is not None
    return bytes(row[0])


def _set_tx_envelope(height: int, idx: int, at: int) -> Mutation:
    def m(con: sqlite3.Connection) -> None:
        env = _one(con, "SELECT envelope FROM txs WHERE height=? AND idx=?", height, idx)
        con.execute("UPDATE txs SET envelope=? WHERE height=? AND idx=?",
                    (_flip(env, at % len(env)), height, idx))
    return m


def _set_header(height: int, at: int) -> Mutation:
    def m(con: sqlite3.Connection) -> None:
        hb = _one(con, "SELECT header FROM blocks WHERE height=?", height)
        con.execute("UPDATE blocks SET header=? WHERE height=?", (_flip(hb, at % len(hb)),
                                                                  height))
    return m


def _set_certificate(height: int, at: int) -> Mutation:
    def m(con: sqlite3.Connection) -> None:
        cb = _one(con, "SELECT certificate FROM blocks WHERE height=?", height)
        con.execute("UPDATE blocks SET certificate=? WHERE height=?",
                    (_flip(cb, at % len(cb)), height))
    return m


def _sql(*statements: str) -> Mutation:
    def m(con: sqlite3.Connection) -> None:
        for s in statements:
            con.execute(s)
    return m


def _swap_envelopes(con: sqlite3.Connection) -> None:
    a = _one(con, "SELECT envelope FROM txs WHERE height=2 AND idx=0")
    b = _one(con, "SELECT envelope FROM txs WHERE height=2 AND idx=1")
    con.execute("UPDATE txs SET envelope=? WHERE height=2 AND idx=0", (b,))
    con.execute("UPDATE txs SET envelope=? WHERE height=2 AND idx=1", (a,))


def _set_txid(con: sqlite3.Connection) -> None:
    txid = _one(con, "SELECT txid FROM txs WHERE height=2 AND idx=0")
    con.execute("UPDATE txs SET txid=? WHERE height=2 AND idx=0", (_flip(txid, 0),))


def _set_hash(con: sqlite3.Connection) -> None:
    h = _one(con, "SELECT hash FROM blocks WHERE height=2")
    con.execute("UPDATE blocks SET hash=? WHERE height=2", (_flip(h, 5),))


def _set_config(con: sqlite3.Connection) -> None:
    from consortia.types.config import ChainConfig
    cfg = ChainConfig.decode(_one(con, "SELECT value FROM meta WHERE key='config'"))
    import dataclasses
    bad = dataclasses.replace(cfg, sequence=cfg.sequence + 1)
    con.execute("UPDATE meta SET value=? WHERE key='config'", (bad.encode(),))


def _duplicate_tx_row(con: sqlite3.Connection) -> None:
    con.execute("INSERT INTO txs SELECT (SELECT MAX(seq)+1 FROM txs), ?, height, idx+1, type, "
                "status, code, envelope FROM txs WHERE height=2 AND idx=2", (bytes(32),))


CASES: dict[str, tuple[Mutation, str]] = {
    "tx-envelope-signature": (_set_tx_envelope(2, 1, -5), r"block 2\b"),
    "tx-envelope-payload": (_set_tx_envelope(2, 0, 40), r"block 2\b"),
    "header-last-byte": (_set_header(2, -1), r"(block|height) 2\b"),
    "header-timestamp": (_set_header(2, 120), r"(block|height) 2\b"),
    "header-first-byte": (_set_header(2, 0), r"block 2\b"),
    "header-of-tip": (_set_header(5, -3), r"(block|height) 5\b"),
    "delete-block-row": (_sql("DELETE FROM blocks WHERE height=2"), r"block 2\b"),
    "certificate-signature": (_set_certificate(2, -3), r"(block|height) 2\b"),
    "certificate-height": (_set_certificate(2, 1), r"(block|block is|height) 2\b"),
    "result-status": (_sql("UPDATE txs SET status=1, code='x' WHERE height=2 AND idx=1"),
                      r"block 2\b"),
    "result-revived": (_sql("UPDATE txs SET status=0, code='' WHERE height=4 AND idx=0"),
                       r"block 4\b"),
    "stored-hash": (_set_hash, r"block 2\b"),
    "stored-txid": (_set_txid, r"block 2 tx 0\b"),
    "delete-tx-row": (_sql("DELETE FROM txs WHERE height=2 AND idx=1"), r"block 2\b"),
    "extra-tx-row": (_duplicate_tx_row, r"block 2\b"),
    "reordered-txs": (_swap_envelopes, r"block 2\b"),
    "config-block-envelope": (_set_tx_envelope(3, 0, -5), r"block 3\b"),
    "config-block-header": (_set_header(3, -1), r"(block|height) 3\b"),
    "genesis-header": (_set_header(0, -1), r"block 0\b"),
    "genesis-envelope": (_set_tx_envelope(0, 0, -5), r"block 0\b"),
    "config-in-force": (_set_config, r"configuration in force"),
}


def _corrupt(pristine: tuple[Path, World, dict[str, bytes]], tmp_path: Path,
             mutation: Mutation) -> Path:
    path = _copy(pristine, tmp_path)
    con = sqlite3.connect(path)
    with con:
        mutation(con)
    con.close()
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_verify_chain_names_the_bad_block(pristine, tmp_path: Path, name: str) -> None:
    mutation, where = CASES[name]
    path = _corrupt(pristine, tmp_path, mutation)
    _, world, _ = pristine
    store = LedgerStore(path)
    try:
        with pytest.raises(ChainCorrupted) as e:
            verify_chain(store, world.genesis, tail=None)
        assert re.search(where, e.value.message), e.value.message
        assert e.value.code == "chain_corrupted"
    finally:
        store.close()


@pytest.mark.parametrize("name", list(CASES))
def test_node_chain_refuses_to_start(pristine, tmp_path: Path, name: str) -> None:
    mutation, _ = CASES[name]
    path = _corrupt(pristine, tmp_path, mutation)
    _, world, _ = pristine
    store = LedgerStore(path)
    try:
        with pytest.raises(ChainCorrupted):
            Chain(store, world.genesis, world.validator.key)
    finally:
        store.close()


def test_pristine_copy_is_accepted(pristine, tmp_path: Path) -> None:
    """The control case: an unmodified copy verifies and starts."""
    path = _copy(pristine, tmp_path)
    _, world, _ = pristine
    store = LedgerStore(path)
    try:
        assert verify_chain(store, world.genesis, tail=None) == 5
        assert Chain(store, world.genesis, world.validator.key).store.height == 5
    finally:
        store.close()


def test_corruption_before_the_tail_is_outside_a_tail_check(pristine, tmp_path: Path) -> None:
    """Start-up checks the tail only: damage below it is found by the full check."""
    path = _corrupt(pristine, tmp_path, _set_tx_envelope(1, 0, -5))
    _, world, _ = pristine
    store = LedgerStore(path)
    try:
        assert verify_chain(store, world.genesis, tail=2) == 2
        with pytest.raises(ChainCorrupted, match=r"block 1\b"):
            verify_chain(store, world.genesis, tail=None)
    finally:
        store.close()


def test_deleted_tip_block_row_is_detected(pristine, tmp_path: Path) -> None:
    """Deleting the last block's row leaves its transactions (and notary records) behind:
    the store then reports transactions committed in a block that does not exist."""
    path = _corrupt(pristine, tmp_path, _sql("DELETE FROM blocks WHERE height=5"))
    _, world, _ = pristine
    store = LedgerStore(path)
    try:
        assert store.height == 4
        with pytest.raises(ChainCorrupted, match=r"block 5\b"):
            verify_chain(store, world.genesis, tail=None)
    finally:
        store.close()


def test_cleared_configuration_flag_is_detected(pristine, tmp_path: Path) -> None:
    """blocks.is_config drives configuration replay and the config blocks put in proofs;
    a store whose flag disagrees with the header must not pass the full check."""
    path = _corrupt(pristine, tmp_path, _sql("UPDATE blocks SET is_config=0 WHERE height=3"))
    _, world, ids = pristine
    store = LedgerStore(path)
    try:
        # proofs built from this store omit the configuration block and no longer verify
        proof = build_proof(store, SUITE, world.genesis.hash, ids["inv-4"])
        with pytest.raises(Exception, match="omits configuration blocks"):
            verify_proof(proof, world.genesis)
        with pytest.raises(ChainCorrupted, match=r"block 3\b"):
            verify_chain(store, world.genesis, tail=None)
    finally:
        store.close()


def test_store_of_an_empty_file_is_empty(tmp_path: Path, world: World) -> None:
    store = LedgerStore(tmp_path / "new.db")
    try:
        assert store.height == -1
        assert verify_chain(store, world.genesis, tail=None) == 0
        with pytest.raises(ChainCorrupted):
            store.config_in_force()
    finally:
        store.close()
