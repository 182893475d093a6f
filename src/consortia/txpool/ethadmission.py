"""Admission of the raw Ethereum transactions of a quorum chain (ADR 0026).

A quorum chain's block entries are either Consortia envelopes (configuration
transactions, first byte 0x94: a msgpack fixarray of 4) or raw EIP-2718 Ethereum
transactions exactly as the client signed them (first byte < 0x80 typed, >= 0xc0
legacy). ``is_envelope`` tells them apart; the ranges never meet.

An Ethereum transaction is admitted when it decodes under the chain's EVM chain id and
block gas limit (``EvmTxError`` with the engine's code otherwise) and its sender is bound
to an organization in ``config.evm.accounts`` (``AccountNotPermitted``, 403). Nonce order
is the ``LanePool``'s business (nonce too low / taken / too far ahead); a nonce or balance
that no longer fits when the block executes leaves the transaction out of the block.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia.execution.evm import EthTx, decode_transaction
from consortia.txpool.admission import Admission
from consortia.txpool.lanes import NonceRefused
from consortia.types.config import ChainConfig
from consortia.types.errors import (
    AccountNotPermitted,
    ConsortiaError,
    Duplicate,
    Malformed,
    TooLarge,
)
from consortia.types.tx import Tx, TxType

ENVELOPE_TAG = 0x94
"""First byte of every canonical Consortia envelope (msgpack fixarray of 4)."""
PRIVATE_TAG = 0x7E
"""First byte of a private transaction's marker entry: this tag, then the raw signed
Ethereum transaction whose data is the 64-byte hash of the private payload (ADR 0027).
No Ethereum transaction type uses it (EIP-2718 types in use are 0-4)."""
PAYLOAD_HASH_BYTES = 64
"""A transaction manager's payload hash (SHA3-512, ADR 0022)."""


def eth_bytes(entry: bytes) -> bytes:
    """The raw Ethereum transaction of a block entry (a private marker without its tag)."""
    return entry[1:] if entry[:1] == bytes([PRIVATE_TAG]) else entry


def private_marker(raw: bytes) -> bytes:
    """The block entry that carries ``raw`` as a private transaction's marker."""
    return bytes([PRIVATE_TAG]) + raw


def is_envelope(raw: bytes) -> bool:
    """Whether a quorum block entry is a Consortia envelope (else a raw Ethereum tx)."""
    return bool(raw) and raw[0] == ENVELOPE_TAG


@dataclass(frozen=True, slots=True)
class EthEntry:
    """An admitted Ethereum transaction as the pool and the chain carry it (a ``LaneTx``)."""

    eth: EthTx
    private: bool = False
    """A private transaction's marker: ``eth.data`` is the payload hash (ADR 0027)."""

    @property
    def id(self) -> bytes:
        """keccak256 of the raw bytes: the Ethereum transaction hash."""
        return self.eth.hash

    @property
    def raw(self) -> bytes:
        """The block entry: the raw transaction, tagged when it is a private marker."""
        return private_marker(self.eth.raw) if self.private else self.eth.raw

    @property
    def sender(self) -> bytes:
        return self.eth.sender

    @property
    def nonce(self) -> int:
        return self.eth.nonce

    @property
    def gas(self) -> int:
        """The gas the transaction offers (a block takes no more than its limit)."""
        return self.eth.gas

    @property
    def type(self) -> TxType:
        return TxType.EVM_PRIVATE if self.private else TxType.EVM


def admit_eth(raw: bytes, config: ChainConfig, *, check_sender: bool = True) -> EthEntry:
    """Decode and permission one raw Ethereum transaction (module doc).

    ``check_sender=False`` is for re-executing a block another validator proposed: the
    binding is then checked by ``QuorumChain.prepare`` under the configuration in force at
    that height, which leaves out (proposer) or refuses (re-check) the transaction of an
    account unbound since its admission (ADR 0025).
    """
    evm = config.evm
    if evm is None:
        raise Malformed("this chain does not take Ethereum transactions (not a quorum chain)",
                        code="wrong_profile")
    if len(raw) > config.limits.max_tx_bytes:
        raise TooLarge(f"transaction is {len(raw)} bytes, the limit is "
                       f"{config.limits.max_tx_bytes}")
    if is_envelope(raw):
        raise Malformed("a Consortia envelope is not an Ethereum transaction")
    private = raw[:1] == bytes([PRIVATE_TAG])
    eth = decode_transaction(eth_bytes(raw), evm.chain_id, block_gas_limit=evm.gas_limit)
    if private and (len(eth.data) != PAYLOAD_HASH_BYTES or eth.value):
        raise Malformed(f"a private transaction's data is the {PAYLOAD_HASH_BYTES}-byte "
                        "hash of its stored payload, and it sends no value",
                        code="invalid_private_transaction")
    if check_sender and evm.org_of(eth.sender) is None:
        raise AccountNotPermitted(f"account 0x{eth.sender.hex()} is not permitted to transact "
                                  "on this chain (it is bound to no organization)")
    return EthEntry(eth, private)


Entry = Tx | EthEntry
"""A quorum chain's block entry as admitted: a configuration envelope or an Ethereum tx."""


class QuorumAdmission:
    """Admission on a quorum chain: envelopes by ``Admission`` — configuration
    transactions only, the chain has no notary records —, raw Ethereum transactions by
    :func:`admit_eth` (module doc). Same interface as ``Admission``, so the node, its
    peers and the re-execution of proposed blocks use either alike."""

    def __init__(self, envelopes: Admission) -> None:
        self.envelopes = envelopes

    @property
    def config(self) -> ChainConfig:
        return self.envelopes.config

    def reconfigure(self, config: ChainConfig) -> None:
        self.envelopes.reconfigure(config)

    def check(self, raw: bytes, *, fresh: bool = True) -> Entry:
        """Admit one block entry; ``fresh=False`` (an entry of a block another validator
        proposed) skips the envelope's time window and the Ethereum sender's binding,
        which ``QuorumChain.prepare`` checks under the configuration in force."""
        if is_envelope(raw):
            tx = self.envelopes.check(raw, fresh=fresh)
            if not tx.payload.type.is_config:
                raise Malformed(f"a quorum chain takes configuration transactions and "
                                f"Ethereum transactions, not {tx.payload.type.name.lower()}",
                                code="wrong_profile")
            return tx
        return admit_eth(raw, self.config, check_sender=fresh)


def already_committed(entry: Entry) -> ConsortiaError:
    """The refusal of an entry the ledger holds: ``duplicate_transaction`` for an envelope;
    for an Ethereum transaction geth's answer, ``nonce too low`` (its nonce is used)."""
    if isinstance(entry, EthEntry):
        return NonceRefused(f"nonce too low: transaction 0x{entry.id.hex()} is already "
                            "committed")
    return Duplicate(f"transaction {entry.id.hex()} is already committed")
