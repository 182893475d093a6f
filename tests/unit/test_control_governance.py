"""Tenants made by the platform, proposals and votes, invitations, members joining and
leaving by vote — through the API, in process, with the fake provisioner and node gateway
of ``tests/control_helpers.py`` (which commits whatever it is given and records it).

That the chain itself checks these configuration transactions: tests/unit/test_org_update.py
(the rule) and tests/integration/test_control_governance.py (real node processes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from consortia.sdk.signing import Credentials
from consortia.types.tx import OrgUpdate, TxType, ValidatorUpdate
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, make_world

HOUR = 3600.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


def ok(r: Any, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def new_tenant(world: ControlWorld, name: str) -> tuple[str, Credentials]:
    with world.client(world.creds("acme")) as c:
        made = ok(c.post("/v1/tenants", json={"name": name, "owner": f"{name}-owner"}))
    key = made["access_key"]
    return made["tenant"]["id"], Credentials(key["access_key_id"], key["secret"])


def tenant_id(world: ControlWorld, name: str) -> str:
    return world.tenants[name].tenant.id


def network(c: TestClient, **policy: Any) -> dict[str, Any]:
    return ok(c.post("/v1/networks", json={
        "name": "consortium", "profile": "ant", "consensus": "raft", "validators": 3,
        "member": {"name": "acme-org"},
        "voting_policy": {"threshold_percentage": 50, "threshold_comparator": "GREATER_THAN",
                          "proposal_duration_hours": 24, **policy}}))


def propose(c: TestClient, net: dict[str, Any], member_id: str, status: int = 201,
            **body: Any) -> dict[str, Any]:
    body = {"member_id": member_id, **body}
    return ok(c.post(f"/v1/networks/{net['id']}/proposals", json=body), status)


def vote(c: TestClient, net: dict[str, Any], proposal: dict[str, Any], member_id: str,
         value: str, status: int = 201) -> dict[str, Any]:
    return ok(c.post(f"/v1/networks/{net['id']}/proposals/{proposal['id']}/votes",
                     json={"member_id": member_id, "vote": value}), status)


def invite_and_join(world: ControlWorld, net: dict[str, Any], voters: list[tuple[str, str]],
                    invitee: tuple[str, Credentials], name: str) -> dict[str, Any]:
    """Propose (by the first voter), all ``voters`` (tenant, member) vote YES, the invitee
    creates its member from the invitation."""
    tenant, member = voters[0]
    with world.client(world.creds(tenant)) as c:
        prop = propose(c, net, member, action="INVITE_TENANT", target_tenant_id=invitee[0])
    for tenant, member in voters:
        with world.client(world.creds(tenant)) as c:
            cast = vote(c, net, prop, member, "YES")
    assert cast["proposal"]["status"] == "APPROVED"
    with world.client(invitee[1]) as c:
        inv = ok(c.get("/v1/invitations", params={"status": "PENDING"}), 200)["items"]
        assert [i["proposal_id"] for i in inv] == [prop["id"]]
        return ok(c.post(f"/v1/networks/{net['id']}/members",
                         json={"name": name, "invitation_id": inv[0]["id"]}))


def config_txs(world: ControlWorld) -> list[Any]:
    return [tx.payload.body for tx in world.gateway.committed
            if tx.payload.type in (TxType.ORG_UPDATE, TxType.VALIDATOR_UPDATE)]


# --- tenants -------------------------------------------------------------------------------


def test_the_platform_tenant_creates_tenants_and_no_other_tenant_can(
        world: ControlWorld) -> None:
    initech, creds = new_tenant(world, "initech")
    with world.client(creds) as c:
        me = ok(c.get("/v1/tenant"), 200)
        assert (me["tenant"]["id"], me["tenant"]["is_platform"], me["user"]["role"]) == (
            initech, False, "owner")
        r = c.post("/v1/tenants", json={"name": "other", "owner": "x"})
        assert (r.status_code, error_code(r)) == (403, "platform_only")
        r = c.get("/v1/tenants")
        assert (r.status_code, error_code(r)) == (403, "platform_only")
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/tenants", json={"name": "initech", "owner": "y"})
        assert (r.status_code, error_code(r)) == (409, "conflict")
        names = [t["name"] for t in ok(c.get("/v1/tenants"), 200)["items"]]
        assert names == ["acme", "globex", "initech"]
        r = c.post("/v1/tenants", json={"name": "Bad Name", "owner": "y"})
        assert r.status_code == 422
        trail = ok(c.get("/v1/audit", params={"action": "tenant.create"}), 200)["items"]
        assert [(a["resource_id"], a["result"], a["error_code"]) for a in trail] == [
            (None, "FAILURE", "validation_failed"), (None, "FAILURE", "conflict"),
            (initech, "SUCCESS", None)]
    _, viewer = world.add_user("acme", "val", "viewer")
    with world.client(viewer) as c:
        r = c.post("/v1/tenants", json={"name": "x", "owner": "y"})
        assert (r.status_code, error_code(r)) == (403, "forbidden_role")


# --- the AMB journey, against the fake chain -----------------------------------------------


def test_invite_vote_join_then_remove_by_vote(world: ControlWorld) -> None:
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    with world.client(world.creds("acme")) as c:
        net = network(c)
        acme_member = net["member"]["id"]
        world.flush()
        prop = propose(c, net, acme_member, action="INVITE_TENANT",
                       target_tenant_id=globex[0], description="welcome globex")
        assert (prop["status"], prop["tally"]) == (
            "IN_PROGRESS", {"yes": 0, "no": 0, "eligible": 1, "outstanding": 1})
        assert prop["threshold_percentage"] == 50
        propose(c, net, acme_member, 409, action="INVITE_TENANT", target_tenant_id=globex[0])
    with world.client(globex[1]) as c:  # not a member yet: sees nothing of the network
        assert c.get(f"/v1/networks/{net['id']}").status_code == 404
        assert c.get(f"/v1/networks/{net['id']}/proposals").status_code == 404
        assert ok(c.get("/v1/invitations"), 200)["items"] == []
    with world.client(world.creds("acme")) as c:
        cast = vote(c, net, prop, acme_member, "YES")
        assert cast["proposal"]["status"] == "APPROVED"
        assert cast["proposal"]["tally"]["yes"] == 1
        vote(c, net, prop, acme_member, "NO", 409)
    with world.client(globex[1]) as c:
        [inv] = ok(c.get("/v1/invitations"), 200)["items"]
        assert (inv["status"], inv["network"]["name"], inv["message"]) == (
            "PENDING", "consortium", "welcome globex")
        assert inv["network"]["voting_policy"]["threshold_percentage"] == 50
        member = ok(c.post(f"/v1/networks/{net['id']}/members",
                           json={"name": "globex-org", "invitation_id": inv["id"]}))
        assert member["status"] == "AVAILABLE"
        assert ok(c.get(f"/v1/invitations/{inv['id']}"), 200)["status"] == "ACCEPTED"
        assert ok(c.get(f"/v1/networks/{net['id']}"), 200)["id"] == net["id"]
        r = c.post(f"/v1/networks/{net['id']}/members",
                   json={"name": "again", "invitation_id": inv["id"]})
        assert (r.status_code, error_code(r)) == (409, "invitation_not_pending")
    [add] = config_txs(world)
    assert isinstance(add, OrgUpdate)
    assert (add.op, add.org_id, add.approvals) == ("add", member["id"], ())  # acme signed
    # two members now: acme's YES alone is not more than 50 %
    with world.client(world.creds("acme")) as c:
        removal = propose(c, net, acme_member, action="REMOVE_MEMBER",
                          target_member_id=member["id"])
        assert vote(c, net, removal, acme_member, "YES")["proposal"]["status"] == "IN_PROGRESS"
    with world.client(globex[1]) as c:
        decided = vote(c, net, removal, member["id"], "YES")["proposal"]
        assert (decided["status"], decided["failure_reason"]) == ("APPROVED", None)
        assert c.get(f"/v1/networks/{net['id']}").status_code == 404  # no longer a member
    with world.client(world.creds("acme")) as c:
        gone = ok(c.get(f"/v1/networks/{net['id']}/members/{member['id']}"), 200)
        assert gone["status"] == "DELETED"
    last = config_txs(world)[-1]
    assert isinstance(last, OrgUpdate) and (last.op, last.org_id) == ("remove", member["id"])
    assert len(last.approvals) == 1  # two organizations signed: the signer and one approval


def test_a_proposal_is_rejected_once_it_cannot_pass_and_expires_undecided(
        world: ControlWorld) -> None:
    initech = new_tenant(world, "initech")
    with world.client(world.creds("acme")) as c:
        net = network(c, threshold_percentage=100,
                      threshold_comparator="GREATER_THAN_OR_EQUAL_TO")
        world.flush()
        acme_member = net["member"]["id"]
    globex_member = invite_and_join(world, net, [("acme", acme_member)],
                                    (tenant_id(world, "globex"), world.creds("globex")),
                                    "globex-org")
    with world.client(world.creds("acme")) as c:
        prop = propose(c, net, acme_member, action="INVITE_TENANT", target_tenant_id=initech[0])
        assert vote(c, net, prop, acme_member, "YES")["proposal"]["status"] == "IN_PROGRESS"
    with world.client(world.creds("globex")) as c:
        decided = vote(c, net, prop, globex_member["id"], "NO")["proposal"]
        assert (decided["status"], decided["tally"]["no"]) == ("REJECTED", 1)
    with world.client(initech[1]) as c:
        assert ok(c.get("/v1/invitations"), 200)["items"] == []
    with world.client(world.creds("acme")) as c:
        prop = propose(c, net, acme_member, action="INVITE_TENANT", target_tenant_id=initech[0])
        world.clock.advance(24 * HOUR + 1)
        assert ok(c.get(f"/v1/networks/{net['id']}/proposals/{prop['id']}"), 200)[
            "status"] == "EXPIRED"
        r = c.post(f"/v1/networks/{net['id']}/proposals/{prop['id']}/votes",
                   json={"member_id": acme_member, "vote": "YES"})
        assert (r.status_code, error_code(r)) == (409, "proposal_not_open")
        listed = ok(c.get(f"/v1/networks/{net['id']}/proposals",
                          params={"status": "EXPIRED"}), 200)["items"]
        assert [p["id"] for p in listed] == [prop["id"]]


def test_refusals_of_proposals_and_votes(world: ControlWorld) -> None:
    globex = tenant_id(world, "globex")
    with world.client(world.creds("acme")) as c:
        net = network(c)
        world.flush()
        mine = net["member"]["id"]
        for body, code in (
            ({"action": "INVITE_TENANT"}, "invalid_target"),
            ({"action": "INVITE_TENANT", "target_tenant_id": globex,
              "target_member_id": mine}, "invalid_target"),
            ({"action": "REMOVE_MEMBER", "target_tenant_id": globex}, "invalid_target"),
            ({"action": "REMOVE_MEMBER", "target_member_id": mine}, "last_member"),
            ({"action": "INVITE_TENANT", "target_tenant_id": "ten-nosuchtenant00"},
             "unknown_tenant"),
        ):
            r = c.post(f"/v1/networks/{net['id']}/proposals", json={"member_id": mine, **body})
            assert error_code(r) == code, (body, r.text)
        prop = propose(c, net, mine, action="INVITE_TENANT", target_tenant_id=globex)
    with world.client(world.creds("globex")) as c:  # another tenant's ids: 404, never more
        for r in (c.get(f"/v1/networks/{net['id']}/proposals/{prop['id']}"),
                  c.post(f"/v1/networks/{net['id']}/proposals/{prop['id']}/votes",
                         json={"member_id": mine, "vote": "YES"}),
                  c.post(f"/v1/networks/{net['id']}/proposals",
                         json={"member_id": mine, "action": "INVITE_TENANT",
                               "target_tenant_id": globex})):
            assert (r.status_code, error_code(r)) == (404, "not_found"), r.text
    _, viewer = world.add_user("acme", "watcher", "viewer")
    with world.client(viewer) as c:
        assert ok(c.get(f"/v1/networks/{net['id']}/proposals"), 200)["items"][0]["id"] == \
            prop["id"]
        r = c.post(f"/v1/networks/{net['id']}/proposals/{prop['id']}/votes",
                   json={"member_id": mine, "vote": "YES"})
        assert (r.status_code, error_code(r)) == (403, "forbidden_role")
    with world.client(world.creds("acme")) as c:
        r = c.post(f"/v1/networks/{net['id']}/members", json={"name": "second"})
        assert (r.status_code, error_code(r)) == (409, "invitation_required")
        r = c.post("/v1/networks", json={
            "name": "never", "profile": "ant", "consensus": "raft",
            "voting_policy": {"threshold_percentage": 100,
                              "threshold_comparator": "GREATER_THAN"}})
        assert (r.status_code, error_code(r)) == (422, "invalid_voting_policy")
        assert ok(c.get(f"/v1/networks/{net['id']}/proposals/{prop['id']}/votes"),
                  200)["items"] == []


def test_invitations_are_rejected_expire_and_a_refused_join_can_be_retried(
        world: ControlWorld) -> None:
    initech, hooli = new_tenant(world, "initech"), new_tenant(world, "hooli")
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    with world.client(world.creds("acme")) as c:
        net = network(c)
        world.flush()
        mine = net["member"]["id"]
        for target in (globex[0], initech[0], hooli[0]):
            prop = propose(c, net, mine, action="INVITE_TENANT", target_tenant_id=target)
            vote(c, net, prop, mine, "YES")
    with world.client(initech[1]) as c:
        [inv] = ok(c.get("/v1/invitations"), 200)["items"]
        assert ok(c.post(f"/v1/invitations/{inv['id']}/reject"), 200)["status"] == "REJECTED"
        r = c.post(f"/v1/invitations/{inv['id']}/reject")
        assert (r.status_code, error_code(r)) == (409, "invitation_not_pending")
    with world.client(globex[1]) as c:
        [inv] = ok(c.get("/v1/invitations"), 200)["items"]
        world.gateway.refuse = "not_enough_approvals"
        failed = ok(c.post(f"/v1/networks/{net['id']}/members",
                           json={"name": "globex-org", "invitation_id": inv["id"]}))
        assert failed["status"] == "CREATE_FAILED"
        assert "not_enough_approvals" in failed["status_reason"]
        assert ok(c.get(f"/v1/invitations/{inv['id']}"), 200)["status"] == "PENDING"
        world.gateway.refuse = None
        joined = ok(c.post(f"/v1/networks/{net['id']}/members",
                           json={"name": "globex-org2", "invitation_id": inv["id"]}))
        assert joined["status"] == "AVAILABLE"
    with world.client(initech[1]) as c:  # another tenant's invitation: not found
        assert c.get(f"/v1/invitations/{inv['id']}").status_code == 404
        r = c.post(f"/v1/networks/{net['id']}/members",
                   json={"name": "stolen", "invitation_id": inv["id"]})
        assert (r.status_code, error_code(r)) == (404, "not_found")
    world.clock.advance(7 * 24 * HOUR + 1)
    with world.client(hooli[1]) as c:
        [inv] = ok(c.get("/v1/invitations"), 200)["items"]
        assert inv["status"] == "EXPIRED"
        r = c.post(f"/v1/networks/{net['id']}/members",
                   json={"name": "late", "invitation_id": inv["id"]})
        assert (r.status_code, error_code(r)) == (409, "invitation_not_pending")


def test_a_refused_removal_fails_the_action_and_keeps_the_member(world: ControlWorld) -> None:
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    with world.client(world.creds("acme")) as c:
        net = network(c, threshold_percentage=0)
        world.flush()
        mine = net["member"]["id"]
    theirs = invite_and_join(world, net, [("acme", mine)], globex, "globex-org")
    world.gateway.refuse = "not_enough_approvals"
    with world.client(world.creds("acme")) as c:
        prop = propose(c, net, mine, action="REMOVE_MEMBER", target_member_id=theirs["id"])
        decided = vote(c, net, prop, mine, "YES")["proposal"]
        assert decided["status"] == "ACTION_FAILED"
        assert "not_enough_approvals" in decided["failure_reason"]
        assert ok(c.get(f"/v1/networks/{net['id']}/members/{theirs['id']}"), 200)[
            "status"] == "AVAILABLE"
    assert not any(isinstance(b, ValidatorUpdate) for b in config_txs(world))
