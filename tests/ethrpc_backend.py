"""An in-memory :class:`EthBackend` for the JSON-RPC tests.

It stands in for the node: the node-side adapter over the EVM engine, the ledger and the
pool is another step of the issue and is wired by it. This one keeps blocks, receipts and
account state in dictionaries, decodes and recovers real signed transactions with
eth-account (so web3.py and ethers.js can send them), "mines" each admitted transaction
into a block of its own at once, and has three tiny built-in contracts instead of an EVM:

- ``EMITTER``: any call to it emits ``Ping(uint256 value)`` with the value as topic 1 and
  the call data as log data;
- ``REVERTER``: eth_call / eth_estimateGas revert with ``Error("not allowed")``;
- any other address with code: eth_call returns its storage slot 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import Any

import rlp
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyRlp
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes

from consortia.node.ethrpc.backend import (
    ExecutionReverted,
    TxRejected,
    TxRejection,
    UnknownBlock,
)
from consortia.node.ethrpc.types import (
    PENDING,
    AccessListEntry,
    AccessListTx,
    CallRequest,
    DynamicFeeTx,
    EthBlock,
    EthHeader,
    EthLog,
    EthReceipt,
    EthTransaction,
    FeeInfo,
    LegacyTx,
    LogFilter,
    NewHead,
    StateAt,
    SyncStatus,
    tx_type,
)

EMITTER = bytes.fromhex("ee" * 20)
REVERTER = bytes.fromhex("dd" * 20)
PING_TOPIC = keccak(text="Ping(uint256)")
GAS_LIMIT = 30_000_000
CHAIN_ID = 1337
LogSpec = tuple[bytes, tuple[bytes, ...], bytes]
"""A log to emit: address, topics, data."""


def error_string(reason: str) -> bytes:
    """ABI encoding of ``Error(string)``: what Solidity's ``require(…, reason)`` reverts."""
    raw = reason.encode()
    padded = raw + bytes(-len(raw) % 32)
    return (bytes.fromhex("08c379a0") + (32).to_bytes(32, "big")
            + len(raw).to_bytes(32, "big") + padded)


def bloom(logs: list[EthLog]) -> bytes:
    """The 2048-bit logs bloom of the yellow paper (address and topics)."""
    bits = 0
    for entry in logs:
        for item in (entry.address, *entry.topics):
            digest = keccak(item)
            for i in (0, 2, 4):
                bits |= 1 << (int.from_bytes(digest[i:i + 2], "big") & 2047)
    return bits.to_bytes(256, "big")


@dataclasses.dataclass
class _State:
    balances: dict[bytes, int]
    nonces: dict[bytes, int]
    code: dict[bytes, bytes]
    storage: dict[tuple[bytes, int], bytes]

    def copy(self) -> _State:
        return _State(dict(self.balances), dict(self.nonces), dict(self.code),
                      dict(self.storage))


