"""Crash safety: SIGKILL a node mid-stream and restart it on the same data directory.

A transaction acknowledged as committed (``wait=true`` answered ``committed``) was
fsynced before the answer, so after any crash it is still there, at the same height
and index; the whole chain still verifies from genesis; the node serves again. What
was only ``pending`` may be lost, and resubmitting it is safe.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest

from consortia.sdk import Identity, NodeClient, NodeError, load_genesis, notary, sign, verify_proof
from consortia.types.config import BlockLimits, Role
from tests.integration.helpers import (
    NodeProcess,
    assert_refused,
    chain_state,
    describe,
    post_envelope,
    wait_until,
)

pytestmark = pytest.mark.integration

CHAIN = "crash"


def _verify_chain_ok(node: NodeProcess) -> int:
    """Run the full from-genesis verification; returns the number of blocks it checked."""
    out = node.verify_chain()
    assert out.returncode == 0, describe(out)
    m = re.search(r"(\d+) blocks after genesis verified, height (\d+)", out.stdout)
    assert m, describe(out)
    checked, height = int(m.group(1)), int(m.group(2))
    assert checked == height, describe(out)
    return height


class Writers:
    """Client threads submitting a steady stream with wait=true; they record every
    transaction acknowledged as committed, and stop at the first connection error."""

    def __init__(self, url: str, idents: list[Identity]) -> None:
        self.url = url
        self.idents = idents
        self.lock = threading.Lock()
        self.acked: dict[str, tuple[int, int]] = {}
        self.sent: set[str] = set()
        self.envelopes: dict[str, bytes] = {}
        self.acks_by_writer: dict[str, int] = {}
        self.unexpected: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def _tx(self, ident: Identity):
        tx = sign(ident, CHAIN, notary.content(f"s-{uuid.uuid4().hex[:10]}", b"stream",
                                               category="stream"))
        with self.lock:
            self.sent.add(tx.id_hex)
            self.envelopes[tx.id_hex] = tx.envelope
        return tx

    def _ack(self, who: str, results: list[dict]) -> None:
        with self.lock:
            for r in results:
                if r.get("status") == "committed":
                    self.acked[r["tx_id"]] = (r["height"], r["index"])
                    self.acks_by_writer[who] = self.acks_by_writer.get(who, 0) + 1
                elif r.get("status") != "pending":
                    self.unexpected.append(AssertionError(f"{who}: unexpected result {r}"))

    def _loop(self, who: str, step: Callable[[NodeClient], list[dict]]) -> None:
        try:
            with NodeClient(self.url, timeout=20) as c:
                while True:
                    try:
                        results = step(c)
                    except httpx.TransportError:
                        return          # the node is gone
                    except NodeError as exc:
                        if exc.status >= 500 or exc.code == "http_error":
                            return
                        raise
                    self._ack(who, results)
        except BaseException as exc:  # reported by the test, not swallowed
            self.unexpected.append(exc)

    def start(self) -> None:
        def single(c: NodeClient) -> list[dict]:
            return [c.submit(self._tx(self.idents[0]), wait=True, timeout=15)]

        def batch(c: NodeClient) -> list[dict]:
            txs = [self._tx(self.idents[i % len(self.idents)]) for i in range(7)]
            return list(c.submit_batch(txs, wait=True, timeout=15)["results"])

        self.acks_by_writer = {}
        self.threads = [threading.Thread(target=self._loop, args=(name, fn), daemon=True)
                        for name, fn in (("single", single), ("batch", batch),
                                         ("batch2", batch))]
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=60)
            assert not t.is_alive(), "a writer thread did not notice the node died"
        assert not self.unexpected, self.unexpected


def _check_acknowledged(http: httpx.Client, writers: Writers) -> None:
    for tx_id, (height, index) in writers.acked.items():
        r = http.get(f"/v1/receipts/{tx_id}")
        assert r.status_code == 200, f"acknowledged {tx_id} lost: {r.text}"
        assert r.json() == {"tx_id": tx_id, "status": "committed", "height": height,
                            "index": index, "error": None}
    for tx_id in writers.sent - set(writers.acked):
        r = http.get(f"/v1/receipts/{tx_id}")
        # Unacknowledged: committed just before the kill, or lost with the pool.
        assert r.status_code in (200, 404), r.text
        if r.status_code == 200:
            assert r.json()["status"] == "committed", r.json()


def _tx_count_matches_blocks(http: httpx.Client) -> None:
    height, tx_count = chain_state(http)
    total, before = 0, height + 1
    while before > 0:
        page = http.get("/v1/blocks", params={"limit": 100, "before": before}).json()
        total += sum(b["tx_count"] for b in page["blocks"])
        before = page["blocks"][-1]["height"]
    assert total == tx_count


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_transaction(farm):
    net = farm.network("crash", chain_id=CHAIN, limits=BlockLimits(batch_timeout_ms=20))
    node = farm.node(net)
    writers = Writers(node.url, [net.identity("org1/alice"), net.identity("org2/alice")])
    for round_ in range(2):
        before = len(writers.acked)
        writers.start()
        wait_until(lambda before=before: bool(writers.unexpected) or (
                   len(writers.acked) >= before + 150 and len(writers.acks_by_writer) == 3),
                   60, "the writers to get transactions acknowledged")
        assert not writers.unexpected, writers.unexpected
        node.kill()                           # SIGKILL, with requests in flight
        assert node.proc is not None and node.proc.returncode == -9
        writers.join()

        # The crashed store verifies from genesis as it is (WAL not checkpointed).
        height = _verify_chain_ok(node)
        assert height >= max(h for h, _ in writers.acked.values())

        node.start()
        with node.http() as http:
            _check_acknowledged(http, writers)
            _tx_count_matches_blocks(http)
            assert chain_state(http)[0] == height, f"round {round_}"

    # The node goes on: new transactions commit on top of the recovered chain.
    top = max(h for h, _ in writers.acked.values())
    with NodeClient(node.url, timeout=30) as c, node.http() as http:
        tx = sign(net.identity("org1/alice"), CHAIN, notary.content("after-crash", b"ok"))
        r = c.submit(tx, wait=True)
        assert r["status"] == "committed" and r["height"] > top
        assert verify_proof(c.proof(tx.id), load_genesis(net.genesis_path)).height == r["height"]
        # Acknowledged transactions are still refused as duplicates, still proven, indexed.
        genesis = load_genesis(net.genesis_path)
        for old in list(writers.acked)[:: max(1, len(writers.acked) // 10)]:
            assert_refused(post_envelope(http, writers.envelopes[old]), 409,
                           "duplicate_transaction")
            v = verify_proof(c.proof(old), genesis)
            assert (v.height, v.index) == writers.acked[old]
        indexed = 0
        page = c.records(category="stream", limit=1000)
        while True:
            indexed += len(page["records"])
            if page["next"] is None:
                break
            page = c.records(category="stream", limit=1000, after=page["next"])
        assert indexed >= len(writers.acked)
    assert node.stop() is not None
    _verify_chain_ok(node)


def test_configuration_survives_a_crash_beyond_the_startup_tail(farm):
    """A CRL update, then more blocks than the start-up check re-verifies (32), then
    SIGKILL: on restart the configuration block is replayed, the revocation is still in
    force, and proofs from before and after it verify."""
    net = farm.network("cfg", chain_id=CHAIN, limits=BlockLimits(batch_timeout_ms=10))
    node = farm.node(net)
    alice = net.identity("org1/alice")
    bob = net.new_identity("org1", "bob", Role.CLIENT)
    genesis = load_genesis(net.genesis_path)
    with NodeClient(node.url, timeout=30) as c:
        pre = sign(bob, CHAIN, notary.digest("bob-before", b"b"))
        assert c.submit(pre, wait=True)["status"] == "committed"
        r_crl = c.submit(net.revoke("org1", "bob"), wait=True)
        assert r_crl["status"] == "committed"
        last = None
        for i in range(36):
            last = sign(alice, CHAIN, notary.digest(f"fill-{i}", bytes([i])))
            assert c.submit(last, wait=True)["status"] == "committed"
        height_before = c.chain_info()["height"]
    assert height_before - r_crl["height"] > 32

    node.kill()
    node.start()
    with NodeClient(node.url, timeout=30) as c, node.http() as http:
        info = c.chain_info()
        assert info["height"] == height_before
        assert info["config_height"] == r_crl["height"]
        resp = post_envelope(http, sign(bob, CHAIN, notary.digest("bob-after", b"b")).envelope)
        assert_refused(resp, 403, "revoked_identity")
        for tx in (pre, last):
            assert verify_proof(c.proof(tx.id), genesis).tx_id == tx.id
        assert last is not None
        assert_refused(post_envelope(http, last.envelope), 409, "duplicate_transaction")
        # Bob's old transaction replayed: admission (revocation) answers before the
        # duplicate check, as documented.
        assert_refused(post_envelope(http, pre.envelope), 403, "revoked_identity")
    node.stop()
    assert _verify_chain_ok(node) == height_before


def test_pending_transactions_are_lost_and_can_be_resubmitted(farm):
    """Only the pool (memory) is lost: a transaction answered 202 pending before the
    crash is unknown after it, and submitting the same envelope again is safe."""
    net = farm.network("pending", chain_id=CHAIN,
                       limits=BlockLimits(batch_timeout_ms=600_000, max_block_txs=2))
    node = farm.node(net)
    alice = net.identity("org1/alice")
    tx = sign(alice, CHAIN, notary.digest("pending-at-crash", b"p"))
    with node.http() as http:
        before = chain_state(http)
        resp = post_envelope(http, tx.envelope)
        assert resp.status_code == 202 and resp.json()["status"] == "pending"
        assert http.get(f"/v1/receipts/{tx.id_hex}").json()["status"] == "pending"
    node.kill()
    node.start()
    with NodeClient(node.url, timeout=30) as c, node.http() as http:
        assert chain_state(http) == before
        assert_refused(http.get(f"/v1/receipts/{tx.id_hex}"), 404, "not_found")
        other = sign(alice, CHAIN, notary.digest("companion", b"c"))
        # Two transactions fill a block (max_block_txs=2): no waiting on the batch timeout.
        out = c.submit_batch([tx, other], wait=True, timeout=30)
        assert [r["status"] for r in out["results"]] == ["committed", "committed"], out
