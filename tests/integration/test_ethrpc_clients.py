"""Real Ethereum clients against the JSON-RPC server: web3.py (HTTP and WebSocket
providers) and ethers.js v6 (run by Node.js) — the wire format is what they accept.

The server is the real one (``RpcServer`` routes inside a FastAPI app, as in the node,
served by uvicorn on a loopback port). Its backend is tests/ethrpc_backend.py's in-memory
one, which stands in for the node: the adapter over the EVM engine is wired by another
step of the issue behind the same ``EthBackend`` protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from eth_account import Account
from fastapi import FastAPI
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.providers import WebSocketProvider

from consortia.node.ethrpc import RpcServer
from tests.control_helpers import require_node
from tests.ethrpc_backend import CHAIN_ID, EMITTER, PING_TOPIC, REVERTER, MemoryBackend
from tests.integration.helpers import free_port

JS_DIR = Path(__file__).resolve().parents[1] / "js"
pytestmark = pytest.mark.integration


@dataclass
class Served:
    backend: MemoryBackend
    http: str
    ws: str
    key: str
    address: str


@pytest.fixture
def served() -> Iterator[Served]:
    account = Account.create()
    sender = bytes.fromhex(account.address[2:])
    backend = MemoryBackend(funded={sender: 10**20})
    for i in range(3):
        backend.mine_ping(bytes.fromhex("a1" * 20), i + 1, bytes([i]))  # blocks 1..3, a log each
    rpc = RpcServer(backend)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:  # the node's own routes live beside the JSON-RPC
        return {"ok": True}

    app.router.routes.extend(rpc.routes())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="ethrpc-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Served(backend, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}",
                     account.key.hex(), account.address)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_web3py_over_http(served: Served) -> None:
    w3 = Web3(Web3.HTTPProvider(served.http, request_kwargs={"timeout": 10}))
    assert w3.is_connected()
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.eth.block_number == 3
    assert w3.net.version == str(CHAIN_ID)
    latest = w3.eth.get_block("latest", full_transactions=True)
    assert latest["number"] == 3
    assert latest["transactions"][0]["to"] == Web3.to_checksum_address(EMITTER)
    by_hash = w3.eth.get_block(latest["hash"])
    assert by_hash["transactions"] == [latest["transactions"][0]["hash"]]
    assert w3.eth.get_balance(served.address) == 10**20
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                            "address": Web3.to_checksum_address(EMITTER),
                            "topics": [PING_TOPIC]})
    assert [entry["blockNumber"] for entry in logs] == [1, 2, 3]
    assert w3.eth.accounts == []
    history = w3.eth.fee_history(2, "latest", [50])
    assert history["baseFeePerGas"] == [0, 0, 0]

    signed = Account.sign_transaction({
        "chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(served.address, "pending"),
        "to": Web3.to_checksum_address(EMITTER), "value": 9, "data": "0xabcd",
        "gas": w3.eth.estimate_gas({"to": Web3.to_checksum_address(EMITTER), "data": "0xabcd"}),
        "maxFeePerGas": w3.eth.gas_price, "maxPriorityFeePerGas": w3.eth.max_priority_fee,
    }, served.key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=20)
    assert receipt["status"] == 1 and receipt["blockNumber"] == 4
    assert receipt["logs"][0]["data"] == bytes.fromhex("abcd")
    assert w3.eth.get_transaction(tx_hash)["value"] == 9

    with pytest.raises(ContractLogicError, match="execution reverted: not allowed"):
        w3.eth.call({"to": Web3.to_checksum_address(REVERTER)})
    with pytest.raises(Web3RPCError, match="nonce too low"):
        w3.eth.send_raw_transaction(Account.sign_transaction({
            "chainId": CHAIN_ID, "nonce": 0, "to": served.address, "value": 0,
            "gas": 21_000, "gasPrice": 0}, served.key).raw_transaction)

    block_filter = w3.eth.filter("latest")
    log_filter = w3.eth.filter({"address": Web3.to_checksum_address(EMITTER)})
    assert block_filter.get_new_entries() == []
    served.backend.mine_ping(bytes.fromhex("b0" * 20), 77)
    assert block_filter.get_new_entries() == [served.backend.blocks[5].header.hash]
    new_logs = log_filter.get_new_entries()
    assert [entry["blockNumber"] for entry in new_logs] == [5]
    assert log_filter.get_new_entries() == []
    assert w3.eth.uninstall_filter(block_filter.filter_id)


def test_web3py_over_websocket_subscriptions(served: Served) -> None:
    async def scenario() -> tuple[list[int], list[int], int]:
        async with AsyncWeb3(WebSocketProvider(served.ws)) as w3:
            assert await w3.eth.chain_id == CHAIN_ID
            heads_id = await w3.eth.subscribe("newHeads")
            logs_id = await w3.eth.subscribe("logs", {
                "address": Web3.to_checksum_address(EMITTER),
                "topics": [PING_TOPIC, "0x" + (2).to_bytes(32, "big").hex()]})
            for value in (1, 2, 3):  # only the value-2 ping matches the logs subscription
                served.backend.mine_ping(bytes.fromhex("c0" * 20), value)
            heads: list[int] = []
            logs: list[int] = []
            async for message in w3.socket.process_subscriptions():
                if message["subscription"] == heads_id:
                    heads.append(message["result"]["number"])
                else:
                    assert message["subscription"] == logs_id
                    logs.append(message["result"]["blockNumber"])
                if len(heads) == 3 and logs:
                    break
            assert await w3.eth.unsubscribe(heads_id)
            return heads, logs, await w3.eth.block_number

    heads, logs, number = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert heads == [4, 5, 6]
    assert logs == [5]
    assert number == 6


@pytest.fixture(scope="session")
def ethers_dir() -> Path:
    """tests/js with its npm packages installed (``npm ci``, once): a failure when
    CONSORTIA_REQUIRE_NODE is set (CI), a skip elsewhere without Node.js or npm."""
    require_node()
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CONSORTIA_REQUIRE_NODE"):
            pytest.fail("npm is required (CONSORTIA_REQUIRE_NODE) but not installed")
        pytest.skip("npm is not installed (CI installs it)")
    if not (JS_DIR / "node_modules" / "ethers" / "package.json").exists():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
    return JS_DIR


def test_ethers_js(served: Served, ethers_dir: Path) -> None:
    proc = subprocess.run(
        [require_node(), "ethers_client.mjs", served.http, served.ws, served.key,
         "0x" + EMITTER.hex(), "0x" + REVERTER.hex(), "0x" + PING_TOPIC.hex()],
        cwd=ethers_dir, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    blocks = served.backend.blocks
    assert seen["chainId"] == str(CHAIN_ID)
    assert seen["blockNumber"] == 3
    assert seen["latest"] == {"number": 3, "hash": "0x" + blocks[3].header.hash.hex(),
                              "parentHash": "0x" + blocks[2].header.hash.hex(),
                              "txCount": 1, "baseFee": "0"}
    assert seen["genesisHash"] == "0x" + blocks[0].header.hash.hex()
    assert seen["balance"] == str(10**20)
    assert [entry["block"] for entry in seen["logs"]] == [1, 2, 3]
    assert seen["logs"][1]["data"] == "0x01"
    # ethers treats a base fee of 0 as "no EIP-1559" and signs a legacy transaction, as on
    # GoQuorum; types 1 and 2 are sent by the unit tests and by web3.py above.
    assert seen["sent"]["type"] == 0 and seen["sent"]["status"] == 1
    assert seen["sent"]["block"] == 4 and seen["sent"]["logs"] == 1
    sent = served.backend.txs[bytes.fromhex(seen["sent"]["hash"][2:])]
    assert sent.value == 5 and sent.input == bytes.fromhex("1234")
    assert seen["fetched"]["data"] == "0x1234" and seen["fetched"]["value"] == "5"
    assert seen["revert"] == {"code": "CALL_EXCEPTION", "reason": "not allowed"}
    assert seen["stale"] == {"code": "NONCE_EXPIRED"}
    assert seen["subscriptions"]["block"] > 4
    assert seen["subscriptions"]["log"]["block"] > 4
    assert seen["subscriptions"]["log"]["data"] == "0xbeef"
