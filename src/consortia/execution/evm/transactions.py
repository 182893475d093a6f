"""Raw signed Ethereum transactions: decode, check, recover the sender, hash.

The bytes are the EIP-2718 encoding a client sends to ``eth_sendRawTransaction``:
a legacy RLP list (EIP-155 replay protection required), or ``0x01 || rlp(...)``
(EIP-2930) or ``0x02 || rlp(...)`` (EIP-1559). Decoding uses py-evm's Prague
transaction classes (no hand-written RLP); the sender is recovered with eth-keys
(the coincurve backend when installed). Blob (type 3) and set-code (type 4)
transactions are refused: no blob sidecars or delegations on a consortium chain yet.

Checks here need no state: size, type, encoding, signature, chain id, intrinsic gas,
gas against the block gas limit. Nonce and balance are checked against state by the
engine (``engine.py``), which reports the same codes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import SignedTransactionAPI
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_keys.exceptions import BadSignature
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from consortia.execution.evm.errors import EvmTxError

#: geth's txMaxSize: four 32 KiB slots.
MAX_TX_BYTES = 128 * 1024
LEGACY, ACCESS_LIST, DYNAMIC_FEE = 0, 1, 2
SUPPORTED_TYPES = (LEGACY, ACCESS_LIST, DYNAMIC_FEE)
_SIGNATURE_FIELD = re.compile(r"Transaction\.(r|s|v|y_parity)\b|Bad Signature|Invalid Signature")
"""py-evm's words for a signature it refuses: a field out of range, or no key that signed."""
DECODED_CACHE = 8192
"""Decoded transactions kept by raw bytes: a node decodes a transaction at admission,
again when it executes the block (replicas), and again each time a client reads the block
(``eth_getBlockByNumber`` with transactions); the signature is checked only once."""


@dataclass(frozen=True)
class EthTx:
    """A decoded, signature-checked transaction, ready for the engine."""

    raw: bytes
    """The EIP-2718 bytes as received: the value of the block's transactions trie."""
    hash: bytes
    """keccak256 of ``raw``: the transaction hash clients know."""
    sender: bytes
    """20-byte address recovered from the signature."""
    type: int
    """0 legacy, 1 EIP-2930, 2 EIP-1559."""
    nonce: int
    gas: int
    """Gas limit the sender offered."""
    to: bytes | None
    """20-byte recipient, ``None`` for contract creation."""
    value: int
    data: bytes
    chain_id: int
    max_fee_per_gas: int
    """The gas price a legacy/2930 transaction offers, maxFeePerGas for 1559. Not charged:
    gas is free on a quorum chain (docs/spec/evm.md)."""
    max_priority_fee_per_gas: int
    intrinsic_gas: int
    evm_tx: SignedTransactionAPI
    """py-evm's object, for the engine (not part of the stable surface)."""


def _type_of(raw: bytes) -> int:
    if not raw:
        raise EvmTxError("malformed", "empty")
    first = raw[0]
    if first >= 0xC0:
        return LEGACY
    if first >= 0x80:
        raise EvmTxError("malformed", "neither an RLP list nor a typed envelope")
    return first


def decode_transaction(raw: bytes, chain_id: int, *, block_gas_limit: int | None = None
                       ) -> EthTx:
    """Decode and check ``raw``; raise :class:`EvmTxError` with the reason's code.

    ``chain_id`` is the chain's EIP-155 id; ``block_gas_limit`` (when given) refuses a
    transaction that could never fit in a block. Valid transactions are remembered by
    their bytes (:data:`DECODED_CACHE`); refused ones are not, so garbage cannot evict them.
    """
    if len(raw) > MAX_TX_BYTES:
        raise EvmTxError("oversized_data", f"{len(raw)} bytes, limit {MAX_TX_BYTES}")
    tx = _decode(bytes(raw), chain_id)
    if block_gas_limit is not None and tx.gas > block_gas_limit:
        raise EvmTxError("exceeds_block_gas_limit", f"gas {tx.gas}, limit {block_gas_limit}")
    return tx


@functools.lru_cache(maxsize=DECODED_CACHE)
def _decode(raw: bytes, chain_id: int) -> EthTx:
    tx_type = _type_of(raw)
    if tx_type not in SUPPORTED_TYPES:
        raise EvmTxError("tx_type_not_supported", f"type {tx_type}")
    try:
        tx: Any = PragueTransactionBuilder.decode(raw)
    except (rlp.exceptions.DeserializationError, rlp.exceptions.DecodingError,
            ValidationError, ValueError, TypeError, IndexError) as exc:
        # py-evm checks the signature values while decoding (s above n/2, r out of range)
        code = "invalid_sender" if _SIGNATURE_FIELD.search(str(exc)) else "malformed"
        raise EvmTxError(code, str(exc)[:200]) from exc
    tx_chain = tx.chain_id
    if tx_chain is None:
        raise EvmTxError("replay_unprotected")
    if tx_chain != chain_id:
        raise EvmTxError("invalid_chain_id", f"have {tx_chain} want {chain_id}")
    try:
        sender = bytes(tx.sender)  # recovery fails on a signature no key made
    except (BadSignature, ValidationError, ValueError) as exc:
        raise EvmTxError("invalid_sender", str(exc)[:200]) from exc
    intrinsic = int(tx.intrinsic_gas)
    if tx.gas < intrinsic:
        raise EvmTxError("intrinsic_gas_too_low", f"gas {tx.gas}, minimum needed {intrinsic}")
    try:
        tx.validate()  # fields, s above n/2 (EIP-2 malleability), the signature verified
    except ValidationError as exc:
        code = "invalid_sender" if _SIGNATURE_FIELD.search(str(exc)) else "malformed"
        raise EvmTxError(code, str(exc)[:200]) from exc
    to = bytes(tx.to) if tx.to else None
    return EthTx(
        raw=bytes(raw), hash=keccak(raw), sender=sender, type=tx_type, nonce=int(tx.nonce),
        gas=int(tx.gas), to=to, value=int(tx.value), data=bytes(tx.data),
        chain_id=int(tx_chain), max_fee_per_gas=int(tx.max_fee_per_gas),
        max_priority_fee_per_gas=int(tx.max_priority_fee_per_gas), intrinsic_gas=intrinsic,
        evm_tx=tx)
