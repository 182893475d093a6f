"""A developer's private transaction, end to end, with nothing assembled by hand.

``consortia dev init --profile quorum`` makes three organizations, a raft validator each
and a transaction manager each; ``LocalNetwork.start`` runs the managers and then the
nodes as real processes; ``consortia contract deploy --private-for <org2's key>`` deploys
an ERC-20 from org1's bound account and ``consortia contract send --private-for`` moves
tokens in it. web3.py then reads each organization's node: org1's and org2's show the
code, the balances and the logs; org3's node has the same public chain and sees no code
and no state. Nothing is faked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from web3 import Web3

from consortia.sdk import LocalNetwork, evm
from tests.evm_helpers import EXAMPLES
from tests.integration.helpers import (
    cli_command,
    describe,
    free_port_block,
    run_cli,
    subprocess_env,
    wait_until,
)
from tests.unit.evm_helpers import selector

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BALANCE_OF = selector("balanceOf(address)")
NODES = {"org1": "validator0", "org2": "validator1", "org3": "validator2"}


@dataclass
class DevNet:
    net: LocalNetwork
    artifact: Path
    init_out: str

    def w3(self, org: str) -> Web3:
        return Web3(Web3.HTTPProvider(self.net.rpc_url(NODES[org]),
                                      request_kwargs={"timeout": 30}))

    def contract(self, *args: str, org: str = "org1") -> subprocess.CompletedProcess[str]:
        """``consortia contract ARGS`` signed by ``org``'s first account, at its node."""
        account = self.net.accounts(org)[0]
        extra = ["--rpc", self.net.rpc_url(NODES[org]), "--key", str(account.key_file),
                 "--password-file", str(self.net.org_dir(org) / "account-password")]
        cmd = [*cli_command(), "contract", *args[:1], *extra, *args[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False,
                              env=subprocess_env())

    def ok(self, *args: str, org: str = "org1") -> Any:
        proc = self.contract(*args, "--json", org=org)
        assert proc.returncode == 0, describe(proc)
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def devnet(evm_tools: evm.Tools, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DevNet]:
    root = tmp_path_factory.mktemp("qprivate")
    base = free_port_block(12)  # 3 APIs, 3 p2p, 3 managers x (local, peer)
    proc = run_cli("dev", "init", "--profile", "quorum", "--org", "org1", "--org", "org2",
                   "--org", "org3", "--validators", "3", "--port", base,
                   "--p2p-port", base + 3, "--tm-port", base + 6, "--batch-timeout-ms", "50",
                   network=root / "net", timeout=120)
    assert proc.returncode == 0, describe(proc)
    net = LocalNetwork.open(root / "net")
    compiled = run_cli("contract", "compile", EXAMPLES / "Token.sol", "--out", root / "build",
                       "--json", timeout=300)
    assert compiled.returncode == 0, describe(compiled)
    try:
        net.start()
        yield DevNet(net, root / "build" / "Token.json", proc.stdout)
    finally:
        net.stop()


def balance_of(w3: Web3, token: str, who: str) -> int | None:
    raw = bytes.fromhex(who[2:])
    out = w3.eth.call({"to": Web3.to_checksum_address(token),
                       "data": BALANCE_OF + abi_encode(["address"], [raw])})
    return None if not out else int(abi_decode(["uint256"], out)[0])


def caught_up(d: DevNet, height: int) -> None:
    for org in NODES:
        w = d.w3(org)
        wait_until(lambda w=w: w.eth.block_number >= height, 60, f"{org}'s node to follow")


def test_dev_init_lists_every_managers_key_and_start_runs_them(devnet: DevNet) -> None:
    net = devnet.net
    keys = {org: net.privacy_key(org) for org in NODES}
    assert len(set(keys.values())) == 3
    flat = " ".join(devnet.init_out.split())
    for org, key in keys.items():
        assert key in flat, f"dev init does not list {org}'s key"
        assert net.tm_url(org).startswith("http://127.0.0.1:")
    running = {s.id: s for s in net.status()}
    assert [s.kind for s in net.status()][:3] == ["manager"] * 3
    for name in ("tm-org1", "tm-org2", "tm-org3", *NODES.values()):
        assert running[name].pid is not None and running[name].healthy, running[name]


def test_a_private_contract_is_seen_by_its_participants_only(devnet: DevNet) -> None:
    net = devnet.net
    w1, w2, w3 = (devnet.w3(org) for org in NODES)
    owner = net.accounts("org1")[0].address
    to = net.accounts("org2")[0].address
    nonce = w1.eth.get_transaction_count(owner)

    deployed = devnet.ok("deploy", str(devnet.artifact), "Private Token", "PRV", "1000",
                         "--private-for", net.privacy_key("org2"))
    assert deployed["status"] == 1 and deployed["contract_address"], deployed
    (log,) = deployed["logs"]  # the private receipt carries the constructor's event
    assert log["event"] == "Transfer" and log["args"]["value"] == 1000
    token = deployed["contract_address"]
    caught_up(devnet, deployed["block_number"])

    # The public chain, alike on every node, carries the payload's 64-byte hash only.
    for w in (w1, w2, w3):
        public = w.eth.get_transaction(deployed["tx_hash"])
        assert len(bytes(public["input"])) == 64
    for w in (w1, w2):
        assert w.eth.get_code(Web3.to_checksum_address(token)) != b""
        assert balance_of(w, token, owner) == 1000
    assert w3.eth.get_code(Web3.to_checksum_address(token)) == b""
    assert balance_of(w3, token, owner) is None
    outsider = w3.eth.get_transaction_receipt(deployed["tx_hash"])
    assert outsider["contractAddress"] is None and outsider["logs"] == []

    sent = devnet.ok("send", token, "transfer", to, "250", "--abi", str(devnet.artifact),
                     "--private-for", net.privacy_key("org2"))
    assert sent["status"] == 1
    (moved,) = sent["logs"]
    assert moved["event"] == "Transfer" and moved["args"]["value"] == 250
    caught_up(devnet, sent["block_number"])
    for w in (w1, w2):
        assert balance_of(w, token, to) == 250 and balance_of(w, token, owner) == 750
    assert balance_of(w3, token, to) is None
    assert w3.eth.get_transaction_receipt(sent["tx_hash"])["logs"] == []
    # the markers consumed org1's public nonces on every node
    assert w3.eth.get_transaction_count(owner) == nonce + 2


def test_a_bad_private_for_key_sends_nothing(devnet: DevNet) -> None:
    net = devnet.net
    w1 = devnet.w3("org1")
    owner = net.accounts("org1")[0].address
    nonce = w1.eth.get_transaction_count(owner)
    proc = devnet.contract("deploy", str(devnet.artifact), "T", "T", "1",
                           "--private-for", "not-a-key")
    assert proc.returncode == 1, describe(proc)
    assert "bad_private_for" in proc.stdout + proc.stderr
    # a well-formed key that no manager holds: the node cannot deliver, nothing goes on chain
    nobody = "A" * 43 + "="
    proc = devnet.contract("deploy", str(devnet.artifact), "T", "T", "1",
                           "--private-for", nobody)
    assert proc.returncode == 1, describe(proc)
    assert "unknown_recipient" in proc.stdout + proc.stderr
    assert w1.eth.get_transaction_count(owner) == nonce
