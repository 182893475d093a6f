"""The ``consortia`` command end to end, as a subprocess, against a running node.

The network directory is given by ``CONSORTIA_NETWORK`` or ``-N``; every command
reaches the node over HTTP, and ``consortia verify`` needs only the genesis file.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from consortia.sdk import LocalNetwork, load_genesis, verify_proof
from consortia.types.config import BlockLimits
from tests.integration.helpers import describe, run_cli

pytestmark = pytest.mark.integration

CHAIN = "clitest"


@pytest.fixture(scope="module")
def net(module_farm) -> LocalNetwork:
    return module_farm.network("cli", chain_id=CHAIN, orgs=["org1", "org2"],
                               limits=BlockLimits(batch_timeout_ms=50))



def ok(proc) -> str:
    assert proc.returncode == 0, describe(proc)
    return proc.stdout


def json_out(proc) -> dict:
    return json.loads(ok(proc))


def _notarize(net: LocalNetwork, tmp_path: Path, name: str, content: bytes,
              *extra: str) -> Path:
    doc = tmp_path / name
    doc.write_bytes(content)
    proof = tmp_path / f"{name}.proof.json"
    out = ok(run_cli("notary", "file", doc, "--proof-out", proof, *extra, network=net.root,
                     cwd=tmp_path))
    assert "committed" in out
    assert proof.exists()
    return proof


def test_notary_file_then_verify_offline(node, net, tmp_path):
    proof = _notarize(net, tmp_path, "contract.pdf", b"%PDF-1.7 pretend contract\n" * 100)

    out = ok(run_cli("verify", proof, "--genesis", net.genesis_path, cwd=tmp_path))
    assert "VALID" in out and "INVALID" not in out
    v = json_out(run_cli("verify", proof, "--genesis", net.genesis_path, "--json"))
    assert v["valid"] is True
    assert v["chain_id"] == CHAIN
    assert v["signer"] == "org1/alice"
    assert v["type"] == "notary_hash"
    # The SDK agrees with the command.
    sdk = verify_proof(proof.read_bytes(), load_genesis(net.genesis_path))
    assert sdk.tx_id.hex() == v["tx_id"] and sdk.height == v["height"]

    # The same proof with one byte changed: exit 1, INVALID with a reason.
    data = bytearray(proof.read_bytes())
    doc = json.loads(data)
    pos = data.index(doc["tx_id"].encode()) + 5            # a hex digit inside tx_id
    data[pos] = ord("0") if data[pos] != ord("0") else ord("1")
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    bad = run_cli("verify", tampered, "--genesis", net.genesis_path)
    assert bad.returncode == 1, describe(bad)
    assert "INVALID" in bad.stderr, describe(bad)
    bad_json = run_cli("verify", tampered, "--genesis", net.genesis_path, "--json")
    assert bad_json.returncode == 1, describe(bad_json)
    assert json.loads(bad_json.stdout)["valid"] is False

    # A byte changed anywhere else (here: in the block header) is refused too.
    data = bytearray(proof.read_bytes())
    pos = data.index(doc["block_header"].encode()) + 40
    data[pos] = ord("a") if data[pos] != ord("a") else ord("b")
    tampered.write_bytes(bytes(data))
    assert run_cli("verify", tampered, "--genesis", net.genesis_path).returncode == 1


def test_notary_put_and_get(node, net, tmp_path):
    put = json_out(run_cli("notary", "put", "-b", "order-7", "--text", "hi", "--json",
                           network=net.root))
    assert put["status"] == "committed", put
    # Without --json it prints the receipt line.
    out = ok(run_cli("notary", "put", "-b", "order-7", "--text", "again", "-N", net.root))
    assert "committed" in out

    listed = json_out(run_cli("notary", "get", "-b", "order-7", "--json", network=net.root))
    assert [r["business_id"] for r in listed["records"]] == ["order-7", "order-7"]
    assert listed["records"][0]["tx_id"] == put["tx_id"]
    assert listed["records"][0]["type"] == "notary_content"

    tx = json_out(run_cli("notary", "get", put["tx_id"], "--json", network=net.root))
    assert tx["tx_id"] == put["tx_id"]
    assert base64.b64decode(tx["body"]["data_base64"]) == b"hi"
    assert tx["signer"]["org_id"] == "org1" and tx["signer"]["name"] == "alice"
    assert tx["receipt"]["height"] == put["height"]

    missing = run_cli("notary", "get", "00" * 32, network=net.root)
    assert missing.returncode == 1, describe(missing)
    assert "not found" in missing.stderr


def test_notary_put_as_another_identity_and_by_category(node, net):
    put = json_out(run_cli("notary", "put", "-b", "inv-1", "-c", "invoices", "--text", "x",
                           "--as", "org2/alice", "--json", network=net.root))
    assert put["status"] == "committed"
    tx = json_out(run_cli("notary", "get", put["tx_id"], "--json", network=net.root))
    assert tx["signer"]["org_id"] == "org2"
    listed = json_out(run_cli("notary", "get", "-c", "invoices", "--json", network=net.root))
    assert put["tx_id"] in [r["tx_id"] for r in listed["records"]]


def test_chain_info_and_block(node, net):
    ok(run_cli("notary", "put", "-b", "chain-test", "--text", "x", network=net.root))
    info = json_out(run_cli("chain", "info", "--json", network=net.root))
    assert info["chain_id"] == CHAIN
    assert info["genesis_hash"] == net.doc["genesis_hash"]
    assert info["height"] >= 1

    block = json_out(run_cli("chain", "block", "1", "--json", network=net.root))
    assert block["height"] == 1
    assert block["tx_count"] == len(block["transactions"]) >= 1
    by_hash = json_out(run_cli("chain", "block", block["hash"], "--json", network=net.root))
    assert by_hash == block
    latest = json_out(run_cli("chain", "block", "--limit", "2", "--json", network=net.root))
    assert latest["blocks"][0]["height"] == latest["height"]
    # The human-readable forms work too.
    assert CHAIN in ok(run_cli("chain", "info", network=net.root))
    tx_id = block["transactions"][0]["tx_id"]
    assert json_out(run_cli("chain", "tx", tx_id, "--json", network=net.root))["tx_id"] == tx_id


def test_identity_revoke_then_put_fails(node, net, tmp_path):
    ok(run_cli("identity", "new", "org1/bob", network=net.root))
    listed = ok(run_cli("identity", "list", network=net.root))
    assert "org1/bob" in listed
    first = json_out(run_cli("notary", "put", "-b", "bob-1", "--text", "mine", "--as",
                             "org1/bob", "--json", network=net.root))
    assert first["status"] == "committed"

    out = ok(run_cli("identity", "revoke", "org1/bob", network=net.root))
    assert "revoked" in out

    refused = run_cli("notary", "put", "-b", "bob-2", "--text", "denied", "--as", "org1/bob",
                      network=net.root)
    assert refused.returncode == 1, describe(refused)
    assert "revoked" in refused.stderr, describe(refused)

    # Everyone else goes on; a proof made after the revocation (it carries the
    # configuration block) still verifies offline, and so does bob's earlier record.
    proof = _notarize(net, tmp_path, "after-revocation.txt", b"after")
    assert "VALID" in ok(run_cli("verify", proof, "--genesis", net.genesis_path))
    assert json.loads(proof.read_bytes())["config_blocks"]
    # Revoking again publishes a newer CRL and is accepted.
    assert "revoked" in ok(run_cli("identity", "revoke", "org1/bob", network=net.root))


def test_errors_show_the_stable_error_code(node, net):
    """``guard`` prints ``<message> [<code>]``: the code is what scripts and support match
    on, so it must reach the terminal (a refusal from the node here: 400 malformed)."""
    out = run_cli("notary", "get", "zz", network=net.root)
    assert out.returncode == 1, describe(out)
    assert "must be hex" in out.stderr, describe(out)
    assert "[malformed]" in out.stderr, describe(out)


def test_commands_fail_cleanly_without_a_node(tmp_path, net):
    """Pointed at a port where nothing listens, a command exits 1 with a message."""
    out = run_cli("chain", "info", "--node", "http://127.0.0.1:9", network=net.root,
                  timeout=60)
    assert out.returncode == 1, describe(out)
    assert "error" in out.stderr.lower()
    assert "Traceback" not in out.stderr
