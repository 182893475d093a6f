"""The node's :class:`~consortia.node.ethrpc.backend.EthBackend`: the Ethereum JSON-RPC
layer over a quorum chain's ledger, EVM engine, pool and admission (docs/spec/json-rpc.md,
"The node adapter").

What it is given, and why each piece is a parameter rather than an import:

- an :class:`~consortia.node.evmview.EvmView` for every committed read (blocks,
  transactions, receipts, logs, state at a height, ``eth_call``, ``eth_estimateGas``);
- ``submit(raw)``, the node's admission of a raw transaction (decode, permission, pool);
  it returns the transaction hash or raises a ``ConsortiaError`` whose ``code`` this module
  maps to geth's words (:data:`REJECTIONS`);
- a :class:`~consortia.node.heads.HeadFeed` the node publishes each committed height on;
- optionally ``pending(hash)`` (the decoded transaction still in the pool) and
  ``syncing()`` (catch-up progress).

Threads: the engine and the ledger are synchronous. Every read that touches them runs in
a worker thread (``asyncio.to_thread``) so that one slow ``eth_call`` or a wide
``eth_getLogs`` does not stall the event loop serving the other clients and the
consensus; the ledger store is safe to read from threads. ``head_number`` only reads the
store's in-memory height and stays on the loop.

Block hashes: the hash reported for a block is the one stored with it
(keccak256(RLP(Ethereum header)), which the Consortia header commits to as ``exec_hash``),
and every other field is copied from that stored header, so ``getBlockByNumber``,
``getBlockByHash``, receipts and logs all name the same hash and each is accepted back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypedDict

from consortia.execution.evm import CODES, CallResult, EthTx, EvmCallError, EvmTxError, Log
from consortia.execution.evm import decode_transaction as decode_eth
from consortia.node.ethrpc.backend import (
    EthBackend,
    EthBackendError,
    ExecutionFailed,
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
)
from consortia.node.evmview import MAX_LOGS, EthBlockView, EvmView
from consortia.node.heads import HeadFeed
from consortia.types.errors import ChainCorrupted, ConsortiaError, NotFound

REJECTIONS: dict[str, TxRejection] = {
    "malformed": TxRejection.MALFORMED,
    "oversized_data": TxRejection.OVERSIZED,
    "too_large": TxRejection.OVERSIZED,
    "tx_type_not_supported": TxRejection.TX_TYPE_NOT_SUPPORTED,
    "invalid_sender": TxRejection.INVALID_SENDER,
    "invalid_chain_id": TxRejection.INVALID_CHAIN_ID,
    "replay_unprotected": TxRejection.UNPROTECTED,
    "intrinsic_gas_too_low": TxRejection.INTRINSIC_GAS,
    "exceeds_block_gas_limit": TxRejection.GAS_LIMIT,
    "nonce_too_low": TxRejection.NONCE_TOO_LOW,
    # Another transaction of the sender holds this nonce and the pool does not replace
    # (the identical one is ``duplicate_transaction``). geth refuses a replacement that
    # does not raise the price by 10%; at gas price 0 none can, so its answer is always
    # "replacement transaction underpriced" (ethers.js: REPLACEMENT_UNDERPRICED).
    "nonce_taken": TxRejection.REPLACEMENT_UNDERPRICED,
    "nonce_too_high": TxRejection.NONCE_TOO_HIGH,
    "insufficient_funds": TxRejection.INSUFFICIENT_FUNDS,
    "account_not_permitted": TxRejection.NOT_PERMITTED,
    "duplicate_transaction": TxRejection.ALREADY_KNOWN,
    "pool_full": TxRejection.POOL_FULL,
}
"""Admission code (``ConsortiaError.code``) → the JSON-RPC rejection clients see. Codes
not here (``unavailable``, ``wrong_profile``, anything new) become :class:`NodeRefused`."""

#: py-evm's failure (``CallResult.revert_reason`` = "ClassName: detail") → geth's words.
_GETH_FAILURES: dict[str, str] = {
    "InvalidInstruction": "invalid opcode",
    "InvalidJumpDestination": "invalid jump destination",
    "InsufficientStack": "stack underflow",
    "FullStack": "stack limit reached 1024",
    "StackDepthLimit": "max call depth exceeded",
    "WriteProtection": "write protection",
    "OutOfBoundsRead": "return data out of bounds",
    "InsufficientFunds": "insufficient balance for transfer",
    "ContractCreationCollision": "contract address collision",
    "ReservedBytesInCode": "invalid code: must not begin with 0xef",
}


class NodeRefused(EthBackendError):
    """A raw transaction refused for a reason geth has no words for (the node is not ready,
    the chain is not a quorum chain …): the client sees -32000 with the node's message."""


