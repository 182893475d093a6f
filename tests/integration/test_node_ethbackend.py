"""The node's Ethereum JSON-RPC adapter (``NodeEthBackend``) over a real quorum chain,
driven by web3.py (HTTP and WebSocket) and ethers.js.

Everything is real: a ``QuorumChain`` over a ``LedgerStore`` in a temp dir (py-evm
engine, solo consensus), admission by ``admit_eth`` and a ``LanePool``, the
``RpcServer`` routes in a FastAPI app served by uvicorn on a loopback port. The only
stand-in of the ``in-process`` variant is the block production: ``submit`` admits the
transaction and at once prepares and commits a block holding the pool's ready
transactions, then publishes the height on the ``HeadFeed``. The ``node-process`` variant
runs the same tests against a real quorum validator process (``python -m consortia.node``:
its pool, batching timer, solo ordering and the RPC at ``/rpc`` on its API port).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_utils.crypto import keccak
from fastapi import FastAPI
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.providers import WebSocketProvider

from consortia.ledger.store import LedgerStore
from consortia.node.ethbackend import NodeEthBackend
from consortia.node.ethrpc import RpcServer
from consortia.types.config import BlockLimits
from tests.control_helpers import require_node
from tests.integration.helpers import NodeProcess, free_port
from tests.integration.test_ethrpc_clients import ethers_dir  # noqa: F401  (the fixture)
from tests.quorum_helpers import quorum_network
from tests.quorum_node import QuorumNode
from tests.unit.conftest import World
from tests.unit.evm_helpers import ADDR, CHAIN_ID, KEYS, TOKEN
from tests.unit.test_quorum_chain import quorum_world

pytestmark = pytest.mark.integration
JS_DIR = Path(__file__).resolve().parents[1] / "js"
PING_TOPIC = keccak(b"Ping(uint256)")
TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")
A0, A1, A2 = (Web3.to_checksum_address(a) for a in ADDR[:3])
"""A0 (org1) and A1 (org2) are bound and funded; A2 is funded but bound to no organization."""


@dataclass
class Served:
    http: str
    ws: str
    store: LedgerStore
    """The node's ledger (read here; written by the node)."""
    pool_size: Callable[[], int]


@pytest.fixture(scope="module")
def qworld() -> World:
    return quorum_world()


def _in_process(tmp_path: Path, qworld: World) -> Iterator[Served]:
    node = QuorumNode(tmp_path / "ledger.db", qworld)
    backend = NodeEthBackend(node.view, submit=node.submit, heads=node.heads,
                             pending=node.pending)
    app = FastAPI()
    app.router.routes.extend(RpcServer(backend).routes())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="ethbackend-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", node.store,
                     lambda: len(node.pool))
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        node.store.close()


def _node_process(tmp_path: Path) -> Iterator[Served]:
    """A real quorum validator process (solo) with the bindings of ``quorum_world``."""
    net = quorum_network(tmp_path / "net", bindings={0: "org1", 1: "org2"}, funded=3,
                         balance=10**21, port=free_port(),
                         limits=BlockLimits(batch_timeout_ms=50))
    (tmp_path / "logs").mkdir()
    proc = NodeProcess(net, tmp_path / "logs", "validator0").start()
    store = LedgerStore(proc.ledger)
    api = net.node().api

    def pool_size() -> int:
        return int(httpx.get(f"{api}/v1/chain", timeout=10).json()["pool"]["transactions"])

    try:
        yield Served(f"{api}/rpc", api.replace("http://", "ws://") + "/rpc", store, pool_size)
    finally:
        store.close()
        proc.close()


@pytest.fixture(params=["in-process", "node-process"])
def served(request: pytest.FixtureRequest, tmp_path: Path, qworld: World) -> Iterator[Served]:
    """The adapter over an in-process chain that commits at once, and the real node."""
    if request.param == "in-process":
        yield from _in_process(tmp_path, qworld)
    else:
        yield from _node_process(tmp_path)


def http3(served: Served) -> Web3:
    return Web3(Web3.HTTPProvider(served.http, request_kwargs={"timeout": 30}))


def send(w3: Web3, key: int, tx: dict[str, Any]) -> bytes:
    """Sign ``tx`` with KEYS[key] (nonce, chain id and zero fees filled in) and send it."""
    sender = KEYS[key].address
    full = {"chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(sender, "pending"),
            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, **tx}
    if "gas" not in full:
        full["gas"] = w3.eth.estimate_gas({"from": sender, **tx})
    if "gasPrice" in full:
        del full["maxFeePerGas"], full["maxPriorityFeePerGas"]
    return bytes(w3.eth.send_raw_transaction(KEYS[key].sign_transaction(full).raw_transaction))


