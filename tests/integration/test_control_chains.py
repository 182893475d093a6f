"""Chains made through the control-plane API with real node processes: the app's
``LocalProvisioner`` starts them, its status handoff makes the network AVAILABLE, the
nodes take notary transactions whose proofs verify against the genesis the API serves and
keep serving when the control plane restarts (the next one adopts them), and validators
join and leave a raft chain through configuration transactions.

The API runs in process (Starlette's TestClient); the nodes are real processes on
loopback ports. Waits are on statuses, polled, never on measured durations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.control.provision import LocalProvisioner
from consortia.control.services import Control
from consortia.control.services.runtime import HttpNodeGateway
from consortia.sdk import NodeClient, load_genesis, notary, sign, verify_proof
from tests.control_helpers import ControlWorld
from tests.integration.control_real import (
    FAST,
    client_identity,
    node_logs,
    owner,
    real_control_world,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


def test_a_network_made_through_the_api_runs_and_notarizes(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "notary", "profile": "ant",
                                          "consensus": "solo", "client_token": "n-1"})
        assert r.status_code == 201, r.text
        net = r.json()
        assert net["status"] == "CREATING" and net["genesis_hash"]
        path = f"/v1/networks/{net['id']}"
        wait_for(lambda: c.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", lambda: node_logs(world, net["id"]))
        assert c.get(f"{path}/members/{net['member']['id']}").json()["status"] == "AVAILABLE"
        (node,) = c.get(f"{path}/members/{net['member']['id']}/nodes").json()["items"]
        assert (node["status"], node["health"]) == ("AVAILABLE", "PASSING")
        assert node["health_checked_at"] is not None
        genesis = load_genesis(c.get(f"{path}/genesis").content)
    assert genesis.hash.hex() == net["genesis_hash"]
    assert genesis.config.chain_id == net["chain_id"]

    alice = client_identity(world, net, "alice")
    with NodeClient(node["api_endpoint"], timeout=30) as nc:
        assert nc.chain_info()["genesis_hash"] == net["genesis_hash"]
        tx = sign(alice, net["chain_id"], notary.content("invoice-42", b"paid in full"))
        receipt = nc.submit(tx, wait=True, timeout=20)
        assert receipt["status"] == "committed", receipt
        proof = nc.proof(tx.id)
    verified = verify_proof(proof, genesis)
    assert verified.tx_id == tx.id

    # the control plane restarts: its nodes kept running, the next one adopts them
    world.control.close(stop_nodes=False)
    data = world.settings.data_dir
    assert data is not None
    again = Control(world.settings, gateway=HttpNodeGateway(),
                    provisioner=LocalProvisioner(data / "provisioner", policy=FAST))
    try:
        again.start()
        again.runtime.flush()
        (state,) = again.runtime.provisioner.nodes()
        assert state.spec.node_id == node["id"] and state.status.value == "AVAILABLE"
        assert again.nodes.get(owner(world), net["id"], net["member"]["id"],
                               node["id"]).status.value == "AVAILABLE"
        with NodeClient(node["api_endpoint"], timeout=30) as nc:
            tx = sign(alice, net["chain_id"], notary.content("after", b"a restart"))
            assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"
    finally:
        again.close(stop_nodes=True)


def test_validators_join_and_leave_a_raft_chain(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "raft", "profile": "ant", "consensus": "raft",
                                          "validators": 1})
        assert r.status_code == 201, r.text
        net = r.json()
        path = f"/v1/networks/{net['id']}"
        nodes = f"{path}/members/{net['member']['id']}/nodes"
        logs = lambda: node_logs(world, net["id"])  # noqa: E731
        wait_for(lambda: c.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", logs)
        (first,) = c.get(nodes).json()["items"]

        r = c.post(nodes, json={"name": "second"})
        assert r.status_code == 201, r.text
        second = r.json()
        assert second["status"] in ("CREATING", "AVAILABLE"), second
        second = wait_for(lambda: c.get(f"{nodes}/{second['id']}").json(),
                          lambda d: d["status"] == "AVAILABLE",
                          "the added validator did not become AVAILABLE", logs)
        with NodeClient(first["api_endpoint"], timeout=30) as nc:
            assert {v["id"] for v in nc.chain_info()["validators"]} == {first["id"],
                                                                         second["id"]}
        # the new validator votes: a transaction through it commits on both
        alice = client_identity(world, net, "alice")
        with NodeClient(second["api_endpoint"], timeout=30) as nc:
            tx = sign(alice, net["chain_id"], notary.content("joined", b"two validators"))
            assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"

        r = c.delete(f"{nodes}/{second['id']}", params={"confirm_name": "second"})
        assert r.status_code == 204, r.text
        assert c.get(f"{nodes}/{second['id']}").json()["status"] == "DELETED"
        with NodeClient(first["api_endpoint"], timeout=30) as nc:
            assert [v["id"] for v in nc.chain_info()["validators"]] == [first["id"]]
            tx = sign(alice, net["chain_id"], notary.content("left", b"one again"))
            assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"
        r = c.delete(f"{nodes}/{first['id']}", params={"confirm_name": first["name"]})
        assert r.status_code == 409 and r.json()["error"]["code"] == "config_not_allowed"

        r = c.delete(path, params={"confirm_name": "raft"})
        assert r.status_code == 204, r.text
        assert c.get(path).json()["status"] == "DELETED"
        assert [n["status"] for n in c.get(nodes).json()["items"]] == ["DELETED", "DELETED"]
    assert all(s.status.value == "DELETED" for s in world.provisioner.nodes())
