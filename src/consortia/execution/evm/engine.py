"""The EVM engine of the quorum profile: genesis, blocks, calls and reads at a state root.

It is pure computation over a :class:`~consortia.execution.evm.store.StateReader`: no I/O,
no node or ledger imports. ``execute_block`` reads the parent state, runs the transactions
in order and returns everything the block commits to — receipts, the roots of an
Ethereum header, and the new state nodes (``writes``) for the ledger to store atomically
with the block. Same parent, same environment, same transactions: same outcome, on every
validator (the determinism the consensus relies on).

A transaction that cannot run against the state (nonce not the sender's next, value
above the balance, gas above what is left of the block) is **left out** of the block and
reported in ``BlockOutcome.rejected`` with its code; it gets no receipt and does not
change the nonce, as in geth's miner. A transaction that runs and fails (revert, out of
gas, invalid opcode) is included with status 0 and uses its gas.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.exceptions import OutOfGas, Revert
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address, Hash32
from eth_utils.crypto import keccak

from consortia.execution.evm import _pyevm
from consortia.execution.evm.errors import EvmCallError, EvmTxError
from consortia.execution.evm.ethblock import (
    EMPTY_TRIE_ROOT,
    ZERO32,
    EthHeader,
    Log,
    bloom_or,
    encode_receipt,
    logs_bloom,
    ordered_trie_root,
)
from consortia.execution.evm.revert import revert_reason
from consortia.execution.evm.store import OverlayDB, StateReader
from consortia.execution.evm.transactions import EthTx, decode_transaction

ZERO_ADDRESS = b"\x00" * 20
BlockHashOf = Callable[[int], "bytes | None"]


@dataclass(frozen=True)
class GenesisAccount:
    """One entry of the genesis ``alloc``."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockEnv:
    """What a block tells its transactions about itself (the opcodes NUMBER, TIMESTAMP...)."""

    number: int
    timestamp: int
    """Seconds since the Unix epoch (Ethereum's unit; the node's header has milliseconds)."""
    gas_limit: int = 30_000_000
    coinbase: bytes = ZERO_ADDRESS
    base_fee: int = 0
    """Always 0 on a quorum chain (the header's baseFeePerGas)."""
    prev_randao: bytes = ZERO32
    """PREVRANDAO / DIFFICULTY; the header's mixHash."""


@dataclass(frozen=True)
class Receipt:
    """The receipt of one included transaction (eth_getTransactionReceipt's fields)."""

    tx_hash: bytes
    tx_index: int
    tx_type: int
    sender: bytes
    to: bytes | None
    status: int
    """1 success, 0 failure (revert, out of gas, invalid opcode...)."""
    gas_used: int
    cumulative_gas_used: int
    logs: tuple[Log, ...]
    logs_bloom: bytes
    contract_address: bytes | None
    """The created contract's address for a creation transaction, else ``None``."""
    output: bytes
    """Return data, or the revert data of a reverted transaction."""
    revert_reason: str | None
    """Decoded Error(string) / Panic(uint256), or the failure ("out of gas")."""
    effective_gas_price: int = 0

    def encode(self) -> bytes:
        """EIP-2718 bytes, the receipts trie value."""
        return encode_receipt(self.tx_type, self.status == 1, self.cumulative_gas_used,
                              self.logs_bloom, self.logs)


@dataclass(frozen=True)
class Rejected:
    """A transaction of the batch left out of the block."""

    index: int
    """Its position in the batch given to ``execute_block``."""
    tx_hash: bytes | None
    """``None`` when the bytes did not even decode."""
    code: str
    message: str


@dataclass(frozen=True)
class BlockOutcome:
    """What a block commits to, and the state writes to store with it."""

    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    gas_used: int
    transactions: tuple[EthTx, ...]
    """The included transactions, in block order (receipt i is transaction i)."""
    receipts: tuple[Receipt, ...]
    rejected: tuple[Rejected, ...]
    writes: dict[bytes, bytes]
    """New state nodes and codes, keyed by their keccak256: commit with the block."""

    def header(self, parent_hash: bytes, env: BlockEnv) -> EthHeader:
        """The Ethereum header of this block (its ``hash()`` is the RPC block hash)."""
        return EthHeader(
            parent_hash=parent_hash, coinbase=env.coinbase, state_root=self.state_root,
            transactions_root=self.transactions_root, receipts_root=self.receipts_root,
            logs_bloom=self.logs_bloom, number=env.number, gas_limit=env.gas_limit,
            gas_used=self.gas_used, timestamp=env.timestamp, prev_randao=env.prev_randao,
            base_fee_per_gas=env.base_fee)


