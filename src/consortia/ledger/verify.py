"""Checking a stored chain: the tail at every start, all of it on demand.

A node refuses to start on a damaged store, with a message naming the first
bad block and what is wrong with it, rather than serve or extend a chain it
cannot vouch for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from eth_utils.crypto import keccak

from consortia.crypto import get_suite
from consortia.ledger.genesis import Genesis
from consortia.ledger.rules import Tip, verify_block
from consortia.ledger.store import LedgerStore
from consortia.types.block import Block, Certificate, Header
from consortia.types.config import ChainConfig
from consortia.types.errors import ChainCorrupted, ConsortiaError
from consortia.types.tx import Envelope

DEFAULT_TAIL = 32


def load_block(store: LedgerStore, height: int) -> tuple[Block, list[bytes], list]:  # type: ignore[type-arg]
    blk = store.block(height)
    if blk is None:
        raise ChainCorrupted(f"block {height} is missing from the store")
    txs = store.block_txs(height)
    try:
        block = Block(Header.decode(blk.header), blk.header, Certificate.decode(blk.certificate),
                      tuple(t.envelope for t in txs))
    except ConsortiaError as exc:
        raise ChainCorrupted(f"block {height} cannot be decoded: {exc.message}") from exc
    if block.header.height != height:
        raise ChainCorrupted(f"block stored at height {height} says it is {block.header.height}")
    return block, [t.txid for t in txs], [t.result for t in txs]


def _check_eth_block(store: LedgerStore, height: int, exec_hash: bytes) -> None:
    """A quorum block's Ethereum block is stored with it and hashes to its ``exec_hash``."""
    row = store.eth_block(height)
    if row is None:
        raise ChainCorrupted(f"block {height}: its Ethereum block is missing from the store")
    if row[0] != exec_hash or keccak(row[1]) != exec_hash:
        raise ChainCorrupted(f"block {height}: the stored Ethereum block is not the one its "
                             "header certifies")


def _tip(store: LedgerStore, height: int) -> Tip:
    blk = store.block(height)
    if blk is None:
        raise ChainCorrupted(f"block {height} is missing from the store")
    try:
        return Tip.of(Header.decode(blk.header), blk.hash, blk.certificate)
    except ConsortiaError as exc:
        raise ChainCorrupted(f"block {height} header cannot be decoded: {exc.message}") from exc


def _check_counts(store: LedgerStore) -> None:
    """Cheap whole-store consistency: no transaction outside a stored block, no gap."""
    orphan, max_seq, total, config_top = store.counts()
    if orphan >= 0:
        raise ChainCorrupted(f"block {orphan} is missing: its transactions are stored but "
                             "its block row is not")
    if max_seq != total:
        raise ChainCorrupted(f"the blocks count {total} transactions, the store holds "
                             f"{max_seq} (rows were lost or added)")
    meta_height = store.meta("config_height")
    if meta_height is None or int(meta_height.decode()) != config_top:
        raise ChainCorrupted("the configuration in force does not name the last "
                             "configuration block (a configuration flag was altered)")


def verify_chain(store: LedgerStore, genesis: Genesis, *, tail: int | None = DEFAULT_TAIL,
                 progress: Callable[[int, int], None] | None = None) -> int:
    """Verify the last ``tail`` blocks (all of them when ``tail`` is None).

    Configuration blocks before the checked range are replayed from genesis, so
    each block's certificate is checked under the configuration really in force.
    Returns the number of blocks checked; raises ``ChainCorrupted``, also when rows
    of the store cannot even be read back (wrong types, damaged pages).
    """
    try:
        return _verify_chain(store, genesis, tail, progress)
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        raise ChainCorrupted(f"the ledger database is damaged: {exc}") from exc


def _verify_chain(store: LedgerStore, genesis: Genesis, tail: int | None,
                  progress: Callable[[int, int], None] | None) -> int:
    suite = get_suite(genesis.config.suite)
    top = store.height
    if top < 0:
        return 0
    g = store.block(0)
    if g is None or g.hash != genesis.hash or g.header != genesis.block.header_bytes:
        raise ChainCorrupted("block 0 of the store is not the genesis block of this chain")
    if [t.envelope for t in store.block_txs(0)] != list(genesis.block.envelopes):
        raise ChainCorrupted("block 0: the stored genesis transaction differs from the "
                             "genesis file's")
    start = 1 if tail is None else max(1, top - tail + 1)
    config: ChainConfig = genesis.config
    # Replay configuration blocks before the range (each was checked when it was in range).
    for cb in store.config_blocks(up_to=start - 1):
        block, _, results = load_block(store, cb.height)
        try:
            _, config = verify_block(suite, config, _tip(store, cb.height - 1), block, results)
        except ConsortiaError as exc:
            raise ChainCorrupted(f"block {cb.height}: {exc.message}") from exc
    prev = _tip(store, start - 1)
    for h in range(start, top + 1):
        block, txids, results = load_block(store, h)
        try:
            block_hash, config = verify_block(suite, config, prev, block, results)
        except ConsortiaError as exc:
            raise ChainCorrupted(f"{exc.message}") from exc
        stored = store.block(h)
        assert stored is not None
        if stored.hash != block_hash:
            raise ChainCorrupted(f"block {h}: stored hash does not match its header")
        if stored.is_config != block.header.is_config:
            raise ChainCorrupted(f"block {h}: stored configuration flag contradicts its header")
        if block.header.exec_hash:
            _check_eth_block(store, h, block.header.exec_hash)
        for i, env_bytes in enumerate(block.envelopes):
            if block.header.exec_hash and env_bytes[:1] != b"\x94":
                # a raw Ethereum transaction of a quorum block: its id is keccak256(raw)
                if keccak(env_bytes) != txids[i]:
                    raise ChainCorrupted(f"block {h} tx {i}: stored id is not its keccak256")
                continue
            try:
                env = Envelope.decode(env_bytes)
            except ConsortiaError as exc:
                raise ChainCorrupted(f"block {h} tx {i}: {exc.message}") from exc
            if suite.hash(env.payload) != txids[i]:
                raise ChainCorrupted(f"block {h} tx {i}: stored id is not its payload hash")
        prev = Tip.of(block.header, block_hash, stored.certificate)
        if progress is not None:
            progress(h - start + 1, top - start + 1)
    _check_counts(store)
    _, in_force = store.config_in_force()
    if in_force.encode() != config.encode():
        raise ChainCorrupted("stored configuration in force differs from the chain's")
    return top - start + 1
