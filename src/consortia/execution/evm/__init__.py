"""The quorum profile's EVM execution (py-evm at Prague, gas metered at price 0; ADR 0020).

Public surface: :class:`EvmEngine` (genesis, ``execute_block``, ``call``, ``estimate_gas``,
account reads at a state root), :func:`decode_transaction` for admission, the
Ethereum header/roots helpers of :mod:`.ethblock`, and the errors of :mod:`.errors`.
The engine does no I/O: state is read through a :class:`StateReader` and a block's
state writes are returned as data (docs/spec/evm.md).
"""

from consortia.execution.evm._keccak import use_fast_keccak
from consortia.execution.evm.engine import (
    BlockEnv,
    BlockOutcome,
    CallResult,
    EvmEngine,
    GenesisAccount,
    PrivateOutcome,
    Receipt,
    Rejected,
)
from consortia.execution.evm.errors import CODES, EvmCallError, EvmTxError
from consortia.execution.evm.ethblock import (
    EthHeader,
    Log,
    encode_receipt,
    logs_bloom,
    ordered_trie_root,
)
from consortia.execution.evm.store import MemoryStore, StateReader
from consortia.execution.evm.transactions import EthTx, decode_transaction

KECCAK_BACKEND = use_fast_keccak()
"""Which keccak implementation the process hashes with (``_keccak.py``)."""

__all__ = [
    "CODES", "KECCAK_BACKEND", "BlockEnv", "BlockOutcome", "CallResult", "EthHeader", "EthTx",
    "EvmCallError",
    "EvmEngine", "EvmTxError", "GenesisAccount", "Log", "MemoryStore", "PrivateOutcome",
    "Receipt", "Rejected",
    "StateReader", "decode_transaction", "encode_receipt", "logs_bloom", "ordered_trie_root",
]
