"""The control-plane commands of ``consortia`` (typer's ``CliRunner``) against the real app
over real HTTP (uvicorn on loopback), with the fake provisioner and node gateway of
``tests/control_helpers.py``: JSON output, tables, refusals with the API's error code and
exit 1, typed-back names, credentials from the environment and from a profile file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.sdk.control import write_profile
from tests.control_helpers import ControlWorld, LiveServer, live_server, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def server(world: ControlWorld) -> Iterator[LiveServer]:
    with live_server(world.app) as s:
        yield s


@pytest.fixture
def env(world: ControlWorld, server: LiveServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    creds = world.creds("acme")
    monkeypatch.chdir(tmp_path)  # no .consortia/control/credentials here
    for var in ("CONSORTIA_CREDENTIALS", "CONSORTIA_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return {"CONSORTIA_ENDPOINT": server.url, "CONSORTIA_ACCESS_KEY_ID": creds.access_key_id,
            "CONSORTIA_SECRET": creds.secret, "COLUMNS": "200"}


def run(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), env=env, input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def ok_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = run(env, *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def test_network_lifecycle_through_the_cli(env: dict[str, str]) -> None:
    net = ok_json(env, "network", "create", "ledger", "--consensus", "raft",
                  "--validators", "1", "--member", "acme-org")
    assert net["status"] == "AVAILABLE" and net["member"]["name"] == "acme-org"
    nid, mid = net["id"], net["member"]["id"]
    assert [n["id"] for n in ok_json(env, "network", "list")] == [nid]
    assert ok_json(env, "network", "get", nid)["consensus"] == "raft"
    assert [m["id"] for m in ok_json(env, "member", "list", nid)] == [mid]
    assert ok_json(env, "member", "get", nid, mid)["org_id"] == mid
    node = ok_json(env, "node", "create", nid, mid, "extra")
    assert node["status"] == "AVAILABLE"
    names = {n["name"] for n in ok_json(env, "node", "list", nid, mid)}
    assert names == {"validator0", "extra"}

    code, out, _ = run(env, "network", "list")
    assert code == 0 and "ledger" in out and "AVAILABLE" in out  # a table
    code, out, _ = run(env, "network", "genesis", nid)
    assert code == 0 and json.loads(out)["chain_id"] == nid

    # a typed-back name that does not match: the API's code, exit 1, nothing deleted
    code, out, err = run(env, "node", "delete", nid, mid, node["id"], "--confirm", "EXTRA")
    assert code == 1 and "confirmation_mismatch" in err
    assert ok_json(env, "node", "get", nid, mid, node["id"])["status"] == "AVAILABLE"
    # the prompt: a wrong name typed is refused before any call
    code, out, err = run(env, "node", "delete", nid, mid, node["id"], input="nope\n")
    assert code == 1 and "nothing was deleted" in err
    code, out, err = run(env, "node", "delete", nid, mid, node["id"], input="extra\n")
    assert code == 0, out + err
    assert ok_json(env, "node", "get", nid, mid, node["id"])["status"] == "DELETED"
    code, out, err = run(env, "network", "delete", nid, "--confirm", "ledger")
    assert code == 0, out + err
    assert ok_json(env, "network", "get", nid)["status"] == "DELETED"


def test_refusals_exit_1_with_the_api_error_code(env: dict[str, str]) -> None:
    code, out, err = run(env, "network", "get", "net-nosuch", "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "not_found"
    assert "[not_found]" in err and "HTTP 404" in err
    code, _, err = run(env, "network", "create", "fab", "--profile", "fabric")
    assert code == 1 and "profile_not_available" in err
    code, _, err = run(env, "user", "create", "x", "--role", "emperor")
    assert code == 1 and "validation_failed" in err


def test_users_keys_and_audit(env: dict[str, str]) -> None:
    user = ok_json(env, "user", "create", "bob", "--role", "operator")
    assert user["role"] == "operator" and not user["has_password"]
    assert ok_json(env, "user", "update", user["id"], "--role", "viewer")["role"] == "viewer"
    assert "bob" in {u["username"] for u in ok_json(env, "user", "list")}
    key = ok_json(env, "access-key", "create", "--user", user["id"], "--description", "ci")
    assert key["secret"] and key["user_id"] == user["id"]
    code, out, _ = run(env, "access-key", "create", "--description", "shown")
    assert code == 0 and "shown once" in out
    assert ok_json(env, "access-key", "disable", key["access_key_id"])["status"] == "DISABLED"
    assert ok_json(env, "access-key", "enable", key["access_key_id"])["status"] == "ACTIVE"
    code, _, _ = run(env, "access-key", "delete", key["access_key_id"], "--yes")
    assert code == 0
    code, _, _ = run(env, "user", "delete", user["id"], "--yes")
    assert code == 0
    records = ok_json(env, "audit", "--limit", "3")
    assert [r["action"] for r in records] == ["user.delete", "access_key.delete",
                                              "access_key.enable"]
    only = ok_json(env, "audit", "--action", "user.create")
    assert {r["action"] for r in only} == {"user.create"}
    assert only[0]["resource_id"] == user["id"]  # newest first (then the owner's, at init)
    me = ok_json(env, "tenant", "me")
    assert me["tenant"]["name"] == "acme"


def test_credentials_from_a_profile_file(world: ControlWorld, server: LiveServer,
                                         tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "creds"
    write_profile(path, server.url, world.creds("globex"), profile="globex")
    bare = {"COLUMNS": "200"}
    code, out, err = run(bare, "--credentials", str(path), "--profile", "globex",
                         "tenant", "me", "--json")
    assert code == 0, out + err
    assert json.loads(out)["tenant"]["name"] == "globex"
    code, _, err = run(bare, "--credentials", str(path), "tenant", "me")
    assert code == 1 and "no profile [default]" in err
    code, _, err = run(bare, "network", "list")
    assert code == 1 and "no control-plane credentials" in err


def test_quorum_networks_and_member_accounts(env: dict[str, str]) -> None:
    net = ok_json(env, "network", "create", "evm", "--profile", "quorum", "--consensus",
                  "solo", "--evm-chain-id", "31337")
    assert (net["profile"], net["evm_chain_id"], net["status"]) == ("quorum", 31337,
                                                                   "AVAILABLE")
    member = net["member"]["id"]
    (node,) = ok_json(env, "node", "list", net["id"], member)
    assert node["rpc_url"] == node["api_endpoint"] + "/rpc"
    address = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
    bound = ok_json(env, "member", "account", "bind", net["id"], member, address.lower())
    assert (bound["address"], bound["member_id"]) == (address, member)
    code, out, _ = run(env, "member", "account", "list", net["id"], member)
    assert code == 0 and address in out
    code, _, err = run(env, "member", "account", "bind", net["id"], member, address)
    assert code == 1 and "account_already_bound" in err
    code, _, err = run(env, "member", "account", "bind", net["id"], member, "0x12")
    assert code == 1 and "invalid_address" in err
    assert ok_json(env, "member", "account", "unbind", net["id"], member, address) == {
        "unbound": address, "member_id": member}
    assert ok_json(env, "member", "account", "list", net["id"], member) == []
