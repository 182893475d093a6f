"""The py-evm pieces the engine runs on: a Prague state with the quorum gas model.

Gas is metered exactly as at Prague (the same gasUsed as any Ethereum client), but
costs nothing: whatever price a transaction offers, the effective gas price is 0,
GASPRICE returns 0, nothing is bought or paid to the coinbase (GoQuorum's gas-free
model; ADR 0020). Nonce and balance are checked by the engine before a transaction
runs, so the state's own fee-based validation is not used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from eth.abc import SignedTransactionAPI, TransactionContextAPI
from eth.db.atomic import AtomicDB
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address, BlockNumber, Hash32

from consortia.execution.evm.store import OverlayDB, StateReader

#: BLOCKHASH reaches this many blocks back.
BLOCKHASH_WINDOW = 256


class QuorumExecutor(PragueTransactionExecutor):
    """Prague's executor without its second signature check of signed transactions.

    Every signed transaction reaching the engine is an ``EthTx`` made by
    ``decode_transaction``, which already ran py-evm's ``validate()`` (fields, EIP-2 ``s``,
    signature) and recovered the sender; doing it again here cost an ECDSA recovery and a
    verification per transaction per block. Unsigned calls (``SpoofTransaction``: eth_call,
    private payloads) keep the full validation.
    """

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        if isinstance(transaction, SpoofTransaction):
            super().validate_transaction(transaction)
        else:
            self.vm_state.validate_transaction(transaction)


class QuorumState(PragueState):
    """Prague state whose effective gas price is always 0."""

    transaction_executor_class = QuorumExecutor

    def get_tip(self, transaction: SignedTransactionAPI) -> int:
        return 0

    def get_gas_price(self, transaction: SignedTransactionAPI) -> int:
        return 0

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        """Nonce and balance were checked by the engine (engine.py ``_admit``)."""

    def get_transaction_context(self, transaction: SignedTransactionAPI
                                ) -> TransactionContextAPI:
        ctx: TransactionContextAPI = self.get_transaction_context_class()(
            gas_price=0, origin=transaction.sender)
        return ctx


def prev_hashes(number: int, block_hash_of: Callable[[int], bytes | None]) -> Iterator[Hash32]:
    """Hashes of blocks number-1, number-2, ... (up to 256), lazily: BLOCKHASH asks only
    for the ones a contract reads. Stops at the first block the chain does not know."""
    for n in range(number - 1, max(-1, number - 1 - BLOCKHASH_WINDOW), -1):
        h = block_hash_of(n)
        if h is None:
            return
        yield Hash32(h)


def open_state(store: StateReader, state_root: bytes, *, chain_id: int, number: int,
               timestamp: int, coinbase: bytes, gas_limit: int, base_fee: int,
               prev_randao: bytes, block_hash_of: Callable[[int], bytes | None]
               ) -> tuple[QuorumState, OverlayDB]:
    """A state at ``state_root`` for a block with this environment, and its write overlay."""
    overlay = OverlayDB(store)
    context = ExecutionContext(
        coinbase=Address(coinbase), timestamp=timestamp, block_number=BlockNumber(number),
        difficulty=0, mix_hash=Hash32(prev_randao), gas_limit=gas_limit,
        prev_hashes=prev_hashes(number, block_hash_of), chain_id=chain_id,
        base_fee_per_gas=base_fee, excess_blob_gas=0)
    state = QuorumState(AtomicDB(overlay), context, Hash32(state_root))
    return state, overlay


def gas_used_by(transaction: Any, computation: Any) -> int:
    """Prague's gas used by one transaction (refunds and the EIP-7623 floor applied)."""
    return int(PragueVM.finalize_gas_used(transaction, computation))