class MemoryBackend:
    """Blocks, receipts and per-block account state in memory (see the module docstring)."""

    def __init__(self, chain_id: int = CHAIN_ID, funded: dict[bytes, int] | None = None,
                 timestamp: int = 1_700_000_000) -> None:
        self._chain_id = chain_id
        self._lock = threading.Lock()
        self.blocks: list[EthBlock] = []
        self.by_hash: dict[bytes, EthBlock] = {}
        self.txs: dict[bytes, EthTransaction] = {}
        self.receipts: dict[bytes, EthReceipt] = {}
        self.logs_by_block: dict[int, list[EthLog]] = {}
        self.states: list[_State] = []
        self.sync: SyncStatus | None = None
        self.fee_info = FeeInfo()
        self._streams: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[NewHead]]] = []
        self._timestamp = timestamp
        genesis_state = _State(dict(funded or {}), {}, {EMITTER: b"\x60\x00",
                                                        REVERTER: b"\xfd"}, {})
        self._seal([], [], genesis_state)

    # --- building blocks ------------------------------------------------------------------

    def _seal(self, txs: list[EthTransaction], tx_logs: list[list[LogSpec]],
              state: _State, statuses: list[int] | None = None,
              created: list[bytes | None] | None = None) -> EthBlock:
        number = len(self.blocks)
        parent = self.blocks[-1].header.hash if self.blocks else bytes(32)
        block_hash = keccak(b"block" + number.to_bytes(8, "big") + parent)
        located: list[EthTransaction] = []
        receipts: list[EthReceipt] = []
        block_logs: list[EthLog] = []
        cumulative = 0
        for index, unlocated in enumerate(txs):
            tx = dataclasses.replace(unlocated, block_hash=block_hash, block_number=number,
                                     transaction_index=index)
            if isinstance(tx, DynamicFeeTx):
                tx = dataclasses.replace(tx, effective_gas_price=0)
            located.append(tx)
            logs = [EthLog(address=a, topics=t, data=d, block_number=number,
                           block_hash=block_hash, transaction_hash=tx.hash,
                           transaction_index=index, log_index=len(block_logs) + i)
                    for i, (a, t, d) in enumerate(tx_logs[index])]
            block_logs.extend(logs)
            used = 21_000 + 16 * len(tx.input)
            cumulative += used
            receipts.append(EthReceipt(
                transaction_hash=tx.hash, transaction_index=index, block_hash=block_hash,
                block_number=number, sender=tx.sender, to=tx.to,
                cumulative_gas_used=cumulative, gas_used=used, effective_gas_price=0,
                contract_address=(created or [None] * len(txs))[index], logs=tuple(logs),
                logs_bloom=bloom(logs), tx_type=tx_type(tx),
                status=(statuses or [1] * len(txs))[index]))
        header = EthHeader(
            number=number, hash=block_hash, parent_hash=parent,
            state_root=keccak(b"state" + block_hash), transactions_root=keccak(b"txs" + block_hash),
            receipts_root=keccak(b"receipts" + block_hash), logs_bloom=bloom(block_logs),
            gas_used=cumulative, gas_limit=GAS_LIMIT, timestamp=self._timestamp + number,
            miner=bytes(20), base_fee_per_gas=0, extra_data=b"consortia", size=600 + 200 * len(txs))
        block = EthBlock(header=header, transactions=tuple(located))
        with self._lock:
            self.blocks.append(block)
            self.by_hash[block_hash] = block
            self.states.append(state)
            self.logs_by_block[number] = block_logs
            for tx, receipt in zip(located, receipts, strict=True):
                self.txs[tx.hash] = tx
                self.receipts[tx.hash] = receipt
            streams = list(self._streams)
        head = NewHead(header, tuple(block_logs))
        for loop, queue in streams:
            loop.call_soon_threadsafe(queue.put_nowait, head)
        return block

    def mine_empty(self, count: int = 1) -> EthBlock:
        """``count`` blocks without transactions; the last one."""
        for _ in range(count):
            block = self._seal([], [], self.states[-1].copy())
        return block

    def mine_ping(self, sender: bytes, value: int, payload: bytes = b"") -> EthBlock:
        """A block whose one transaction (unsigned, built here) calls ``EMITTER``."""
        state = self.states[-1].copy()
        nonce = state.nonces.get(sender, 0)
        state.nonces[sender] = nonce + 1
        tx = DynamicFeeTx(hash=keccak(b"ping" + sender + nonce.to_bytes(8, "big")),
                          nonce=nonce, sender=sender, to=EMITTER, value=value, gas=50_000,
                          input=payload, r=1, s=1, chain_id=self._chain_id,
                          max_fee_per_gas=0, max_priority_fee_per_gas=0, access_list=(),
                          y_parity=0)
        return self._seal([tx], [self._ping_logs(value, payload)], state)

    @staticmethod
    def _ping_logs(value: int, payload: bytes) -> list[LogSpec]:
        return [(EMITTER, (PING_TOPIC, value.to_bytes(32, "big")), payload)]

    # --- EthBackend -----------------------------------------------------------------------

    def chain_id(self) -> int:
        return self._chain_id

    async def head_number(self) -> int:
        return len(self.blocks) - 1

    async def block_by_number(self, number: int) -> EthBlock | None:
        return self.blocks[number] if number < len(self.blocks) else None

    async def block_by_hash(self, block_hash: bytes) -> EthBlock | None:
        return self.by_hash.get(block_hash)

    async def transaction(self, tx_hash: bytes) -> EthTransaction | None:
        return self.txs.get(tx_hash)

    async def receipt(self, tx_hash: bytes) -> EthReceipt | None:
        return self.receipts.get(tx_hash)

    async def logs(self, query: LogFilter) -> list[EthLog]:
        return [entry for number in range(query.from_block, query.to_block + 1)
                for entry in self.logs_by_block.get(number, []) if query.matches(entry)]

    def _state(self, at: StateAt) -> _State:
        if at == PENDING:
            return self.states[-1]
        assert isinstance(at, int)
        if at >= len(self.states):
            raise UnknownBlock(f"block {at}")
        return self.states[at]

    async def balance(self, address: bytes, at: StateAt) -> int:
        return self._state(at).balances.get(address, 0)

    async def nonce(self, address: bytes, at: StateAt) -> int:
        return self._state(at).nonces.get(address, 0)

    async def code(self, address: bytes, at: StateAt) -> bytes:
        return self._state(at).code.get(address, b"")

    async def storage_at(self, address: bytes, slot: int, at: StateAt) -> bytes:
        return self._state(at).storage.get((address, slot), bytes(32))

    async def call(self, request: CallRequest, at: StateAt) -> bytes:
        state = self._state(at)
        if request.to == REVERTER:
            raise ExecutionReverted(error_string("not allowed"))
        if request.to is None or request.to not in state.code:
            return b""
        return state.storage.get((request.to, 0), bytes(32))

    async def estimate_gas(self, request: CallRequest, at: StateAt) -> int:
        await self.call(request, at)
        return 21_000 + 16 * len(request.data or b"")

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        tx = self._decode(raw)
        state = self.states[-1].copy()
        expected = state.nonces.get(tx.sender, 0)
        if tx.hash in self.txs:
            raise TxRejected(TxRejection.ALREADY_KNOWN)
        if tx.nonce < expected:
            raise TxRejected(TxRejection.NONCE_TOO_LOW, f"address 0x{tx.sender.hex()}, "
                                                        f"tx: {tx.nonce} state: {expected}")
        if tx.nonce > expected:
            raise TxRejected(TxRejection.NONCE_TOO_HIGH)
        if state.balances.get(tx.sender, 0) < tx.value:
            raise TxRejected(TxRejection.INSUFFICIENT_FUNDS,
                             f"address 0x{tx.sender.hex()} have "
                             f"{state.balances.get(tx.sender, 0)} want {tx.value}")
        state.nonces[tx.sender] = expected + 1
        state.balances[tx.sender] = state.balances.get(tx.sender, 0) - tx.value
        created = None
        logs: list[LogSpec] = []
        if tx.to is None:
            created = keccak(rlp.encode([tx.sender, tx.nonce]))[12:]
            state.code[created] = tx.input or b"\x00"
            state.storage[(created, 0)] = (42).to_bytes(32, "big")
        else:
            state.balances[tx.to] = state.balances.get(tx.to, 0) + tx.value
            if tx.to == EMITTER:
                logs = self._ping_logs(tx.value, tx.input)
        self._seal([tx], [logs], state, created=[created])
        return tx.hash

    def _decode(self, raw: bytes) -> EthTransaction:
        try:
            sender = bytes.fromhex(Account.recover_transaction(raw)[2:])
            if raw[0] >= 0x7f:
                fields: dict[str, Any] = LegacyRlp.from_bytes(raw).as_dict()
                kind = 0
            else:
                fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
                kind = fields["type"]
        except Exception as exc:
            raise TxRejected(TxRejection.MALFORMED, str(exc)) from exc
        common: dict[str, Any] = {
            "hash": keccak(raw), "nonce": fields["nonce"], "sender": sender,
            "to": bytes(fields["to"]) or None, "value": fields["value"], "gas": fields["gas"],
            "input": bytes(fields["data"]), "r": fields["r"], "s": fields["s"]}
        if kind == 0:
            v = fields["v"]
            chain = (v - 35) // 2 if v >= 35 else None
            if chain is not None and chain != self._chain_id:
                raise TxRejected(TxRejection.INVALID_CHAIN_ID)
            return LegacyTx(**common, gas_price=fields["gasPrice"], v=v, chain_id=chain)
        if fields["chainId"] != self._chain_id:
            raise TxRejected(TxRejection.INVALID_CHAIN_ID)
        access = tuple(AccessListEntry(bytes(e["address"]),
                                       tuple(bytes(k) for k in e["storageKeys"]))
                       for e in fields.get("accessList", ()))
        if kind == 1:
            return AccessListTx(**common, chain_id=fields["chainId"],
                                gas_price=fields["gasPrice"], access_list=access,
                                y_parity=fields["v"])
        if kind == 2:
            return DynamicFeeTx(**common, chain_id=fields["chainId"],
                                max_fee_per_gas=fields["maxFeePerGas"],
                                max_priority_fee_per_gas=fields["maxPriorityFeePerGas"],
                                access_list=access, y_parity=fields["v"])
        raise TxRejected(TxRejection.TX_TYPE_NOT_SUPPORTED)

    async def _heads(self) -> AsyncIterator[NewHead]:
        queue: asyncio.Queue[NewHead] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._streams.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._streams.remove(entry)

    def new_heads(self) -> AsyncIterator[NewHead]:
        return self._heads()

    def streams(self) -> int:
        """How many new-heads iterators are open (the hub holds at most one)."""
        with self._lock:
            return len(self._streams)

    async def syncing(self) -> SyncStatus | None:
        return self.sync

    async def fees(self) -> FeeInfo:
        return self.fee_info