def rejection(exc: ConsortiaError) -> EthBackendError:
    """The error :meth:`NodeEthBackend.send_raw_transaction` raises for an admission error.

    The detail is the node's message without the reason's own words repeated in front
    (``nonce too low: next nonce 3, tx nonce 1`` → detail ``next nonce 3, tx nonce 1``)."""
    message = str(exc)
    reason = REJECTIONS.get(exc.code)
    if reason is None:
        return NodeRefused(f"{message} ({exc.code})" if message else exc.code)
    detail = message
    for prefix in (reason.value, _engine_words(exc.code)):
        if prefix and detail.startswith(prefix):
            detail = detail[len(prefix):].removeprefix(":").strip()
            break
    return TxRejected(reason, detail)


def _engine_words(code: str) -> str:
    return CODES.get(code, "")


def failure(result: CallResult) -> EthBackendError:
    """The error of a failed call: REVERT keeps its data (an ``Error(string)``, a
    ``Panic``, a custom error or nothing); other failures have no output and a reason."""
    reason = result.revert_reason
    if result.output or reason is None:
        return ExecutionReverted(result.output)
    return ExecutionFailed(geth_failure(reason))


def geth_failure(reason: str) -> str:
    """geth's message for py-evm's failure reason (unknown ones pass through)."""
    name, _, _detail = reason.partition(":")
    return _GETH_FAILURES.get(name.strip(), reason)


