"""A quorum network made through the control-plane API with real node processes (the
app's ``LocalProvisioner``, the real node gateway): its member binds a freshly generated
Ethereum account through the API, web3.py (``consortia.sdk.evm.EvmClient``) deploys and
uses examples/contracts/Token.sol against the node's ``rpc_url``, an unbound account is
refused, and unbinding stops the account. A second tenant joins by invitation and binds
its own account; the address the first member holds stays its.

The API runs in process (Starlette's TestClient); the nodes are real processes on loopback
ports; Token.sol is compiled by the pinned solc-js (skipped without Node.js and the npm
tool set, failed in CI, as every contract test). Waits are on statuses, never durations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from consortia.sdk.evm import EvmClient
from consortia.sdk.evm._errors import RpcError
from consortia.sdk.evm.artifact import Artifact
from consortia.sdk.evm.compiler import compile_file
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld
from tests.evm_helpers import EXAMPLES, require_tools
from tests.integration.control_real import node_logs, ok, real_control_world, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


@pytest.fixture(scope="module")
def token() -> Artifact:
    require_tools()
    (artifact,) = [a for a in compile_file(EXAMPLES / "Token.sol").artifacts
                   if a.contract_name == "Token"]
    return artifact


def _available(c: Any, world: ControlWorld, net: dict[str, Any]) -> None:
    wait_for(lambda: c.get(f"/v1/networks/{net['id']}").json(),
             lambda d: d["status"] == "AVAILABLE", "the network did not become AVAILABLE",
             lambda: node_logs(world, net["id"]))


def test_a_member_binds_an_account_and_web3_uses_the_chain(world: ControlWorld,
                                                           token: Artifact) -> None:
    mine, stranger = Account.create(), Account.create()
    with world.client(world.creds("acme")) as c:
        net = ok(c.post("/v1/networks", json={"name": "evm", "profile": "quorum",
                                               "validators": 1, "evm_chain_id": 4711}))
        assert (net["consensus"], net["evm_chain_id"]) == ("raft", 4711)  # quorum's default
        _available(c, world, net)
        member = net["member"]["id"]
        (node,) = c.get(f"/v1/networks/{net['id']}/members/{member}/nodes").json()["items"]
        assert node["rpc_url"] == node["api_endpoint"] + "/rpc"
        accounts = f"/v1/networks/{net['id']}/members/{member}/accounts"
        bound = ok(c.post(accounts, json={"address": mine.address}))
        assert (bound["address"], bound["org_id"]) == (mine.address, member)
        listed = c.get(accounts).json()["items"]
        assert [a["address"] for a in listed] == [mine.address]

        with EvmClient(node["rpc_url"]) as evm:
            assert evm.chain_id == 4711
            deployed = evm.deploy(token, ["Consortia", "CNS", "1000"], mine)
            assert deployed.status == 1 and deployed.contract_address
            address = deployed.contract_address
            sent = evm.send(address, token.abi, "transfer", [stranger.address, "250"], mine)
            assert sent.status == 1
            assert [log.event for log in sent.logs] == ["Transfer"]
            assert evm.call(address, token.abi, "balanceOf", [stranger.address]) == 250
            assert evm.call(address, token.abi, "balanceOf", [mine.address]) == 750
            # an account no member bound is refused at admission, with the chain's reason
            with pytest.raises(RpcError, match="not permitted"):
                evm.send(address, token.abi, "transfer", [mine.address, "1"], stranger,
                         gas=100_000)
            assert evm.call(address, token.abi, "balanceOf", [stranger.address]) == 250

            # unbinding stops the account too
            r = c.delete(f"{accounts}/{mine.address}")
            assert r.status_code == 204, r.text
            assert c.get(accounts).json()["items"] == []
            with pytest.raises(RpcError, match="not permitted"):
                evm.send(address, token.abi, "transfer", [stranger.address, "1"], mine,
                         gas=100_000)
        r = c.delete(f"{accounts}/{mine.address}")
        assert r.status_code == 404 and error_code(r) == "account_not_bound"


def test_a_member_that_joined_binds_its_own_accounts(world: ControlWorld) -> None:
    first, second = Account.create(), Account.create()
    globex = world.tenants["globex"].tenant.id
    with world.client(world.creds("acme")) as c:
        net = ok(c.post("/v1/networks", json={"name": "shared", "profile": "quorum",
                                               "consensus": "solo"}))
        _available(c, world, net)
        mine = net["member"]["id"]
        ok(c.post(f"/v1/networks/{net['id']}/members/{mine}/accounts",
                  json={"address": first.address}))
        proposals = f"/v1/networks/{net['id']}/proposals"
        prp = ok(c.post(proposals, json={"member_id": mine, "action": "INVITE_TENANT",
                                         "target_tenant_id": globex}))
        ok(c.post(f"{proposals}/{prp['id']}/votes", json={"member_id": mine, "vote": "YES"}))
    with world.client(world.creds("globex")) as g:
        (inv,) = g.get("/v1/invitations").json()["items"]
        theirs = ok(g.post(f"/v1/networks/{net['id']}/members",
                           json={"name": "globex-org", "invitation_id": inv["id"]}))
        assert theirs["status"] == "AVAILABLE", theirs  # its organization is on the chain
        accounts = f"/v1/networks/{net['id']}/members/{theirs['id']}/accounts"
        r = g.post(accounts, json={"address": first.address})
        assert r.status_code == 409 and error_code(r) == "account_bound_elsewhere"
        bound = ok(g.post(accounts, json={"address": second.address}))
        assert bound["org_id"] == theirs["org_id"]
    with world.client(world.creds("acme")) as c:
        assert [a["address"] for a in c.get(accounts).json()["items"]] == [second.address]
        mine_now = c.get(f"/v1/networks/{net['id']}/members/{mine}/accounts").json()
        assert [a["address"] for a in mine_now["items"]] == [first.address]
