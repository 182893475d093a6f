"""Networks, members and nodes through the API, in process, with the fake provisioner and
node gateway of ``tests/control_helpers.py``: modes, profiles, typed-back names, roles,
idempotency, failures, the sealed CA key, reconciliation after a restart.

Real node processes: ``tests/integration/test_control_chains.py``.
"""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from consortia.control.auth.keys import MEMBER_CA_KEY
from consortia.control.provision import NodeStatus as ProvStatus
from consortia.control.provision import StatusChange
from consortia.control.services import Actor, Control
from consortia.control.store.enums import UserRole
from consortia.control.store.models import AuditRecord, Member, Node
from consortia.crypto import CryptoError
from consortia.crypto.p256 import native_signing_key
from consortia.sdk import load_genesis
from consortia.types.errors import NotFound
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, FakeGateway, FakeProvisioner, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


def create(c: TestClient, status: int = 201, **body: Any) -> dict[str, Any]:
    body = {"name": "net", "profile": "ant", "consensus": "raft", "validators": 1, **body}
    r = c.post("/v1/networks", json=body)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def nodes_path(net: dict[str, Any]) -> str:
    return f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes"


def failures(world: ControlWorld, action: str) -> list[tuple[str | None, int | None]]:
    with world.control.transaction() as db:
        rows = db.scalars(select(AuditRecord).where(AuditRecord.action == action,
                                                    AuditRecord.result == "FAILURE"))
        return [(r.error_code, r.http_status) for r in rows]


# --- creating ------------------------------------------------------------------------------


def test_a_quick_network_founds_its_chain_with_its_first_member(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c, name="ledger", consensus="raft", validators=3,
                     member={"name": "acme-org"},
                     voting_policy={"threshold_percentage": 66,
                                    "threshold_comparator": "GREATER_THAN_OR_EQUAL_TO",
                                    "proposal_duration_hours": 48})
        # the fake provisioner reports AVAILABLE at once: the answer may already show it
        assert net["status"] in ("CREATING", "AVAILABLE")
        assert (net["usage_mode"], net["chain_id"]) == ("quick", net["id"])
        assert net["voting_policy"] == {"threshold_percentage": 66,
                                        "threshold_comparator": "GREATER_THAN_OR_EQUAL_TO",
                                        "proposal_duration_hours": 48}
        member = net["member"]
        assert (member["name"], member["org_id"]) == ("acme-org", member["id"])
        world.flush()
        got = c.get(f"/v1/networks/{net['id']}").json()
        assert (got["status"], got["status_reason"]) == ("AVAILABLE", None)
        assert c.get(f"/v1/networks/{net['id']}/members/{member['id']}").json()[
            "status"] == "AVAILABLE"
        nodes = c.get(nodes_path(net)).json()["items"]
        assert [n["name"] for n in nodes] == ["validator0", "validator1", "validator2"]
        assert {(n["status"], n["health"]) for n in nodes} == {("AVAILABLE", "PASSING")}
        endpoints = [n["api_endpoint"] for n in nodes] + [n["p2p_endpoint"] for n in nodes]
        assert len(set(endpoints)) == 6
        genesis = load_genesis(c.get(f"/v1/networks/{net['id']}/genesis").content)
        assert [n["status"] for n in c.get("/v1/networks").json()["items"]] == ["AVAILABLE"]
    assert genesis.hash.hex() == net["genesis_hash"]
    config = genesis.config
    assert (config.chain_id, config.consensus.value) == (net["id"], "raft")
    assert [o.id for o in config.organizations] == [member["id"]]
    assert [v.id for v in config.validators] == [n["id"] for n in nodes]
    assert [v.endpoint for v in config.validators] == [n["p2p_endpoint"] for n in nodes]
    # each node directory holds its own identity, its passphrase 0600, and no CA key
    assert world.settings.data_dir is not None
    node_dir = world.settings.data_dir / "networks" / net["id"] / "nodes" / nodes[0]["id"]
    assert (node_dir / "node.toml").is_file()
    assert stat.S_IMODE((node_dir / "passphrase").stat().st_mode) == 0o600
    assert [p.name for p in (node_dir / "keystore").iterdir()] == [nodes[0]["id"]]
    assert not list(world.settings.data_dir.rglob("ca-key.pem"))


