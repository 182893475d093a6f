"""Reads of a quorum chain for the Ethereum JSON-RPC adapter (ADR 0026).

Everything here reads committed data: the ledger's Ethereum tables (``eth_blocks``,
``eth_receipts``, ``eth_logs``, ``evm_state``) and the ``txs`` rows of the raw
transactions; calls and account reads run the engine on the state root of the height
asked for. Only ``pending_nonce`` looks at the pool. Heights are the Consortia heights,
which are the Ethereum block numbers. Missing things answer ``None`` (the JSON-RPC
``null``), never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import rlp

from consortia.execution.evm import (
    BlockEnv,
    CallResult,
    EthHeader,
    EthTx,
    EvmEngine,
    Log,
    decode_transaction,
    logs_bloom,
)
from consortia.ledger.store import LedgerStore
from consortia.node.quorum import (
    ReceiptRow,
    decode_private_receipt,
    decode_receipt_row,
    env_for,
)
from consortia.txpool.ethadmission import eth_bytes
from consortia.types.errors import NotFound
from consortia.types.evm_config import EvmConfig

MAX_LOGS = 10_000
"""The most logs one ``logs`` call returns (the adapter answers "query returned more than
10000 results" as geth does when it gets exactly this many)."""


def decode_header(data: bytes) -> EthHeader:
    """An :class:`EthHeader` from its RLP bytes (the inverse of ``EthHeader.encode``)."""
    f = rlp.decode(data)

    def n(i: int) -> int:
        return int.from_bytes(f[i], "big")

    return EthHeader(
        parent_hash=bytes(f[0]), ommers_hash=bytes(f[1]), coinbase=bytes(f[2]),
        state_root=bytes(f[3]), transactions_root=bytes(f[4]), receipts_root=bytes(f[5]),
        logs_bloom=bytes(f[6]), difficulty=n(7), number=n(8), gas_limit=n(9), gas_used=n(10),
        timestamp=n(11), extra_data=bytes(f[12]), prev_randao=bytes(f[13]), nonce=bytes(f[14]),
        base_fee_per_gas=n(15), withdrawals_root=bytes(f[16]), blob_gas_used=n(17),
        excess_blob_gas=n(18), parent_beacon_block_root=bytes(f[19]),
        requests_hash=bytes(f[20]))


@dataclass(frozen=True)
class EthBlockView:
    hash: bytes
    header: EthHeader
    size: int
    """Bytes of the RLP header plus transactions (eth_getBlockBy*'s ``size``, approximate:
    Ethereum counts the whole RLP block)."""
    tx_hashes: tuple[bytes, ...]
    raw_txs: tuple[bytes, ...]


@dataclass(frozen=True)
class EthTxView:
    tx: EthTx
    """The decoded transaction (sender, nonce, to, value, data, gas, fees, type)."""
    block_hash: bytes
    block_number: int
    index: int


@dataclass(frozen=True)
class EthReceiptView:
    tx_hash: bytes
    block_hash: bytes
    block_number: int
    index: int
    receipt: ReceiptRow
    logs: tuple[Log, ...]
    logs_bloom: bytes


@dataclass(frozen=True)
class EthLogView:
    log: Log
    block_hash: bytes
    block_number: int
    tx_hash: bytes
    tx_index: int


class EvmView:
    """Read access to one quorum node's committed Ethereum data (module doc)."""

    def __init__(self, store: LedgerStore, engine: EvmEngine, evm: Callable[[], EvmConfig],
                 pending_nonce: Callable[[bytes], int] | None = None) -> None:
        self.store = store
        self.engine = engine
        self._evm = evm
        self._pending = pending_nonce

    # -- blocks ------------------------------------------------------------------------------

    def head(self) -> int:
        """The latest committed height (``eth_blockNumber``)."""
        return self.store.height

    @property
    def chain_id(self) -> int:
        """The EIP-155 chain id of the configuration in force."""
        return self._evm().chain_id

    def block(self, number: int) -> EthBlockView | None:
        row = self.store.eth_block(number)
        if row is None:
            return None
        eth_hash, header_rlp = row
        txs = [t for t in self.store.block_txs(number) if t.type.is_ethereum]
        raws = tuple(eth_bytes(t.envelope) for t in txs)
        return EthBlockView(eth_hash, decode_header(header_rlp),
                            len(header_rlp) + sum(len(r) for r in raws),
                            tuple(t.txid for t in txs), raws)

    def block_by_hash(self, eth_hash: bytes) -> EthBlockView | None:
        number = self.store.eth_height(eth_hash)
        return None if number is None else self.block(number)

    def block_hash(self, number: int) -> bytes | None:
        row = self.store.eth_block(number)
        return None if row is None else row[0]

    # -- transactions and receipts -------------------------------------------------------------

    def transaction(self, tx_hash: bytes) -> EthTxView | None:
        row = self.store.tx(tx_hash)
        if row is None or not row.type.is_ethereum:
            return None
        tx = decode_transaction(eth_bytes(row.envelope), self._evm().chain_id)
        return EthTxView(tx, self.block_hash(row.height) or b"", row.height, row.index)

    def receipt(self, tx_hash: bytes) -> EthReceiptView | None:
        """The receipt; of a private transaction this node took part in, its private
        receipt (contract address, status, logs of the private execution; ADR 0027)."""
        private = self.store.private_receipt(tx_hash)
        if private is not None:
            height, index, data = private
            row, logs = decode_private_receipt(data)
            return EthReceiptView(tx_hash, self.block_hash(height) or b"", height, index,
                                  row, logs, logs_bloom(logs))
        found = self.store.eth_receipt(tx_hash)
        if found is None:
            return None
        height, index, data = found
        logs = tuple(Log(g.address, g.topics, g.data, g.log_index)
                     for g in self.store.eth_logs(height, height, limit=MAX_LOGS)
                     if g.index == index)
        return EthReceiptView(tx_hash, self.block_hash(height) or b"", height, index,
                              decode_receipt_row(data), logs, logs_bloom(logs))

    def logs(self, first: int, last: int, addresses: Sequence[bytes] = (),
             topics: Sequence[Sequence[bytes] | None] = (), *, limit: int = MAX_LOGS
             ) -> list[EthLogView]:
        """eth_getLogs over heights ``first..last`` (at most ``limit``; ask for one more
        than you answer to know that a query has too many)."""
        rows = self.store.eth_logs(first, last, addresses, topics, limit=limit)
        hashes: dict[int, bytes] = {}
        tx_hashes: dict[int, list[bytes]] = {}
        out = []
        for g in rows:
            if g.height not in hashes:
                hashes[g.height] = self.block_hash(g.height) or b""
                tx_hashes[g.height] = [t.txid for t in self.store.block_txs(g.height)
                                       if t.type.is_ethereum]
            out.append(EthLogView(Log(g.address, g.topics, g.data, g.log_index),
                                  hashes[g.height], g.height, tx_hashes[g.height][g.index],
                                  g.index))
        return out

    # -- state at a height -------------------------------------------------------------------

    def state_root(self, number: int) -> bytes | None:
        row = self.store.eth_block(number)
        return None if row is None else decode_header(row[1]).state_root

    def _root(self, number: int, address: bytes | None = None) -> bytes:
        """The state root to read ``address`` at ``number``: this node's private state
        when the address is a private contract there (ADR 0027), else the public one."""
        root = self.state_root(number)
        if root is None:
            raise NotFound(f"block {number} is not committed (head is {self.head()})")
        if address is not None:
            private = self.store.private_root_at(number)
            if private is not None and self.engine.code(private, address):
                return private
        return root

    def balance(self, address: bytes, number: int) -> int:
        return self.engine.balance(self._root(number), address)

    def nonce(self, address: bytes, number: int) -> int:
        return self.engine.nonce(self._root(number), address)

    def code(self, address: bytes, number: int) -> bytes:
        return self.engine.code(self._root(number, address), address)

    def storage_at(self, address: bytes, slot: int, number: int) -> int:
        return self.engine.storage_at(self._root(number, address), address, slot)

    def pending_nonce(self, address: bytes) -> int:
        """``eth_getTransactionCount(addr, "pending")``: past the pool's held transactions."""
        if self._pending is not None:
            return self._pending(address)
        return self.nonce(address, self.head())

    def _env(self, number: int) -> BlockEnv:
        """The environment of a call "at" ``number``: that block's number and timestamp."""
        row = self.store.eth_block(number)
        ts = decode_header(row[1]).timestamp * 1000 if row is not None else 0
        return env_for(self._evm(), number, ts)

    def _hash_of(self, n: int) -> bytes | None:
        return self.block_hash(n)

    def call(self, number: int, *, sender: bytes, to: bytes | None, data: bytes = b"",
             value: int = 0, gas: int | None = None) -> CallResult:
        return self.engine.call(self._root(number, to), self._env(number), sender=sender, to=to,
                                data=data, value=value, gas=gas, block_hash_of=self._hash_of)

    def estimate_gas(self, number: int, *, sender: bytes, to: bytes | None, data: bytes = b"",
                     value: int = 0, cap: int | None = None) -> int:
        return self.engine.estimate_gas(self._root(number, to), self._env(number), sender=sender,
                                        to=to, data=data, value=value, cap=cap,
                                        block_hash_of=self._hash_of)