@dataclass(frozen=True)
class CallResult:
    """eth_call's answer: nothing it did is kept."""

    success: bool
    output: bytes
    gas_used: int
    revert_reason: str | None
    """As in :class:`Receipt`; JSON-RPC reports ``execution reverted: <reason>``."""
    logs: tuple[Log, ...] = ()


@dataclass(frozen=True)
class PrivateOutcome:
    """A private payload run on a private state (:meth:`EvmEngine.apply_private`)."""

    state_root: bytes
    result: CallResult
    contract_address: bytes | None
    writes: dict[bytes, bytes]


def _no_hashes(number: int) -> bytes | None:
    return None


def _contract_address(sender: bytes, nonce: int) -> bytes:
    return keccak(rlp.encode([sender, nonce]))[12:]


def _failure_reason(computation: object) -> str | None:
    error = getattr(computation, "error", None)
    if error is None:
        return None
    if isinstance(error, Revert):
        return revert_reason(bytes(getattr(computation, "output", b"")))
    if isinstance(error, OutOfGas):
        return "out of gas"
    return type(error).__name__ + (f": {error.args[0]}" if error.args else "")


def _logs(computation: object, first_index: int) -> tuple[Log, ...]:
    entries = computation.get_log_entries()  # type: ignore[attr-defined]
    return tuple(Log(address=bytes(addr), topics=tuple(t.to_bytes(32, "big") for t in topics),
                     data=bytes(data), log_index=first_index + i)
                 for i, (addr, topics, data) in enumerate(entries))