def test_a_standard_network_waits_for_its_first_member(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        create(c, 422, name="std", usage_mode="standard", member={"name": "x"})
        net = create(c, name="std", consensus="solo", usage_mode="standard",
                     validators=None)
        assert net["member"] is None and net["genesis_hash"] is None
        assert net["status"] == "CREATING" and "first member" in net["status_reason"]
        path = f"/v1/networks/{net['id']}"
        r = c.get(f"{path}/genesis")
        assert r.status_code == 404 and error_code(r) == "not_found"
        world.flush()
        assert c.get(path).json()["status"] == "CREATING"  # nothing runs yet

        body = {"name": "founder", "client_token": "m-1"}
        r = c.post(f"{path}/members", json=body)
        assert r.status_code == 201, r.text
        member = r.json()
        assert c.post(f"{path}/members", json=body).json()["id"] == member["id"]  # a retry
        r = c.post(f"{path}/members", json={**body, "name": "other"})
        assert r.status_code == 409 and error_code(r) == "idempotency_conflict"
        world.flush()
        got = c.get(path).json()
        assert got["status"] == "AVAILABLE" and got["genesis_hash"]
        nodes = c.get(f"{path}/members/{member['id']}/nodes").json()["items"]
        assert [(n["name"], n["p2p_endpoint"]) for n in nodes] == [("validator0", None)]
        r = c.post(f"{path}/members", json={"name": "second"})
        assert r.status_code == 409 and error_code(r) == "invitation_required"
        assert len(c.get(f"{path}/members").json()["items"]) == 1


def test_no_fabric_chains_and_counts_they_can_run(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "fabric", "profile": "fabric"})
        assert r.status_code == 422 and error_code(r) == "profile_not_available", r.text
        assert c.get("/v1/networks").json()["items"] == []
        for consensus, validators in (("pbft", 3), ("solo", 2)):
            r = c.post("/v1/networks", json={"name": "n", "profile": "ant",
                                              "consensus": consensus, "validators": validators})
            assert r.status_code == 422 and error_code(r) == "invalid_validator_count"
        r = c.post("/v1/networks", json={"name": "n", "profile": "ant", "validators": 17})
        assert r.status_code == 422 and error_code(r) == "validation_failed"
        net = create(c, name="default", consensus=None, validators=None)
        assert net["consensus"] == "pbft"  # ant's default
        world.flush()
        assert len(c.get(nodes_path(net)).json()["items"]) == 4
        create(c, 409, name="default")  # a live network's name is taken in the tenant
    assert failures(world, "network.create")[:1] == [("profile_not_available", 422)]
    with world.client(world.creds("globex")) as c:
        create(c, name="default")  # names are per tenant


