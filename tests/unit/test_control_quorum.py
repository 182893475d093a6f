"""Quorum networks and their members' Ethereum accounts through the control-plane API, in
process, with the fake provisioner and node gateway of ``tests/control_helpers.py`` (the
gateway keeps account bindings as a chain's configuration would; no node runs here):
the genesis written, EVM settings and their refusals, RPC URLs, binding and unbinding
with their refusals, tenant isolation, the audit trail.

Real node processes and web3: ``tests/integration/test_control_quorum.py``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from starlette.testclient import TestClient

from consortia.control.provision import NodeStatus as ProvStatus
from consortia.control.services import Actor
from consortia.control.services.networks import NewNetwork
from consortia.control.store.enums import Profile as NetworkProfile
from consortia.control.store.enums import UsageMode, UserRole
from consortia.control.store.models import AuditRecord
from consortia.sdk import load_genesis
from consortia.sdk.tx import SignedTx
from consortia.types.config import Profile
from consortia.types.errors import InvalidRequest
from consortia.types.tx import AccountUpdate
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, make_world, require_node

STATIC = Path(__file__).parents[2] / "src" / "consortia" / "control" / "http" / "static"
ADDR = Account.from_key(b"\x11" * 32).address
"""An EIP-55 checksummed address."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


def create(c: TestClient, status: int = 201, **body: Any) -> dict[str, Any]:
    body = {"name": "q", "profile": "quorum", "consensus": "raft", "validators": 1, **body}
    r = c.post("/v1/networks", json=body)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def accounts_path(net: dict[str, Any], member_id: str | None = None) -> str:
    return f"/v1/networks/{net['id']}/members/{member_id or net['member']['id']}/accounts"


def account_updates(world: ControlWorld) -> list[SignedTx]:
    return [tx for tx in world.gateway.committed if isinstance(tx.payload.body, AccountUpdate)]


def failures(world: ControlWorld, action: str) -> list[tuple[str | None, int | None]]:
    with world.control.transaction() as db:
        rows = db.scalars(select(AuditRecord).where(AuditRecord.action == action,
                                                    AuditRecord.result == "FAILURE")
                          .order_by(AuditRecord.created_at))
        return [(r.error_code, r.http_status) for r in rows]


# --- networks ------------------------------------------------------------------------------


def test_a_quorum_network_writes_an_evm_genesis_and_rpc_urls(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c, evm_chain_id=4242, evm_gas_limit=10_000_000)
        assert (net["profile"], net["evm_chain_id"], net["evm_gas_limit"]) == (
            "quorum", 4242, 10_000_000)
        world.flush()
        got = c.get(f"/v1/networks/{net['id']}").json()
        assert (got["status"], got["evm_chain_id"]) == ("AVAILABLE", 4242)
        genesis = load_genesis(world.settings.data_dir / "networks" / net["id"]
                               / "genesis.json")
        config = genesis.config
        assert config.profile is Profile.QUORUM and config.evm is not None
        assert (config.evm.chain_id, config.evm.gas_limit) == (4242, 10_000_000)
        assert config.evm.accounts == () and config.evm.alloc == ()
        (node,) = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes"
                        ).json()["items"]
        assert node["rpc_url"] == node["api_endpoint"] + "/rpc"
        assert node["ws_url"] == "ws" + node["rpc_url"].removeprefix("http")
        # an ant network's nodes have none, and no EVM settings
        ant = c.post("/v1/networks", json={"name": "a", "profile": "ant", "consensus": "solo"}
                     ).json()
        assert (ant["evm_chain_id"], ant["evm_gas_limit"]) == (None, None)
        (ant_node,) = c.get(f"/v1/networks/{ant['id']}/members/{ant['member']['id']}/nodes"
                            ).json()["items"]
        assert (ant_node["rpc_url"], ant_node["ws_url"]) == (None, None)