def deploy_token(w3: Web3) -> Any:
    factory = w3.eth.contract(abi=TOKEN["abi"], bytecode=TOKEN["bytecode"])
    data = factory.constructor("Token", "TOK", 10**24).data_in_transaction
    receipt = w3.eth.wait_for_transaction_receipt(send(w3, 0, {"data": data}), timeout=30)
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=TOKEN["abi"])


def test_token_over_http(served: Served) -> None:
    w3 = http3(served)
    assert w3.eth.chain_id == CHAIN_ID and w3.eth.block_number == 0
    assert w3.eth.gas_price == 0 and w3.eth.max_priority_fee == 0
    assert w3.eth.syncing is False
    token = deploy_token(w3)
    assert w3.eth.get_code(token.address) != b""
    assert token.functions.balanceOf(A0).call() == 10**24
    tx_hash = send(w3, 0, {"to": token.address,
                           "data": token.encode_abi("transfer", [A1, 500])})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1 and receipt["blockNumber"] == 2
    assert receipt["effectiveGasPrice"] == 0 and receipt["gasUsed"] > 21_000
    assert token.functions.balanceOf(A1).call() == 500
    # eth_call at an older block sees the state after that block
    assert token.functions.balanceOf(A1).call(block_identifier=1) == 0
    assert token.functions.balanceOf(A0).call(block_identifier=1) == 10**24

    # one block hash everywhere: by number, by hash, receipt, log, and the stored header
    block = w3.eth.get_block(2, full_transactions=True)
    assert block["hash"] == receipt["blockHash"] == receipt["logs"][0]["blockHash"]
    assert w3.eth.get_block(block["hash"])["number"] == 2
    assert block["transactions"][0]["hash"] == tx_hash
    assert block["transactions"][0]["blockHash"] == block["hash"]
    stored_hash, header_rlp = served.store.eth_block(2)  # type: ignore[misc]
    assert bytes(block["hash"]) == stored_hash == keccak(header_rlp)
    assert bytes(w3.eth.get_block(1)["hash"]) == bytes(block["parentHash"])
    assert token.functions.balanceOf(A1).call(block_identifier=block["hash"]) == 500
    fetched = w3.eth.get_transaction(tx_hash)
    assert fetched["blockNumber"] == 2 and fetched["from"] == A0 and fetched["type"] == 2

    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": token.address,
                            "topics": [TRANSFER_TOPIC]})
    assert [(g["blockNumber"], g["blockHash"]) for g in logs] == [
        (1, w3.eth.get_block(1)["hash"]), (2, block["hash"])]
    to_a1 = w3.eth.get_logs({"fromBlock": 0, "address": token.address,
                             "topics": [TRANSFER_TOPIC, None, "0x" + bytes(12).hex()
                                        + ADDR[1].hex()]})
    assert [g["transactionHash"] for g in to_a1] == [tx_hash]

    # overdraft: eth_call and eth_estimateGas revert with the reason; as a transaction it
    # is included with status 0 and changes no balance
    overdraft = token.functions.transfer(A0, 501)
    with pytest.raises(ContractLogicError) as info:
        overdraft.call({"from": A1})
    assert info.value.message == "execution reverted: ERC20: transfer amount exceeds balance"
    assert info.value.data is not None and info.value.data.startswith("0x08c379a0")
    with pytest.raises(ContractLogicError, match="exceeds balance"):
        overdraft.estimate_gas({"from": A1})
    failed = w3.eth.wait_for_transaction_receipt(send(w3, 1, {
        "to": token.address, "gas": 100_000,
        "data": token.encode_abi("transfer", [A0, 501])}), timeout=30)
    assert failed["status"] == 0 and failed["logs"] == []
    assert token.functions.balanceOf(A1).call() == 500
    assert w3.eth.get_transaction_count(A1) == 1
    # a legacy transaction (gasPrice 0) and an EIP-2930 one are admitted too
    legacy = send(w3, 1, {"to": A0, "value": 3, "gas": 21_000, "gasPrice": 0})
    assert w3.eth.get_transaction(legacy)["type"] == 0
    typed1 = send(w3, 1, {"to": A0, "value": 4, "gas": 30_000, "gasPrice": 0, "type": 1,
                          "accessList": [{"address": token.address, "storageKeys": []}]})
    assert w3.eth.get_transaction(typed1)["accessList"][0]["address"] == token.address
    # polled filters see the next block and its logs
    block_filter = w3.eth.filter("latest")
    log_filter = w3.eth.filter({"address": token.address, "topics": [TRANSFER_TOPIC]})
    moved = send(w3, 0, {"to": token.address, "data": token.encode_abi("transfer", [A1, 1])})
    w3.eth.wait_for_transaction_receipt(moved, timeout=30)
    latest = w3.eth.get_block("latest")
    assert block_filter.get_new_entries() == [latest["hash"]]
    assert [g["transactionHash"] for g in log_filter.get_new_entries()] == [moved]
    assert block_filter.get_new_entries() == [] and log_filter.get_new_entries() == []


