"""eth_getLogs, polled filters (changes only, expiry, caps) and WebSocket subscriptions
(format, filters, unsubscribe, the bound on a slow consumer) of consortia.node.ethrpc.

The backend is tests/ethrpc_backend.py's in-memory one, standing in for the node (whose
adapter another step of the issue wires behind the same protocol).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from consortia.node.ethrpc import RpcLimits, RpcServer
from consortia.node.ethrpc.codec import data
from consortia.node.ethrpc.subscriptions import BACKLOG_CLOSE_CODE, HeadHub, WsConnection
from tests.ethrpc_backend import EMITTER, PING_TOPIC, MemoryBackend
from tests.unit.test_ethrpc import Rpc

A = bytes.fromhex("a1" * 20)


def topic(value: int) -> str:
    return data(value.to_bytes(32, "big"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> MemoryBackend:
    chain = MemoryBackend()
    for value in (1, 2, 3):
        chain.mine_ping(A, value)  # blocks 1, 2, 3: Ping(value)
    return chain


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(backend: MemoryBackend, clock: Clock) -> RpcServer:
    return RpcServer(backend, RpcLimits(max_log_range=4, max_logs=3, max_filters=3,
                                        filter_timeout_s=300, max_subscriptions=2), clock)


@pytest.fixture
def rpc(server: RpcServer) -> Iterator[Rpc]:
    with TestClient(server.app()) as client:
        yield Rpc(client)


def test_get_logs_addresses_topics_wildcards_or(rpc: Rpc, backend: MemoryBackend) -> None:
    def blocks(flt: dict[str, Any]) -> list[int]:
        return [int(e["blockNumber"], 16) for e in rpc.call("eth_getLogs", flt)]

    every = {"fromBlock": "0x0", "toBlock": "latest"}
    assert blocks(every) == [1, 2, 3]
    assert blocks({**every, "address": data(EMITTER)}) == [1, 2, 3]
    assert blocks({**every, "address": [data(A), data(EMITTER)]}) == [1, 2, 3]
    assert blocks({**every, "address": data(A)}) == []
    assert blocks({**every, "topics": [None, topic(2)]}) == [2]
    assert blocks({**every, "topics": [data(PING_TOPIC), [topic(1), topic(3)]]}) == [1, 3]
    assert blocks({**every, "topics": [None, None, None]}) == []  # a log has only 2 topics
    assert blocks({"fromBlock": "0x2", "toBlock": "0x2"}) == [2]
    assert blocks({"blockHash": data(backend.blocks[3].header.hash)}) == [3]
    assert blocks({"fromBlock": "0x9"}) == []
    one = rpc.call("eth_getLogs", {"blockHash": data(backend.blocks[2].header.hash)})[0]
    assert one == {"address": data(EMITTER), "topics": [data(PING_TOPIC), topic(2)],
                   "data": "0x", "blockNumber": "0x2",
                   "blockHash": data(backend.blocks[2].header.hash),
                   "transactionHash": data(backend.blocks[2].transactions[0].hash),
                   "transactionIndex": "0x0", "logIndex": "0x0", "removed": False}


def test_get_logs_refusals(rpc: Rpc, backend: MemoryBackend) -> None:
    backend.mine_empty(3)  # head 6
    wide = rpc.error("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})
    assert wide == {"code": -32005, "message": "block range of 7 blocks exceeds the limit of 4"}
    for value in (4, 5, 6, 7):
        backend.mine_ping(A, value)
    many = rpc.error("eth_getLogs", {"fromBlock": "0x7", "toBlock": "0xa"})
    assert many == {"code": -32005, "message": "query returned more than 3 results"}
    both = rpc.error("eth_getLogs", {"fromBlock": "0x1",
                                     "blockHash": data(backend.blocks[1].header.hash)})
    assert both["code"] == -32602 and "choose one" in both["message"]
    assert rpc.error("eth_getLogs", {"blockHash": "0x" + "00" * 32}) == {
        "code": -32000, "message": "unknown block"}
    assert rpc.error("eth_getLogs", {"fromBlock": "0x3", "toBlock": "0x1"})["message"] == (
        "invalid block range params")
    bad = rpc.error("eth_getLogs", {"topics": [None, "0x12"]})
    assert bad["code"] == -32602 and "0 (filter).topics[1]" in bad["message"]
    assert "unknown field 'limit'" in rpc.error("eth_getLogs", {"limit": 5})["message"]


def test_filters_return_only_new_items(rpc: Rpc, backend: MemoryBackend) -> None:
    blocks_id = rpc.call("eth_newBlockFilter")
    logs_id = rpc.call("eth_newFilter", {"topics": [None, [topic(5), topic(6)]]})
    assert rpc.call("eth_getFilterChanges", blocks_id) == []
    assert rpc.call("eth_getFilterChanges", logs_id) == []
    backend.mine_ping(A, 5)
    backend.mine_ping(A, 4)
    assert rpc.call("eth_getFilterChanges", blocks_id) == [
        data(backend.blocks[4].header.hash), data(backend.blocks[5].header.hash)]
    assert rpc.call("eth_getFilterChanges", blocks_id) == []
    changes = rpc.call("eth_getFilterChanges", logs_id)
    assert [c["topics"][1] for c in changes] == [topic(5)]
    assert rpc.call("eth_getFilterChanges", logs_id) == []
    backend.mine_ping(A, 6)
    assert [c["blockNumber"] for c in rpc.call("eth_getFilterChanges", logs_id)] == ["0x6"]
    assert rpc.call("eth_uninstallFilter", logs_id) is True
    assert rpc.call("eth_uninstallFilter", logs_id) is False
    assert rpc.error("eth_getFilterChanges", logs_id) == {"code": -32000,
                                                         "message": "filter not found"}


def test_filter_logs_and_bounded_polls(rpc: Rpc, backend: MemoryBackend) -> None:
    logs_id = rpc.call("eth_newFilter", {"fromBlock": "0x1", "toBlock": "0x2"})
    assert [e["blockNumber"] for e in rpc.call("eth_getFilterLogs", logs_id)] == ["0x1", "0x2"]
    blocks_id = rpc.call("eth_newBlockFilter")
    assert rpc.error("eth_getFilterLogs", blocks_id)["message"] == "filter not found"
    backend.mine_empty(6)  # 6 new blocks, a poll covers at most max_log_range = 4
    assert len(rpc.call("eth_getFilterChanges", blocks_id)) == 4
    assert len(rpc.call("eth_getFilterChanges", blocks_id)) == 2
    assert rpc.call("eth_getFilterChanges", logs_id) == []  # its range ended at block 2


def test_filters_expire_when_not_polled_and_are_capped(rpc: Rpc, clock: Clock) -> None:
    first = rpc.call("eth_newBlockFilter")
    second = rpc.call("eth_newBlockFilter")
    clock.now += 200
    rpc.call("eth_getFilterChanges", first)  # polled: lives 300 s more
    rpc.call("eth_newBlockFilter")
    assert rpc.error("eth_newBlockFilter") == {
        "code": -32005, "message": "too many filters installed (limit 3)"}
    clock.now += 150  # second: 350 s idle; first: 150 s
    assert rpc.error("eth_getFilterChanges", second)["message"] == "filter not found"
    assert rpc.call("eth_getFilterChanges", first) == []
    assert isinstance(rpc.call("eth_newBlockFilter"), str)  # room again


def test_filter_ids_are_unguessable_and_distinct(rpc: Rpc) -> None:
    ids = {rpc.call("eth_newBlockFilter") for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) == 34 for i in ids)


# --- WebSocket subscriptions -------------------------------------------------------------

def _send(ws: Any, request_id: int, method: str, *params: Any) -> None:
    ws.send_text(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                               "params": list(params)}).decode())


def test_subscriptions_new_heads_and_logs(server: RpcServer, backend: MemoryBackend) -> None:
    with TestClient(server.app()) as client, client.websocket_connect("/") as ws:
        _send(ws, 1, "eth_subscribe", "newHeads")
        heads_id = ws.receive_json()["result"]
        _send(ws, 2, "eth_subscribe", "logs", {"address": data(EMITTER),
                                               "topics": [None, topic(9)]})
        logs_id = ws.receive_json()["result"]
        backend.mine_ping(A, 8)
        backend.mine_ping(A, 9)
        got = [ws.receive_json() for _ in range(3)]
        assert all(m["method"] == "eth_subscription" and "id" not in m for m in got)
        heads = [m["params"]["result"] for m in got if m["params"]["subscription"] == heads_id]
        assert [h["number"] for h in heads] == ["0x4", "0x5"]
        assert heads[0]["hash"] == data(backend.blocks[4].header.hash)
        assert "transactions" not in heads[0]
        logs = [m["params"]["result"] for m in got if m["params"]["subscription"] == logs_id]
        assert [entry["topics"][1] for entry in logs] == [topic(9)]
        _send(ws, 3, "eth_unsubscribe", heads_id)
        assert ws.receive_json() == {"jsonrpc": "2.0", "id": 3, "result": True}
        _send(ws, 4, "eth_unsubscribe", heads_id)
        assert ws.receive_json()["result"] is False
        _send(ws, 5, "eth_subscribe", "newPendingTransactions")
        assert ws.receive_json()["error"]["code"] == -32602
        _send(ws, 6, "eth_subscribe", "newHeads")
        _send(ws, 7, "eth_subscribe", "newHeads")
        assert "result" in ws.receive_json()
        assert ws.receive_json()["error"] == {
            "code": -32005, "message": "too many subscriptions on this connection (limit 2)"}
        _send(ws, 8, "eth_chainId")  # ordinary calls and batches work over the socket too
        assert ws.receive_json()["result"] == "0x539"
        ws.send_text("[]")
        assert ws.receive_json()["error"]["code"] == -32600
    assert backend.streams() == 0  # the hub let go of the backend once nobody listened


def test_ws_filters_die_with_their_connection(server: RpcServer) -> None:
    with TestClient(server.app()) as client:
        with client.websocket_connect("/") as ws:
            _send(ws, 1, "eth_newBlockFilter")
            ws.receive_json()
            assert len(server.filters) == 1
        with client.websocket_connect("/") as ws:  # the first one's cleanup has run
            _send(ws, 1, "eth_chainId")
            ws.receive_json()
        assert len(server.filters) == 0


class _StalledSocket:
    """A WebSocket whose client never reads: every send waits forever. A stand-in for a
    peer that stopped reading, whose TCP buffers a test cannot fill deterministically."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: tuple[int, str] | None = None

    async def accept(self) -> None:
        return None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def test_slow_consumer_is_closed_not_buffered(backend: MemoryBackend) -> None:
    async def scenario() -> tuple[tuple[int, str] | None, int]:
        limits = RpcLimits(ws_send_queue=4)
        server = RpcServer(backend, limits)
        sock = _StalledSocket()
        conn = WsConnection(sock, server._handlers, server.filters, server.hub,  # type: ignore[arg-type]
                            limits)
        task = asyncio.create_task(conn.run())
        await sock.inbox.put({"type": "websocket.receive", "text": orjson.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
             "params": ["newHeads"]}).decode()})
        while not conn.subscriptions:
            await asyncio.sleep(0)
        await sock.inbox.put({"type": "websocket.receive", "text": "[]"})  # activates it
        for _ in range(50):
            await asyncio.sleep(0)
        for _ in range(20):
            backend.mine_empty()
        await asyncio.wait_for(task, 10)
        await server.aclose()
        return sock.closed, conn._queue.qsize()

    closed, queued = asyncio.run(scenario())
    assert closed == (BACKLOG_CLOSE_CODE, "subscription backlog exceeded")
    assert queued <= 4
    assert backend.streams() == 0


def test_hub_reads_the_stream_once_for_every_listener(backend: MemoryBackend) -> None:
    async def scenario() -> tuple[list[int], list[int], int]:
        hub = HeadHub(backend)
        one: list[int] = []
        two: list[int] = []
        hub.add(lambda head: one.append(head.header.number))
        hub.add(lambda head: two.append(head.header.number))
        await asyncio.sleep(0)
        streams = backend.streams()
        backend.mine_empty()
        while len(two) < 1:
            await asyncio.sleep(0)
        await hub.aclose()
        return one, two, streams

    one, two, streams = asyncio.run(scenario())
    assert one == two == [4]
    assert streams == 1