def test_evm_chain_ids_default_from_1337_and_are_never_reused(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        first = create(c, name="q1", consensus="solo")
        assert (first["evm_chain_id"], first["evm_gas_limit"]) == (1337, 30_000_000)
        assert first["consensus"] == "solo"
        assert create(c, name="q2", evm_chain_id=1338)["evm_chain_id"] == 1338
        assert create(c, name="q3")["evm_chain_id"] == 1339
        world.flush()
        c.delete(f"/v1/networks/{first['id']}", params={"confirm_name": "q1"})
    with world.client(world.creds("globex")) as g:  # any tenant's, deleted ones too
        r = g.post("/v1/networks", json={"name": "g", "profile": "quorum",
                                         "evm_chain_id": 1337})
        assert r.status_code == 409 and error_code(r) == "evm_chain_id_taken"
        assert create(g, name="g")["evm_chain_id"] == 1340
        assert g.get("/v1/networks").json()["items"][0]["name"] == "g"


def test_evm_settings_are_checked_before_anything_is_written(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        for bad in ({"evm_chain_id": 0}, {"evm_chain_id": 2**53},
                    {"evm_gas_limit": 21_000}, {"evm_chain_id": "x"}):
            r = c.post("/v1/networks", json={"name": "q", "profile": "quorum", **bad})
            assert r.status_code == 422 and error_code(r) == "validation_failed", bad
        r = c.post("/v1/networks", json={"name": "a", "profile": "ant", "evm_chain_id": 5})
        assert r.status_code == 422 and error_code(r) == "evm_not_applicable"
        r = c.post("/v1/networks", json={"name": "f", "profile": "fabric"})
        assert r.status_code == 422 and error_code(r) == "profile_not_available"
        assert c.get("/v1/networks").json()["items"] == []
    assert world.provisioner.created == []


def test_a_standard_quorum_network_keeps_its_settings_for_its_first_member(
        world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c, usage_mode="standard", evm_chain_id=777, validators=None,
                     consensus="pbft")
        assert (net["status"], net["evm_chain_id"], net["member"]) == ("CREATING", 777, None)
        r = c.post(f"/v1/networks/{net['id']}/members", json={"name": "first"})
        assert r.status_code == 201, r.text
        world.flush()
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "AVAILABLE"
    config = load_genesis(world.settings.data_dir / "networks" / net["id"]
                          / "genesis.json").config
    assert config.evm is not None and config.evm.chain_id == 777
    assert str(config.consensus) == "pbft" and len(config.validators) == 4


# --- accounts ------------------------------------------------------------------------------


def test_a_member_binds_lists_and_unbinds_its_accounts(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        path, org = accounts_path(net), net["member"]["org_id"]
        assert c.get(path).json() == {"items": [], "next_page_token": None}
        r = c.post(path, json={"address": ADDR.lower()})  # any case; answered checksummed
        assert r.status_code == 201, r.text
        assert r.json() == {"address": ADDR, "network_id": net["id"],
                            "member_id": net["member"]["id"], "org_id": org}
        (tx,) = account_updates(world)
        assert tx.payload.chain_id == net["chain_id"]
        assert tx.payload.body == AccountUpdate("add", org, (bytes.fromhex(ADDR[2:]),))
        assert [a["address"] for a in c.get(path).json()["items"]] == [ADDR]
        r = c.post(path, json={"address": ADDR})
        assert r.status_code == 409 and error_code(r) == "account_already_bound"
        r = c.delete(f"{path}/{ADDR}")
        assert r.status_code == 204, r.text
        assert account_updates(world)[-1].payload.body.op == "remove"  # type: ignore[union-attr]
        assert c.get(path).json()["items"] == []
        r = c.delete(f"{path}/{ADDR}")
        assert r.status_code == 404 and error_code(r) == "account_not_bound"
        assert len(account_updates(world)) == 2  # refusals sign nothing
    assert failures(world, "account.bind") == [("account_already_bound", 409)]
    assert failures(world, "account.unbind") == [("account_not_bound", 404)]
    with world.control.transaction() as db:
        done = [(r.action, r.resource_type, r.resource_id) for r in db.scalars(
            select(AuditRecord).where(AuditRecord.result == "SUCCESS",
                                      AuditRecord.resource_type == "account")
            .order_by(AuditRecord.created_at))]
    assert done == [("account.bind", "account", ADDR), ("account.unbind", "account", ADDR)]


def test_bad_addresses_and_other_profiles_are_refused(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        ant = c.post("/v1/networks", json={"name": "a", "profile": "ant", "consensus": "solo"}
                     ).json()
        world.flush()
        for bad in ("0x1234", ADDR[2:], "0x" + "g" * 40, ADDR + "00"):
            r = c.post(accounts_path(net), json={"address": bad})
            assert r.status_code == 422 and error_code(r) == "invalid_address", bad
            r = c.delete(f"{accounts_path(net)}/{bad}")
            assert r.status_code == 422 and error_code(r) == "invalid_address", bad
        r = c.post(accounts_path(net), json={"address": ADDR, "org_id": "other"})
        assert r.status_code == 422 and error_code(r) == "validation_failed"
        for method in ("GET", "POST"):
            r = c.request(method, accounts_path(ant),
                          json={"address": ADDR} if method == "POST" else None)
            assert r.status_code == 409 and error_code(r) == "not_quorum_network", method
        assert account_updates(world) == []


def test_an_address_belongs_to_one_member_and_only_its_tenant_binds_for_it(
        world: ControlWorld) -> None:
    acme_tenant = world.tenants["acme"].tenant.id
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        mine = net["member"]["id"]
        # globex joins by invitation (acme's member votes YES)
        proposals = f"/v1/networks/{net['id']}/proposals"
        globex_tenant = world.tenants["globex"].tenant.id
        prp = c.post(proposals, json={"member_id": mine, "action": "INVITE_TENANT",
                                      "target_tenant_id": globex_tenant}).json()
        c.post(f"{proposals}/{prp['id']}/votes", json={"member_id": mine, "vote": "YES"})
        assert c.post(accounts_path(net), json={"address": ADDR}).status_code == 201
    with world.client(world.creds("globex")) as g:
        (inv,) = g.get("/v1/invitations").json()["items"]
        theirs = g.post(f"/v1/networks/{net['id']}/members",
                        json={"name": "globex-org", "invitation_id": inv["id"]}).json()
        assert theirs["status"] == "AVAILABLE", theirs
        # globex sees acme's bindings (the configuration is every organization's) …
        assert [a["address"] for a in g.get(accounts_path(net)).json()["items"]] == [ADDR]
        # … but cannot bind or unbind for acme's member: not found, as for any other id
        r = g.post(accounts_path(net), json={"address": ADDR})
        assert r.status_code == 404 and error_code(r) == "not_found"
        r = g.delete(f"{accounts_path(net)}/{ADDR}")
        assert r.status_code == 404 and error_code(r) == "not_found"
        # an address acme holds cannot be bound to globex's member
        r = g.post(accounts_path(net, theirs["id"]), json={"address": ADDR})
        assert r.status_code == 409 and error_code(r) == "account_bound_elsewhere"
        other = Account.from_key(b"\x22" * 32).address
        r = g.post(accounts_path(net, theirs["id"]), json={"address": other})
        assert r.status_code == 201, r.text
        assert r.json()["org_id"] == theirs["org_id"]
        # unbinding acme's address through globex's own member is refused too
        r = g.delete(f"{accounts_path(net, theirs['id'])}/{ADDR}")
        assert r.status_code == 404 and error_code(r) == "account_not_bound"
    with world.client(world.creds("acme")) as c:
        assert [a["address"] for a in c.get(accounts_path(net)).json()["items"]] == [ADDR]
        assert [a["address"] for a in c.get(accounts_path(net, theirs["id"])).json()[
            "items"]] == [other]
    assert world.gateway.accounts == {ADDR.lower(): mine, other.lower(): theirs["org_id"]}
    assert acme_tenant != globex_tenant


def test_operators_and_viewers_cannot_bind(world: ControlWorld) -> None:
    _, op = world.add_user("acme", "oscar", "operator")
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
    with world.client(op) as o:
        assert o.get(accounts_path(net)).status_code == 200
        r = o.post(accounts_path(net), json={"address": ADDR})
        assert r.status_code == 403 and error_code(r) == "forbidden_role"
    assert account_updates(world) == []


def test_a_chain_that_refuses_or_is_down_is_reported(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net = create(c)
        world.flush()
        world.gateway.refuse = "wrong_role"
        r = c.post(accounts_path(net), json={"address": ADDR})
        assert r.status_code == 409 and error_code(r) == "account_change_refused"
        assert "wrong_role" in r.json()["error"]["message"]
        world.gateway.refuse = None
        # its only validator crashes (the fake reports it as the real supervisor would)
        world.provisioner._set(_first_node(c, net), ProvStatus.FAILED, "crash loop")
        world.flush()
        for method in ("GET", "POST"):
            r = c.request(method, accounts_path(net),
                          json={"address": ADDR} if method == "POST" else None)
            assert r.status_code == 503 and error_code(r) == "chain_unavailable", r.text
    assert world.gateway.accounts == {}


def _first_node(c: TestClient, net: dict[str, Any]) -> str:
    nodes = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes").json()
    node_id: str = nodes["items"][0]["id"]
    return node_id


# --- console -------------------------------------------------------------------------------


def test_the_console_shows_the_profile_and_rpc_urls(world: ControlWorld) -> None:
    """explorer-core.js's ``chainSummary`` (what the page prints above an answer's JSON),
    run by Node.js on the API's own answers."""
    node = require_node()
    with world.client(world.creds("acme")) as c:
        net = create(c, evm_chain_id=99)
        world.flush()
        nodes = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes").json()
        networks = c.get("/v1/networks").json()
    core = (STATIC / "explorer-core.js").as_uri()
    script = (f"import {{ chainSummary }} from {json.dumps(core)};\n"
              f"for (const b of {json.dumps([networks, nodes])}) "
              "console.log(JSON.stringify(chainSummary(b)));")
    proc = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, check=True)
    net_lines, node_lines = (json.loads(line) for line in proc.stdout.splitlines())
    assert net_lines == ["network q: profile quorum, EVM chain id 99"]
    (only,) = nodes["items"]
    assert node_lines == [f"node {only['name']}: Ethereum JSON-RPC {only['rpc_url']}"]


def test_the_service_checks_evm_settings_without_the_schema(world: ControlWorld) -> None:
    """Callers in process (``Control.networks``) get the same refusals as the API."""
    acme = world.tenants["acme"]
    owner = Actor(tenant_id=acme.tenant.id, user_id=acme.owner.id, role=UserRole.OWNER,
                  request_id="test")
    for bad in ({"evm_chain_id": 0}, {"evm_chain_id": 2**53}, {"evm_gas_limit": 1}):
        spec = NewNetwork(name="q", profile=NetworkProfile.QUORUM,
                          usage_mode=UsageMode.STANDARD, **bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest) as raised:
            world.control.networks.create(owner, spec)
        assert raised.value.code == "invalid_evm_config", bad
