"""What crosses the :class:`~consortia.node.ethrpc.backend.EthBackend` boundary: Ethereum
blocks, transactions, receipts and logs as frozen dataclasses of plain Python values.

The node fills them from the EVM engine; the RPC layer only encodes them (``encode.py``).
Hashes, addresses and byte strings are ``bytes`` of their exact length (checked here, so a
wrong adapter fails loudly at the boundary instead of sending a malformed hex string to a
client); quantities are non-negative ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Address = bytes
"""20 bytes."""
Hash32 = bytes
"""32 bytes (Keccak-256 digest, storage slot value, topic)."""

PENDING: Literal["pending"] = "pending"
"""State selector for reads that see the transaction pool (``eth_getTransactionCount`` with
the ``pending`` tag: the next nonce counting the sender's queued transactions)."""

StateAt = int | Literal["pending"]
"""Where an account read looks: a block number (the state after that block) or the pending
state (latest state plus the pool)."""


def _check_len(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {value!r:.80}")


def _check_uint(name: str, value: int, bits: int = 256) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise ValueError(f"{name} must be an unsigned {bits}-bit integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class AccessListEntry:
    """One EIP-2930 access list entry: an address and the storage keys it pre-warms."""

    address: Address
    storage_keys: tuple[Hash32, ...] = ()

    def __post_init__(self) -> None:
        _check_len("access list address", self.address, 20)
        for key in self.storage_keys:
            _check_len("access list storage key", key, 32)


@dataclass(frozen=True, slots=True, kw_only=True)
class TxCommon:
    """Fields every transaction type has.

    The location fields (``block_hash``, ``block_number``, ``transaction_index``) are all
    ``None`` for a transaction still in the pool and all set once it is in a block."""

    hash: Hash32
    """Keccak-256 of the transaction's signed encoding (the id clients see)."""
    nonce: int
    sender: Address
    """The recovered signer (``from`` on the wire)."""
    to: Address | None
    """``None`` for a contract creation."""
    value: int
    gas: int
    """The gas limit the sender set."""
    input: bytes
    r: int
    s: int
    block_hash: Hash32 | None = None
    block_number: int | None = None
    transaction_index: int | None = None

    def __post_init__(self) -> None:
        _check_len("transaction hash", self.hash, 32)
        _check_len("transaction sender", self.sender, 20)
        if self.to is not None:
            _check_len("transaction to", self.to, 20)
        for name in ("nonce", "gas"):
            _check_uint(name, getattr(self, name), 64)
        for name in ("value", "r", "s"):
            _check_uint(name, getattr(self, name))
        located = (self.block_hash, self.block_number, self.transaction_index)
        if any(x is None for x in located) and any(x is not None for x in located):
            raise ValueError("block_hash, block_number and transaction_index go together")
        if self.block_hash is not None:
            _check_len("transaction block hash", self.block_hash, 32)


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyTx(TxCommon):
    """Type 0: the original transaction, EIP-155 replay-protected when ``chain_id`` is set
    (``v`` = chain_id * 2 + 35 + y_parity) or not (``v`` = 27 + y_parity)."""

    gas_price: int
    v: int
    chain_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessListTx(TxCommon):
    """Type 1 (EIP-2930): a legacy gas price plus an access list."""

    chain_id: int
    gas_price: int
    access_list: tuple[AccessListEntry, ...]
    y_parity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DynamicFeeTx(TxCommon):
    """Type 2 (EIP-1559): a fee cap and a priority fee instead of a gas price."""

    chain_id: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    access_list: tuple[AccessListEntry, ...]
    y_parity: int
    effective_gas_price: int | None = None
    """What the sender paid per gas once mined (``min(max_fee, base_fee + tip)``); the wire's
    ``gasPrice``. ``None`` while pending (the wire then shows ``max_fee_per_gas``)."""


EthTransaction = LegacyTx | AccessListTx | DynamicFeeTx
"""A transaction of one of the three supported types."""


def tx_type(tx: EthTransaction) -> int:
    """The EIP-2718 type number of ``tx``."""
    if isinstance(tx, DynamicFeeTx):
        return 2
    if isinstance(tx, AccessListTx):
        return 1
    return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EthLog:
    """One log emitted by a committed transaction, with its position in the chain."""

    address: Address
    topics: tuple[Hash32, ...]
    data: bytes
    block_number: int
    block_hash: Hash32
    transaction_hash: Hash32
    transaction_index: int
    log_index: int
    """Index among all logs of the block (not of the transaction), as the spec wants."""

    def __post_init__(self) -> None:
        _check_len("log address", self.address, 20)
        if len(self.topics) > 4:
            raise ValueError("a log has at most 4 topics")
        for topic in self.topics:
            _check_len("log topic", topic, 32)
        _check_len("log block hash", self.block_hash, 32)
        _check_len("log transaction hash", self.transaction_hash, 32)


@dataclass(frozen=True, slots=True, kw_only=True)
class EthReceipt:
    """The outcome of a committed transaction (post-Byzantium: ``status``, no state root)."""

    transaction_hash: Hash32
    transaction_index: int
    block_hash: Hash32
    block_number: int
    sender: Address
    to: Address | None
    cumulative_gas_used: int
    gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    """The created contract's address for a creation, else ``None``."""
    logs: tuple[EthLog, ...]
    logs_bloom: bytes
    """256 bytes."""
    tx_type: int
    status: int
    """1 success, 0 failure (reverted, out of gas …)."""

    def __post_init__(self) -> None:
        _check_len("receipt transaction hash", self.transaction_hash, 32)
        _check_len("receipt block hash", self.block_hash, 32)
        _check_len("receipt sender", self.sender, 20)
        _check_len("receipt logs bloom", self.logs_bloom, 256)
        if self.status not in (0, 1):
            raise ValueError(f"receipt status must be 0 or 1, got {self.status}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EthHeader:
    """An Ethereum block header as the RPC shows it. Consortia's chains are final (raft,
    pbft): there are no uncles, no proof of work (difficulty 0, nonce and mixHash zero unless
    the engine puts something there), and every block is ``safe`` and ``finalized``."""

    number: int
    hash: Hash32
    parent_hash: Hash32
    state_root: Hash32
    transactions_root: Hash32
    receipts_root: Hash32
    logs_bloom: bytes
    """256 bytes."""
    gas_used: int
    gas_limit: int
    timestamp: int
    """Seconds since the epoch."""
    miner: Address
    """The proposer's Ethereum address (zero when the engine has none)."""
    base_fee_per_gas: int | None
    """0 on a gas-price-0 network; ``None`` for a pre-London header (not produced here)."""
    extra_data: bytes
    mix_hash: Hash32 = bytes(32)
    nonce: bytes = bytes(8)
    """8 bytes."""
    size: int = 0
    """Size in bytes of the RLP-encoded block."""

    def __post_init__(self) -> None:
        for name in ("hash", "parent_hash", "state_root", "transactions_root",
                     "receipts_root", "mix_hash"):
            _check_len(f"header {name}", getattr(self, name), 32)
        _check_len("header logs bloom", self.logs_bloom, 256)
        _check_len("header miner", self.miner, 20)
        _check_len("header nonce", self.nonce, 8)
        for name in ("number", "gas_used", "gas_limit", "timestamp", "size"):
            _check_uint(name, getattr(self, name), 64)


@dataclass(frozen=True, slots=True, kw_only=True)
class EthBlock:
    """A committed block: its header and its transactions in order (all of them; the RPC
    layer shows only their hashes when the client did not ask for full transactions)."""

    header: EthHeader
    transactions: tuple[EthTransaction, ...] = ()

    def __post_init__(self) -> None:
        for index, tx in enumerate(self.transactions):
            if tx.block_hash != self.header.hash or tx.transaction_index != index:
                raise ValueError(f"transaction {index} does not locate itself in this block")


@dataclass(frozen=True, slots=True)
class NewHead:
    """One committed block as the new-heads stream delivers it: the header and every log
    of the block in ``log_index`` order (what ``newHeads`` and ``logs`` subscribers see)."""

    header: EthHeader
    logs: tuple[EthLog, ...] = ()


TopicFilter = tuple[tuple[Hash32, ...] | None, ...]
"""Per position: ``None`` matches anything, a tuple matches any of its topics (OR). A log
with fewer topics than the filter has positions does not match."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Logs wanted from an inclusive, already resolved block range: emitted by one of
    ``addresses`` (empty = any) and whose topics match ``topics`` position by position."""

    from_block: int
    to_block: int
    addresses: tuple[Address, ...] = ()
    topics: TopicFilter = ()

    def matches(self, log: EthLog) -> bool:
        """Whether ``log`` meets the address and topic criteria (the block range aside)."""
        return log_matches(log, self.addresses, self.topics)


def log_matches(log: EthLog, addresses: tuple[Address, ...], topics: TopicFilter) -> bool:
    """The eth_getLogs matching rule: address in ``addresses`` (or none given), and every
    non-wildcard position of ``topics`` holding one of its alternatives."""
    if addresses and log.address not in addresses:
        return False
    if len(topics) > len(log.topics):
        return False
    return all(wanted is None or log.topics[i] in wanted for i, wanted in enumerate(topics))


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequest:
    """The transaction object of ``eth_call`` / ``eth_estimateGas``; absent fields are
    ``None`` and the engine picks its defaults (zero sender, block gas limit, no value)."""

    sender: Address | None = None
    to: Address | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int | None = None
    data: bytes | None = None
    nonce: int | None = None
    access_list: tuple[AccessListEntry, ...] | None = None


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Where a catching-up node stands (``eth_syncing`` answers ``false`` when ``None``)."""

    starting_block: int
    current_block: int
    highest_block: int


@dataclass(frozen=True, slots=True)
class FeeInfo:
    """The node's price suggestions: what ``eth_gasPrice`` and
    ``eth_maxPriorityFeePerGas`` answer (both 0 on a gas-price-0 network)."""

    gas_price: int = 0
    max_priority_fee_per_gas: int = 0


EMPTY_BLOOM = bytes(256)
ZERO_ADDRESS = bytes(20)
