"""``consortia dev bind-account`` / ``unbind-account`` end to end: a quorum network made by
``init_network(profile="quorum")``, its node as a real process, the command as a
subprocess. The ``account_update`` travels the path of every configuration transaction
(admission, solo ordering, execution, the configuration in force), which is what this
checks; Ethereum transactions through the node wait for the node wiring of quorum chains.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consortia.sdk import LocalNetwork, init_network
from tests.integration.helpers import NodeFarm, describe, free_port, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def qnet(farm: NodeFarm, tmp_path: Path) -> Iterator[LocalNetwork]:
    net = init_network(tmp_path / "q", chain_id="qdev", orgs=["org1", "org2"],
                       profile="quorum", port=free_port())
    farm.node(net)
    yield net


def _bound(net: LocalNetwork) -> dict[str, str]:
    with httpx.Client(timeout=10) as http:
        doc = http.get(f"{net.node_url()}/v1/chain").json()
    return {a["address"]: a["org_id"] for a in doc["config"]["evm"]["accounts"]}


def test_bind_a_new_account_then_unbind_it(qnet: LocalNetwork) -> None:
    genesis_accounts = {a.address.lower(): a.org for a in qnet.accounts()}
    assert _bound(qnet) == genesis_accounts

    proc = run_cli("dev", "bind-account", "--org", "org2", "--new", "--json",
                   network=qnet.root)
    assert proc.returncode == 0, describe(proc)
    out = json.loads(proc.stdout)
    assert out["status"] == "committed" and out["height"] == 1
    (address,) = out["addresses"]
    reopened = LocalNetwork.open(qnet.root)
    assert [a.address for a in reopened.accounts("org2")][-1] == address
    assert reopened.eth_account(address).address == address
    assert _bound(qnet) == {**genesis_accounts, address.lower(): "org2"}

    # bound already: the chain refuses it, with its code, and nothing changes
    proc = run_cli("dev", "bind-account", "--org", "org2", address, network=qnet.root)
    assert proc.returncode == 1, describe(proc)
    assert "account_bound" in proc.stderr + proc.stdout
    # another organization's admin may not unbind org2's account
    proc = run_cli("dev", "unbind-account", "--org", "org1", address, network=qnet.root)
    assert proc.returncode == 1, describe(proc)
    assert _bound(qnet) == {**genesis_accounts, address.lower(): "org2"}

    proc = run_cli("dev", "unbind-account", "--org", "org2", address, network=qnet.root)
    assert proc.returncode == 0, describe(proc)
    assert "unbound" in proc.stdout
    assert _bound(qnet) == genesis_accounts
