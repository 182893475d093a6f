"""Join bundles (``consortia.sdk.bundle``, docs/spec/join-bundle.md): what a bundle holds,
that its key is sealed under the passphrase, and every refusal — short passphrase, wrong
passphrase, any field changed, a genesis that is not the one named, a foreign directory."""

from __future__ import annotations

import base64
import json
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from consortia.identity.keystore import FileKeystore
from consortia.sdk.bundle import (
    FORMAT,
    PASSPHRASE_ENV,
    VERSION,
    BundleError,
    make_join_bundle,
    open_join_bundle,
    peer_config,
    unpack_join_bundle,
)
from consortia.sdk.network import LocalNetwork, init_network
from consortia.types.config import Role

PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return init_network(tmp_path_factory.mktemp("net"), chain_id="net-bundle")


@pytest.fixture(scope="module")
def other_genesis(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return (init_network(tmp_path_factory.mktemp("other"), chain_id="net-bundle")
            .genesis_path.read_bytes())


def _header(net: LocalNetwork) -> tuple[dict[str, str], object]:
    ca = net.ca("org1")
    key, cert = ca.issue_identity("nd-ext1", Role.PEER)
    genesis = net.genesis_path.read_bytes()
    header = {
        "network_id": "net-bundle", "chain_id": "net-bundle", "member_id": "org1",
        "org_id": "org1", "node_id": "nd-ext1", "node_name": "ext1",
        "api_endpoint": "http://127.0.0.1:27060", "issued_at": "2025-01-01T00:00:00+00:00",
        "certificate_serial": format(cert.serial_number, "x"),
        "genesis_hash": json.loads(genesis)["hash"],
        "genesis": base64.b64encode(genesis).decode(),
        "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "ca_certificate_pem": ca.cert.public_bytes(serialization.Encoding.PEM).decode(),
        "node_toml": peer_config("nd-ext1", host="127.0.0.1", port=27060,
                                 follow=["http://127.0.0.1:27050"]),
    }
    return header, key


@pytest.fixture(scope="module")
def made(net: LocalNetwork) -> tuple[bytes, dict[str, str], object]:
    header, key = _header(net)
    return make_join_bundle(header, key, PASS), header, key  # type: ignore[arg-type]


def test_a_bundle_holds_the_node_files_and_only_a_sealed_key(
        made: tuple[bytes, dict[str, str], object]) -> None:
    data, header, key = made
    doc = json.loads(data)
    assert (doc["format"], doc["version"]) == (FORMAT, VERSION)
    assert {k: doc[k] for k in header} == header
    assert doc["key"]["aead"] == "aes-256-gcm" and doc["key"]["kdf"]["name"] == "scrypt"
    plain = key.to_pem(None)  # type: ignore[attr-defined]
    body = plain.split(b"\n")[1]
    assert b"PRIVATE KEY" not in data and body not in data
    assert body not in base64.b64decode(doc["key"]["ciphertext"])
    opened = open_join_bundle(data, PASS)
    assert opened.key.to_pem(None) == plain and opened.header == header


def test_unpacking_writes_a_private_directory_with_the_key_encrypted(
        made: tuple[bytes, dict[str, str], object], tmp_path: Path) -> None:
    data, header, _ = made
    opened = open_join_bundle(data, PASS, expected_genesis_hash=header["genesis_hash"])
    node_dir = tmp_path / "peer"
    config = unpack_join_bundle(opened, node_dir, PASS)
    assert stat.S_IMODE(node_dir.stat().st_mode) == 0o700
    settings = tomllib.loads(config.read_text())
    assert settings["identity"] == {"keystore": "keystore", "name": "nd-ext1",
                                    "passphrase_env": PASSPHRASE_ENV}
    assert settings["follow"]["validators"] == ["http://127.0.0.1:27050"]
    assert (node_dir / "genesis.json").read_bytes() == opened.genesis_bytes
    key_pem = (node_dir / "keystore" / "nd-ext1" / "key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    assert not any("passphrase" in p.name for p in node_dir.rglob("*"))
    stored = FileKeystore(node_dir / "keystore").load("nd-ext1", PASS.encode())
    assert stored.key.to_pem(None) == opened.key.to_pem(None)
    # the same bundle again: a restart, nothing rewritten; another node's: refused
    assert unpack_join_bundle(opened, node_dir, PASS) == config
    other = type(opened)({**opened.header, "certificate_serial": "1"}, opened.key)
    with pytest.raises(BundleError) as err:
        unpack_join_bundle(other, node_dir, PASS)
    assert err.value.code == "directory_not_empty"


def test_short_passphrases_are_refused(net: LocalNetwork,
                                       made: tuple[bytes, dict[str, str], object]) -> None:
    header, key = _header(net)
    with pytest.raises(BundleError) as err:
        make_join_bundle(header, key, "short")  # type: ignore[arg-type]
    assert err.value.code == "weak_passphrase"
    with pytest.raises(BundleError) as err:
        open_join_bundle(made[0], "short")
    assert err.value.code == "weak_passphrase"
    with pytest.raises(BundleError) as err:  # JSON can carry what UTF-8 cannot
        make_join_bundle(header, key, "\ud800" * 12)  # type: ignore[arg-type]
    assert err.value.code == "validation_failed"


def test_a_wrong_passphrase_is_refused(made: tuple[bytes, dict[str, str], object]) -> None:
    with pytest.raises(BundleError) as err:
        open_join_bundle(made[0], PASS + "!")
    assert err.value.code == "wrong_passphrase"


@pytest.mark.parametrize("field", ["node_toml", "ca_certificate_pem", "node_id",
                                   "genesis_hash", "api_endpoint"])
def test_a_changed_field_is_refused(made: tuple[bytes, dict[str, str], object],
                                    field: str) -> None:
    doc = json.loads(made[0])
    value = doc[field]
    i = len(value) // 2  # one character changed, in the middle
    doc[field] = value[:i] + ("a" if value[i] != "a" else "b") + value[i + 1:]
    assert json.dumps(doc).encode() != made[0]
    with pytest.raises(BundleError) as err:
        open_join_bundle(json.dumps(doc).encode(), PASS)
    assert err.value.code == "bundle_tampered"


def test_a_swapped_ciphertext_is_refused(net: LocalNetwork,
                                         made: tuple[bytes, dict[str, str], object]) -> None:
    header, key = _header(net)
    second = json.loads(make_join_bundle(header, key, PASS))  # type: ignore[arg-type]
    doc = json.loads(made[0])
    doc["key"] = second["key"]  # another bundle's sealed key, with its own salt and check
    with pytest.raises(BundleError) as err:
        open_join_bundle(json.dumps(doc).encode(), PASS)
    assert err.value.code == "bundle_tampered"


def test_a_genesis_other_than_the_named_one_is_refused(
        net: LocalNetwork, other_genesis: bytes,
        made: tuple[bytes, dict[str, str], object]) -> None:
    header, key = _header(net)
    header["genesis"] = base64.b64encode(other_genesis).decode()  # sealed as made
    data = make_join_bundle(header, key, PASS)  # type: ignore[arg-type]
    with pytest.raises(BundleError) as err:
        open_join_bundle(data, PASS)
    assert err.value.code == "genesis_mismatch"
    with pytest.raises(BundleError) as err:  # the caller expects another chain
        open_join_bundle(made[0], PASS, expected_genesis_hash="ab" * 32)
    assert err.value.code == "genesis_mismatch"


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"format": "other"}',
                                  b'{"format": "consortia-join-bundle", "version": 2}',
                                  b'{"format": "consortia-join-bundle", "version": 1}'])
def test_what_is_not_a_bundle_is_refused(data: bytes) -> None:
    with pytest.raises(BundleError) as err:
        open_join_bundle(data, PASS)
    assert err.value.code == "bundle_invalid"
