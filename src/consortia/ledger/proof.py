"""Offline proofs: everything needed to show a transaction is final, in one JSON file.

A proof holds the transaction envelope, its block header and commit certificate,
Merkle audit paths for the transaction and for its execution result, and the
configuration blocks between genesis and the block. The verifier needs only the
genesis file: it rebuilds the configuration block by block (checking each
block's certificate under the configuration before it), then checks the block's
certificate, both inclusion paths, the signer's membership and signature.

The file is canonical JSON (sorted keys, two-space indent, final newline) and the
verifier refuses any other spelling, so changing any single byte of a proof makes
it fail: either the JSON no longer parses, or it is no longer canonical, or a
checked value changed. docs/spec/proofs.md is the normative description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from consortia.crypto import CryptoError, Suite, get_suite
from consortia.identity.membership import Membership
from consortia.ledger import hashing, merkle
from consortia.ledger.certify import verify_certificate
from consortia.ledger.genesis import Genesis
from consortia.ledger.rules import check_signer, config_hash, verify_block
from consortia.ledger.store import LedgerStore
from consortia.types.block import Block, Certificate, Header, Result, TxStatus
from consortia.types.config import ChainConfig
from consortia.types.errors import ConsortiaError, InvalidProof, NotFound
from consortia.types.tx import Envelope, Payload, TxId

PROOF_FORMAT = "consortia-proof/1"
_JSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=_JSON_OPTS) + b"\n"


def build_proof(store: LedgerStore, suite: Suite, genesis_hash: bytes,
                txid: bytes) -> bytes:
    tx = store.tx(txid)
    if tx is None:
        raise NotFound(f"transaction {txid.hex()} is not committed")
    blk = store.block(tx.height)
    if blk is None:  # pragma: no cover - the store writes both in one transaction
        raise NotFound(f"block {tx.height} is missing")
    rows = store.block_txs(tx.height)
    tx_leaves = [merkle.leaf_hash(suite.hash, r.envelope) for r in rows]
    res_leaves = [merkle.leaf_hash(suite.hash, r.result.encode()) for r in rows]
    header = Header.decode(blk.header)
    doc = {
        "format": PROOF_FORMAT,
        "chain_id": header.chain_id,
        "genesis_hash": genesis_hash.hex(),
        "tx_id": txid.hex(),
        "tx": tx.envelope.hex(),
        "index": tx.index,
        "block_header": blk.header.hex(),
        "certificate": blk.certificate.hex(),
        "tx_path": [p.hex() for p in merkle.path(suite.hash, tx_leaves, tx.index)],
        "result": tx.result.encode().hex(),
        "result_path": [p.hex() for p in merkle.path(suite.hash, res_leaves, tx.index)],
        "config_blocks": [_block_bytes(store, b.height).hex()
                          for b in store.config_blocks(up_to=tx.height - 1)],
    }
    return dumps(doc)


def _block_bytes(store: LedgerStore, height: int) -> bytes:
    blk = store.block(height)
    assert blk is not None
    envs = tuple(r.envelope for r in store.block_txs(height))
    return Block(Header.decode(blk.header), blk.header,
                 Certificate.decode(blk.certificate), envs).encode()


@dataclass(frozen=True)
class VerifiedProof:
    """What a valid proof establishes."""

    chain_id: str
    tx_id: TxId
    payload: Payload
    signer_org: str
    signer_name: str
    signer_role: str
    height: int
    index: int
    block_hash: bytes
    block_time_ms: int
    validators: tuple[str, ...]
    """Validators whose votes made the block final."""


_KEYS = {"format", "chain_id", "genesis_hash", "tx_id", "tx", "index", "block_header",
         "certificate", "tx_path", "result", "result_path", "config_blocks"}


def _hex(doc: dict[str, Any], key: str) -> bytes:
    v = doc[key]
    if not isinstance(v, str) or v != v.lower():
        raise InvalidProof(f"{key}: expected lowercase hex")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise InvalidProof(f"{key}: not hex") from None


def _hex_list(doc: dict[str, Any], key: str) -> list[bytes]:
    v = doc[key]
    if not isinstance(v, list):
        raise InvalidProof(f"{key}: expected a list")
    return [_hex({key: x}, key) for x in v]


def verify_proof(data: bytes, genesis: Genesis) -> VerifiedProof:
    """Verify a proof file's bytes against a trusted genesis; raise ``InvalidProof`` with
    the reason, or return what the proof establishes."""
    try:
        return _verify(data, genesis)
    except InvalidProof:
        raise
    except ConsortiaError as exc:
        raise InvalidProof(f"{exc.message}") from exc
    except CryptoError as exc:
        raise InvalidProof(f"a key or signature in the proof cannot be used: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidProof(f"proof is malformed: {exc}") from exc


def _verify(data: bytes, genesis: Genesis) -> VerifiedProof:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidProof(f"proof is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != _KEYS:
        raise InvalidProof("proof fields are not those of " + PROOF_FORMAT)
    if dumps(doc) != data:
        raise InvalidProof("proof is not in canonical form (was it edited?)")
    if doc["format"] != PROOF_FORMAT:
        raise InvalidProof(f"unsupported proof format {doc['format']!r}")
    config: ChainConfig = genesis.config
    suite = get_suite(config.suite)
    if doc["chain_id"] != config.chain_id:
        raise InvalidProof(f"proof is for chain {doc['chain_id']!r}, the genesis is for "
                           f"{config.chain_id!r}")
    if _hex(doc, "genesis_hash") != genesis.hash:
        raise InvalidProof("proof names another genesis block than the one given")

    # 1. Rebuild the configuration from genesis through each configuration block.
    prev_height = 0
    for raw in _hex_list(doc, "config_blocks"):
        cb = Block.decode(raw)
        if cb.header.height <= prev_height or not cb.header.is_config:
            raise InvalidProof(f"config block list out of order at height {cb.header.height}")
        try:
            _, config = verify_block(suite, config, None, cb, None)
        except ConsortiaError as exc:
            raise InvalidProof(f"configuration block {cb.header.height}: {exc.message}") from exc
        prev_height = cb.header.height

    # 2. The block: its certificate under the configuration in force, and its config link.
    header_bytes = _hex(doc, "block_header")
    header = Header.decode(header_bytes)
    cert = Certificate.decode(_hex(doc, "certificate"))
    block_hash = hashing.block_hash(suite, header_bytes)
    if header.chain_id != config.chain_id:
        raise InvalidProof("block header is for another chain")
    if header.height == 0:
        # Genesis is final by being the genesis the verifier trusts, not by votes.
        if (block_hash != genesis.hash or prev_height != 0
                or cert != genesis.block.certificate):
            raise InvalidProof("a height-0 block must be the given genesis block")
    elif header.height <= prev_height:
        raise InvalidProof("block height is not after the configuration blocks given")
    else:
        try:
            verify_certificate(suite, config, header, block_hash, cert)
        except ConsortiaError as exc:
            raise InvalidProof(f"commit certificate: {exc.message}") from exc
    expected_config_height = header.height if header.is_config and header.height else prev_height
    if header.config_height != expected_config_height:
        raise InvalidProof("proof omits configuration blocks the block depends on")
    if not header.is_config and header.config_hash != config_hash(suite, config):
        raise InvalidProof("configuration rebuilt from the proof does not match the block's")

    # 3. Inclusion of the transaction and of its result.
    env_bytes = _hex(doc, "tx")
    index = doc["index"]
    if not isinstance(index, int) or isinstance(index, bool):
        raise InvalidProof("index: expected an integer")
    leaf = merkle.leaf_hash(suite.hash, env_bytes)
    if not merkle.verify_path(suite.hash, leaf, index, header.tx_count, _hex_list(doc, "tx_path"),
                              header.tx_root):
        raise InvalidProof("transaction is not included in the block (Merkle path fails)")
    result_bytes = _hex(doc, "result")
    result = Result.decode(result_bytes)
    rleaf = merkle.leaf_hash(suite.hash, result_bytes)
    if not merkle.verify_path(suite.hash, rleaf, index, header.tx_count,
                              _hex_list(doc, "result_path"), header.results_root):
        raise InvalidProof("execution result is not included in the block (Merkle path fails)")
    if result.status is not TxStatus.VALID:
        raise InvalidProof(f"transaction is in the block but was rejected: {result.code}")

    # 4. The transaction itself: id, chain binding, signer and signature.
    env = Envelope.decode(env_bytes)
    payload = Payload.decode(env.payload)
    txid = hashing.tx_id(suite, env.payload)
    if _hex(doc, "tx_id") != txid:
        raise InvalidProof("tx_id is not the hash of the transaction payload")
    if payload.chain_id != config.chain_id:
        raise InvalidProof("transaction is bound to another chain")
    try:
        member = check_signer(suite, Membership(config, suite), env, payload)
    except ConsortiaError as exc:
        raise InvalidProof(f"signer: {exc.message}") from exc
    return VerifiedProof(
        chain_id=config.chain_id, tx_id=txid, payload=payload, signer_org=member.org_id,
        signer_name=member.name, signer_role=str(member.role), height=header.height,
        index=index, block_hash=block_hash, block_time_ms=header.timestamp_ms,
        validators=tuple(v.validator_id for v in cert.votes))
