"""The narrow interface the JSON-RPC layer needs from a node: :class:`EthBackend`, and the
typed errors its methods raise.

The RPC layer never sees the engine, the ledger or the pool; a node adapter implements this
protocol over them (as consensus sees the ledger only through ``consensus.support``). Every
method is async so that an adapter can run engine work in a thread
(``asyncio.to_thread``) without blocking the event loop that serves the other clients.

Error tree::

    EthBackendError
    ├── ExecutionReverted   the EVM ran REVERT: JSON-RPC code 3, data = the revert bytes
    ├── ExecutionFailed     any other failed execution (out of gas, invalid opcode,
    │                       gas required exceeds allowance …): -32000 with its message
    ├── TxRejected          a raw transaction was not admitted (reason: TxRejection):
    │                       -32000 with geth's message for that reason
    └── UnknownBlock        the block a read names is not on this node: -32000
                            "header not found"
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Protocol

from consortia.node.ethrpc.types import (
    Address,
    CallRequest,
    EthBlock,
    EthLog,
    EthReceipt,
    EthTransaction,
    FeeInfo,
    Hash32,
    LogFilter,
    NewHead,
    StateAt,
    SyncStatus,
)


class EthBackendError(Exception):
    """Base of the errors an :class:`EthBackend` raises for the client to see."""


class ExecutionReverted(EthBackendError):
    """The call or estimate ended in REVERT; ``data`` is the revert payload (possibly an
    ABI-encoded ``Error(string)`` or ``Panic(uint256)``, possibly a custom error, possibly
    empty)."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__("execution reverted")
        self.data = data


class ExecutionFailed(EthBackendError):
    """Execution failed other than by REVERT; the message is what the client sees, in
    geth's words where geth has them (``out of gas``, ``invalid opcode: INVALID``,
    ``gas required exceeds allowance (30000000)``, ``insufficient funds for transfer``)."""


class UnknownBlock(EthBackendError):
    """A state read named a block this node does not have (pruned or in the future)."""


class TxRejection(enum.Enum):
    """Why a raw transaction was not admitted; the value is geth's message (clients such
    as ethers.js classify errors by these strings, so they are kept verbatim)."""

    MALFORMED = "invalid transaction"
    """Not a decodable legacy / EIP-2930 / EIP-1559 transaction (detail: the decode error)."""
    TX_TYPE_NOT_SUPPORTED = "transaction type not supported"
    INVALID_SENDER = "invalid sender"
    """The signature does not recover (or is high-S)."""
    INVALID_CHAIN_ID = "invalid chain id for signer"
    UNPROTECTED = "only replay-protected (EIP-155) transactions allowed over RPC"
    ALREADY_KNOWN = "already known"
    NONCE_TOO_LOW = "nonce too low"
    NONCE_TOO_HIGH = "nonce too high"
    REPLACEMENT_UNDERPRICED = "replacement transaction underpriced"
    UNDERPRICED = "transaction underpriced"
    TIP_ABOVE_FEE_CAP = "max priority fee per gas higher than max fee per gas"
    FEE_CAP_TOO_LOW = "max fee per gas less than block base fee"
    INSUFFICIENT_FUNDS = "insufficient funds for gas * price + value"
    INTRINSIC_GAS = "intrinsic gas too low"
    GAS_LIMIT = "exceeds block gas limit"
    OVERSIZED = "oversized data"
    POOL_FULL = "txpool is full"
    NOT_PERMITTED = "transaction not permitted"
    """The sender is not allowed to transact on this network (a permissioned chain)."""


class TxRejected(EthBackendError):
    """A raw transaction was refused before entering the pool. ``detail`` is appended to the
    reason's message after ``": "`` (geth: ``nonce too low: address 0x…, tx: 0 state: 3``)."""

    def __init__(self, reason: TxRejection, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class EthBackend(Protocol):
    """A node as the JSON-RPC layer sees it. Block numbers are resolved by the RPC layer
    (tags → numbers, EIP-1898 hashes → numbers through :meth:`block_by_hash`) before they
    reach the state reads, so an adapter only ever sees plain numbers or
    :data:`~consortia.node.ethrpc.types.PENDING`."""

    def chain_id(self) -> int:
        """The EIP-155 chain id (also ``net_version``'s answer, in decimal)."""
        ...

    async def head_number(self) -> int:
        """The number of the latest committed block (0 when only genesis exists)."""
        ...

    async def block_by_number(self, number: int) -> EthBlock | None:
        """Committed block ``number`` with its transactions, ``None`` if not (yet) there."""
        ...

    async def block_by_hash(self, block_hash: Hash32) -> EthBlock | None:
        """The committed block of that hash, ``None`` if unknown."""
        ...

    async def transaction(self, tx_hash: Hash32) -> EthTransaction | None:
        """A committed transaction, or one still in the pool (location fields ``None``),
        or ``None`` if unknown."""
        ...

    async def receipt(self, tx_hash: Hash32) -> EthReceipt | None:
        """The receipt of a committed transaction, ``None`` if not committed (yet)."""
        ...

    async def logs(self, query: LogFilter) -> list[EthLog]:
        """Every log of blocks ``query.from_block..query.to_block`` (inclusive, both ≤ head)
        that ``query.matches``, in chain order. The RPC layer has bounded the range; an
        adapter may use the headers' blooms to skip blocks."""
        ...

    async def balance(self, address: Address, at: StateAt) -> int:
        """Wei held by ``address`` after block ``at``. Raises :class:`UnknownBlock`."""
        ...

    async def nonce(self, address: Address, at: StateAt) -> int:
        """The account nonce after block ``at``; with ``PENDING``, the next nonce counting
        the sender's transactions in the pool. Raises :class:`UnknownBlock`."""
        ...

    async def code(self, address: Address, at: StateAt) -> bytes:
        """Deployed code of ``address`` (empty for an external account)."""
        ...

    async def storage_at(self, address: Address, slot: int, at: StateAt) -> Hash32:
        """The 32-byte word in storage slot ``slot`` of ``address``."""
        ...

    async def call(self, request: CallRequest, at: StateAt) -> bytes:
        """Execute ``request`` on the state after block ``at`` without committing anything;
        the return data. Raises :class:`ExecutionReverted`, :class:`ExecutionFailed`,
        :class:`UnknownBlock`."""
        ...

    async def estimate_gas(self, request: CallRequest, at: StateAt) -> int:
        """The least gas limit with which ``request`` succeeds on the state after ``at``.
        Raises as :meth:`call` (ExecutionFailed ``gas required exceeds allowance (N)`` when
        it fails at any limit)."""
        ...

    async def send_raw_transaction(self, raw: bytes) -> Hash32:
        """Decode, check and admit a signed transaction (legacy RLP, or an EIP-2718 typed
        envelope of type 1 or 2); its hash. Raises :class:`TxRejected`."""
        ...

    def new_heads(self) -> AsyncIterator[NewHead]:
        """Every block committed from now on, in order, with its logs. The RPC layer holds
        at most one such iterator per server and fans it out; an adapter may end the
        iterator when the node stops."""
        ...

    async def syncing(self) -> SyncStatus | None:
        """Catch-up progress, or ``None`` when the node is in step with its chain."""
        ...

    async def fees(self) -> FeeInfo:
        """The gas price and priority fee to suggest to clients."""
        ...