def test_nodes_are_validators_of_raft_and_pbft_chains(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        solo = create(c, name="solo", consensus="solo", validators=None)
        world.flush()
        r = c.post(nodes_path(solo), json={"name": "more"})
        assert r.status_code == 409 and error_code(r) == "config_not_allowed"
        net = create(c)
        world.flush()
        r = c.post(nodes_path(net), json={"name": "orderer0", "node_type": "orderer"})
        assert r.status_code == 422 and error_code(r) == "node_type_not_available"
        r = c.post(nodes_path(net), json={"name": "validator0"})
        assert r.status_code == 409 and error_code(r) == "conflict"  # name taken
        r = c.post(nodes_path(net), json={"name": "big", "resource_class": "large",
                                          "client_token": "nd-1"})
        assert r.status_code == 201, r.text
        node = r.json()
        assert (node["resource_class"], node["node_type"]) == ("large", "validator")
        again = c.post(nodes_path(net), json={"name": "big", "resource_class": "large",
                                              "client_token": "nd-1"})
        assert again.status_code == 201 and again.json()["id"] == node["id"]
        world.flush()
        assert c.get(f"{nodes_path(net)}/{node['id']}").json()["status"] == "AVAILABLE"
    (tx,) = world.gateway.committed  # the retry committed nothing more
    update = tx.payload.body
    assert (update.op, update.validator_id, update.org_id) == ("add", node["id"],
                                                               net["member"]["id"])
    assert update.endpoint == node["p2p_endpoint"] and update.sequence == 0


def test_peers_join_without_a_configuration_change(world: ControlWorld) -> None:
    """A peer needs no validator_update and no approval: its identity (role peer) is issued
    by the member's CA, its directory follows the validators' APIs, the provisioner starts
    it. Solo networks take peers too; deleting one only stops it."""
    import tomllib

    from cryptography import x509

    from consortia.identity.membership import parse_role
    from consortia.types.config import Role

    with world.client(world.creds("acme")) as c:
        for consensus in ("solo", "raft"):
            net = create(c, name=f"net-{consensus}", consensus=consensus,
                         validators=None if consensus == "solo" else 1)
            world.flush()
            (validator,) = c.get(nodes_path(net)).json()["items"]
            r = c.post(nodes_path(net), json={"name": "peer0", "node_type": "peer"})
            assert r.status_code == 201, r.text
            peer = r.json()
            assert peer["node_type"] == "peer" and peer["p2p_endpoint"] is None
            world.flush()
            assert c.get(f"{nodes_path(net)}/{peer['id']}").json()["status"] == "AVAILABLE"
            d = world.control.runtime.files.node_dir(net["id"], peer["id"])
            doc = tomllib.loads((d / "node.toml").read_text())
            assert doc["node"]["role"] == "peer" and "p2p" not in doc
            assert doc["follow"]["validators"] == [validator["api_endpoint"]]
            cert = x509.load_pem_x509_certificate(
                (d / "keystore" / peer["id"] / "cert.pem").read_bytes())
            assert parse_role(cert) is Role.PEER
            r = c.delete(f"{nodes_path(net)}/{peer['id']}", params={"confirm_name": "peer0"})
            assert r.status_code == 204, r.text
            assert c.get(f"{nodes_path(net)}/{peer['id']}").json()["status"] == "DELETED"
            assert world.provisioner.states[peer["id"]].status.value == "DELETED"
    assert world.gateway.committed == []  # no configuration transaction at all


def test_a_change_the_chain_refuses_leaves_things_as_they_were(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        world.gateway.refuse = "stale_config"
        r = c.post(nodes_path(net), json={"name": "refused"})
        assert r.status_code == 201, r.text
        failed = r.json()
        assert failed["status"] == "FAILED" and "stale_config" in failed["status_reason"]
        world.gateway.refuse = None
        r = c.post(nodes_path(net), json={"name": "joined"})
        joined = r.json()
        world.flush()
        world.gateway.refuse = "not_enough_approvals"
        r = c.delete(f"{nodes_path(net)}/{joined['id']}", params={"confirm_name": "joined"})
        assert r.status_code == 409 and error_code(r) == "validator_change_refused"
        assert c.get(f"{nodes_path(net)}/{joined['id']}").json()["status"] == "AVAILABLE"
        # a node that never joined leaves without a configuration change
        r = c.delete(f"{nodes_path(net)}/{failed['id']}", params={"confirm_name": "refused"})
        assert r.status_code == 204
        assert c.get(f"{nodes_path(net)}/{failed['id']}").json()["status"] == "DELETED"
    assert failures(world, "node.delete") == [("validator_change_refused", 409)]


def test_failed_validators_fail_the_network(world: ControlWorld) -> None:
    world.provisioner.fail_all = True
    with world.client(world.creds("acme")) as c:
        net = create(c, validators=2)
        world.flush()
        got = c.get(f"/v1/networks/{net['id']}").json()
        assert got["status"] == "CREATE_FAILED" and "crash loop" in got["status_reason"]
        member = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}").json()
        assert member["status"] == "CREATE_FAILED"
        nodes = c.get(nodes_path(net)).json()["items"]
        assert {(n["status"], n["health"]) for n in nodes} == {("FAILED", "FAILING")}
        r = c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "net"})
        assert r.status_code == 204
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "DELETED"


