"""Blocks, commit certificates and receipts.

Wire layout (docs/spec/blocks.md)::

    Header      = [version=2, chain_id, height, prev_hash, tx_root, results_root,
                   tx_count, timestamp_ms, proposer, config_height, config_hash,
                   last_commit]
                | [version=3, ...the 12 fields of version 2..., exec_hash]   (quorum chains)
    Vote        = [validator_id, signature]
    Certificate = [height, round, block_hash, [Vote...]]
    Block       = [header: bin, certificate: bin, [envelope: bin ...]]

The header is hashed as its canonical bytes; ``tx_root`` and ``results_root``
are RFC 6962 Merkle roots over length-prefixed leaves (consortia.ledger.merkle).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import NewType

from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

Height = NewType("Height", int)
BlockHash = NewType("BlockHash", bytes)

HEADER_VERSION = 2
HEADER_VERSION_EXEC = 3
"""A header with an ``exec_hash`` (quorum chains, ADR 0026); one without it still encodes as
version 2, so notary chains keep their bytes and hashes."""
MAX_VOTES = 256
MAX_CERTIFICATE = 64 * 1024
MAX_HEADER = MAX_CERTIFICATE + 4096
"""A header holds the previous block's certificate besides its fixed-size fields."""
MAX_BLOCK_TXS = 100_000


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    prev_hash: bytes
    """Hash of the previous header (32 zero bytes at genesis)."""
    tx_root: bytes
    results_root: bytes
    """Merkle root over the encoded execution result of each transaction."""
    tx_count: int
    timestamp_ms: int
    proposer: str
    """Id of the validator that proposed the block."""
    config_height: int
    """Height of the configuration block in force after this block (its own height for a
    configuration block, whose certificate is checked under the configuration before it)."""
    config_hash: bytes
    """Hash of that configuration's canonical bytes: a verifier that rebuilt a different
    configuration (say, by skipping a configuration block) finds out here."""
    last_commit: bytes = b""
    """Canonical bytes of the commit certificate of block ``height - 1`` that the proposer
    committed (empty for blocks 0 and 1). Validators gather different quorums of votes for
    the same block; once the next block commits, this copy — agreed on with that block —
    replaces each validator's own, so every ledger holds the same bytes at every height
    below the newest (as CometBFT's LastCommit does)."""
    exec_hash: bytes = b""
    """Quorum chains: the Ethereum block hash (keccak256 of the RLP header) of this height's
    Ethereum block, so the commit certificate certifies it (ADR 0026). Empty on notary
    chains and at genesis (whose Ethereum block follows from the configuration's alloc)."""

    @property
    def is_config(self) -> bool:
        return self.config_height == self.height

    def encode(self) -> bytes:
        fields = [self.chain_id, self.height, self.prev_hash, self.tx_root,
                  self.results_root, self.tx_count, self.timestamp_ms, self.proposer,
                  self.config_height, self.config_hash, self.last_commit]
        if self.exec_hash:
            return encode([HEADER_VERSION_EXEC, *fields, self.exec_hash])
        return encode([HEADER_VERSION, *fields])

    def last_certificate(self) -> Certificate | None:
        """The certificate of the previous block this header carries, if any."""
        return Certificate.decode(self.last_commit) if self.last_commit else None

    @staticmethod
    def decode(data: bytes) -> Header:
        value = decode(data, what="header")
        version = value[0] if isinstance(value, list) and value else None
        if version not in (HEADER_VERSION, HEADER_VERSION_EXEC) or isinstance(version, bool):
            raise Malformed(f"header.version: {version!r} is not supported (this build reads "
                            f"versions {HEADER_VERSION} and {HEADER_VERSION_EXEC}; re-create "
                            "chains made by older builds)")
        exec_version = version == HEADER_VERSION_EXEC
        r = Reader(value, "header", length=13 if exec_version else 12)
        r.int_("version")
        header = Header(
            chain_id=r.str_("chain_id", max_len=64, min_len=1),
            height=r.int_("height"),
            prev_hash=r.bytes_("prev_hash", max_len=64, min_len=32),
            tx_root=r.bytes_("tx_root", max_len=64, min_len=32),
            results_root=r.bytes_("results_root", max_len=64, min_len=32),
            tx_count=r.int_("tx_count", hi=MAX_BLOCK_TXS),
            timestamp_ms=r.int_("timestamp_ms"),
            proposer=r.str_("proposer", max_len=64),
            config_height=r.int_("config_height"),
            config_hash=r.bytes_("config_hash", max_len=64, min_len=32),
            last_commit=_canonical_certificate(r.bytes_("last_commit", max_len=MAX_CERTIFICATE)),
        )
        if exec_version:
            # exact=32: an empty exec_hash must encode as version 2, so one header has one
            # encoding (and one hash).
            header = replace(header, exec_hash=r.bytes_("exec_hash", max_len=32, exact=32))
        return header


