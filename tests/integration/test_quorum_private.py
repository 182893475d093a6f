"""Private transactions on a real quorum network (ADR 0027), driven by web3.py.

Three organizations, each with its own transaction manager process (``python -m
consortia.privacy serve``, mutual TLS with certificates of the network's organization CAs)
and its own node: org1's validator, org2's and org3's peers, each node configured with its
member's manager. org1's account deploys an ERC-20 privately for org2 and transfers in it
privately: org1 and org2 see the contract, its state, its logs and the payload; org3's node
holds the same public chain — the marker transactions carrying only a 64-byte hash — and
sees no code, no state, no payload. Nothing is faked.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from web3 import Web3
from web3.exceptions import Web3RPCError

from consortia.sdk import LocalNetwork
from consortia.types.config import BlockLimits
from tests.integration.helpers import free_port_block, healthy, subprocess_env, wait_until
from tests.integration.test_privacy_tm import Member, write_directory
from tests.quorum_helpers import ADDR, CHAIN_ID, KEYS, quorum_network
from tests.unit.evm_helpers import selector, token_code

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BALANCE_OF = selector("balanceOf(address)")
TRANSFER = selector("transfer(address,uint256)")


class PrivateNetwork:
    def __init__(self, root: Path) -> None:
        base = free_port_block(9)
        self.net: LocalNetwork = quorum_network(
            root / "net", orgs=["org1", "org2", "org3"], port=base,
            bindings={0: "org1", 1: "org2", 2: "org3"}, funded=3,
            limits=BlockLimits(batch_timeout_ms=50))
        self.net.add_peer("peer2", "org2", api_port=base + 1)
        self.net.add_peer("peer3", "org3", api_port=base + 2)
        tm_root = root / "tms"
        tm_root.mkdir()
        self.members = [Member(tm_root, f"org{i + 1}", base + 3 + i, base + 6 + i,
                               ca=self.net.ca(f"org{i + 1}")) for i in range(3)]
        write_directory(tm_root / "directory.json", self.members)
        for m in self.members:
            m.write_config(self.members)
        self.nodes = {"org1": "validator0", "org2": "peer2", "org3": "peer3"}
        for org, node_id in self.nodes.items():
            member = self.members[int(org[-1]) - 1]
            path = self.net.node(node_id).config
            doc = tomllib.loads(path.read_text())
            doc["privacy"] = {"url": member.url, "token_file": str(member.dir / "token")}
            path.write_text(tomli_w.dumps(doc))
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for m in self.members:
            m.start()
        for node_id in self.nodes.values():
            node = self.net.node(node_id)
            log = (self.root / f"{node_id}.log").open("ab")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "consortia.node", "--config", str(node.config)],
                stdout=log, stderr=subprocess.STDOUT, env=subprocess_env()))
            wait_until(lambda node=node: healthy(node.api), 60, f"{node_id} to answer")

    def w3(self, org: str) -> Web3:
        api = self.net.node(self.nodes[org]).api
        return Web3(Web3.HTTPProvider(f"{api}/rpc", request_kwargs={"timeout": 30}))

    def key(self, org: str) -> str:
        return base64.b64encode(self.members[int(org[-1]) - 1].pub).decode()

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=15)
        for m in self.members:
            m.stop()


@pytest.fixture
def private_net(tmp_path: Path) -> Iterator[PrivateNetwork]:
    n = PrivateNetwork(tmp_path)
    try:
        n.start()
        yield n
    finally:
        n.close()


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in response:
        raise Web3RPCError(str(response["error"]))
    return response["result"]


def send_private(w3: Web3, payload: bytes, to: str | None, private_for: list[str],
                 nonce: int) -> bytes:
    """What any client does: store the payload, sign a transaction naming its hash, send."""
    payload_hash = bytes.fromhex(rpc(w3, "consortia_storeRaw", "0x" + payload.hex())[2:])
    assert len(payload_hash) == 64
    tx: dict[str, Any] = {"chainId": CHAIN_ID, "nonce": nonce, "gas": 3_000_000,
                          "data": payload_hash, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}
    if to is not None:
        tx["to"] = to
    raw = KEYS[0].sign_transaction(tx).raw_transaction
    tx_hash = rpc(w3, "eth_sendRawPrivateTransaction", "0x" + bytes(raw).hex(),
                  {"privateFor": private_for})
    return bytes.fromhex(tx_hash[2:])


def balance_of(w3: Web3, token: str, who: bytes) -> int | None:
    out = w3.eth.call({"to": token, "data": BALANCE_OF + abi_encode(["address"], [who])})
    return None if not out else int(abi_decode(["uint256"], out)[0])


def test_only_participants_see_a_private_contract(private_net: PrivateNetwork) -> None:
    w1, w2, w3 = (private_net.w3(org) for org in ("org1", "org2", "org3"))
    code = token_code()
    tx_hash = send_private(w1, code, None, [private_net.key("org2")], nonce=0)
    receipt = w1.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt["status"] == 1 and receipt["contractAddress"] is not None
    token = receipt["contractAddress"]
    height = receipt["blockNumber"]
    for w in (w2, w3):
        wait_until(lambda w=w: w.eth.block_number >= height, 60, "the peers to follow")

    # The public chain (on every node alike) carries the marker: the payload's hash only.
    for w in (w1, w2, w3):
        public = w.eth.get_transaction(tx_hash)
        assert len(bytes(public["input"])) == 64 and bytes(public["input"]) != code[:64]
        assert w.eth.get_block(height)["hash"] == w1.eth.get_block(height)["hash"]
    payload_hash = "0x" + bytes(w1.eth.get_transaction(tx_hash)["input"]).hex()

    # Participants: the private receipt, the code, the state, the payload.
    assert w2.eth.get_transaction_receipt(tx_hash)["contractAddress"] == token
    for w in (w1, w2):
        assert w.eth.get_code(token) != b""
        assert balance_of(w, token, ADDR[0]) == 10**24
        assert rpc(w, "eth_getQuorumPayload", payload_hash) == "0x" + code.hex()
    # The third member: a public receipt without contract, no code, no state, no payload.
    outsider = w3.eth.get_transaction_receipt(tx_hash)
    assert outsider["status"] == 1 and outsider["contractAddress"] is None
    assert outsider["logs"] == []
    assert w3.eth.get_code(token) == b""
    assert balance_of(w3, token, ADDR[0]) is None
    assert rpc(w3, "eth_getQuorumPayload", payload_hash) == "0x"

    # A private transfer in that contract: org2 sees the balances and the log, org3 not.
    transfer = TRANSFER + abi_encode(["address", "uint256"], [ADDR[1], 250])
    moved = send_private(w1, transfer, token, [private_net.key("org2")], nonce=1)
    done = w1.eth.wait_for_transaction_receipt(moved, timeout=60)
    assert done["status"] == 1 and len(done["logs"]) == 1
    wait_until(lambda: w2.eth.block_number >= done["blockNumber"]
               and w3.eth.block_number >= done["blockNumber"], 60, "the peers to follow")
    assert balance_of(w2, token, ADDR[1]) == 250
    assert len(w2.eth.get_transaction_receipt(moved)["logs"]) == 1
    assert w3.eth.get_transaction_receipt(moved)["logs"] == []
    assert balance_of(w3, token, ADDR[1]) is None
    # Public nonces moved with the markers; the public state holds no contract.
    assert w3.eth.get_transaction_count(KEYS[0].address) == 2


def test_a_private_send_that_cannot_be_delivered_puts_nothing_on_chain(
        private_net: PrivateNetwork) -> None:
    w1 = private_net.w3("org1")
    head = w1.eth.block_number
    private_net.members[2].stop()  # org3's manager is down
    with pytest.raises(Web3RPCError, match="unreachable"):
        send_private(w1, token_code(), None, [private_net.key("org3")], nonce=0)
    with pytest.raises(Web3RPCError, match="privateFor"):
        rpc(w1, "eth_sendRawPrivateTransaction", "0x02", {"privateFor": ["not base64!"]})
    # A transaction whose data names no stored payload is refused before any delivery.
    raw = KEYS[0].sign_transaction({"chainId": CHAIN_ID, "nonce": 0, "gas": 100_000,
                                    "data": b"\x01" * 64, "maxFeePerGas": 0,
                                    "maxPriorityFeePerGas": 0}).raw_transaction
    with pytest.raises(Web3RPCError, match="no payload"):
        rpc(w1, "eth_sendRawPrivateTransaction", "0x" + bytes(raw).hex(),
            {"privateFor": [private_net.key("org2")]})
    assert w1.eth.block_number == head
    assert w1.eth.get_transaction_count(KEYS[0].address) == 0