# --- deleting ------------------------------------------------------------------------------


def test_deletes_need_the_name_typed_back(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c, name="precious")
        world.flush()
        node = c.post(nodes_path(net), json={"name": "extra"}).json()
        member = f"/v1/networks/{net['id']}/members/{net['member']['id']}"
        for path in (f"/v1/networks/{net['id']}", member, f"{nodes_path(net)}/{node['id']}"):
            for params in ({}, {"confirm_name": "wrong"}, {"confirm_name": "PRECIOUS"}):
                r = c.delete(path, params=params)
                assert r.status_code == 422, (path, r.text)
                assert error_code(r) == "confirmation_mismatch"
        world.flush()
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "AVAILABLE"
        assert {n["status"] for n in c.get(nodes_path(net)).json()["items"]} == {"AVAILABLE"}
    assert failures(world, "network.delete") == [("confirmation_mismatch", 422)] * 3
    assert len(failures(world, "member.delete")) == len(failures(world, "node.delete")) == 3


def test_the_last_member_takes_the_network_with_it(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        member = f"/v1/networks/{net['id']}/members/{net['member']['id']}"
        r = c.delete(member, params={"confirm_name": net["member"]["name"]})
        assert r.status_code == 204, r.text
        assert c.get(member).json()["status"] == "DELETED"
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "DELETED"
        assert {n["status"] for n in c.get(nodes_path(net)).json()["items"]} == {"DELETED"}
        r = c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "net"})
        assert r.status_code == 409 and error_code(r) == "conflict"
        assert {s.status for s in world.provisioner.nodes()} == {ProvStatus.DELETED}
        create(c, name="net")  # a deleted network's name is free again


def test_late_status_reports_do_not_revive_deleted_nodes(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        (node,) = c.get(nodes_path(net)).json()["items"]
        c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "net"})
        for observer in world.provisioner.observers:
            observer(StatusChange(node["id"], None, ProvStatus.AVAILABLE, None, 0.0, 0))
        world.flush()
        assert c.get(f"{nodes_path(net)}/{node['id']}").json()["status"] == "DELETED"


# --- who may ---------------------------------------------------------------------------------


def test_roles(world: ControlWorld) -> None:
    _, viewer = world.add_user("acme", "vera", "viewer")
    _, operator = world.add_user("acme", "otto", "operator")
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
    with world.client(viewer) as c:
        assert c.get(f"/v1/networks/{net['id']}").status_code == 200
        assert c.get(nodes_path(net)).status_code == 200
        for r in (c.post("/v1/networks", json={"name": "v", "profile": "ant"}),
                  c.post(nodes_path(net), json={"name": "v"}),
                  c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "net"})):
            assert r.status_code == 403 and error_code(r) == "forbidden_role", r.text
    with world.client(operator) as c:
        r = c.post("/v1/networks", json={"name": "o", "profile": "ant"})
        assert r.status_code == 403
        r = c.post(f"/v1/networks/{net['id']}/members", json={"name": "o"})
        assert r.status_code == 403
        node = c.post(nodes_path(net), json={"name": "ops"})
        assert node.status_code == 201, node.text
        r = c.delete(f"{nodes_path(net)}/{node.json()['id']}", params={"confirm_name": "ops"})
        assert r.status_code == 204


