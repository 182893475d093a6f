"""The Fabric-shaped journey "organizations → consortium → join → channel → users" through
the control-plane API, with real node processes: acme's network, globex and initech join
by proposal, vote and invitation, acme creates a channel with globex — a chain of its own,
ordered by acme's validator — a client of globex (issued by globex's CA) commits a notary
transaction on the channel's chain and its proof verifies against the channel's genesis,
and the channel's node refuses initech, a member of the network outside the channel, until
acme adds initech to the channel (an org_update on the channel's chain).

The API runs in process (Starlette's TestClient); the nodes are real processes on
loopback ports started by the app's LocalProvisioner. Waits poll statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consortia.control.services import Actor
from consortia.control.store.enums import UserRole
from consortia.sdk import (
    Credentials,
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


def channel_logs(world: ControlWorld, net_id: str, channel_id: str) -> str:
    assert world.settings.data_dir is not None
    d = world.settings.data_dir / "networks" / net_id / "channels" / channel_id
    return "\n".join(f"--- {log.parent.name} ---\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(d.glob("nodes/*/node.log")))


def invite(world: ControlWorld, path: str, voters: list[tuple[Credentials, str]],
           invitee: Credentials, invitee_tenant: str, name: str) -> dict[str, Any]:
    """The first voter proposes to invite ``invitee_tenant``; all vote YES; the invitee
    creates its member from the invitation (its organization joins the chain)."""
    with world.client(voters[0][0]) as c:
        prop = ok(c.post(f"{path}/proposals", json={
            "member_id": voters[0][1], "action": "INVITE_TENANT",
            "target_tenant_id": invitee_tenant}))
    for creds, member_id in voters:
        with world.client(creds) as c:
            cast = ok(c.post(f"{path}/proposals/{prop['id']}/votes",
                             json={"member_id": member_id, "vote": "YES"}))
    assert cast["proposal"]["status"] == "APPROVED"
    with world.client(invitee) as c:
        (inv,) = ok(c.get("/v1/invitations", params={"status": "PENDING"}), 200)["items"]
        member = ok(c.post(f"{path}/members", json={"name": name,
                                                    "invitation_id": inv["id"]}))
    assert member["status"] == "AVAILABLE", member
    return member


def test_a_channel_among_two_members_takes_their_clients_and_refuses_a_third(
        world: ControlWorld) -> None:
    acme, globex = world.creds("acme"), world.creds("globex")
    with world.client(acme) as a:
        net = ok(a.post("/v1/networks", json={
            "name": "consortium", "profile": "ant", "consensus": "raft", "validators": 1,
            "member": {"name": "acme-org"},
            "voting_policy": {"threshold_percentage": 50,
                              "threshold_comparator": "GREATER_THAN_OR_EQUAL_TO"}}))
        path, acme_member = f"/v1/networks/{net['id']}", net["member"]["id"]
        wait_for(lambda: a.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", lambda: node_logs(world, net["id"]))
        made = ok(a.post("/v1/tenants", json={"name": "initech", "owner": "ivy"}))
    initech = Credentials(made["access_key"]["access_key_id"], made["access_key"]["secret"])
    initech_owner = Actor(tenant_id=made["tenant"]["id"], user_id=made["owner"]["id"],
                          role=UserRole.OWNER, request_id="test")
    globex_member = invite(world, path, [(acme, acme_member)], globex,
                           world.tenants["globex"].tenant.id, "globex-org")
    initech_member = invite(world, path, [(acme, acme_member)],  # 1 of 2 is 50 %
                            initech, made["tenant"]["id"], "initech-org")

    with world.client(acme) as a:
        channel = ok(a.post(f"{path}/channels", json={
            "name": "trade", "member_id": acme_member, "member_ids": [globex_member["id"]]}))
        cpath = f"{path}/channels/{channel['id']}"
        wait_for(lambda: a.get(cpath).json(), lambda d: d["status"] == "AVAILABLE",
                 "the channel did not become AVAILABLE",
                 lambda: channel_logs(world, net["id"], channel["id"]))
    with world.client(globex) as b:  # globex sees the channel, its endpoint and genesis
        seen = ok(b.get(cpath), 200)
        (node,) = seen["nodes"]
        genesis = load_genesis(b.get(f"{cpath}/genesis").content)
    assert genesis.hash.hex() == seen["genesis_hash"]
    assert [o.id for o in genesis.config.organizations] == [acme_member, globex_member["id"]]
    with world.client(initech) as c:
        assert c.get(cpath).status_code == 404

    bob = member_client(world, owner(world, "globex"), net["id"], globex_member["id"], "bob")
    ivy = member_client(world, initech_owner, net["id"], initech_member["id"], "ivy")
    with NodeClient(node["api_endpoint"], timeout=30) as nc:
        chain = nc.chain_info()
        assert chain["config"]["chain_id"] == channel["id"]
        tx = sign(bob, channel["id"], notary.content("channel-invoice", b"shipped"))
        assert nc.submit(tx, wait=True, timeout=20)["status"] == "committed"
        proof = nc.proof(tx.id)
        refused = sign(ivy, channel["id"], notary.content("outsider", b"refused"))
        with pytest.raises(NodeError) as outside:
            nc.submit(refused, wait=True, timeout=20)
        assert (outside.value.status, outside.value.code) == (403, "unknown_identity")
    assert verify_proof(proof, genesis).tx_id == tx.id

    # acme's admins alone meet GREATER_THAN_OR_EQUAL_TO 50 % of the channel's two
    # organizations: initech joins the channel by an org_update on its chain
    with world.client(acme) as a:
        grown = ok(a.post(f"{cpath}/members", json={"member_id": initech_member["id"]}))
    assert [m["member_id"] for m in grown["members"]] == [
        acme_member, globex_member["id"], initech_member["id"]]
    with NodeClient(node["api_endpoint"], timeout=30) as nc:
        assert [o["id"] for o in nc.chain_info()["config"]["organizations"]] == [
            acme_member, globex_member["id"], initech_member["id"]]
        joined = sign(ivy, channel["id"], notary.content("insider", b"accepted"))
        assert nc.submit(joined, wait=True, timeout=20)["status"] == "committed"
        late = nc.proof(joined.id)
    assert verify_proof(late, genesis).tx_id == joined.id  # across the org_update block