def test_invalid_transactions_change_nothing(served: Served) -> None:
    w3 = http3(served)
    w3.eth.wait_for_transaction_receipt(send(w3, 0, {"to": A1, "value": 1, "gas": 21_000}),
                                        timeout=30)
    head, balance = w3.eth.block_number, w3.eth.get_balance(A0)

    def raw(key: int = 0, **tx: Any) -> bytes:
        base = {"chainId": CHAIN_ID, "nonce": 1, "to": A1, "value": 1, "gas": 21_000,
                "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}
        return bytes(KEYS[key].sign_transaction({**base, **tx}).raw_transaction)

    good = raw()
    bad_signature = bytearray(good)
    bad_signature[-40] ^= 0xFF  # a byte of s: the signature no longer recovers A0
    cases = [
        (bytes(bad_signature), "invalid sender|transaction not permitted"),
        (raw(chainId=1), "invalid chain id for signer"),
        (raw(nonce=0), "nonce too low"),
        (raw(gas=30_000_001), "exceeds block gas limit"),
        (raw(gas=20_000), "intrinsic gas too low"),
        (raw(2, nonce=0), "transaction not permitted"),  # A2: funded, bound to no org
        (b"\x02\xc0", "invalid transaction"),
        (b"\x05\xc0", "transaction type not supported"),
    ]
    for bad, message in cases:
        with pytest.raises(Web3RPCError, match=message) as info:
            w3.eth.send_raw_transaction(bad)
        assert info.value.rpc_response["error"]["code"] == -32000
    assert w3.eth.block_number == head and w3.eth.get_balance(A0) == balance
    assert served.pool_size() == 0 and w3.eth.get_transaction_count(A0, "pending") == 1

    # a nonce gap waits in the pool, visible as a pending transaction; the same nonce
    # again is "already known" (identical) or "replacement transaction underpriced"
    ahead = raw(nonce=2)
    ahead_hash = w3.eth.send_raw_transaction(ahead)
    pending = w3.eth.get_transaction(ahead_hash)
    assert pending["blockNumber"] is None and pending["nonce"] == 2
    with pytest.raises(TransactionNotFound):  # no receipt before it is committed
        w3.eth.get_transaction_receipt(ahead_hash)
    with pytest.raises(Web3RPCError, match="already known"):
        w3.eth.send_raw_transaction(ahead)
    with pytest.raises(Web3RPCError, match="replacement transaction underpriced"):
        w3.eth.send_raw_transaction(raw(nonce=2, value=2))
    with pytest.raises(Web3RPCError, match="nonce too high"):
        w3.eth.send_raw_transaction(raw(nonce=500))
    assert w3.eth.block_number == head
    w3.eth.send_raw_transaction(good)  # fills the gap: both are committed
    receipt = w3.eth.wait_for_transaction_receipt(ahead_hash, timeout=30)
    assert receipt["blockNumber"] == head + 1
    assert w3.eth.get_transaction_count(A0) == 3
    with pytest.raises(Web3RPCError, match="header not found"):
        w3.eth.get_balance(A0, head + 5)


def test_subscriptions_over_websocket(served: Served) -> None:
    token = deploy_token(http3(served))
    transfer = bytes.fromhex(token.encode_abi("transfer", [A1, 7])[2:])

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with AsyncWeb3(WebSocketProvider(served.ws)) as w3:
            heads_id = await w3.eth.subscribe("newHeads")
            logs_id = await w3.eth.subscribe("logs", {"address": token.address,
                                                      "topics": [TRANSFER_TOPIC]})
            for nonce in (1, 2, 3):
                signed = KEYS[0].sign_transaction({
                    "chainId": CHAIN_ID, "nonce": nonce, "to": token.address, "gas": 100_000,
                    "data": transfer, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0})
                await w3.eth.send_raw_transaction(signed.raw_transaction)
            await w3.eth.send_raw_transaction(KEYS[1].sign_transaction({  # no token log
                "chainId": CHAIN_ID, "nonce": 0, "to": A0, "gas": 21_000, "value": 1,
                "gasPrice": 0}).raw_transaction)
            heads: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []
            async for message in w3.socket.process_subscriptions():
                (heads if message["subscription"] == heads_id else logs).append(
                    message["result"])
                # (the node process may put several of them in one block)
                if len(logs) == 3 and heads and \
                        {g["blockNumber"] for g in logs} <= {h["number"] for h in heads} and \
                        await w3.eth.get_transaction_count(A1) == 1 and \
                        heads[-1]["number"] == await w3.eth.block_number:
                    break
            assert await w3.eth.unsubscribe(heads_id) and await w3.eth.unsubscribe(logs_id)
            return heads, logs

    heads, logs = asyncio.run(asyncio.wait_for(scenario(), 60))
    numbers = [h["number"] for h in heads]
    assert numbers == list(range(2, 2 + len(heads)))  # every block, in order, none skipped
    for head in heads:
        assert bytes(head["hash"]) == served.store.eth_block(head["number"])[0]  # type: ignore[index]
    by_number = {h["number"]: h["hash"] for h in heads}
    assert [g["blockNumber"] for g in logs] == sorted(g["blockNumber"] for g in logs)
    assert [g["blockHash"] for g in logs] == [by_number[g["blockNumber"]] for g in logs]
    assert all(g["topics"][2] == bytes(12) + ADDR[1] for g in logs)


def _contract(runtime: bytes) -> bytes:
    """Init code that deploys ``runtime`` (at most 245 bytes) as is."""
    n = len(runtime)
    return bytes([0x60, n, 0x60, 10, 0x5F, 0x39, 0x60, n, 0x5F, 0xF3]) + runtime


EMITTER_CODE = _contract(  # LOG2(calldata, Ping, callvalue)
    bytes([0x36, 0x5F, 0x5F, 0x37, 0x34, 0x7F]) + PING_TOPIC + bytes([0x36, 0x5F, 0xA2, 0x00]))
_NOT_ALLOWED = (bytes.fromhex("08c379a0") + (32).to_bytes(32, "big") + (11).to_bytes(32, "big")
                + b"not allowed".ljust(32, b"\x00"))
REVERTER_CODE = _contract(  # revert(Error("not allowed"))
    bytes([0x60, len(_NOT_ALLOWED), 0x60, 10, 0x5F, 0x39, 0x60, len(_NOT_ALLOWED), 0x5F, 0xFD])
    + _NOT_ALLOWED)


def test_ethers_js(served: Served, ethers_dir: Path) -> None:  # noqa: F811
    w3 = http3(served)
    emitter = w3.eth.wait_for_transaction_receipt(
        send(w3, 0, {"data": EMITTER_CODE}), timeout=30)["contractAddress"]
    reverter = w3.eth.wait_for_transaction_receipt(
        send(w3, 0, {"data": REVERTER_CODE, "gas": 200_000}), timeout=30)["contractAddress"]
    w3.eth.wait_for_transaction_receipt(send(w3, 0, {"to": emitter, "value": 1,
                                                     "data": "0x01"}), timeout=30)
    proc = subprocess.run(
        [require_node(), "ethers_client.mjs", served.http, served.ws,
         "0x" + KEYS[0].key.hex().removeprefix("0x"), emitter, reverter,
         "0x" + PING_TOPIC.hex()],
        cwd=ethers_dir, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    store = served.store
    assert seen["chainId"] == str(CHAIN_ID) and seen["blockNumber"] == 3
    assert seen["latest"]["hash"] == "0x" + store.eth_block(3)[0].hex()  # type: ignore[index]
    assert seen["latest"]["parentHash"] == "0x" + store.eth_block(2)[0].hex()  # type: ignore[index]
    assert seen["genesisHash"] == "0x" + store.eth_block(0)[0].hex()  # type: ignore[index]
    assert [entry["block"] for entry in seen["logs"]] == [3]
    assert seen["sent"]["status"] == 1 and seen["sent"]["logs"] == 1
    assert seen["fetched"]["data"] == "0x1234" and seen["fetched"]["value"] == "5"
    assert seen["revert"] == {"code": "CALL_EXCEPTION", "reason": "not allowed"}
    assert seen["stale"] == {"code": "NONCE_EXPIRED"}
    assert seen["subscriptions"]["log"]["data"] == "0xbeef"