class EvmEngine:
    """Executes Ethereum transactions at Prague over stored state (module doc)."""

    def __init__(self, chain_id: int, store: StateReader) -> None:
        self.chain_id = chain_id
        self.store = store

    # ---- genesis -------------------------------------------------------------------
    def genesis(self, alloc: Mapping[bytes, GenesisAccount]) -> tuple[bytes, dict[bytes, bytes]]:
        """The state root of ``alloc`` and the nodes to store for it."""
        overlay = OverlayDB(self.store)
        db = AccountDB(AtomicDB(overlay), Hash32(EMPTY_TRIE_ROOT))
        for address in sorted(alloc):
            if len(address) != 20:
                raise ValueError(f"genesis address must be 20 bytes, got {len(address)}")
            account = alloc[address]
            addr = Address(address)
            db.set_balance(addr, account.balance)
            db.set_nonce(addr, account.nonce)
            if account.code:
                db.set_code(addr, account.code)
            for slot in sorted(account.storage):
                db.set_storage(addr, slot, account.storage[slot])
        db.persist()
        return bytes(db.state_root), overlay.writes

    # ---- blocks --------------------------------------------------------------------
    def execute_block(self, parent_state_root: bytes, env: BlockEnv,
                      txs: Sequence[bytes | EthTx],
                      block_hash_of: BlockHashOf = _no_hashes, *,
                      markers: Collection[int] = ()) -> BlockOutcome:
        """Run ``txs`` (raw bytes or already decoded) in order on the parent state.

        ``block_hash_of(n)`` answers BLOCKHASH for the 256 blocks before ``env.number``
        (``None`` for a block the chain does not have). The transactions at the indexes
        ``markers`` are private-transaction markers (ADR 0027): checked like any other,
        they only consume their sender's nonce on this (public) state — status 1, no gas,
        no logs; participants run the private payload on their private state
        (:meth:`apply_private`).
        """
        state, overlay = self._open(parent_state_root, env, block_hash_of)
        included: list[EthTx] = []
        receipts: list[Receipt] = []
        rejected: list[Rejected] = []
        cumulative = 0
        log_index = 0
        for index, item in enumerate(txs):
            try:
                tx = item if isinstance(item, EthTx) else decode_transaction(item, self.chain_id)
                self._admit(state, tx, env.gas_limit - cumulative)
            except EvmTxError as exc:
                tx_hash = item.hash if isinstance(item, EthTx) else None
                rejected.append(Rejected(index, tx_hash, exc.code, exc.message))
                continue
            if index in markers:
                state.increment_nonce(Address(tx.sender))
                receipts.append(Receipt(
                    tx_hash=tx.hash, tx_index=len(included), tx_type=tx.type,
                    sender=tx.sender, to=tx.to, status=1, gas_used=0,
                    cumulative_gas_used=cumulative, logs=(), logs_bloom=bytes(256),
                    contract_address=None, output=b"", revert_reason=None))
                included.append(tx)
                continue
            state.lock_changes()
            computation = state.apply_transaction(tx.evm_tx)
            gas = _pyevm.gas_used_by(tx.evm_tx, computation)
            cumulative += gas
            success = computation.is_success
            logs = _logs(computation, log_index) if success else ()
            log_index += len(logs)
            receipts.append(Receipt(
                tx_hash=tx.hash, tx_index=len(included), tx_type=tx.type, sender=tx.sender,
                to=tx.to, status=1 if success else 0, gas_used=gas,
                cumulative_gas_used=cumulative, logs=logs, logs_bloom=logs_bloom(logs),
                contract_address=_contract_address(tx.sender, tx.nonce) if tx.to is None
                else None,
                output=bytes(computation.output), revert_reason=_failure_reason(computation)))
            included.append(tx)
        state.persist()
        return BlockOutcome(
            state_root=bytes(state.state_root),
            transactions_root=ordered_trie_root([t.raw for t in included]),
            receipts_root=ordered_trie_root([r.encode() for r in receipts]),
            logs_bloom=bloom_or([r.logs_bloom for r in receipts]),
            gas_used=cumulative, transactions=tuple(included), receipts=tuple(receipts),
            rejected=tuple(rejected), writes=overlay.writes)

    def _admit(self, state: _pyevm.QuorumState, tx: EthTx, gas_left: int) -> None:
        """The state checks: raise the code geth would give, change nothing."""
        sender = Address(tx.sender)
        if tx.chain_id != self.chain_id:
            raise EvmTxError("invalid_chain_id", f"have {tx.chain_id} want {self.chain_id}")
        if tx.gas > gas_left:
            raise EvmTxError("exceeds_block_gas_limit", f"gas {tx.gas}, left {gas_left}")
        nonce = state.get_nonce(sender)
        if tx.nonce < nonce:
            raise EvmTxError("nonce_too_low",
                             f"address 0x{tx.sender.hex()}, tx: {tx.nonce} state: {nonce}")
        if tx.nonce > nonce:
            raise EvmTxError("nonce_too_high",
                             f"address 0x{tx.sender.hex()}, tx: {tx.nonce} state: {nonce}")
        balance = state.get_balance(sender)
        if balance < tx.value:
            raise EvmTxError("insufficient_funds",
                             f"address 0x{tx.sender.hex()} have {balance} want {tx.value}")
        if state.get_code(sender):
            raise EvmTxError("invalid_sender", "sender not an eoa (EIP-3607)")

    def _open(self, state_root: bytes, env: BlockEnv, block_hash_of: BlockHashOf
              ) -> tuple[_pyevm.QuorumState, OverlayDB]:
        return _pyevm.open_state(
            self.store, state_root, chain_id=self.chain_id, number=env.number,
            timestamp=env.timestamp, coinbase=env.coinbase, gas_limit=env.gas_limit,
            base_fee=env.base_fee, prev_randao=env.prev_randao, block_hash_of=block_hash_of)

    # ---- calls ---------------------------------------------------------------------
    def call(self, state_root: bytes, env: BlockEnv, *, sender: bytes = ZERO_ADDRESS,
             to: bytes | None, data: bytes = b"", value: int = 0, gas: int | None = None,
             block_hash_of: BlockHashOf = _no_hashes) -> CallResult:
        """eth_call: run a message on the state at ``state_root``; nothing is kept.

        No signature, nonce or balance-for-gas check; ``gas`` defaults to the block's
        gas limit. A creation (``to=None``) returns the deployed code as output.
        """
        state, _ = self._open(state_root, env, block_hash_of)
        limit = env.gas_limit if gas is None else gas
        unsigned = PragueTransactionBuilder.create_unsigned_transaction(
            nonce=state.get_nonce(Address(sender)), gas_price=0, gas=limit,
            to=Address(to) if to is not None else Address(b""), value=value, data=data)
        spoof = SpoofTransaction(unsigned, from_=Address(sender))
        if limit < spoof.intrinsic_gas:
            raise EvmTxError("intrinsic_gas_too_low",
                             f"gas {limit}, minimum needed {spoof.intrinsic_gas}")
        state.lock_changes()
        computation = state.apply_transaction(spoof)  # type: ignore[arg-type]  # py-evm's own eth_call path
        success = computation.is_success
        return CallResult(
            success=success, output=bytes(computation.output),
            gas_used=_pyevm.gas_used_by(spoof, computation),
            revert_reason=_failure_reason(computation),
            logs=_logs(computation, 0) if success else ())

    def apply_private(self, state_root: bytes, env: BlockEnv, *, sender: bytes,
                      to: bytes | None, data: bytes, gas: int, nonce: int,
                      block_hash_of: BlockHashOf = _no_hashes) -> PrivateOutcome:
        """Run a private transaction's payload on a participant's private state and keep
        the result (ADR 0027). ``nonce`` is its marker's public nonce: a private creation's
        address is derived from it, so it is unique like the marker. The signature was
        checked on the marker; gas is metered and free as on the public state."""
        state, overlay = self._open(state_root, env, block_hash_of)
        state.set_nonce(Address(sender), nonce)
        unsigned = PragueTransactionBuilder.create_unsigned_transaction(
            nonce=nonce, gas_price=0, gas=gas,
            to=Address(to) if to is not None else Address(b""), value=0, data=data)
        spoof = SpoofTransaction(unsigned, from_=Address(sender))
        if gas < spoof.intrinsic_gas:
            return PrivateOutcome(state_root, CallResult(
                success=False, output=b"", gas_used=0, revert_reason="intrinsic gas too low",
                logs=()), None, {})
        state.lock_changes()
        computation = state.apply_transaction(spoof)  # type: ignore[arg-type]  # as call()
        success = computation.is_success
        state.persist()
        result = CallResult(success=success, output=bytes(computation.output),
                            gas_used=_pyevm.gas_used_by(spoof, computation),
                            revert_reason=_failure_reason(computation),
                            logs=_logs(computation, 0) if success else ())
        created = _contract_address(sender, nonce) if to is None and success else None
        return PrivateOutcome(bytes(state.state_root), result, created, overlay.writes)

    def estimate_gas(self, state_root: bytes, env: BlockEnv, *, sender: bytes = ZERO_ADDRESS,
                     to: bytes | None, data: bytes = b"", value: int = 0,
                     cap: int | None = None, block_hash_of: BlockHashOf = _no_hashes) -> int:
        """The least gas limit with which the call succeeds (binary search, as geth does).

        Raises :class:`EvmCallError` ``execution_reverted`` (with the reason) when it
        fails even at the cap, ``gas_required_exceeds_allowance`` when it runs out of gas.
        """
        top = env.gas_limit if cap is None else cap

        def ok(gas: int) -> CallResult:
            return self.call(state_root, env, sender=sender, to=to, data=data, value=value,
                             gas=gas, block_hash_of=block_hash_of)

        first = ok(top)
        if not first.success:
            if first.revert_reason == "out of gas":
                raise EvmCallError("gas_required_exceeds_allowance",
                                   f"gas required exceeds allowance ({top})")
            reason = first.revert_reason
            raise EvmCallError("execution_reverted",
                               "execution reverted" + (f": {reason}" if reason else ""),
                               reason=reason, data=first.output)
        lo, hi = first.gas_used - 1, top
        # Most calls need gasUsed plus what the 63/64 rule holds back: try that first.
        guess = min(top, first.gas_used * 64 // 63 + 2300)
        if guess < hi and ok(guess).success:
            hi = guess
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if ok(mid).success:
                hi = mid
            else:
                lo = mid
        return hi

    # ---- account reads -------------------------------------------------------------
    def _accounts(self, state_root: bytes) -> AccountDB:
        return AccountDB(AtomicDB(OverlayDB(self.store)), Hash32(state_root))

    def balance(self, state_root: bytes, address: bytes) -> int:
        return int(self._accounts(state_root).get_balance(Address(address)))

    def nonce(self, state_root: bytes, address: bytes) -> int:
        return int(self._accounts(state_root).get_nonce(Address(address)))

    def code(self, state_root: bytes, address: bytes) -> bytes:
        return bytes(self._accounts(state_root).get_code(Address(address)))

    def storage_at(self, state_root: bytes, address: bytes, slot: int) -> int:
        return int(self._accounts(state_root).get_storage(Address(address), slot))
