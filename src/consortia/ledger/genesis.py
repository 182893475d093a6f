"""Genesis: the first configuration as block 0, and the genesis file that anchors trust.

Genesis carries no commit certificate votes: it is trusted because its hash is
the one in the genesis file a user got out of band (DESIGN §5). The file is
JSON naming the chain and holding the block's canonical bytes in hex; its
``hash`` field is checked on load, so a damaged file is refused with a reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from consortia.crypto import CryptoError, SigningKey, get_suite
from consortia.identity.membership import Membership
from consortia.ledger import hashing
from consortia.types.block import VALID, Block, Certificate, Header
from consortia.types.config import ChainConfig, Role
from consortia.types.errors import ConfigError, ConsortiaError
from consortia.types.tx import ConfigBody, Envelope, Payload, TxType

GENESIS_FORMAT = "consortia-genesis/1"


@dataclass(frozen=True)
class Genesis:
    block: Block
    hash: bytes
    config: ChainConfig

    def to_file_bytes(self) -> bytes:
        return orjson.dumps({"format": GENESIS_FORMAT, "chain_id": self.config.chain_id,
                             "hash": self.hash.hex(), "block": self.block.encode().hex()},
                            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def make_genesis(config: ChainConfig, admin_key: SigningKey, admin_cert: bytes,
                 timestamp_ms: int) -> Genesis:
    """Build block 0 for ``config``, its configuration signed by an organization admin."""
    config.validate()
    suite = get_suite(config.suite)
    payload = Payload(config.chain_id, TxType.CONFIG, os.urandom(16), timestamp_ms,
                      ConfigBody(config.encode())).encode()
    env = Envelope(payload, admin_cert, admin_key.sign(payload)).encode()
    header = Header(config.chain_id, 0, hashing.ZERO_HASH, hashing.tx_root(suite, [env]),
                    hashing.results_root(suite, [VALID]), 1, timestamp_ms, "", 0,
                    suite.hash(config.encode()))
    hb = header.encode()
    h = hashing.block_hash(suite, hb)
    block = Block(header, hb, Certificate(0, 0, h, ()), (env,))
    genesis = Genesis(block, h, config)
    check_genesis_block(block)
    return genesis


def check_genesis_block(block: Block) -> ChainConfig:
    """Decode and check block 0; returns its configuration."""
    hd = block.header
    if hd.height != 0 or hd.prev_hash != hashing.ZERO_HASH or len(block.envelopes) != 1:
        raise ConfigError("genesis must be height 0 with one configuration transaction")
    env = Envelope.decode(block.envelopes[0])
    payload = Payload.decode(env.payload)
    if not isinstance(payload.body, ConfigBody):
        raise ConfigError("genesis transaction is not a configuration")
    config = ChainConfig.decode(payload.body.config)
    config.validate()
    suite = get_suite(config.suite)
    if payload.chain_id != config.chain_id or hd.chain_id != config.chain_id:
        raise ConfigError("genesis chain id does not match its configuration")
    if hd.tx_root != hashing.tx_root(suite, block.envelopes) or hd.tx_count != 1:
        raise ConfigError("genesis tx_root does not match its transaction")
    if hd.results_root != hashing.results_root(suite, [VALID]):
        raise ConfigError("genesis results_root is wrong")
    if hd.config_height != 0 or hd.config_hash != suite.hash(payload.body.config):
        raise ConfigError("genesis header does not commit to its configuration")
    h = hashing.block_hash(suite, block.header_bytes)
    if block.certificate != Certificate(0, 0, h, ()):
        raise ConfigError("genesis certificate must be empty and name the genesis hash")
    membership = Membership(config, suite)
    member = membership.validate(env.signer, (config.policies.config_role,),
                                 payload.timestamp_ms)
    for v in config.validators:
        try:
            vm = membership.validate(v.cert, (Role.VALIDATOR,), payload.timestamp_ms)
        except ConsortiaError as exc:
            raise ConfigError(f"validator {v.id}: {exc.message}") from exc
        if vm.org_id != v.org_id:
            raise ConfigError(f"validator {v.id}'s certificate is from {vm.org_id}, "
                              f"not {v.org_id}")
    if not suite.verify(member.public_key, env.payload, env.signature):
        raise ConfigError("genesis configuration signature does not verify")
    return config


def _suite_of(block: Block) -> str:
    env = Envelope.decode(block.envelopes[0]) if block.envelopes else None
    if env is None:
        raise ConfigError("genesis block holds no transaction")
    body = Payload.decode(env.payload).body
    if not isinstance(body, ConfigBody):
        raise ConfigError("genesis transaction is not a configuration")
    return ChainConfig.decode(body.config).suite


def load_genesis(data: bytes | Path) -> Genesis:
    try:
        raw = data.read_bytes() if isinstance(data, Path) else data
    except OSError as exc:
        raise ConfigError(f"cannot read the genesis file {data!s}: {exc.strerror}") from exc
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != GENESIS_FORMAT:
            raise ConfigError("not a genesis file (format is not " + GENESIS_FORMAT + ")")
        block = Block.decode(bytes.fromhex(doc["block"]))
        h = hashing.block_hash(get_suite(_suite_of(block)), block.header_bytes)
        if doc.get("hash") != h.hex():
            raise ConfigError("genesis file hash does not match its block")
        config = check_genesis_block(block)
    except ConfigError:
        raise
    except ConsortiaError as exc:
        raise ConfigError(f"genesis file is damaged: {exc.message}") from exc
    except CryptoError as exc:
        raise ConfigError(f"genesis file is unusable: {exc}") from exc
    except (orjson.JSONDecodeError, KeyError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"genesis file is malformed: {exc}") from exc
    if doc.get("chain_id") != config.chain_id:
        raise ConfigError("genesis file chain_id does not match its block")
    return Genesis(block, h, config)
