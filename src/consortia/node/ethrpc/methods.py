"""The Ethereum JSON-RPC methods over an :class:`EthBackend`: parameters decoded strictly,
blocks resolved, answers encoded. Log and filter methods are in ``filters.py``, the
WebSocket subscriptions in ``subscriptions.py``."""

from __future__ import annotations

import platform
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from consortia import __version__
from consortia.node.ethrpc.backend import EthBackend, UnknownBlock
from consortia.node.ethrpc.codec import (
    BlockRef,
    data,
    parse_address,
    parse_block_ref,
    parse_bool,
    parse_data,
    parse_hash,
    parse_quantity,
    quantity,
)
from consortia.node.ethrpc.encode import block_json, receipt_json, tx_json
from consortia.node.ethrpc.errors import SERVER_ERROR, RpcError, invalid_params
from consortia.node.ethrpc.limits import RpcLimits
from consortia.node.ethrpc.params import Args
from consortia.node.ethrpc.types import (
    PENDING,
    AccessListEntry,
    CallRequest,
    DynamicFeeTx,
    EthBlock,
    EthTransaction,
    StateAt,
)

_T = TypeVar("_T")
Handler = Callable[[list[Any]], Awaitable[Any]]
CLIENT_VERSION = (f"Consortia/v{__version__}/{platform.system().lower()}"
                  f"/python{platform.python_version()}")
_SLOT = re.compile(r"0[xX][0-9a-fA-F]{1,64}")
_CALL_FIELDS = {"from", "to", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas",
                "value", "data", "input", "nonce", "accessList", "type", "chainId"}
_MAX_CALL_DATA = 4 * 1024 * 1024


class Resolver:
    """Turns block selectors into numbers. Every committed block of a Consortia chain is
    final, so ``safe``, ``finalized`` and ``latest`` are the head; ``pending`` is the head
    for block reads and the pool-aware state for account reads."""

    def __init__(self, backend: EthBackend) -> None:
        self.backend = backend

    async def number(self, ref: BlockRef) -> int | None:
        """The block number ``ref`` names; ``None`` for an unknown hash."""
        if ref.block_hash is not None:
            block = await self.backend.block_by_hash(ref.block_hash)
            return None if block is None else block.header.number
        if ref.number is not None:
            return ref.number
        return 0 if ref.tag == "earliest" else await self.backend.head_number()

    async def block(self, ref: BlockRef) -> EthBlock | None:
        if ref.block_hash is not None:
            return await self.backend.block_by_hash(ref.block_hash)
        number = await self.number(ref)
        return None if number is None else await self.backend.block_by_number(number)

    async def state(self, ref: BlockRef) -> StateAt:
        """The state an account read looks at; -32000 ``header not found`` beyond the head
        or for an unknown hash (geth's answers)."""
        if ref.tag == "pending":
            return PENDING
        number = await self.number(ref)
        if number is None:
            raise RpcError(SERVER_ERROR, "header for hash not found")
        if number > await self.backend.head_number():
            raise RpcError(SERVER_ERROR, "header not found")
        return number


def parse_slot(value: Any, param: str) -> int:
    """A storage slot: hex of at most 32 bytes; leading zeros and odd length allowed, as
    geth (clients send both ``0x0`` and 32-byte keys)."""
    if not isinstance(value, str) or not _SLOT.fullmatch(value):
        raise invalid_params(param, "expected a storage slot of at most 32 bytes in hex")
    return int(value[2:], 16)


