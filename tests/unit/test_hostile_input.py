"""Untrusted bytes that reach the identity layer, the batch parser and the store must fail
with the project's own errors, whatever their damage (regressions of a review)."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from consortia.identity.membership import Membership, load_crl
from consortia.ledger.genesis import load_genesis
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.node.bodies import split_bin_array
from consortia.types.errors import ChainCorrupted, ConfigError, Malformed, TooLarge, Unauthorized
from tests.unit.conftest import World, build_sample


def _mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rnd.choice([1, 1, 2, 3])):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        out.append(bytes(b))
    return out


def test_damaged_crls_only_ever_raise_config_error(world: World) -> None:
    ca = world.org1.ca
    crl = ca.crl()
    refused = 0
    for bad in _mutations(crl, seed=1, count=3000):
        try:
            load_crl(ca.cert, bad)
        except ConfigError:
            refused += 1
    assert refused > 2500  # nearly every mutation breaks the signature or the DER


@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
def test_damaged_signer_certificates_only_ever_raise_unauthorized(world: World) -> None:
    membership = Membership(world.config)
    der = world.org1["alice"].cert_der
    refused = 0
    for bad in _mutations(der, seed=2, count=3000):
        try:
            membership.identify(bad)
        except Unauthorized as exc:
            assert exc.code in ("unknown_identity", "wrong_role")
            refused += 1
    assert refused > 2500


def test_two_organizations_with_one_ca_subject_are_refused(world: World) -> None:
    import dataclasses
    twin = dataclasses.replace(world.config.organizations[0], id="org1-twin")
    cfg = dataclasses.replace(world.config, organizations=(*world.config.organizations, twin))
    with pytest.raises(ConfigError, match="same subject"):
        Membership(cfg)


# -- the batch body ------------------------------------------------------------------------

def test_split_bin_array_reads_every_msgpack_header_size() -> None:
    import msgpack
    items = [b"", b"a" * 3, b"b" * 300, b"c" * 70_000]
    for n in (1, 4, 20, 70_000):
        body = msgpack.packb([items[i % 4] for i in range(n)], use_bin_type=True)
        assert split_bin_array(body, 100_000) == [items[i % 4] for i in range(n)]


@pytest.mark.parametrize("body, error", [
    (b"", Malformed),
    (b"\x80", Malformed),                      # a map
    (b"\x90", Malformed),                      # empty batch
    (b"\x91\x90", Malformed),                  # an array item, not bin
    (b"\x91\xa1x", Malformed),                 # a str item
    (b"\x91\xc4\x05ab", Malformed),            # truncated item
    (b"\x91\xc4", Malformed),                  # truncated header
    (b"\x91\xc4\x01a\x00", Malformed),         # trailing byte
    (b"\xdc\x00", Malformed),                  # truncated array header
    (b"\xdd\x00\x01\x00\x00", TooLarge),       # 65,536 items declared
])
def test_split_bin_array_refusals(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        split_bin_array(body, 1000)


# -- a damaged store -------------------------------------------------------------------------

@pytest.fixture
def sample_copy(tmp_path: Path, world: World) -> tuple[Path, World]:
    s = build_sample(tmp_path / "orig.db", world)
    s.harness.close()
    return tmp_path / "orig.db", world


@pytest.mark.parametrize("sql", [
    "UPDATE txs SET type=99 WHERE seq=(SELECT MAX(seq) FROM txs)",
    "UPDATE txs SET status=7 WHERE seq=(SELECT MAX(seq) FROM txs)",
    "UPDATE meta SET value=X'78' WHERE key='config_height'",
    "UPDATE blocks SET header='abc' WHERE height=(SELECT MAX(height) FROM blocks)",
])
def test_unreadable_rows_are_chain_corrupted(sample_copy, tmp_path: Path, sql: str) -> None:
    orig, world = sample_copy
    db = tmp_path / "damaged.db"
    shutil.copy(orig, db)
    conn = sqlite3.connect(db)
    conn.execute(sql)
    conn.commit()
    conn.close()
    store = LedgerStore(db)
    try:
        with pytest.raises(ChainCorrupted):
            verify_chain(store, world.genesis, tail=None)
    finally:
        store.close()


def test_a_truncated_database_file_is_chain_corrupted(sample_copy, tmp_path: Path) -> None:
    orig, _ = sample_copy
    data = orig.read_bytes()
    db = tmp_path / "cut.db"
    db.write_bytes(data[: len(data) // 2])
    with pytest.raises(ChainCorrupted, match="not a readable ledger database"):
        LedgerStore(db).height  # noqa: B018


def test_a_missing_genesis_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the genesis file"):
        load_genesis(tmp_path / "nope.json")