class NodeEthBackend:
    """:class:`~consortia.node.ethrpc.backend.EthBackend` over a quorum node (module doc)."""

    def __init__(self, view: EvmView, *, submit: Callable[[bytes], Awaitable[bytes]],
                 heads: HeadFeed, pending: Callable[[bytes], EthTx | None] | None = None,
                 syncing: Callable[[], SyncStatus | None] | None = None,
                 max_logs: int = MAX_LOGS) -> None:
        """``max_logs`` must equal the server's ``RpcLimits.max_logs``: one more log than
        that is read so the RPC layer can answer "query returned more than N results"."""
        self.view = view
        self._submit = submit
        self._heads = heads
        self._pending = pending
        self._syncing = syncing
        self._max_logs = max_logs

    # -- chain ---------------------------------------------------------------------------------

    def chain_id(self) -> int:
        return self.view.chain_id

    async def head_number(self) -> int:
        return self.view.head()

    async def block_by_number(self, number: int) -> EthBlock | None:
        return await asyncio.to_thread(self._block, number)

    async def block_by_hash(self, block_hash: bytes) -> EthBlock | None:
        return await asyncio.to_thread(self._block_by_hash, block_hash)

    def _block(self, number: int) -> EthBlock | None:
        found = self.view.block(number)
        return None if found is None else self._eth_block(found)

    def _block_by_hash(self, block_hash: bytes) -> EthBlock | None:
        found = self.view.block_by_hash(block_hash)
        return None if found is None else self._eth_block(found)

    def _eth_block(self, found: EthBlockView) -> EthBlock:
        number, chain_id = found.header.number, self.view.chain_id
        txs = tuple(eth_transaction(decode_eth(raw, chain_id), (found.hash, number, i))
                    for i, raw in enumerate(found.raw_txs))
        return EthBlock(header=eth_header(found), transactions=txs)

    # -- transactions --------------------------------------------------------------------------

    async def transaction(self, tx_hash: bytes) -> EthTransaction | None:
        return await asyncio.to_thread(self._transaction, tx_hash)

    def _transaction(self, tx_hash: bytes) -> EthTransaction | None:
        found = self.view.transaction(tx_hash)
        if found is not None:
            return eth_transaction(found.tx, (found.block_hash, found.block_number,
                                              found.index))
        waiting = self._pending(tx_hash) if self._pending is not None else None
        return None if waiting is None else eth_transaction(waiting, None)

    async def receipt(self, tx_hash: bytes) -> EthReceipt | None:
        return await asyncio.to_thread(self._receipt, tx_hash)

    def _receipt(self, tx_hash: bytes) -> EthReceipt | None:
        found = self.view.receipt(tx_hash)
        if found is None:
            return None
        row = found.receipt
        logs = tuple(eth_log(g, found.block_hash, found.block_number, tx_hash, found.index)
                     for g in found.logs)
        return EthReceipt(
            transaction_hash=tx_hash, transaction_index=found.index,
            block_hash=found.block_hash, block_number=found.block_number, sender=row.sender,
            to=row.to, cumulative_gas_used=row.cumulative_gas_used, gas_used=row.gas_used,
            effective_gas_price=0, contract_address=row.contract_address, logs=logs,
            logs_bloom=found.logs_bloom, tx_type=row.tx_type, status=row.status)

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        try:
            return await self._submit(raw)
        except ConsortiaError as exc:
            raise rejection(exc) from exc

    # -- logs and heads ------------------------------------------------------------------------

    async def logs(self, query: LogFilter) -> list[EthLog]:
        return await asyncio.to_thread(self._logs, query)

    def _logs(self, query: LogFilter) -> list[EthLog]:
        found = self.view.logs(query.from_block, query.to_block, query.addresses,
                               query.topics, limit=self._max_logs + 1)
        return [entry for entry in (eth_log(g.log, g.block_hash, g.block_number, g.tx_hash,
                                            g.tx_index) for g in found)
                if query.matches(entry)]

    def new_heads(self) -> AsyncIterator[NewHead]:
        return self._new_heads(self._heads.follow())  # "from now on": from this call

    async def _new_heads(self, heights: AsyncIterator[int]) -> AsyncIterator[NewHead]:
        async for height in heights:
            yield await asyncio.to_thread(self._new_head, height)

    def _new_head(self, height: int) -> NewHead:
        found = self.view.block(height)
        if found is None:
            raise ChainCorrupted(f"height {height} was published but has no Ethereum block")
        # every log of one block: bounded by its gas (a LOG costs at least 375)
        per_block = found.header.gas_limit // 375 + 1
        logs = tuple(eth_log(g.log, g.block_hash, g.block_number, g.tx_hash, g.tx_index)
                     for g in self.view.logs(height, height, limit=per_block))
        return NewHead(eth_header(found), logs)

    # -- state ---------------------------------------------------------------------------------

    def _at(self, at: StateAt) -> int:
        head = self.view.head()
        if at == PENDING:
            return head
        assert isinstance(at, int)
        if at > head:
            raise UnknownBlock(f"block {at} is above the head ({head})")
        return at

    async def _state(self, read: Callable[[int], int | bytes], at: StateAt) -> int | bytes:
        number = self._at(at)

        def run() -> int | bytes:
            try:
                return read(number)
            except NotFound as exc:
                raise UnknownBlock(str(exc)) from exc

        return await asyncio.to_thread(run)

    async def balance(self, address: bytes, at: StateAt) -> int:
        value = await self._state(lambda n: self.view.balance(address, n), at)
        assert isinstance(value, int)
        return value

    async def nonce(self, address: bytes, at: StateAt) -> int:
        if at == PENDING:
            return await asyncio.to_thread(self.view.pending_nonce, address)
        value = await self._state(lambda n: self.view.nonce(address, n), at)
        assert isinstance(value, int)
        return value

    async def code(self, address: bytes, at: StateAt) -> bytes:
        value = await self._state(lambda n: self.view.code(address, n), at)
        assert isinstance(value, bytes)
        return value

    async def storage_at(self, address: bytes, slot: int, at: StateAt) -> bytes:
        value = await self._state(lambda n: self.view.storage_at(address, slot, n), at)
        assert isinstance(value, int)
        return value.to_bytes(32, "big")

    # -- execution -----------------------------------------------------------------------------

    async def call(self, request: CallRequest, at: StateAt) -> bytes:
        return await asyncio.to_thread(self._call, request, self._at(at))

    def _call(self, request: CallRequest, number: int) -> bytes:
        found = self._known(number)
        gas = _capped(request.gas, found.header.gas_limit)
        sender = self._funded_sender(request, number)
        try:
            result = self.view.call(number, sender=sender, to=request.to,
                                    data=request.data or b"", value=request.value or 0,
                                    gas=gas)
        except EvmTxError as exc:  # gas below the intrinsic cost
            raise ExecutionFailed(str(exc)) from exc
        if not result.success:
            raise failure(result)
        return result.output

    async def estimate_gas(self, request: CallRequest, at: StateAt) -> int:
        return await asyncio.to_thread(self._estimate, request, self._at(at))

    def _estimate(self, request: CallRequest, number: int) -> int:
        found = self._known(number)
        sender = self._funded_sender(request, number)
        try:
            return self.view.estimate_gas(
                number, sender=sender, to=request.to,
                data=request.data or b"", value=request.value or 0,
                cap=_capped(request.gas, found.header.gas_limit))
        except EvmCallError as exc:
            if exc.code != "execution_reverted":  # gas required exceeds allowance (N)
                raise ExecutionFailed(str(exc)) from exc
            if exc.data or exc.reason is None:
                raise ExecutionReverted(exc.data) from exc
            raise ExecutionFailed(geth_failure(exc.reason)) from exc
        except EvmTxError as exc:
            raise ExecutionFailed(str(exc)) from exc

    def _funded_sender(self, request: CallRequest, number: int) -> bytes:
        """The call's sender (zero address by default), after geth's check that it holds
        the value it sends (gas costs nothing here); the engine would fail uglier."""
        sender = request.sender or bytes(20)
        value = request.value or 0
        if value:
            have = self.view.balance(sender, number)
            if have < value:
                raise ExecutionFailed(f"insufficient funds for gas * price + value: address "
                                      f"0x{sender.hex()} have {have} want {value}")
        return sender

    def _known(self, number: int) -> EthBlockView:
        found = self.view.block(number)
        if found is None:
            raise UnknownBlock(f"block {number} is not committed")
        return found

    # -- node status ---------------------------------------------------------------------------

    async def syncing(self) -> SyncStatus | None:
        return None if self._syncing is None else self._syncing()

    async def fees(self) -> FeeInfo:
        """Gas is metered but free (ADR 0020): price and tip 0. web3.py then signs type-2
        transactions with maxFeePerGas 0; ethers.js sees baseFeePerGas 0 and signs legacy
        ones with gasPrice 0 (as against GoQuorum); both are admitted."""
        return FeeInfo(gas_price=0, max_priority_fee_per_gas=0)


