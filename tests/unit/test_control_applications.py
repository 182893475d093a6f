"""Join codes, join applications and validators added by proposal (ADR 0018) — through the
API, in process, with the fake provisioner and node gateway of ``tests/control_helpers.py``
(which commits whatever it is given and records it).

That the chain itself checks the validator change's approvals: tests/unit/test_org_update.py
and tests/integration/test_control_applications.py (real node processes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from consortia.control.store.models import JoinCode
from consortia.types.tx import ValidatorUpdate
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, make_world
from tests.unit.test_control_governance import (
    HOUR,
    config_txs,
    invite_and_join,
    network,
    new_tenant,
    ok,
    propose,
    tenant_id,
    vote,
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


def join_code(c: TestClient, net: dict[str, Any], member_id: str, status: int = 201,
              **body: Any) -> dict[str, Any]:
    return ok(c.post(f"/v1/networks/{net['id']}/join-codes",
                     json={"member_id": member_id, **body}), status)


def apply(c: TestClient, code: str, name: str = "globex-org", **body: Any) -> Any:
    return c.post("/v1/join-applications",
                  json={"join_code": code, "member_name": name, **body})


def acme_network(world: ControlWorld, **policy: Any) -> tuple[dict[str, Any], str]:
    with world.client(world.creds("acme")) as c:
        net = network(c, **policy)
        world.flush()
    return net, net["member"]["id"]


# --- join codes and applications -----------------------------------------------------------


def test_apply_with_a_code_accept_vote_and_join(world: ControlWorld) -> None:
    net, mine = acme_network(world)
    apps = f"/v1/networks/{net['id']}/join-applications"
    with world.client(world.creds("acme")) as c:
        made = join_code(c, net, mine, description="for globex", max_uses=1)
        code = made["join_code"]
        assert code.startswith(made["id"] + ".") and len(code.split(".")[1]) == 43
        assert (made["status"], made["usable"], made["uses"]) == ("ACTIVE", True, 0)
        [listed] = ok(c.get(f"/v1/networks/{net['id']}/join-codes"), 200)["items"]
        assert "join_code" not in listed and code not in str(listed)
    with world.control.transaction() as db:  # only a hash is kept
        row = db.get(JoinCode, made["id"])
        assert row is not None and code.split(".")[1] not in row.secret_hmac
    with world.client(world.creds("globex")) as c:
        assert c.get(f"/v1/networks/{net['id']}").status_code == 404  # still cannot see it
        app = ok(apply(c, code, message="we run the port of Hamburg"))
        assert (app["status"], app["network"]["name"], app["proposal_id"]) == (
            "PENDING", "consortium", None)
        assert [a["id"] for a in ok(c.get("/v1/join-applications"), 200)["items"]] == [
            app["id"]]
        assert c.get(apps).status_code == 404  # the network's side is not the applicant's
    with world.client(world.creds("acme")) as c:
        assert ok(c.get(f"/v1/networks/{net['id']}/join-codes"), 200)["items"][0][
            "usable"] is False  # used up (max_uses 1)
        [seen] = ok(c.get(apps, params={"status": "PENDING"}), 200)["items"]
        assert (seen["id"], seen["message"]) == (app["id"], "we run the port of Hamburg")
        accepted = ok(c.post(f"{apps}/{app['id']}/accept", json={"member_id": mine}), 200)
        prop = ok(c.get(f"/v1/networks/{net['id']}/proposals/{accepted['proposal_id']}"), 200)
        assert (prop["action"], prop["target_tenant_id"], prop["description"]) == (
            "INVITE_TENANT", tenant_id(world, "globex"), "we run the port of Hamburg")
        r = c.post(f"{apps}/{app['id']}/accept", json={"member_id": mine})
        assert (r.status_code, error_code(r)) == (409, "application_not_pending")
        r = c.post(f"{apps}/{app['id']}/reject")
        assert (r.status_code, error_code(r)) == (409, "application_not_pending")
        assert ok(c.get(f"/v1/join-applications/{app['id']}"), 200)["status"] == "PENDING"
        vote(c, net, prop, mine, "YES")
    with world.client(world.creds("globex")) as c:
        approved = ok(c.get(f"/v1/join-applications/{app['id']}"), 200)
        assert approved["status"] == "APPROVED" and approved["invitation_id"]
        member = ok(c.post(f"/v1/networks/{net['id']}/members", json={
            "name": approved["member_name"], "invitation_id": approved["invitation_id"]}))
        assert member["status"] == "AVAILABLE"
        done = ok(c.get(f"/v1/join-applications/{app['id']}"), 200)
        assert (done["status"], done["member_id"]) == ("APPROVED", member["id"])
        assert ok(c.get(f"/v1/networks/{net['id']}"), 200)["id"] == net["id"]
        r = c.post(f"/v1/join-applications/{app['id']}/withdraw")
        assert (r.status_code, error_code(r)) == (409, "application_not_pending")


def test_unusable_codes_answer_one_404(world: ControlWorld) -> None:
    net, mine = acme_network(world)
    initech = new_tenant(world, "initech")
    with world.client(world.creds("acme")) as c:
        revoked = join_code(c, net, mine)
        ok(c.post(f"/v1/networks/{net['id']}/join-codes/{revoked['id']}/revoke"), 200)
        short = join_code(c, net, mine, expires_in_hours=1)
        good = join_code(c, net, mine)
        for body, code in (({"expires_in_hours": 0}, 422), ({"max_uses": 0}, 422),
                           ({"expires_in_hours": 31 * 24}, 422)):
            assert c.post(f"/v1/networks/{net['id']}/join-codes",
                          json={"member_id": mine, **body}).status_code == code
    world.clock.advance(HOUR + 1)
    code_id, secret = good["join_code"].split(".")
    wrong = f"{code_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    with world.client(world.creds("globex")) as c:
        for text in (revoked["join_code"], short["join_code"], wrong, "jc-nothing", "",
                     f"jc-0000000000000000.{secret}"):
            r = apply(c, text)
            assert r.status_code in (404, 422), (text, r.text)
            if text:
                assert (r.status_code, error_code(r)) == (404, "join_code_not_found"), text
        assert ok(c.get("/v1/join-applications"), 200)["items"] == []
        ok(apply(c, good["join_code"]))
        r = apply(c, good["join_code"], name="again")
        assert (r.status_code, error_code(r)) == (409, "duplicate_application")
    with world.client(world.creds("acme")) as c:  # a member applying: refused
        r = apply(c, good["join_code"], name="acme-again")
        assert (r.status_code, error_code(r)) == (409, "already_member")
    with world.client(initech[1]) as c:  # codes belong to their tenant
        for r in (c.get(f"/v1/networks/{net['id']}/join-codes"),
                  c.post(f"/v1/networks/{net['id']}/join-codes/{good['id']}/revoke")):
            assert (r.status_code, error_code(r)) == (404, "not_found"), r.text


def test_reject_withdraw_expire_and_a_rejected_proposal(world: ControlWorld) -> None:
    net, mine = acme_network(world)
    apps = f"/v1/networks/{net['id']}/join-applications"
    initech, hooli = new_tenant(world, "initech"), new_tenant(world, "hooli")
    with world.client(world.creds("acme")) as c:
        code = join_code(c, net, mine)["join_code"]
    with world.client(world.creds("globex")) as c:
        first = ok(apply(c, code))
    _, viewer = world.add_user("acme", "watcher", "viewer")
    with world.client(viewer) as c:  # applications are the admins' business
        assert (c.get(apps).status_code, error_code(c.get(apps))) == (403, "forbidden_role")
        r = c.get(f"/v1/join-applications/{first['id']}")
        assert (r.status_code, error_code(r)) == (403, "forbidden_role")
    with world.client(world.creds("acme")) as c:
        rejected = ok(c.post(f"{apps}/{first['id']}/reject"), 200)
        assert rejected["status"] == "REJECTED"
    with world.client(world.creds("globex")) as c:
        again = ok(apply(c, code))  # a rejected applicant may apply again
        assert ok(c.post(f"/v1/join-applications/{again['id']}/withdraw"), 200)[
            "status"] == "WITHDRAWN"
        r = c.post(f"/v1/join-applications/{again['id']}/withdraw")
        assert (r.status_code, error_code(r)) == (409, "application_not_pending")
    with world.client(initech[1]) as c:
        late = ok(apply(c, code, name="initech-org"))
        r = c.post(f"/v1/join-applications/{first['id']}/withdraw")  # globex's: not found
        assert (r.status_code, error_code(r)) == (404, "not_found")
        assert c.get(f"/v1/join-applications/{first['id']}").status_code == 404
    with world.client(hooli[1]) as c:
        voted_down = ok(apply(c, code, name="hooli-org"))
    world.clock.advance(7 * 24 * HOUR + 1)
    with world.client(initech[1]) as c:
        assert ok(c.get(f"/v1/join-applications/{late['id']}"), 200)["status"] == "EXPIRED"
    with world.client(world.creds("acme")) as c:
        r = c.post(f"{apps}/{late['id']}/accept", json={"member_id": mine})
        assert (r.status_code, error_code(r)) == (409, "application_not_pending")
    with world.client(world.creds("acme")) as c:
        code = join_code(c, net, mine)["join_code"]
    with world.client(hooli[1]) as c:  # expired too; a fresh one, voted down, is REJECTED
        assert ok(c.get(f"/v1/join-applications/{voted_down['id']}"), 200)[
            "status"] == "EXPIRED"
        fresh = ok(apply(c, code, name="hooli-org"))
    with world.client(world.creds("acme")) as c:
        accepted = ok(c.post(f"{apps}/{fresh['id']}/accept",
                             json={"member_id": mine, "description": "hooli?"}), 200)
        prop = {"id": accepted["proposal_id"]}
        assert vote(c, net, prop, mine, "NO")["proposal"]["status"] == "REJECTED"
        assert ok(c.get(f"/v1/join-applications/{fresh['id']}"), 200)["status"] == "REJECTED"


def test_an_accepted_application_expires_with_its_proposal(world: ControlWorld) -> None:
    net, mine = acme_network(world)
    with world.client(world.creds("acme")) as c:
        code = join_code(c, net, mine)["join_code"]
    with world.client(world.creds("globex")) as c:
        app = ok(apply(c, code))
    with world.client(world.creds("acme")) as c:
        ok(c.post(f"/v1/networks/{net['id']}/join-applications/{app['id']}/accept",
                  json={"member_id": mine}), 200)
    world.clock.advance(24 * HOUR + 1)  # the proposal's duration
    with world.client(world.creds("globex")) as c:
        assert ok(c.get(f"/v1/join-applications/{app['id']}"), 200)["status"] == "EXPIRED"


# --- validators added by proposal ----------------------------------------------------------


def test_a_validator_the_tenant_alone_cannot_approve_is_added_by_proposal(
        world: ControlWorld) -> None:
    net, mine = acme_network(world)
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    theirs = invite_and_join(world, net, [("acme", mine)], globex, "globex-org")["id"]
    nodes = f"/v1/networks/{net['id']}/members/{theirs}/nodes"
    with world.client(globex[1]) as c:
        r = c.post(nodes, json={"name": "globex-v0"})
        assert (r.status_code, error_code(r)) == (409, "not_enough_approvals")
        assert f"/v1/networks/{net['id']}/proposals" in r.json()["error"]["message"]
        assert "ADD_VALIDATOR" in r.json()["error"]["message"]
        prop = propose(c, net, theirs, action="ADD_VALIDATOR", target_member_id=theirs,
                       node_name="globex-v0", resource_class="medium")
        assert (prop["node_name"], prop["resource_class"], prop["node_id"]) == (
            "globex-v0", "medium", None)
        propose(c, net, theirs, 409, action="ADD_VALIDATOR", target_member_id=theirs,
                node_name="globex-v0")
        assert vote(c, net, prop, theirs, "YES")["proposal"]["status"] == "IN_PROGRESS"
    before = len(config_txs(world))
    with world.client(world.creds("acme")) as c:
        decided = vote(c, net, prop, mine, "YES")["proposal"]
        assert (decided["status"], decided["failure_reason"]) == ("APPROVED", None)
        assert decided["node_id"]
        assert c.get(f"{nodes}/{decided['node_id']}").status_code == 404  # globex's node
    [added] = config_txs(world)[before:]
    assert isinstance(added, ValidatorUpdate)
    assert (added.op, added.validator_id, added.org_id) == ("add", decided["node_id"], theirs)
    assert len(added.approvals) == 1  # globex signed, acme approved
    world.flush()
    with world.client(globex[1]) as c:
        node = ok(c.get(f"{nodes}/{decided['node_id']}"), 200)
        assert (node["name"], node["node_type"], node["resource_class"], node["status"]) == (
            "globex-v0", "validator", "medium", "AVAILABLE")


def test_a_validator_proposal_the_chain_refuses_fails_its_action(world: ControlWorld) -> None:
    net, mine = acme_network(world, threshold_percentage=0)
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    theirs = invite_and_join(world, net, [("acme", mine)], globex, "globex-org")["id"]
    with world.client(globex[1]) as c:
        prop = propose(c, net, theirs, action="ADD_VALIDATOR", target_member_id=theirs,
                       node_name="globex-v0")
        world.gateway.refuse = "not_enough_approvals"
        decided = vote(c, net, prop, theirs, "YES")["proposal"]  # 1 of 2 > 0 %
        assert decided["status"] == "ACTION_FAILED"
        assert "not_enough_approvals" in decided["failure_reason"]
        node = ok(c.get(f"/v1/networks/{net['id']}/members/{theirs}/nodes/"
                        f"{decided['node_id']}"), 200)
        assert node["status"] == "FAILED"


def test_refusals_of_validator_proposals(world: ControlWorld) -> None:
    net, mine = acme_network(world)
    globex = (tenant_id(world, "globex"), world.creds("globex"))
    theirs = invite_and_join(world, net, [("acme", mine)], globex, "globex-org")["id"]
    with world.client(world.creds("acme")) as c:
        solo = ok(c.post("/v1/networks", json={"name": "alone", "profile": "ant",
                                               "consensus": "solo"}))
        world.flush()
        for where, body, status, code in (
            (net, {"target_member_id": mine}, 422, "invalid_target"),
            (net, {"node_name": "v9"}, 422, "invalid_target"),
            (net, {"target_member_id": mine, "node_name": "v9",
                   "target_tenant_id": globex[0]}, 422, "invalid_target"),
            (net, {"target_member_id": theirs, "node_name": "v9"}, 404, "not_found"),
            (net, {"target_member_id": mine, "node_name": "validator0"}, 409, "conflict"),
            (solo, {"target_member_id": solo["member"]["id"], "node_name": "v9"}, 409,
             "config_not_allowed"),
        ):
            member = mine if where is net else solo["member"]["id"]
            r = c.post(f"/v1/networks/{where['id']}/proposals",
                       json={"member_id": member, "action": "ADD_VALIDATOR", **body})
            assert (r.status_code, error_code(r)) == (status, code), (body, r.text)
        r = c.post(f"/v1/networks/{net['id']}/proposals", json={
            "member_id": mine, "action": "INVITE_TENANT", "target_tenant_id": globex[0],
            "node_name": "v9"})
        assert (r.status_code, error_code(r)) == (422, "invalid_target")
