"""A quorum network of real node processes: 4 pbft validators over mutual TLS and a peer.

Raw Ethereum transactions (signed by eth-account) are submitted to different validators
through the node API; every validator re-executes the others' proposals (EVM included) and
the peer verifies every block it follows, so all of them hold the same chain — the same
Consortia block hashes and the same Ethereum block hashes (``exec_hash``). A validator
killed and restarted catches up to the same chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rlp
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from consortia.ledger.store import LedgerStore
from consortia.types.config import BlockLimits
from tests.integration.helpers import (
    ClusterProcesses,
    free_port_block,
    post_envelope,
    wait_until,
)
from tests.quorum_helpers import ADDR, quorum_network, sign
from tests.unit.evm_helpers import selector, token_code

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRANSFER = selector("transfer(address,uint256)")


class QuorumCluster(ClusterProcesses):
    def __init__(self, root: Path, n: int = 4) -> None:
        base = free_port_block(2 * n + 1)
        net = quorum_network(
            root, chain_id="quorum-multi", port=base, p2p_port=base + n, consensus="pbft",
            validators=n, limits=BlockLimits(batch_timeout_ms=50))
        net.add_peer("peer0", "org2", api_port=base + 2 * n)
        super().__init__(net, root)

    def http(self, node_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.net.node(node_id).api, timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[QuorumCluster]:
    c = QuorumCluster(tmp_path / "net")
    try:
        for node in c.net.nodes():
            c.start(node.id)
        c.start("peer0")
        yield c
    finally:
        c.close()


def _height(http: httpx.Client) -> int:
    return int(http.get("/v1/chain").json()["height"])


def _submit(http: httpx.Client, raw: bytes, *, wait: bool = True) -> dict[str, object]:
    r = post_envelope(http, raw, wait=str(wait).lower())
    assert r.status_code in (200, 202), r.text
    doc: dict[str, object] = r.json()
    return doc


def _ledger_hashes(path: Path, upto: int) -> list[tuple[bytes, bytes | None]]:
    store = LedgerStore(path)
    try:
        out = []
        for h in range(upto + 1):
            blk = store.block(h)
            eth = store.eth_block(h)
            assert blk is not None, h
            out.append((blk.hash, None if eth is None else eth[0]))
        return out
    finally:
        store.close()


def test_validators_and_a_peer_agree_on_every_ethereum_block(cluster: QuorumCluster) -> None:
    v = [n.id for n in cluster.net.nodes()]
    with cluster.http(v[0]) as h0:
        deployed = _submit(h0, sign(0, 0, None, token_code(), gas=2_000_000))
        assert deployed["status"] == "committed", deployed
    token = keccak(rlp.encode([ADDR[0], 0]))[12:]  # the address of ADDR[0]'s nonce 0
    data = TRANSFER + abi_encode(["address", "uint256"], [ADDR[2], 7])
    # Transfers of two senders, each through another validator, nonces out of order.
    receipts = []
    for i, node_id in enumerate(v):
        with cluster.http(node_id) as h:
            for nonce in (2, 1) if i == 0 else ():
                _submit(h, sign(0, nonce, token, data), wait=False)
            receipts.append(_submit(h, sign(1, i, ADDR[3], value=1)))
    for r in receipts:
        assert r["status"] == "committed", r
    with cluster.http(v[0]) as h0:
        last = _submit(h0, sign(0, 3, token, data))
        assert last["status"] == "committed", last
        height = _height(h0)
    # The killed validator misses blocks, restarts and catches up; the peer follows.
    cluster.kill(v[3])
    with cluster.http(v[1]) as h1:
        assert _submit(h1, sign(2, 0, ADDR[0], value=1))["status"] == "committed"
        height = _height(h1)
    cluster.start(v[3])
    for node_id in [*v, "peer0"]:
        with cluster.http(node_id) as h:
            wait_until(lambda h=h: _height(h) >= height, 60, f"{node_id} at {height}")
    for node_id in list(cluster.procs):
        cluster.kill(node_id)
    chains = {node_id: _ledger_hashes(cluster.net.root / "nodes" / node_id / "data"
                                      / "ledger.sqlite3", height)
              for node_id in [*v, "peer0"]}
    reference = chains[v[0]]
    assert all(eth is not None for _, eth in reference)
    for node_id, chain in chains.items():
        assert chain == reference, f"{node_id} holds another chain"