def parse_call(value: Any, param: str) -> CallRequest:
    """The transaction object of eth_call / eth_estimateGas (unknown fields refused)."""
    if not isinstance(value, dict):
        raise invalid_params(param, "expected a transaction call object")
    unknown = set(value) - _CALL_FIELDS
    if unknown:
        raise invalid_params(param, f"unknown field {sorted(unknown)[0]!r}")

    def get(name: str, parse: Callable[[Any, str], Any]) -> Any:
        raw = value.get(name)
        return None if raw is None else parse(raw, f"{param}.{name}")

    def q64(raw: Any, where: str) -> int:
        return parse_quantity(raw, where, bits=64)

    payload = get("data", lambda v, w: parse_data(v, w, max_size=_MAX_CALL_DATA))
    input_ = get("input", lambda v, w: parse_data(v, w, max_size=_MAX_CALL_DATA))
    if payload is not None and input_ is not None and payload != input_:
        raise invalid_params(param, 'both "data" and "input" are set and not equal. '
                                    'Please use "input" to pass transaction call data')
    if value.get("gasPrice") is not None and (
            value.get("maxFeePerGas") is not None
            or value.get("maxPriorityFeePerGas") is not None):
        raise invalid_params(param, "both gasPrice and (maxFeePerGas or "
                                    "maxPriorityFeePerGas) specified")
    get("type", q64)
    get("chainId", parse_quantity)
    return CallRequest(
        sender=get("from", parse_address), to=get("to", parse_address), gas=get("gas", q64),
        gas_price=get("gasPrice", parse_quantity), max_fee_per_gas=get("maxFeePerGas",
                                                                         parse_quantity),
        max_priority_fee_per_gas=get("maxPriorityFeePerGas", parse_quantity),
        value=get("value", parse_quantity), data=input_ if input_ is not None else payload,
        nonce=get("nonce", q64), access_list=get("accessList", parse_access_list))


def parse_access_list(value: Any, param: str) -> tuple[AccessListEntry, ...]:
    if not isinstance(value, list):
        raise invalid_params(param, "expected an access list")
    out = []
    for i, entry in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"address", "storageKeys"}:
            raise invalid_params(where, "expected {address, storageKeys}")
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise invalid_params(where + ".storageKeys", "expected a list")
        out.append(AccessListEntry(
            parse_address(entry.get("address"), where + ".address"),
            tuple(parse_hash(k, f"{where}.storageKeys[{j}]") for j, k in enumerate(keys))))
    return tuple(out)


def _tip(tx: EthTransaction, base_fee: int) -> int:
    """The priority fee per gas ``tx`` pays above ``base_fee`` (EIP-1559)."""
    if isinstance(tx, DynamicFeeTx):
        return max(0, min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee))
    return max(0, tx.gas_price - base_fee)


