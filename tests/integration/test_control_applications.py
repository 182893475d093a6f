"""Join applications and validators added by proposal (ADR 0018) with real node processes:
tenant globex applies to acme's network with a join code, acme accepts and votes, globex
creates its member from the approval's invitation and its peer syncs the chain; and a
validator of globex's — which globex alone cannot approve — is added by an ADD_VALIDATOR
proposal the members vote on, growing the chain's validator set.

The API runs in process (Starlette's TestClient); the nodes are real processes on
loopback ports, started by the app's LocalProvisioner. Waits poll statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from consortia.sdk import NodeClient, notary, sign
from tests.control_helpers import ControlWorld
from tests.integration.control_real import (
    member_client,
    node_logs,
    ok,
    owner,
    real_control_world,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


def acme_network(world: ControlWorld, a: TestClient) -> dict[str, Any]:
    net = ok(a.post("/v1/networks", json={
        "name": "consortium", "profile": "ant", "consensus": "raft", "validators": 1,
        "member": {"name": "acme-org"},
        "voting_policy": {"threshold_percentage": 50, "threshold_comparator": "GREATER_THAN",
                          "proposal_duration_hours": 24}}))
    wait_for(lambda: a.get(f"/v1/networks/{net['id']}").json(),
             lambda d: d["status"] == "AVAILABLE", "the network did not become AVAILABLE",
             lambda: node_logs(world, net["id"]))
    return net


def apply_and_join(world: ControlWorld, net: dict[str, Any]) -> dict[str, Any]:
    """globex applies with acme's join code, acme accepts and votes YES, globex creates
    its member from the invitation: its member."""
    path, acme_member = f"/v1/networks/{net['id']}", net["member"]["id"]
    with world.client(world.creds("acme")) as a:
        code = ok(a.post(f"{path}/join-codes", json={"member_id": acme_member,
                                                      "max_uses": 1}))["join_code"]
    with world.client(world.creds("globex")) as b:
        assert b.get(path).status_code == 404
        app = ok(b.post("/v1/join-applications", json={
            "join_code": code, "member_name": "globex-org", "message": "let us in"}))
    with world.client(world.creds("acme")) as a:
        accepted = ok(a.post(f"{path}/join-applications/{app['id']}/accept",
                             json={"member_id": acme_member}), 200)
        cast = ok(a.post(f"{path}/proposals/{accepted['proposal_id']}/votes",
                         json={"member_id": acme_member, "vote": "YES"}))
        assert cast["proposal"]["status"] == "APPROVED"
    with world.client(world.creds("globex")) as b:
        approved = ok(b.get(f"/v1/join-applications/{app['id']}"), 200)
        assert approved["status"] == "APPROVED"
        member = ok(b.post(f"{path}/members", json={
            "name": approved["member_name"], "invitation_id": approved["invitation_id"]}))
        assert member["status"] == "AVAILABLE", member
        assert ok(b.get(f"/v1/join-applications/{app['id']}"), 200)[
            "member_id"] == member["id"]
    return member


def test_a_tenant_applies_with_a_join_code_is_voted_in_and_its_peer_syncs(
        world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as a:
        net = acme_network(world, a)
    path = f"/v1/networks/{net['id']}"
    member = apply_and_join(world, net)
    with world.client(world.creds("globex")) as b:
        made = ok(b.post(f"{path}/members/{member['id']}/nodes",
                         json={"name": "globex-peer", "node_type": "peer"}))
        peer = wait_for(lambda: b.get(f"{path}/members/{member['id']}/nodes/{made['id']}"
                                      ).json(),
                        lambda d: d["status"] == "AVAILABLE", "globex's peer did not sync",
                        lambda: node_logs(world, net["id"]))
    bob = member_client(world, owner(world, "globex"), net["id"], member["id"], "bob")
    with NodeClient(peer["api_endpoint"], timeout=30) as nc:
        info = nc.chain_info()
        assert {o["id"] for o in info["config"]["organizations"]} == {
            net["member"]["id"], member["id"]}
        tx = sign(bob, net["chain_id"], notary.content("applied", b"and joined"))
        assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"


def test_a_validator_of_another_tenant_is_added_by_proposal(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as a:
        net = acme_network(world, a)
        (first,) = a.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes"
                         ).json()["items"]
    path, acme_member = f"/v1/networks/{net['id']}", net["member"]["id"]
    theirs = apply_and_join(world, net)["id"]
    nodes = f"{path}/members/{theirs}/nodes"
    with world.client(world.creds("globex")) as b:
        r = b.post(nodes, json={"name": "globex-v0"})  # 1 of 2 organizations: no majority
        assert (r.status_code, r.json()["error"]["code"]) == (409, "not_enough_approvals")
        prop = ok(b.post(f"{path}/proposals", json={
            "member_id": theirs, "action": "ADD_VALIDATOR", "target_member_id": theirs,
            "node_name": "globex-v0"}))
        ok(b.post(f"{path}/proposals/{prop['id']}/votes",
                  json={"member_id": theirs, "vote": "YES"}))
    with world.client(world.creds("acme")) as a:
        decided = ok(a.post(f"{path}/proposals/{prop['id']}/votes",
                            json={"member_id": acme_member, "vote": "YES"}))["proposal"]
        assert (decided["status"], decided["failure_reason"]) == ("APPROVED", None), decided
    with world.client(world.creds("globex")) as b:
        node = wait_for(lambda: b.get(f"{nodes}/{decided['node_id']}").json(),
                        lambda d: d["status"] == "AVAILABLE",
                        "the validator added by proposal did not become AVAILABLE",
                        lambda: node_logs(world, net["id"]))
    with NodeClient(first["api_endpoint"], timeout=30) as nc:
        validators = nc.chain_info()["validators"]
        assert {v["id"] for v in validators} == {first["id"], node["id"]}
        assert {v["org_id"] for v in validators} == {acme_member, theirs}
    # the new validator takes part: with two raft validators a block needs both
    bob = member_client(world, owner(world, "globex"), net["id"], theirs, "bob")
    with NodeClient(first["api_endpoint"], timeout=30) as nc:
        tx = sign(bob, net["chain_id"], notary.content("validated", b"by two"))
        assert nc.submit(tx, wait=True, timeout=30)["status"] == "committed"
