"""Genesis: block 0, the genesis file and its checks (ledger/genesis.py)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import orjson
import pytest

from consortia.ledger import hashing
from consortia.ledger.genesis import GENESIS_FORMAT, check_genesis_block, load_genesis, make_genesis
from consortia.types.block import VALID, Block, Certificate, Header
from consortia.types.config import ChainConfig
from consortia.types.errors import ConfigError, Unauthorized
from consortia.types.tx import ConfigBody, Envelope, Payload, TxType
from tests.unit.conftest import CHAIN_ID, NOW_MS, SUITE, World


def _doc(world: World) -> dict:
    return orjson.loads(world.genesis.to_file_bytes())


def _file(doc: dict) -> bytes:
    return orjson.dumps(doc)


def _forge(config: ChainConfig, key, cert: bytes, *, config_bytes: bytes | None = None,
           signature: bytes | None = None, certificate: Certificate | None = None) -> bytes:
    """A genesis file built like make_genesis but without its final check, so each
    internal consistency rule can be broken on its own (hash field always correct)."""
    cb = config_bytes if config_bytes is not None else config.encode()
    payload = Payload(config.chain_id, TxType.CONFIG, os.urandom(16), NOW_MS,
                      ConfigBody(cb)).encode()
    env = Envelope(payload, cert, signature or key.sign(payload)).encode()
    header = Header(config.chain_id, 0, hashing.ZERO_HASH, hashing.tx_root(SUITE, [env]),
                    hashing.results_root(SUITE, [VALID]), 1, NOW_MS, "", 0, SUITE.hash(cb))
    hb = header.encode()
    h = SUITE.hash(hb)
    block = Block(header, hb, certificate or Certificate(0, 0, h, ()), (env,))
    return orjson.dumps({"format": GENESIS_FORMAT, "chain_id": config.chain_id,
                         "hash": h.hex(), "block": block.encode().hex()})


def test_round_trip_through_the_file(world: World, tmp_path: Path) -> None:
    g = world.genesis
    data = g.to_file_bytes()
    assert data.endswith(b"\n")
    doc = orjson.loads(data)
    assert doc["format"] == GENESIS_FORMAT and doc["chain_id"] == CHAIN_ID
    assert doc["hash"] == g.hash.hex() == SUITE.hash(g.block.header_bytes).hex()
    back = load_genesis(data)
    assert back.hash == g.hash
    assert back.config == world.config
    assert back.block == g.block
    assert back.to_file_bytes() == data
    path = tmp_path / "genesis.json"
    path.write_bytes(data)
    assert load_genesis(path).hash == g.hash
    hd = g.block.header
    assert (hd.height, hd.prev_hash, hd.tx_count, hd.config_height) == (0, bytes(32), 1, 0)
    assert hd.is_config and hd.timestamp_ms == NOW_MS
    assert hd.config_hash == SUITE.hash(world.config.encode())
    assert check_genesis_block(g.block) == world.config


def test_two_geneses_of_the_same_config_differ(world: World) -> None:
    admin = world.org1["admin"]
    other = make_genesis(world.config, admin.key, admin.cert_der, NOW_MS)
    assert other.hash != world.genesis.hash  # fresh nonce: a chain id is not a chain


def test_hash_field_changed_is_refused(world: World) -> None:
    doc = _doc(world)
    h = bytearray(bytes.fromhex(doc["hash"]))
    h[0] ^= 1
    doc["hash"] = bytes(h).hex()
    with pytest.raises(ConfigError, match="hash"):
        load_genesis(_file(doc))
    doc["hash"] = doc["hash"].upper()
    with pytest.raises(ConfigError):
        load_genesis(_file(doc))


def test_header_byte_changed_is_refused(world: World) -> None:
    doc = _doc(world)
    blk = bytearray(bytes.fromhex(doc["block"]))
    hb = world.genesis.block.header_bytes
    ts = NOW_MS.to_bytes(8, "big")
    at = blk.index(hb) + hb.index(ts) + 7  # last byte of the header timestamp
    blk[at] ^= 1
    doc["block"] = bytes(blk).hex()
    with pytest.raises(ConfigError, match="hash does not match"):
        load_genesis(_file(doc))


def test_other_file_damage_is_refused(world: World) -> None:
    for mutate in [
        lambda d: d.update(chain_id="other"),
        lambda d: d.update(format="consortia-genesis/2"),
        lambda d: d.pop("block"),
        lambda d: d.update(block="zz"),
        lambda d: d.update(block=d["block"][:-1]),
    ]:
        doc = _doc(world)
        mutate(doc)
        with pytest.raises(ConfigError):
            load_genesis(_file(doc))
    for raw in (b"", b"not json", b"[]", b"null", world.genesis.to_file_bytes()[:-20]):
        with pytest.raises(ConfigError):
            load_genesis(raw)


def test_forged_signature_is_refused(world: World) -> None:
    admin, alice = world.org1["admin"], world.org1["alice"]
    good = _forge(world.config, admin.key, admin.cert_der)
    assert load_genesis(good).config == world.config
    forged = _forge(world.config, alice.key, admin.cert_der)  # admin's cert, alice's key
    with pytest.raises(ConfigError, match="signature"):
        load_genesis(forged)


def test_genesis_signed_by_a_non_admin_is_refused(world: World) -> None:
    alice = world.org1["alice"]
    with pytest.raises((ConfigError, Unauthorized)):
        make_genesis(world.config, alice.key, alice.cert_der, NOW_MS)


def test_invalid_configuration_is_refused(world: World) -> None:
    admin = world.org1["admin"]
    bad = dataclasses.replace(world.config, validators=world.config.validators * 2)
    with pytest.raises(ConfigError):
        make_genesis(bad, admin.key, admin.cert_der, NOW_MS)
    with pytest.raises(ConfigError):
        load_genesis(_forge(bad, admin.key, admin.cert_der))


def test_undecodable_block_is_a_config_error(world: World) -> None:
    """A damaged genesis file is refused with ConfigError whatever the damage: here the
    block hex is valid hex but no longer decodes."""
    doc = _doc(world)
    blk = bytearray(bytes.fromhex(doc["block"]))
    blk[0] ^= 1  # array header 0x93 -> 0x92
    doc["block"] = bytes(blk).hex()
    with pytest.raises(ConfigError):
        load_genesis(_file(doc))


def test_unknown_suite_in_genesis_is_a_config_error(world: World) -> None:
    admin = world.org1["admin"]
    odd = dataclasses.replace(world.config, suite="p256-sha257")
    with pytest.raises(ConfigError):
        load_genesis(_forge(odd, admin.key, admin.cert_der))


def test_genesis_certificate_is_checked(world: World) -> None:
    """The certificate bytes are part of the file's block; a changed certificate must not
    load (block 0 carries exactly Certificate(0, 0, hash, ()))."""
    admin = world.org1["admin"]
    bogus = Certificate(5, 1, bytes(32), ())
    with pytest.raises(ConfigError):
        load_genesis(_forge(world.config, admin.key, admin.cert_der, certificate=bogus))


def test_every_single_byte_flip_of_the_block_is_refused(world: World) -> None:
    doc = _doc(world)
    blk = bytes.fromhex(doc["block"])
    outcomes: dict[str, list[int]] = {}
    for i in range(len(blk)):
        b = bytearray(blk)
        b[i] ^= 0x01
        doc["block"] = bytes(b).hex()
        try:
            load_genesis(_file(doc))
            outcome = "accepted"
        except ConfigError:
            continue
        except Exception as exc:
            outcome = type(exc).__name__
        outcomes.setdefault(outcome, []).append(i)
    assert outcomes == {}, {k: (len(v), v[:8]) for k, v in outcomes.items()}