def _canonical_certificate(data: bytes) -> bytes:
    """``data`` if empty or a certificate in canonical encoding (``decode`` refuses any
    other): the ledger stores these bytes as the previous block's certificate."""
    if data:
        Certificate.decode(data)
    return data


@dataclass(frozen=True, slots=True)
class Vote:
    validator_id: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class Certificate:
    """The signatures that make a block final; see ``ChainConfig.commit_quorum``."""

    height: int
    round: int
    """Consensus round/view/term the votes were cast in (0 for solo)."""
    block_hash: bytes
    votes: tuple[Vote, ...]

    def encode(self) -> bytes:
        return encode([self.height, self.round, self.block_hash,
                       [[v.validator_id, v.signature] for v in self.votes]])

    @staticmethod
    def decode(data: bytes) -> Certificate:
        r = Reader(decode(data, what="certificate"), "certificate", length=4)
        height = r.int_("height")
        rnd = r.int_("round")
        block_hash = r.bytes_("block_hash", max_len=64, min_len=32)
        votes = []
        for i, item in enumerate(r.list_("votes", max_len=MAX_VOTES)):
            v = Reader(item, f"certificate.votes[{i}]", length=2)
            votes.append(Vote(v.str_("validator_id", max_len=64, min_len=1),
                              v.bytes_("signature", max_len=132, min_len=1)))
        return Certificate(height, rnd, block_hash, tuple(votes))


def vote_message(chain_id: str, height: int, rnd: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs to vote for committing a block."""
    return encode(["consortia/commit/1", chain_id, height, rnd, block_hash])


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    header_bytes: bytes
    certificate: Certificate
    envelopes: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encode([self.header_bytes, self.certificate.encode(), list(self.envelopes)])

    @staticmethod
    def decode(data: bytes) -> Block:
        r = Reader(decode(data, what="block"), "block", length=3)
        header_bytes = r.bytes_("header", max_len=MAX_HEADER, min_len=1)
        cert = Certificate.decode(r.bytes_("certificate", max_len=MAX_CERTIFICATE, min_len=1))
        items = r.list_("transactions", max_len=MAX_BLOCK_TXS)
        if not all(isinstance(x, bytes) for x in items):
            raise Malformed("block.transactions: expected byte strings")
        return Block(Header.decode(header_bytes), header_bytes, cert, tuple(items))


class TxStatus(IntEnum):
    VALID = 0
    INVALID = 1


@dataclass(frozen=True, slots=True)
class Result:
    """The execution result of one transaction, committed under ``results_root``."""

    status: TxStatus
    code: str
    """Empty when valid; a stable error code otherwise (e.g. ``revoked_identity``)."""

    def encode(self) -> bytes:
        return encode([int(self.status), self.code])

    @staticmethod
    def decode(data: bytes) -> Result:
        r = Reader(decode(data, what="result"), "result", length=2)
        try:
            status = TxStatus(r.int_("status", hi=255))
        except ValueError as exc:
            raise Malformed("result.status: unknown") from exc
        return Result(status, r.str_("code", max_len=64))


VALID = Result(TxStatus.VALID, "")
