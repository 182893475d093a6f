"""The Ethereum JSON-RPC server (consortia.node.ethrpc): hex codec, framing and batches,
error codes, and every stateless method, over HTTP (Starlette's TestClient).

The backend is tests/ethrpc_backend.py's in-memory one: it stands in for the node, whose
adapter over the EVM engine another step of the issue wires behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from consortia.node.ethrpc import RpcLimits, RpcServer
from consortia.node.ethrpc.codec import (
    data,
    parse_block_ref,
    parse_data,
    parse_quantity,
    parse_topics,
    quantity,
)
from consortia.node.ethrpc.errors import RpcError, revert_reason
from consortia.node.ethrpc.types import SyncStatus
from tests.ethrpc_backend import CHAIN_ID, EMITTER, PING_TOPIC, REVERTER, MemoryBackend

ALICE = bytes.fromhex("a1" * 20)
BOB = bytes.fromhex("b0" * 20)


class Rpc:
    """A JSON-RPC client over the TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._id = 0

    def raw(self, body: Any) -> Any:
        response = self.client.post("/", content=orjson.dumps(body),
                                    headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, *params: Any) -> Any:
        self._id += 1
        answer = self.raw({"jsonrpc": "2.0", "id": self._id, "method": method,
                           "params": list(params)})
        assert answer["id"] == self._id
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        answer = self.raw({"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})
        assert "result" not in answer, answer
        return dict(answer["error"])


@pytest.fixture
def backend() -> MemoryBackend:
    chain = MemoryBackend(funded={ALICE: 10**18})
    chain.mine_ping(ALICE, 1, b"first")  # block 1
    chain.mine_empty()                    # block 2
    chain.mine_ping(BOB, 2, b"second")   # block 3
    return chain


@pytest.fixture
def rpc(backend: MemoryBackend) -> Iterator[Rpc]:
    with TestClient(RpcServer(backend, RpcLimits(max_batch=5, max_body_bytes=4096,
                                                 max_log_range=3)).app()) as client:
        yield Rpc(client)


# --- codec ------------------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_quantities_round_trip_without_leading_zeros(value: int) -> None:
    text = quantity(value)
    assert text == "0x0" or (text.startswith("0x") and text[2] != "0")
    assert text == text.lower()
    assert parse_quantity(text, "x") == value


@given(st.binary(max_size=64))
def test_data_round_trips_even_length_lowercase(value: bytes) -> None:
    text = data(value)
    assert len(text) % 2 == 0 and text == text.lower()
    assert parse_data(text, "x") == value


@pytest.mark.parametrize(("text", "why"), [
    ("0x", 'hex string "0x"'), ("0x01", "leading zero digits"), ("12", "without 0x prefix"),
    ("0xg", "invalid hex string"), ("", "empty hex string"), ("0x1" + "0" * 64, "> 256 bits"),
])
def test_bad_quantities_are_refused_naming_the_parameter(text: str, why: str) -> None:
    with pytest.raises(RpcError) as caught:
        parse_quantity(text, "0 (blockCount)")
    assert caught.value.code == -32602
    assert caught.value.message.startswith("invalid argument 0 (blockCount): ")
    assert why in caught.value.message


def test_quantity_refuses_json_numbers_and_wide_block_numbers() -> None:
    with pytest.raises(RpcError):
        parse_quantity(5, "n")
    with pytest.raises(RpcError, match="> 64 bits"):
        parse_block_ref("0x1" + "0" * 16, "b")


@pytest.mark.parametrize(("text", "why"), [
    ("0x123", "odd length"), ("abcd", "without 0x prefix"), ("0xzz", "invalid hex")])
def test_bad_data_is_refused(text: str, why: str) -> None:
    with pytest.raises(RpcError, match=why):
        parse_data(text, "d")


def test_block_refs_tags_numbers_and_eip1898() -> None:
    for tag in ("latest", "earliest", "pending", "safe", "finalized"):
        assert parse_block_ref(tag, "b").tag == tag
    assert parse_block_ref("0x10", "b").number == 16
    h = "0x" + "ab" * 32
    assert parse_block_ref({"blockHash": h}, "b", allow_hash=True).block_hash == bytes.fromhex(
        "ab" * 32)
    assert parse_block_ref({"blockNumber": "0x2"}, "b", allow_hash=True).number == 2
    with pytest.raises(RpcError, match="choose one"):
        parse_block_ref({"blockHash": h, "blockNumber": "0x1"}, "b", allow_hash=True)
    with pytest.raises(RpcError, match="expected a block tag or number"):
        parse_block_ref({"blockHash": h}, "b")  # not where the spec allows EIP-1898
    with pytest.raises(RpcError):
        parse_block_ref("newest", "b")


def test_topics_wildcards_and_or_lists() -> None:
    t1, t2 = "0x" + "01" * 32, "0x" + "02" * 32
    parsed = parse_topics([None, [t1, t2], t1, None], "topics")
    assert parsed == (None, (bytes.fromhex("01" * 32), bytes.fromhex("02" * 32)),
                      (bytes.fromhex("01" * 32),), None)
    with pytest.raises(RpcError, match="more than 4"):
        parse_topics([None] * 5, "topics")


def test_revert_reasons_decoded_as_geth() -> None:
    from tests.ethrpc_backend import error_string

    assert revert_reason(error_string("no way")) == "no way"
    panic = bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big")
    assert revert_reason(panic) == "arithmetic underflow or overflow"
    assert revert_reason(bytes.fromhex("deadbeef")) is None
    assert revert_reason(b"") is None


# --- framing ----------------------------------------------------------------------------

def test_parse_error_invalid_request_unknown_method(rpc: Rpc) -> None:
    response = rpc.client.post("/", content=b"{nope", headers={"content-type": "application/json"})
    assert response.json() == {"jsonrpc": "2.0", "id": None,
                               "error": {"code": -32700, "message": "parse error"}}
    assert rpc.raw({"id": 1, "method": "eth_chainId"})["error"]["code"] == -32600  # no jsonrpc
    assert rpc.raw({"jsonrpc": "2.0", "id": 1, "method": 5})["error"]["code"] == -32600
    assert rpc.raw("hello")["error"]["code"] == -32600
    missing = rpc.error("eth_mine")
    assert missing == {"code": -32601,
                       "message": "the method eth_mine does not exist/is not available"}
    by_name = rpc.raw({"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance",
                       "params": {"address": "0x00"}})
    assert by_name["error"] == {"code": -32602, "message": "non-array args"}


def test_params_count_checked(rpc: Rpc) -> None:
    assert rpc.error("eth_chainId", 1)["message"] == "too many arguments, want at most 0"
    assert rpc.error("eth_getBalance")["message"] == (
        "missing value for required argument 0 (address)")


def test_batch_answers_in_order_and_skips_notifications(rpc: Rpc) -> None:
    batch = [{"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
             {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # notification
             {"jsonrpc": "2.0", "id": 2, "method": "nope"},
             17]
    answers = rpc.raw(batch)
    assert [a["id"] for a in answers] == ["a", 2, None]
    assert answers[0]["result"] == quantity(CHAIN_ID)
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["error"]["code"] == -32600


def test_batch_limits_and_notifications_only(rpc: Rpc) -> None:
    assert rpc.raw([])["error"] == {"code": -32600, "message": "empty batch"}
    six = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(6)]
    assert rpc.raw(six) == {"jsonrpc": "2.0", "id": None,
                            "error": {"code": -32600, "message": "batch too large"}}
    silent = rpc.client.post("/", json=[{"jsonrpc": "2.0", "method": "eth_chainId"}])
    assert silent.status_code == 204 and silent.content == b""
    single = rpc.client.post("/", json={"jsonrpc": "2.0", "method": "eth_chainId"})
    assert single.status_code == 204


def test_body_limit_and_content_type(rpc: Rpc) -> None:
    big = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": ["x" * 5000]}
    response = rpc.client.post("/", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600
    text = rpc.client.post("/", content=b"{}", headers={"content-type": "text/plain"})
    assert text.status_code == 415


def test_subscribe_over_http_is_refused(rpc: Rpc) -> None:
    assert rpc.error("eth_subscribe", "newHeads") == {
        "code": -32601, "message": "notifications not supported"}


# --- methods ----------------------------------------------------------------------------

def test_chain_identity_and_static_answers(rpc: Rpc, backend: MemoryBackend) -> None:
    assert rpc.call("eth_chainId") == "0x539"
    assert rpc.call("net_version") == "1337"
    assert rpc.call("net_listening") is True
    assert rpc.call("web3_clientVersion").startswith("Consortia/v")
    assert rpc.call("eth_blockNumber") == "0x3"
    assert rpc.call("eth_accounts") == []
    assert rpc.call("eth_gasPrice") == "0x0"
    assert rpc.call("eth_maxPriorityFeePerGas") == "0x0"
    assert rpc.call("eth_syncing") is False
    backend.sync = SyncStatus(0, 2, 9)
    assert rpc.call("eth_syncing") == {"startingBlock": "0x0", "currentBlock": "0x2",
                                       "highestBlock": "0x9"}


def test_blocks_by_number_tag_and_hash(rpc: Rpc, backend: MemoryBackend) -> None:
    latest = rpc.call("eth_getBlockByNumber", "latest", False)
    assert latest["number"] == "0x3"
    for tag in ("safe", "finalized", "pending"):
        assert rpc.call("eth_getBlockByNumber", tag, False)["hash"] == latest["hash"]
    assert rpc.call("eth_getBlockByNumber", "earliest", False)["number"] == "0x0"
    assert rpc.call("eth_getBlockByNumber", "0x63", False) is None
    tx_hash = "0x" + backend.blocks[3].transactions[0].hash.hex()
    assert latest["transactions"] == [tx_hash]
    assert latest["parentHash"] == "0x" + backend.blocks[2].header.hash.hex()
    assert latest["baseFeePerGas"] == "0x0" and latest["difficulty"] == "0x0"
    assert len(latest["logsBloom"]) == 2 + 512 and latest["uncles"] == []
    full = rpc.call("eth_getBlockByHash", latest["hash"], True)
    assert full["transactions"][0]["hash"] == tx_hash
    assert full["transactions"][0]["type"] == "0x2"
    assert full["transactions"][0]["blockNumber"] == "0x3"
    assert rpc.call("eth_getBlockByHash", "0x" + "00" * 32, False) is None
    assert rpc.call("eth_getBlockTransactionCountByNumber", "0x3") == "0x1"
    assert rpc.call("eth_getBlockTransactionCountByHash", latest["hash"]) == "0x1"
    bad = rpc.error("eth_getBlockByHash", "0x1234", False)
    assert bad["code"] == -32602 and "0 (hash)" in bad["message"]
    assert rpc.error("eth_getBlockByNumber", "latest", "yes")["message"] == (
        "invalid argument 1 (fullTransactions): expected a boolean")


def test_transactions_and_receipts(rpc: Rpc, backend: MemoryBackend) -> None:
    tx = backend.blocks[1].transactions[0]
    got = rpc.call("eth_getTransactionByHash", data(tx.hash))
    assert got["from"] == data(ALICE) and got["to"] == data(EMITTER)
    assert got["input"] == data(b"first") and got["value"] == "0x1"
    assert got["maxFeePerGas"] == "0x0" and got["gasPrice"] == "0x0"
    assert got["yParity"] == "0x0" and got["accessList"] == []
    receipt = rpc.call("eth_getTransactionReceipt", data(tx.hash))
    assert receipt["status"] == "0x1" and receipt["blockNumber"] == "0x1"
    assert receipt["contractAddress"] is None and receipt["type"] == "0x2"
    assert receipt["logs"][0]["topics"][0] == data(PING_TOPIC)
    assert receipt["logs"][0]["logIndex"] == "0x0" and receipt["logs"][0]["removed"] is False
    assert rpc.call("eth_getTransactionReceipt", "0x" + "00" * 32) is None
    assert rpc.call("eth_getTransactionByHash", "0x" + "00" * 32) is None


def test_account_reads_at_blocks(rpc: Rpc, backend: MemoryBackend) -> None:
    alice = data(ALICE)
    assert rpc.call("eth_getBalance", alice, "latest") == hex(10**18)
    assert rpc.call("eth_getTransactionCount", alice, "0x0") == "0x0"
    assert rpc.call("eth_getTransactionCount", alice, "latest") == "0x1"
    assert rpc.call("eth_getTransactionCount", alice, "pending") == "0x1"
    block1 = data(backend.blocks[1].header.hash)
    assert rpc.call("eth_getTransactionCount", alice, {"blockHash": block1}) == "0x1"
    assert rpc.call("eth_getTransactionCount", data(BOB), {"blockNumber": "0x2"}) == "0x0"
    assert rpc.call("eth_getCode", data(EMITTER), "latest") == "0x6000"
    assert rpc.call("eth_getCode", alice, "latest") == "0x"
    assert rpc.call("eth_getStorageAt", data(EMITTER), "0x0", "latest") == "0x" + "00" * 32
    assert rpc.call("eth_getStorageAt", data(EMITTER), "0x" + "00" * 32, "latest") == (
        "0x" + "00" * 32)
    assert rpc.error("eth_getBalance", alice, "0x64") == {"code": -32000,
                                                         "message": "header not found"}
    assert rpc.error("eth_getBalance", alice, {"blockHash": "0x" + "00" * 32})["message"] == (
        "header for hash not found")
    odd = rpc.error("eth_getBalance", "0x" + "a1" * 19 + "a", "latest")
    assert odd == {"code": -32602,
                   "message": "invalid argument 0 (address): hex string of odd length"}


def test_call_estimate_and_reverts(rpc: Rpc) -> None:
    assert rpc.call("eth_call", {"to": data(EMITTER), "data": "0x"}, "latest") == (
        "0x" + "00" * 32)
    assert rpc.call("eth_estimateGas", {"to": data(EMITTER), "input": "0x0102"}) == hex(
        21_000 + 32)
    reverted = rpc.error("eth_call", {"to": data(REVERTER)}, "latest")
    assert reverted["code"] == 3
    assert reverted["message"] == "execution reverted: not allowed"
    assert reverted["data"].startswith("0x08c379a0")
    assert rpc.error("eth_estimateGas", {"to": data(REVERTER)})["code"] == 3
    both = rpc.error("eth_call", {"to": data(EMITTER), "data": "0x01", "input": "0x02"})
    assert both["code"] == -32602 and "0 (transaction)" in both["message"]
    assert rpc.error("eth_call", {"to": data(EMITTER), "color": "red"})["message"] == (
        "invalid argument 0 (transaction): unknown field 'color'")
    assert "0 (transaction).gas" in rpc.error("eth_call", {"gas": "0x01"})["message"]


def test_send_raw_transaction_and_rejections(rpc: Rpc, backend: MemoryBackend) -> None:
    from eth_account import Account

    account = Account.create()
    sender = bytes.fromhex(account.address[2:])
    backend.states[-1].balances[sender] = 10**18
    kinds = [
        {"gasPrice": 0},
        {"gasPrice": 0, "accessList": [{"address": data(EMITTER), "storageKeys": []}],
         "type": 1},
        {"maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "type": 2},
    ]
    for nonce, fees in enumerate(kinds):
        signed = account.sign_transaction({"chainId": CHAIN_ID, "nonce": nonce, "gas": 50_000,
                                           "to": account.address, "value": 1, **fees})
        tx_hash = rpc.call("eth_sendRawTransaction", data(signed.raw_transaction))
        assert tx_hash == data(signed.hash)
        assert rpc.call("eth_getTransactionByHash", tx_hash)["type"] == hex(nonce)
    again = rpc.error("eth_sendRawTransaction", data(signed.raw_transaction))
    assert again == {"code": -32000, "message": "already known"}
    stale = account.sign_transaction({"chainId": CHAIN_ID, "nonce": 0, "gas": 21_000,
                                      "gasPrice": 1, "to": account.address, "value": 0})
    low = rpc.error("eth_sendRawTransaction", data(stale.raw_transaction))
    assert low["code"] == -32000 and low["message"].startswith("nonce too low: address 0x")
    garbage = rpc.error("eth_sendRawTransaction", "0x02c0")
    assert garbage["code"] == -32000 and garbage["message"].startswith("invalid transaction")
    assert rpc.error("eth_sendRawTransaction", "0x")["code"] == -32602


def test_fee_history_shape(rpc: Rpc) -> None:
    history = rpc.call("eth_feeHistory", "0x2", "latest", [25, 75])
    assert history["oldestBlock"] == "0x2"
    assert history["baseFeePerGas"] == ["0x0", "0x0", "0x0"]  # one more: the next block's
    assert len(history["gasUsedRatio"]) == 2
    assert history["gasUsedRatio"][0] == 0.0 and 0 < history["gasUsedRatio"][1] < 1
    assert history["reward"] == [["0x0", "0x0"], ["0x0", "0x0"]]
    decimal = rpc.call("eth_feeHistory", 10, "0x1")
    assert decimal["oldestBlock"] == "0x0" and len(decimal["gasUsedRatio"]) == 2
    assert "reward" not in decimal
    assert rpc.call("eth_feeHistory", "0x0", "latest")["gasUsedRatio"] == []
    assert "percentile" in rpc.error("eth_feeHistory", "0x1", "latest", [50, 10])["message"]
    assert rpc.error("eth_feeHistory", "0x1", "0x99")["code"] == -32000