class EthMethods:
    """The stateless methods (everything but filters and subscriptions)."""

    def __init__(self, backend: EthBackend, limits: RpcLimits) -> None:
        self.backend = backend
        self.limits = limits
        self.resolve = Resolver(backend)

    def handlers(self) -> dict[str, Handler]:
        return {
            "web3_clientVersion": self.client_version, "net_version": self.net_version,
            "net_listening": self.net_listening, "eth_chainId": self.chain_id,
            "eth_blockNumber": self.block_number, "eth_syncing": self.syncing,
            "eth_accounts": self.accounts, "eth_gasPrice": self.gas_price,
            "eth_maxPriorityFeePerGas": self.max_priority_fee,
            "eth_feeHistory": self.fee_history, "eth_getBalance": self.get_balance,
            "eth_getTransactionCount": self.get_transaction_count,
            "eth_getCode": self.get_code, "eth_getStorageAt": self.get_storage_at,
            "eth_call": self.call, "eth_estimateGas": self.estimate_gas,
            "eth_sendRawTransaction": self.send_raw_transaction,
            "eth_getTransactionByHash": self.get_transaction_by_hash,
            "eth_getTransactionReceipt": self.get_transaction_receipt,
            "eth_getBlockByNumber": self.get_block_by_number,
            "eth_getBlockByHash": self.get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self.get_block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self.get_block_tx_count_by_hash,
        }

    async def client_version(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return CLIENT_VERSION

    async def net_version(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return str(self.backend.chain_id())

    async def net_listening(self, params: list[Any]) -> bool:
        Args(params, (), 0)
        return True

    async def chain_id(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return quantity(self.backend.chain_id())

    async def block_number(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return quantity(await self.backend.head_number())

    async def syncing(self, params: list[Any]) -> Any:
        Args(params, (), 0)
        status = await self.backend.syncing()
        if status is None:
            return False
        return {"startingBlock": quantity(status.starting_block),
                "currentBlock": quantity(status.current_block),
                "highestBlock": quantity(status.highest_block)}

    async def accounts(self, params: list[Any]) -> list[str]:
        """Always empty: nodes hold no user keys (clients sign and send raw)."""
        Args(params, (), 0)
        return []

    async def gas_price(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return quantity((await self.backend.fees()).gas_price)

    async def max_priority_fee(self, params: list[Any]) -> str:
        Args(params, (), 0)
        return quantity((await self.backend.fees()).max_priority_fee_per_gas)

    async def fee_history(self, params: list[Any]) -> dict[str, Any]:
        args = Args(params, ("blockCount", "newestBlock", "rewardPercentiles"), 2)
        raw_count = args.get(0)
        if isinstance(raw_count, int) and not isinstance(raw_count, bool):
            count = raw_count  # geth accepts a decimal number too (HexOrDecimal64)
            if count < 0:
                raise invalid_params(args.label(0), "negative block count")
        else:
            count = parse_quantity(raw_count, args.label(0), bits=64)
        count = min(count, self.limits.max_fee_history_blocks)
        newest_ref = parse_block_ref(args.get(1), args.label(1))
        percentiles = self._percentiles(args.get(2), args.label(2))
        head = await self.backend.head_number()
        newest = await self.resolve.number(newest_ref)
        assert newest is not None  # a tag or number, never a hash here
        if newest > head:
            raise RpcError(SERVER_ERROR, f"request beyond head block: requested {newest}, "
                                         f"head {head}")
        oldest = max(0, newest - count + 1)
        out: dict[str, Any] = {"oldestBlock": quantity(oldest if count else newest)}
        base_fees: list[str] = []
        ratios: list[float] = []
        rewards: list[list[str]] = []
        next_base = 0
        for number in range(oldest, newest + 1) if count else ():
            block = await self.backend.block_by_number(number)
            if block is None:
                raise RpcError(SERVER_ERROR, f"block {number} not found")
            base = block.header.base_fee_per_gas or 0
            base_fees.append(quantity(base))
            limit = block.header.gas_limit
            ratios.append(block.header.gas_used / limit if limit else 0.0)
            next_base = base  # the base fee is constant on a gas-price-0 network
            if percentiles is not None:
                rewards.append(await self._rewards(block, base, percentiles))
        if count:
            base_fees.append(quantity(next_base))
        out["baseFeePerGas"] = base_fees
        out["gasUsedRatio"] = ratios
        if percentiles is not None:
            out["reward"] = rewards
        return out

    def _percentiles(self, value: Any, param: str) -> list[float] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > self.limits.max_reward_percentiles:
            raise invalid_params(param, "expected a list of at most "
                                        f"{self.limits.max_reward_percentiles} percentiles")
        previous = 0.0
        for i, p in enumerate(value):
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
                raise invalid_params(param, f"invalid reward percentile #{i}: {p!r}")
            if p < previous:
                raise invalid_params(param, f"invalid reward percentile #{i}: {p} < {previous}")
            previous = float(p)
        return [float(p) for p in value]

    async def _rewards(self, block: EthBlock, base: int, percentiles: list[float]) -> list[str]:
        """The priority fee at each percentile of the block's gas, weighted by gas used
        (geth's rule); zeros for an empty block."""
        if not block.transactions:
            return ["0x0"] * len(percentiles)
        paid: list[tuple[int, int]] = []
        for tx in block.transactions:
            receipt = await self.backend.receipt(tx.hash)
            paid.append((_tip(tx, base), receipt.gas_used if receipt else tx.gas))
        paid.sort()
        total = sum(gas for _, gas in paid)
        out = []
        index, cumulative = 0, paid[0][1]
        for p in percentiles:
            threshold = total * p / 100
            while cumulative < threshold and index < len(paid) - 1:
                index += 1
                cumulative += paid[index][1]
            out.append(quantity(paid[index][0]))
        return out

    async def _account_args(self, params: list[Any], names: tuple[str, ...]
                            ) -> tuple[Args, bytes, StateAt]:
        args = Args(params, names, len(names) - 1)
        address = parse_address(args.get(0), args.label(0))
        last = len(names) - 1
        raw_ref = args.get(last)
        ref = BlockRef(tag="latest") if raw_ref is None else parse_block_ref(
            raw_ref, args.label(last), allow_hash=True)
        return args, address, await self.resolve.state(ref)

    async def get_balance(self, params: list[Any]) -> str:
        _, address, at = await self._account_args(params, ("address", "block"))
        return quantity(await self._read(self.backend.balance(address, at)))

    async def get_transaction_count(self, params: list[Any]) -> str:
        _, address, at = await self._account_args(params, ("address", "block"))
        return quantity(await self._read(self.backend.nonce(address, at)))

    async def get_code(self, params: list[Any]) -> str:
        _, address, at = await self._account_args(params, ("address", "block"))
        return data(await self._read(self.backend.code(address, at)))

    async def get_storage_at(self, params: list[Any]) -> str:
        args = Args(params, ("address", "slot", "block"), 2)
        slot = parse_slot(args.get(1), args.label(1))
        _, address, at = await self._account_args([args.get(0), args.get(2)],
                                                  ("address", "block"))
        word = await self._read(self.backend.storage_at(address, slot, at))
        return data(word)

    @staticmethod
    async def _read(read: Awaitable[_T]) -> _T:
        try:
            return await read
        except UnknownBlock as exc:
            raise RpcError(SERVER_ERROR, "header not found") from exc

    async def _call_args(self, params: list[Any]) -> tuple[CallRequest, StateAt]:
        args = Args(params, ("transaction", "block"), 1)
        request = parse_call(args.get(0), args.label(0))
        raw_ref = args.get(1)
        ref = BlockRef(tag="latest") if raw_ref is None else parse_block_ref(
            raw_ref, args.label(1), allow_hash=True)
        return request, await self.resolve.state(ref)

    async def call(self, params: list[Any]) -> str:
        request, at = await self._call_args(params)
        return data(await self.backend.call(request, at))

    async def estimate_gas(self, params: list[Any]) -> str:
        request, at = await self._call_args(params)
        return quantity(await self.backend.estimate_gas(request, at))

    async def send_raw_transaction(self, params: list[Any]) -> str:
        args = Args(params, ("transaction",), 1)
        raw = parse_data(args.get(0), args.label(0), max_size=self.limits.max_body_bytes)
        if not raw:
            raise invalid_params(args.label(0), "empty transaction")
        return data(await self.backend.send_raw_transaction(raw))

    async def get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        args = Args(params, ("hash",), 1)
        tx = await self.backend.transaction(parse_hash(args.get(0), args.label(0)))
        return None if tx is None else tx_json(tx)

    async def get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        args = Args(params, ("hash",), 1)
        receipt = await self.backend.receipt(parse_hash(args.get(0), args.label(0)))
        return None if receipt is None else receipt_json(receipt)

    async def get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        args = Args(params, ("block", "fullTransactions"), 1)
        ref = parse_block_ref(args.get(0), args.label(0))
        full = False if args.get(1) is None else parse_bool(args.get(1), args.label(1))
        block = await self.resolve.block(ref)
        return None if block is None else block_json(block, full)

    async def get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        args = Args(params, ("hash", "fullTransactions"), 1)
        block_hash = parse_hash(args.get(0), args.label(0))
        full = False if args.get(1) is None else parse_bool(args.get(1), args.label(1))
        block = await self.backend.block_by_hash(block_hash)
        return None if block is None else block_json(block, full)

    async def get_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        args = Args(params, ("block",), 1)
        block = await self.resolve.block(parse_block_ref(args.get(0), args.label(0)))
        return None if block is None else quantity(len(block.transactions))

    async def get_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        args = Args(params, ("hash",), 1)
        block = await self.backend.block_by_hash(parse_hash(args.get(0), args.label(0)))
        return None if block is None else quantity(len(block.transactions))


