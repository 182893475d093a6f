"""Ethereum block hashes and roots, as every API (JSON-RPC, explorer, proofs) must show them.

- ``transactionsRoot`` / ``receiptsRoot``: the root of a trie keyed by ``rlp(index)`` whose
  values are the EIP-2718 encodings (legacy: the RLP list; typed: ``type || rlp(...)``).
- logs bloom: the 2048-bit filter over each log's address and topics (yellow paper §4.3.1).
- receipts: ``[status, cumulativeGasUsed, logsBloom, logs]``, typed like their transaction.
- the header: a Prague header (EIP-1559/4895/4844/4788/7685 fields present, all fixed for a
  quorum chain: base fee 0, no withdrawals, no blobs, zero beacon root, no requests);
  ``hash = keccak256(rlp(header))``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import rlp
from eth_bloom.bloom import BloomFilter
from eth_utils.crypto import keccak
from trie.hexary import HexaryTrie

EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))
EMPTY_OMMERS_HASH = keccak(rlp.encode([]))
#: EIP-7685 requests hash of a block with no requests: sha256 of nothing.
EMPTY_REQUESTS_HASH = hashlib.sha256(b"").digest()
ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class Log:
    """One LOG emitted by a successful transaction."""

    address: bytes
    """20-byte address of the emitting contract."""
    topics: tuple[bytes, ...]
    """0 to 4 topics of 32 bytes each."""
    data: bytes
    log_index: int = 0
    """Position of the log in the block (not in the transaction), as JSON-RPC reports it."""


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """Root of the trie ``{rlp(i): items[i]}`` (transactions and receipts roots)."""
    if not items:
        return EMPTY_TRIE_ROOT
    t = HexaryTrie({})
    for i, item in enumerate(items):
        t[rlp.encode(i)] = item
    return bytes(t.root_hash)


def logs_bloom(logs: Sequence[Log]) -> bytes:
    """The 256-byte bloom over the logs' addresses and topics."""
    bloom = BloomFilter()
    for log in logs:
        bloom.add(log.address)
        for topic in log.topics:
            bloom.add(topic)
    return int(bloom).to_bytes(256, "big")


def bloom_or(blooms: Sequence[bytes]) -> bytes:
    """The union of blooms: a block's bloom from its receipts'."""
    acc = 0
    for b in blooms:
        acc |= int.from_bytes(b, "big")
    return acc.to_bytes(256, "big")


def encode_receipt(tx_type: int, success: bool, cumulative_gas_used: int, bloom: bytes,
                   logs: Sequence[Log]) -> bytes:
    """EIP-2718 receipt bytes: the value of the receipts trie at the transaction's index."""
    body = bytes(rlp.encode([1 if success else 0, cumulative_gas_used, bloom,
                       [[log.address, list(log.topics), log.data] for log in logs]]))
    return body if tx_type == 0 else bytes([tx_type]) + body


@dataclass(frozen=True)
class EthHeader:
    """An Ethereum (Prague) block header; :meth:`hash` is the block hash clients see."""

    parent_hash: bytes
    coinbase: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    """Seconds since the Unix epoch."""
    prev_randao: bytes = ZERO32
    """``mixHash``: the value PREVRANDAO returns."""
    extra_data: bytes = b""
    base_fee_per_gas: int = 0
    ommers_hash: bytes = EMPTY_OMMERS_HASH
    difficulty: int = 0
    nonce: bytes = b"\x00" * 8
    withdrawals_root: bytes = EMPTY_TRIE_ROOT
    blob_gas_used: int = 0
    excess_blob_gas: int = 0
    parent_beacon_block_root: bytes = ZERO32
    requests_hash: bytes = field(default=EMPTY_REQUESTS_HASH)

    def fields(self) -> list[object]:
        """The header's RLP list, in the order of the yellow paper and its EIPs."""
        return [self.parent_hash, self.ommers_hash, self.coinbase, self.state_root,
                self.transactions_root, self.receipts_root, self.logs_bloom, self.difficulty,
                self.number, self.gas_limit, self.gas_used, self.timestamp, self.extra_data,
                self.prev_randao, self.nonce, self.base_fee_per_gas, self.withdrawals_root,
                self.blob_gas_used, self.excess_blob_gas, self.parent_beacon_block_root,
                self.requests_hash]

    def encode(self) -> bytes:
        return bytes(rlp.encode(self.fields()))

    def hash(self) -> bytes:
        return keccak(self.encode())
