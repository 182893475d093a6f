"""The Amazon Managed Blockchain journey through the control-plane API, with real node
processes: a network with a voting policy → a proposal to invite tenant B → votes → B
creates its member from the invitation (its organization is added to the running chain)
→ B adds a node (a peer), which syncs → B's users transact through it and their proofs
verify offline → a proposal removes B → B's node stops and the validators refuse B's
identities.

The API runs in process (Starlette's TestClient); the nodes are real processes on
loopback ports, started by the app's LocalProvisioner. Waits poll statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.sdk import (
    NodeClient,
    NodeError,
    load_genesis,
    notary,
    sign,
    verify_proof,
)
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


def test_invite_vote_join_transact_then_remove_by_vote(world: ControlWorld) -> None:
    globex_tenant = world.tenants["globex"].tenant.id
    with world.client(world.creds("acme")) as a:
        net = ok(a.post("/v1/networks", json={
            "name": "consortium", "profile": "ant", "consensus": "raft", "validators": 3,
            "member": {"name": "acme-org"},
            "voting_policy": {"threshold_percentage": 50,
                              "threshold_comparator": "GREATER_THAN",
                              "proposal_duration_hours": 24}}))
        path, acme_member = f"/v1/networks/{net['id']}", net["member"]["id"]
        wait_for(lambda: a.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", lambda: node_logs(world, net["id"]))
        validators = a.get(f"{path}/members/{acme_member}/nodes").json()["items"]
        prop = ok(a.post(f"{path}/proposals", json={
            "member_id": acme_member, "action": "INVITE_TENANT",
            "target_tenant_id": globex_tenant}))
        cast = ok(a.post(f"{path}/proposals/{prop['id']}/votes",
                         json={"member_id": acme_member, "vote": "YES"}))
        assert cast["proposal"]["status"] == "APPROVED"
    with world.client(world.creds("globex")) as b:
        (inv,) = ok(b.get("/v1/invitations"), 200)["items"]
        member = ok(b.post(f"{path}/members", json={"name": "globex-org",
                                                    "invitation_id": inv["id"]}))
        assert member["status"] == "AVAILABLE", member
        genesis = load_genesis(b.get(f"{path}/genesis").content)
        # B adds a node of its own: a peer, no vote needed; it syncs the chain
        made = ok(b.post(f"{path}/members/{member['id']}/nodes",
                         json={"name": "globex-peer", "node_type": "peer"}))
        peer = wait_for(lambda: b.get(f"{path}/members/{member['id']}/nodes/{made['id']}"
                                      ).json(),
                        lambda d: d["status"] == "AVAILABLE", "B's peer did not sync",
                        lambda: node_logs(world, net["id"]))
    assert genesis.config.policies.membership.percentage == 50

    bob = member_client(world, owner(world, "globex"), net["id"], member["id"], "bob")
    api = validators[1]["api_endpoint"]
    with NodeClient(peer["api_endpoint"], timeout=30) as nc:  # B's users, through B's node
        info = nc.chain_info()
        assert info["node"]["role"] == "peer"
        assert {o["id"] for o in info["config"]["organizations"]} == {acme_member, member["id"]}
        tx = sign(bob, net["chain_id"], notary.content("globex-invoice", b"paid"))
        assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"
        proof = nc.proof(tx.id)
    assert verify_proof(proof, genesis).tx_id == tx.id  # across the org_update block
    with NodeClient(api, timeout=30) as nc:  # and the validators have it
        assert nc.receipt(tx.id)["status"] == "committed"

    with world.client(world.creds("acme")) as a:
        removal = ok(a.post(f"{path}/proposals", json={
            "member_id": acme_member, "action": "REMOVE_MEMBER",
            "target_member_id": member["id"]}))
        cast = ok(a.post(f"{path}/proposals/{removal['id']}/votes",
                         json={"member_id": acme_member, "vote": "YES"}))
        assert cast["proposal"]["status"] == "IN_PROGRESS"  # 1 of 2 is not more than 50 %
    with world.client(world.creds("globex")) as b:
        cast = ok(b.post(f"{path}/proposals/{removal['id']}/votes",
                         json={"member_id": member["id"], "vote": "YES"}))
        assert (cast["proposal"]["status"], cast["proposal"]["failure_reason"]) == (
            "APPROVED", None)
    with world.client(world.creds("acme")) as a:
        assert ok(a.get(f"{path}/members/{member['id']}"), 200)["status"] == "DELETED"
    assert world.control.nodes.get(owner(world, "globex"), net["id"], member["id"],
                                   peer["id"]).status.value == "DELETED"  # its peer stopped
    with NodeClient(api, timeout=30) as nc:
        late = sign(bob, net["chain_id"], notary.content("after-removal", b"refused"))
        with pytest.raises(NodeError) as refused:
            nc.submit(late, wait=True, timeout=20)
        assert (refused.value.status, refused.value.code) == (403, "unknown_identity")
        assert [o["id"] for o in nc.chain_info()["config"]["organizations"]] == [acme_member]
