"""Channels through the API, in process, with the fake provisioner and node gateway of
``tests/control_helpers.py`` (the gateway commits whatever it is given and records it):
a channel's own chain (genesis, validators, files), who sees it, members added and removed
by ``org_update`` on the channel's chain under the approval rule, refusals, deletion.

That a channel's chain really runs and refuses organizations outside it:
tests/integration/test_control_channels.py (real node processes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from consortia.sdk import load_genesis
from consortia.types.tx import OrgUpdate, TxType
from tests.control_api_suite import audit_rows, error_code
from tests.control_helpers import ControlWorld, make_world
from tests.unit.test_control_governance import (
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


def consortium(world: ControlWorld, **policy: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """acme's raft network with globex joined by invitation and vote: the network and the
    member id of each tenant."""
    with world.client(world.creds("acme")) as c:
        net = network(c, **policy)
        world.flush()
    members = {"acme": net["member"]["id"]}
    globex = invite_and_join(world, net, [("acme", members["acme"])],
                             (tenant_id(world, "globex"), world.creds("globex")), "globex-org")
    members["globex"] = globex["id"]
    return net, members


def org_txs(world: ControlWorld, chain_id: str) -> list[OrgUpdate]:
    out = []
    for tx in world.gateway.committed:
        if tx.payload.type is TxType.ORG_UPDATE and tx.payload.chain_id == chain_id:
            assert isinstance(tx.payload.body, OrgUpdate)
            out.append(tx.payload.body)
    return out


def ca_der(member: dict[str, Any]) -> bytes:
    cert = x509.load_pem_x509_certificate(member["ca_certificate_pem"].encode())
    return cert.public_bytes(serialization.Encoding.DER)


# --- creating, seeing, deleting ------------------------------------------------------------


def test_a_channel_is_a_chain_of_its_own_among_some_members(world: ControlWorld) -> None:
    net, m = consortium(world)
    _, initech_creds = new_tenant(world, "initech")
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("acme")) as c:
        made = ok(c.post(base, json={"name": "trade", "member_id": m["acme"],
                                     "member_ids": [m["globex"], m["acme"]]}))
        assert (made["status"], made["consensus"], made["chain_id"]) == (
            "CREATING", "solo", made["id"])
        assert made["id"].startswith("chn-")
        assert [x["member_id"] for x in made["members"]] == [m["acme"], m["globex"]]
        world.flush()
        got = ok(c.get(f"{base}/{made['id']}"), 200)
        assert (got["status"], got["status_reason"]) == ("AVAILABLE", None)
        (node,) = got["nodes"]
        assert (node["member_id"], node["status"], node["channel_id"]) == (
            m["acme"], "AVAILABLE", made["id"])
        assert node["api_endpoint"].startswith("http://127.0.0.1:")
        genesis = load_genesis(c.get(f"{base}/{made['id']}/genesis").content)
        network_genesis = load_genesis(c.get(f"/v1/networks/{net['id']}/genesis").content)
        # the network's own chain has its validators, not the channel's
        nodes = ok(c.get(f"/v1/networks/{net['id']}/members/{m['acme']}/nodes"), 200)
    config = genesis.config
    assert config.chain_id == made["id"] and genesis.hash.hex() == got["genesis_hash"]
    assert [o.id for o in config.organizations] == [m["acme"], m["globex"]]
    assert [(v.id, v.org_id) for v in config.validators] == [(node["id"], m["acme"])]
    assert config.policies.membership.percentage == 50
    assert node["id"] not in {v.id for v in network_genesis.config.validators}
    assert {n["id"] for n in nodes["items"]} >= {v.id for v in
                                                 network_genesis.config.validators}
    assert world.settings.data_dir is not None
    chain_dir = world.settings.data_dir / "networks" / net["id"] / "channels" / made["id"]
    assert (chain_dir / "genesis.json").is_file()
    assert (chain_dir / "nodes" / node["id"] / "node.toml").is_file()
    assert node["id"] in world.provisioner.created
    with world.client(world.creds("acme")) as c:  # it stops with the channel, not alone
        r = c.delete(f"/v1/networks/{net['id']}/members/{m['acme']}/nodes/{node['id']}",
                     params={"confirm_name": node["name"]})
        assert (r.status_code, error_code(r)) == (409, "channel_node")

    with world.client(world.creds("globex")) as c:  # a member of the channel: all of it
        seen = ok(c.get(f"{base}/{made['id']}"), 200)
        assert [n["id"] for n in seen["nodes"]] == [node["id"]]
        assert [ch["id"] for ch in ok(c.get(base), 200)["items"]] == [made["id"]]
        assert c.get(f"{base}/{made['id']}/genesis").status_code == 200
    with world.client(initech_creds) as c:  # not a member of the network at all
        assert error_code(c.get(f"{base}/{made['id']}")) == "not_found"
        assert c.get(base).status_code == 404


def test_channel_visibility_inside_the_network(world: ControlWorld) -> None:
    net, m = consortium(world)
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("globex")) as c:  # globex's own channel, without acme
        mine = ok(c.post(base, json={"name": "globex-only", "member_id": m["globex"]}))
        world.flush()
    with world.client(world.creds("acme")) as c:  # the network's creator sees it, no nodes
        seen = ok(c.get(f"{base}/{mine['id']}"), 200)
        assert (seen["status"], seen["nodes"]) == ("AVAILABLE", None)
        r = c.post(f"{base}/{mine['id']}/members", json={"member_id": m["acme"]})
        assert (r.status_code, error_code(r)) == (409, "not_enough_approvals")
        r = c.delete(f"{base}/{mine['id']}", params={"confirm_name": "globex-only"})
        assert (r.status_code, error_code(r)) == (403, "not_channel_creator")
        acme = ok(c.post(base, json={"name": "acme-only", "member_id": m["acme"]}))
    with world.client(world.creds("globex")) as c:  # a member of the network, not in it
        assert error_code(c.get(f"{base}/{acme['id']}")) == "not_found"
        assert error_code(c.get(f"{base}/{acme['id']}/genesis")) == "not_found"
        assert [ch["id"] for ch in ok(c.get(base), 200)["items"]] == [mine["id"]]
        r = c.delete(f"{base}/{acme['id']}", params={"confirm_name": "acme-only"})
        assert error_code(r) == "not_found"


def test_deleting_a_channel_stops_its_validators(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = network(c)
        world.flush()
        base = f"/v1/networks/{net['id']}/channels"
        made = ok(c.post(base, json={"name": "trade", "member_id": net["member"]["id"],
                                     "consensus": "raft"}))
        world.flush()
        nodes = ok(c.get(f"{base}/{made['id']}"), 200)["nodes"]
        assert len(nodes) == 3 and all(n["p2p_endpoint"] for n in nodes)
        r = c.delete(f"{base}/{made['id']}", params={"confirm_name": "Trade"})
        assert (r.status_code, error_code(r)) == (422, "confirmation_mismatch")
        assert c.delete(f"{base}/{made['id']}", params={"confirm_name": "trade"}
                        ).status_code == 204
        gone = ok(c.get(f"{base}/{made['id']}"), 200)
        assert gone["status"] == "DELETED"
        assert {n["status"] for n in gone["nodes"]} == {"DELETED"}
        r = c.delete(f"{base}/{made['id']}", params={"confirm_name": "trade"})
        assert (r.status_code, error_code(r)) == (409, "conflict")
        r = c.post(f"{base}/{made['id']}/members", json={"member_id": net["member"]["id"]})
        assert (r.status_code, error_code(r)) == (409, "channel_not_available")
        again = ok(c.post(base, json={"name": "trade2", "member_id": net["member"]["id"]}))
        world.flush()
        assert c.delete(f"/v1/networks/{net['id']}",
                        params={"confirm_name": "consortium"}).status_code == 204
        after = ok(c.get(f"{base}/{again['id']}"), 200)
    assert after["status"] == "DELETED" and after["nodes"][0]["status"] == "DELETED"
    states = world.provisioner.states
    assert all(states[n["id"]].status.value == "DELETED" for n in nodes)
    acme = world.tenants["acme"].tenant.id
    assert [r.action for r in audit_rows(world, tenant_id=acme, resource_id=made["id"])
            if r.result == "SUCCESS"] == ["channel.create", "channel.delete"]


def test_a_member_removed_from_the_network_takes_its_channels(world: ControlWorld) -> None:
    net, m = consortium(world)
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("globex")) as c:
        made = ok(c.post(base, json={"name": "globex-trade", "member_id": m["globex"],
                                     "member_ids": [m["acme"]]}))
        world.flush()
        (node,) = ok(c.get(f"{base}/{made['id']}"), 200)["nodes"]
    with world.client(world.creds("acme")) as c:
        removal = propose(c, net, m["acme"], action="REMOVE_MEMBER",
                          target_member_id=m["globex"])
        vote(c, net, removal, m["acme"], "YES")
    with world.client(world.creds("globex")) as c:
        assert vote(c, net, removal, m["globex"], "YES")["proposal"]["status"] == "APPROVED"
    with world.client(world.creds("acme")) as c:  # acme is still in the channel: sees it
        gone = ok(c.get(f"{base}/{made['id']}"), 200)
    assert gone["status"] == "DELETED" and removal["id"] in gone["status_reason"]
    assert gone["nodes"][0]["status"] == "DELETED"
    assert world.provisioner.states[node["id"]].status.value == "DELETED"


# --- members -------------------------------------------------------------------------------


def test_members_join_and_leave_by_org_update_on_the_channel_chain(
        world: ControlWorld) -> None:
    net, m = consortium(world, threshold_comparator="GREATER_THAN_OR_EQUAL_TO")
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("globex")) as c:
        globex_member = ok(c.get(f"/v1/networks/{net['id']}/members/{m['globex']}"), 200)
    with world.client(world.creds("acme")) as c:
        made = ok(c.post(base, json={"name": "trade", "member_id": m["acme"]}))
        world.flush()
        assert org_txs(world, made["id"]) == []
        grown = ok(c.post(f"{base}/{made['id']}/members", json={"member_id": m["globex"]}))
        assert [x["member_id"] for x in grown["members"]] == [m["acme"], m["globex"]]
        (add,) = org_txs(world, made["id"])
        assert (add.op, add.org_id, add.ca_cert, add.approvals) == (
            "add", m["globex"], ca_der(globex_member), ())  # acme's admin signed alone
        r = c.post(f"{base}/{made['id']}/members", json={"member_id": m["globex"]})
        assert (r.status_code, error_code(r)) == (409, "conflict")
    with world.client(world.creds("globex")) as c:  # now in it: sees it and its nodes
        assert len(ok(c.get(f"{base}/{made['id']}"), 200)["nodes"]) == 1
    with world.client(world.creds("acme")) as c:
        r = c.delete(f"{base}/{made['id']}/members/{m['acme']}")
        assert (r.status_code, error_code(r)) == (409, "config_not_allowed")
        # 1 of 2 organizations meets GREATER_THAN_OR_EQUAL_TO 50
        assert c.delete(f"{base}/{made['id']}/members/{m['globex']}").status_code == 204
        _, remove = org_txs(world, made["id"])
        assert (remove.op, remove.org_id) == ("remove", m["globex"])
        r = c.delete(f"{base}/{made['id']}/members/{m['globex']}")
        assert (r.status_code, error_code(r)) == (404, "not_found")
    with world.client(world.creds("globex")) as c:
        assert c.get(f"{base}/{made['id']}").status_code == 404
    acme = world.tenants["acme"].tenant.id
    assert [r.action for r in audit_rows(world, tenant_id=acme, resource_id=made["id"])
            if r.result == "SUCCESS"] == [
        "channel.create", "channel.add_member", "channel.remove_member"]


def test_changes_the_callers_members_cannot_approve_are_refused(world: ControlWorld) -> None:
    net, m = consortium(world)  # GREATER_THAN 50: 1 of 2 is not enough
    initech, creds = new_tenant(world, "initech")
    joined = invite_and_join(world, net, [("acme", m["acme"]), ("globex", m["globex"])],
                             (initech, creds), "initech-org")
    base = f"/v1/networks/{net['id']}/channels"
    before = len(world.gateway.committed)
    with world.client(world.creds("acme")) as c:
        made = ok(c.post(base, json={"name": "trade", "member_id": m["acme"],
                                     "member_ids": [m["globex"]]}))
        world.flush()
        for r in (c.post(f"{base}/{made['id']}/members", json={"member_id": joined["id"]}),
                  c.delete(f"{base}/{made['id']}/members/{m['globex']}")):
            assert (r.status_code, error_code(r)) == (409, "not_enough_approvals"), r.text
        members = ok(c.get(f"{base}/{made['id']}"), 200)["members"]
    assert [x["member_id"] for x in members] == [m["acme"], m["globex"]]
    assert len(world.gateway.committed) == before  # nothing was submitted
    refused = [r for r in audit_rows(world, tenant_id=world.tenants["acme"].tenant.id)
               if r.result == "FAILURE"]
    assert [(r.action, r.error_code) for r in refused] == [
        ("channel.add_member", "not_enough_approvals"),
        ("channel.remove_member", "not_enough_approvals")]


def test_a_change_the_channel_chain_refuses_changes_nothing(world: ControlWorld) -> None:
    net, m = consortium(world)
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("acme")) as c:
        made = ok(c.post(base, json={"name": "trade", "member_id": m["acme"]}))
        world.flush()
        world.gateway.refuse = "stale_config"
        r = c.post(f"{base}/{made['id']}/members", json={"member_id": m["globex"]})
        assert (r.status_code, error_code(r)) == (409, "org_change_refused")
        assert "stale_config" in r.json()["error"]["message"]
        assert len(ok(c.get(f"{base}/{made['id']}"), 200)["members"]) == 1


# --- refusals of creates -------------------------------------------------------------------


def test_create_refusals_idempotency_and_failures(world: ControlWorld) -> None:
    net, m = consortium(world)
    base = f"/v1/networks/{net['id']}/channels"
    with world.client(world.creds("acme")) as c:
        for body, status, code in (
            ({"member_id": m["globex"]}, 404, "not_found"),  # not the caller's member
            ({"member_id": m["acme"], "member_ids": ["mem-nosuchmember00"]}, 404,
             "not_found"),
            ({"member_id": m["acme"], "consensus": "pbft", "unknown": 1}, 422,
             "validation_failed"),
        ):
            r = c.post(base, json={"name": "x", **body})
            assert (r.status_code, error_code(r)) == (status, code), r.text
        assert ok(c.get(base), 200)["items"] == []
        body = {"name": "trade", "member_id": m["acme"], "consensus": "pbft",
                "client_token": "chan-1"}
        first = ok(c.post(base, json=body))
        assert len(first["nodes"]) == 4
        assert ok(c.post(base, json=body))["id"] == first["id"]  # a retry: same channel
        r = c.post(base, json={**body, "name": "other"})
        assert (r.status_code, error_code(r)) == (409, "idempotency_conflict")
        r = c.post(base, json={"name": "trade", "member_id": m["acme"]})
        assert (r.status_code, error_code(r)) == (409, "conflict")
        world.provisioner.fail_all = True
        failed = ok(c.post(base, json={"name": "doomed", "member_id": m["acme"]}))
        world.flush()
        failed = ok(c.get(f"{base}/{failed['id']}"), 200)
        assert failed["status"] == "CREATE_FAILED"
        assert "crash loop" in failed["status_reason"]
        r = c.post(f"{base}/{failed['id']}/members", json={"member_id": m["globex"]})
        assert (r.status_code, error_code(r)) == (409, "channel_not_available")
    assert len(world.provisioner.created) == len(set(world.provisioner.created))
    _, viewer = world.add_user("acme", "vic", "viewer")
    with world.client(viewer) as c:
        r = c.post(base, json={"name": "v", "member_id": m["acme"]})
        assert (r.status_code, error_code(r)) == (403, "forbidden_role")
        assert len(ok(c.get(base), 200)["items"]) == 2  # viewers read
