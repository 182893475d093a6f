"""Peer nodes of a raft-3 chain: real node processes on 127.0.0.1.

A peer added with ``LocalNetwork.add_peer`` catches up with the validators, takes a
client's transaction and forwards it (it commits and shows on the peer, with a proof that
verifies offline); SIGKILLed while blocks keep committing, restarted, it continues from its
ledger; with the validator it followed killed, it follows another. A fake validator
serving a tampered block is refused and nothing of it is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import msgpack
import pytest

from consortia.cli import background
from consortia.sdk import (
    LocalNetwork,
    NodeClient,
    NodeError,
    load_genesis,
    notary,
    sign,
    verify_proof,
)
from consortia.types.block import Block
from consortia.types.config import ConsensusKind
from tests.integration.helpers import (
    describe,
    free_port_block,
    healthy,
    run_cli,
    wait_until,
)
from tests.integration.test_multinode import Cluster, _commit_via, _same_chain

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def raft(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "net", ConsensusKind.RAFT, 3)
    try:
        for node_id in c.ids():
            c.start(node_id)
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()


def _peer_info(url: str) -> dict:
    return httpx.get(f"{url}/v1/chain", timeout=10).json()


def _caught_up(c: Cluster, peer_url: str, validator: str) -> None:
    def same() -> bool:
        try:
            p = _peer_info(peer_url)
        except httpx.HTTPError:
            return False
        v = c.info(validator)
        return (p["height"], p["latest_hash"]) == (v["height"], v["latest_hash"])
    wait_until(same, 60, f"the peer to hold {validator}'s chain")


def test_a_peer_follows_forwards_survives_a_crash_and_fails_over(raft: Cluster) -> None:
    c = raft
    ids = c.ids()
    for i in range(3):
        _commit_via(c, ids[i % 3], "before-peer")
    port = free_port_block(1)
    peer = c.net.add_peer("peer0", "org2", api_port=port)
    assert peer.role == "peer" and [p.id for p in c.net.peers()] == ["peer0"]
    assert "peer0" not in [n.id for n in c.net.nodes()]  # never counted as a validator
    c.start("peer0")  # healthy once caught up
    _caught_up(c, peer.api, ids[0])
    info = _peer_info(peer.api)
    assert info["node"]["role"] == "peer" and info["node"]["org_id"] == "org2"
    assert info["follow"]["caught_up"] is True
    assert "peer0" not in [v["id"] for v in info["validators"]]

    # A client submits through the peer: forwarded, committed, stored on the peer.
    r = _commit_via(c, "peer0", "through-peer")
    with NodeClient(peer.api) as client:
        tx = client.transaction(r["tx_id"])
        assert tx["receipt"]["status"] == "committed"
        proof = verify_proof(client.proof(r["tx_id"]), load_genesis(c.net.genesis_path))
        assert proof.height == r["height"]
        # The same admission checks as a validator's: a transaction for another chain is
        # refused by the peer itself, and a duplicate of a committed one too.
        alien = sign(c.net.identity("org1/alice"), "another-chain",
                     notary.digest("alien", b"x"))
        with pytest.raises(NodeError) as refused:
            client.submit(alien)
        assert (refused.value.status, refused.value.code) == (422, "wrong_chain")
    dup = httpx.post(f"{peer.api}/v1/transactions",
                     content=base64.b64decode(tx["envelope_base64"]),
                     headers={"content-type": "application/octet-stream"}, timeout=10)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_transaction"
    _same_chain(c, ids)

    # SIGKILL the peer; blocks keep committing; restarted, it continues from its ledger.
    height_at_kill = int(_peer_info(peer.api)["height"])
    c.kill("peer0")
    for i in range(4):
        _commit_via(c, ids[i % 3], "peer-down")
    c.start("peer0")
    _caught_up(c, peer.api, ids[0])
    assert int(_peer_info(peer.api)["height"]) > height_at_kill

    # The validator the peer follows (the first of its list) dies: it follows another.
    source = _peer_info(peer.api)["follow"]["source"]
    victim = next(i for i in ids if c.url(i) == source)
    c.kill(victim)
    alive = [i for i in ids if i != victim]
    r2 = _commit_via(c, alive[0], "one-validator-down")
    _caught_up(c, peer.api, alive[0])
    info = _peer_info(peer.api)
    assert info["follow"]["source"] != source
    with NodeClient(peer.api) as client:
        assert client.receipt(r2["tx_id"])["status"] == "committed"
    # And submissions through the peer still reach a live validator.
    _commit_via(c, "peer0", "through-peer-after-failover")


def test_cli_adds_and_lists_a_peer(raft: Cluster) -> None:
    """``consortia dev peer add`` prepares, starts and waits for a peer in the
    background; ``peer list`` shows it caught up; the validators' set is unchanged."""
    c = raft
    _commit_via(c, c.ids()[0], "before-cli-peer")
    r = run_cli("dev", "peer", "add", "peer7", "--org", "org2", network=c.net.root)
    assert r.returncode == 0, describe(r)
    assert "has caught up" in r.stdout
    net = LocalNetwork.open(c.net.root)
    (peer,) = net.peers()
    try:
        assert peer.id == "peer7" and peer.org == "org2"
        _caught_up(c, peer.api, c.ids()[0])
        r = run_cli("dev", "peer", "list", "--json", network=c.net.root)
        assert r.returncode == 0, describe(r)
        (row,) = json.loads(r.stdout)["peers"]
        assert (row["id"], row["status"]) == ("peer7", "ok")
        assert row["background_pid"] is not None
        assert [v["id"] for v in c.info(c.ids()[0])["validators"]] == c.ids()
    finally:
        background.stop(peer)