def _conforms(backend: NodeEthBackend) -> EthBackend:
    """Never called: makes mypy check :class:`NodeEthBackend` against the protocol."""
    return backend


def _capped(gas: int | None, limit: int) -> int:
    """The gas of a call: what the caller asked, at most the block gas limit (geth caps at
    its RPC gas cap), so a call cannot run unbounded in its thread."""
    return limit if gas is None else min(gas, limit)


# -- conversions: engine and ledger values → the RPC layer's types -----------------------------


def eth_header(found: EthBlockView) -> EthHeader:
    """The RPC header of a stored block: every field from the stored RLP header, the hash
    as stored (their keccak256)."""
    h = found.header
    return EthHeader(
        number=h.number, hash=found.hash, parent_hash=h.parent_hash, state_root=h.state_root,
        transactions_root=h.transactions_root, receipts_root=h.receipts_root,
        logs_bloom=h.logs_bloom, gas_used=h.gas_used, gas_limit=h.gas_limit,
        timestamp=h.timestamp, miner=h.coinbase, base_fee_per_gas=h.base_fee_per_gas,
        extra_data=h.extra_data, mix_hash=h.prev_randao, nonce=h.nonce, size=found.size)


def eth_log(g: Log, block_hash: bytes, block_number: int, tx_hash: bytes,
            tx_index: int) -> EthLog:
    return EthLog(address=g.address, topics=g.topics, data=g.data, block_number=block_number,
                  block_hash=block_hash, transaction_hash=tx_hash,
                  transaction_index=tx_index, log_index=g.log_index)


def _access_list(evm_tx: object) -> tuple[AccessListEntry, ...]:
    entries: Sequence[tuple[bytes, Sequence[int]]] = getattr(evm_tx, "access_list", ())
    return tuple(AccessListEntry(bytes(address), tuple(k.to_bytes(32, "big") for k in keys))
                 for address, keys in entries)


class _Common(TypedDict):
    hash: bytes
    nonce: int
    sender: bytes
    to: bytes | None
    value: int
    gas: int
    input: bytes
    r: int
    s: int
    block_hash: bytes | None
    block_number: int | None
    transaction_index: int | None


def eth_transaction(tx: EthTx, located: tuple[bytes, int, int] | None) -> EthTransaction:
    """The RPC form of a decoded transaction; ``located`` is (block hash, number, index)
    for a committed one, ``None`` for one in the pool."""
    evm_tx = tx.evm_tx
    common = _Common(hash=tx.hash, nonce=tx.nonce, sender=tx.sender, to=tx.to, value=tx.value,
                     gas=tx.gas, input=tx.data, r=int(evm_tx.r), s=int(evm_tx.s),
                     block_hash=None, block_number=None, transaction_index=None)
    if located is not None:
        common["block_hash"], common["block_number"], common["transaction_index"] = located
    if tx.type == 0:
        return LegacyTx(**common, gas_price=tx.max_fee_per_gas, v=int(getattr(evm_tx, "v")),  # noqa: B009
                        chain_id=tx.chain_id)
    y_parity = int(getattr(evm_tx, "y_parity"))  # noqa: B009
    if tx.type == 1:
        return AccessListTx(**common, chain_id=tx.chain_id, gas_price=tx.max_fee_per_gas,
                            access_list=_access_list(evm_tx), y_parity=y_parity)
    return DynamicFeeTx(**common, chain_id=tx.chain_id, max_fee_per_gas=tx.max_fee_per_gas,
                        max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
                        access_list=_access_list(evm_tx), y_parity=y_parity,
                        effective_gas_price=0 if located is not None else None)
