"""A peer node added through the control-plane API to a running chain: real processes.

The network is created through the API (the app's ``LocalProvisioner`` starts its
validator); a peer is added to the member with no configuration change, becomes AVAILABLE
once it has caught up (its health check), serves the chain — blocks, a transaction
submitted through it, a proof that verifies against the genesis the API serves — and is
stopped when deleted. Waits are on statuses, polled, never on measured durations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consortia.sdk import NodeClient, load_genesis, notary, sign, verify_proof
from tests.control_helpers import ControlWorld
from tests.integration.control_real import (
    client_identity,
    node_logs,
    real_control_world,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.HTTPError:
        return False
    return True


def test_a_peer_added_through_the_api_follows_and_serves_the_chain(world: ControlWorld
                                                                  ) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "withpeer", "profile": "ant",
                                          "consensus": "raft", "validators": 1})
        assert r.status_code == 201, r.text
        net = r.json()
        path = f"/v1/networks/{net['id']}"
        nodes = f"{path}/members/{net['member']['id']}/nodes"
        logs = lambda: node_logs(world, net["id"])  # noqa: E731
        wait_for(lambda: c.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", logs)
        (validator,) = c.get(nodes).json()["items"]
        genesis = load_genesis(c.get(f"{path}/genesis").content)
        alice = client_identity(world, net, "alice")
        with NodeClient(validator["api_endpoint"], timeout=30) as vc:
            first = sign(alice, net["chain_id"], notary.digest("before-peer", b"1"))
            assert vc.submit(first, wait=True, timeout=20)["status"] == "committed"

        r = c.post(nodes, json={"name": "reader", "node_type": "peer"})
        assert r.status_code == 201, r.text
        peer = r.json()
        assert peer["node_type"] == "peer" and peer["p2p_endpoint"] is None
        done: dict[str, Any] = wait_for(
            lambda: c.get(f"{nodes}/{peer['id']}").json(),
            lambda d: d["status"] in ("AVAILABLE", "FAILED"), "the peer did not settle", logs)
        assert (done["status"], done["health"]) == ("AVAILABLE", "PASSING"), logs()

        with NodeClient(peer["api_endpoint"], timeout=30) as pc:
            info = pc.chain_info()
            assert info["node"]["role"] == "peer" and info["node"]["id"] == peer["id"]
            assert info["genesis_hash"] == net["genesis_hash"]
            assert info["height"] >= 1 and pc.receipt(first.id)["status"] == "committed"
            tx = sign(alice, net["chain_id"], notary.content("via-peer", b"through the peer"))
            receipt = pc.submit(tx, wait=True, timeout=20)
            assert receipt["status"] == "committed", receipt
            assert verify_proof(pc.proof(tx.id), genesis).tx_id == tx.id
        with NodeClient(validator["api_endpoint"], timeout=30) as vc:
            assert vc.receipt(tx.id)["height"] == receipt["height"]
            assert [v["id"] for v in vc.chain_info()["validators"]] == [validator["id"]]

        r = c.delete(f"{nodes}/{peer['id']}", params={"confirm_name": "reader"})
        assert r.status_code == 204, r.text
        assert c.get(f"{nodes}/{peer['id']}").json()["status"] == "DELETED"
        assert not _answers(peer["api_endpoint"])
        with NodeClient(validator["api_endpoint"], timeout=30) as vc:  # the chain goes on
            after = sign(alice, net["chain_id"], notary.digest("after-peer", b"2"))
            assert vc.submit(after, wait=True, timeout=20)["status"] == "committed"