def test_idempotent_network_creates(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        first = create(c, client_token="net-1")
        again = create(c, client_token="net-1")
        assert again["id"] == first["id"] and again["member"]["id"] == first["member"]["id"]
        r = c.post("/v1/networks", json={"name": "net", "profile": "ant", "consensus": "pbft",
                                          "client_token": "net-1"})
        assert r.status_code == 409 and error_code(r) == "idempotency_conflict"
        assert len(c.get("/v1/networks").json()["items"]) == 1
    assert world.provisioner.created.count(first["member"]["id"]) == 0
    assert len(world.provisioner.created) == 1  # the retry started nothing


# --- secrets ---------------------------------------------------------------------------------


def test_the_member_ca_key_is_sealed_never_plain(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
    made = world.tenants["acme"]
    actor = Actor(tenant_id=made.tenant.id, user_id=made.owner.id, role=UserRole.OWNER,
                  request_id="test")
    ca = world.control.members.certificate_authority(actor, net["id"], net["member"]["id"])
    scalar = native_signing_key(ca.key).private_numbers().private_value.to_bytes(32, "big")
    pem = ca.key.to_pem(None)
    body = b"".join(pem.splitlines()[1:-1])
    needles = [scalar, body[:40], base64.b64encode(scalar)]
    database = Path(world.settings.database_url.removeprefix("sqlite:///"))
    assert world.settings.data_dir is not None
    files = [database, *database.parent.glob(database.name + "-*"),
             *(p for p in world.settings.data_dir.rglob("*") if p.is_file())]
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), f"the CA key is plain in {path}"
    with world.control.transaction() as db:
        member = db.get(Member, net["member"]["id"])
        assert member is not None and member.ca_key_sealed is not None
        sealed = member.ca_key_sealed
    assert world.control.box.open_bytes(MEMBER_CA_KEY, member.id, sealed) == pem
    with pytest.raises(CryptoError):  # bound to its member
        world.control.box.open_bytes(MEMBER_CA_KEY, "mem-someoneelse00000", sealed)
    with pytest.raises(CryptoError):  # and to its kind of secret
        world.control.box.open(member.id, sealed)
    # only an admin of the member's own tenant may use it
    with pytest.raises(NotFound):
        other = world.tenants["globex"]
        world.control.members.certificate_authority(
            Actor(tenant_id=other.tenant.id, user_id=other.owner.id, role=UserRole.OWNER,
                  request_id="t"), net["id"], net["member"]["id"])


# --- without a data directory, and after a restart -----------------------------------------


def test_without_a_data_directory_no_chain_runs(tmp_path: Path) -> None:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=None)
    try:
        with w.client(w.creds("acme")) as c:
            r = c.post("/v1/networks", json={"name": "n", "profile": "ant"})
            assert r.status_code == 503 and error_code(r) == "unavailable"
            net = create(c, name="std", usage_mode="standard", validators=None)
            r = c.post(f"/v1/networks/{net['id']}/members", json={"name": "m"})
            assert r.status_code == 503 and error_code(r) == "unavailable"
            r = c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "std"})
            assert r.status_code == 204
    finally:
        w.close()


def test_a_restart_reconciles_node_statuses(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        kept = create(c, name="kept")
        lost = create(c, name="lost")
        world.flush()
        kept_nodes = {n["id"] for n in c.get(nodes_path(kept)).json()["items"]}
    world.control.close(stop_nodes=False)
    # the provisioner still supervises kept's node, lost's vanished with its state
    prov: FakeProvisioner = world.provisioner
    (lost_node,) = [s for s in prov.states if s not in kept_nodes]
    del prov.states[lost_node]
    control = Control(world.settings, provisioner=prov, gateway=FakeGateway())
    try:
        control.start()
        control.runtime.flush()
        with control.transaction() as db:
            rows = {n.network_id: n for n in db.scalars(select(Node))}
        assert rows[kept["id"]].status.value == "AVAILABLE"
        assert rows[lost["id"]].status.value == "FAILED"
        assert "not supervised" in (rows[lost["id"]].status_reason or "")
        assert prov.opened == 2
    finally:
        control.close()