class _Byzantine(BaseHTTPRequestHandler):
    """A fake validator API serving one tampered block: it stands for a Byzantine validator,
    which cannot run on this machine as a real process without changing the node's code."""

    blocks: list[bytes] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/v1/sync/blocks":
            self.send_response(404)
            self.end_headers()
            return
        start = int(parse_qs(url.query)["from"][0])
        body = msgpack.packb(self.blocks[start - 1:start], use_bin_type=True)
        self.send_response(200)
        self.send_header("content-type", "application/msgpack")
        self.send_header("x-consortia-height", str(len(self.blocks)))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_tampered_block_from_a_byzantine_validator_is_never_stored(raft: Cluster) -> None:
    """The peer's first validator is a fake HTTP server serving the real block 1 with one
    transaction swapped: the peer refuses it, stores nothing of it, moves on to the real
    validators and catches up with the true chain."""
    c = raft
    ids = c.ids()
    _commit_via(c, ids[0], "real")
    real = httpx.get(f"{c.url(ids[0])}/v1/blocks/1", params={"raw": "true"}, timeout=10)
    block = Block.decode(real.content)
    forged = sign(c.net.identity("org1/alice"), c.net.chain_id,
                  notary.digest("forged", os.urandom(8))).envelope
    tampered = dataclasses.replace(block, envelopes=(forged, *block.envelopes[1:]))
    _Byzantine.blocks = [tampered.encode()]
    port = free_port_block(2)
    server = ThreadingHTTPServer(("127.0.0.1", port + 1), _Byzantine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fake = f"http://127.0.0.1:{port + 1}"
        peer = c.net.add_peer("peer1", "org1", api_port=port,
                              follow=[fake, *[c.url(i) for i in ids]])
        c.start("peer1")
        _caught_up(c, peer.api, ids[0])
        info = _peer_info(peer.api)
        assert info["follow"]["refused_blocks"] >= 1
        assert "invalid block" in info["follow"]["failures"][fake]
        mine = Block.decode(httpx.get(f"{peer.api}/v1/blocks/1", params={"raw": "true"},
                                      timeout=10).content)
        assert mine.header_bytes == block.header_bytes and mine.envelopes == block.envelopes
        assert forged not in mine.envelopes
        assert healthy(peer.api)
    finally:
        server.shutdown()
        server.server_close()
