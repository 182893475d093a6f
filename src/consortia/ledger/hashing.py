"""Ids and roots computed from canonical bytes with the chain's suite hash."""

from __future__ import annotations

from collections.abc import Sequence

from consortia.crypto import Suite
from consortia.ledger import merkle
from consortia.types.block import Result
from consortia.types.tx import TxId


def tx_id(suite: Suite, payload: bytes) -> TxId:
    """A transaction's id: the hash of its payload bytes, never of the signature."""
    return TxId(suite.hash(payload))


def block_hash(suite: Suite, header_bytes: bytes) -> bytes:
    return suite.hash(header_bytes)


def tx_root(suite: Suite, envelopes: Sequence[bytes]) -> bytes:
    return merkle.root(suite.hash, envelopes)


def results_root(suite: Suite, results: Sequence[Result]) -> bytes:
    return merkle.root(suite.hash, [r.encode() for r in results])


ZERO_HASH = bytes(32)
