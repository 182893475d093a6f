"""``consortia channel``, ``node create --external`` / ``node bundle``, ``tenant create
--save-profile`` and ``ca enroll --channel`` (typer's ``CliRunner``) against the real app
over real HTTP (uvicorn on loopback), with the fake provisioner and node gateway of
``tests/control_helpers.py`` (they stand for node processes, which this level does not
run; tests/integration/test_journeys.py walks the same commands with real ones).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.sdk import LocalNetwork
from consortia.sdk.bundle import PASSPHRASE_ENV, open_join_bundle
from consortia.sdk.control import read_profiles, write_profile
from tests.control_helpers import ControlWorld, LiveServer, live_server, make_world
from tests.unit.test_control_channels import consortium

PASS = "a long enough passphrase"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data",
                   external_poll_seconds=0, external_probe_timeout_seconds=2)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def server(world: ControlWorld) -> Iterator[LiveServer]:
    with live_server(world.app) as s:
        yield s


@pytest.fixture
def creds_file(world: ControlWorld, server: LiveServer, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """``consortia up``'s credentials file in the working directory: acme (the platform
    tenant) as ``default``, globex as ``globex``."""
    monkeypatch.chdir(tmp_path)
    for var in ("CONSORTIA_CREDENTIALS", "CONSORTIA_PROFILE", "CONSORTIA_ENDPOINT",
                "CONSORTIA_ACCESS_KEY_ID", "CONSORTIA_SECRET", PASSPHRASE_ENV):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / ".consortia" / "control" / "credentials"
    write_profile(path, server.url, world.creds("acme"))
    write_profile(path, server.url, world.creds("globex"), profile="globex")
    return path


def run(*args: str, input: str | None = None,
        env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    code, out, err = run(*args, "--json", env=env)
    assert code == 0, out + err
    return json.loads(out)


def refused(code: str, *args: str, input: str | None = None) -> str:
    status, out, err = run(*args, input=input)
    assert status == 1, out + err
    assert code in err, err
    return err


def test_channel_lifecycle_through_the_cli(world: ControlWorld, creds_file: Path) -> None:
    # acme's admins alone meet GREATER_THAN_OR_EQUAL_TO 50 % of the channel's two orgs
    net, members = consortium(world, threshold_comparator="GREATER_THAN_OR_EQUAL_TO")
    nid, acme, globex = net["id"], members["acme"], members["globex"]
    ch = ok_json("channel", "create", nid, "trade", "--member", acme, "--with", globex)
    assert ch["status"] == "AVAILABLE" and ch["chain_id"] == ch["id"]
    assert [m["member_id"] for m in ch["members"]] == [acme, globex]
    (node,) = ch["nodes"]
    cid = ch["id"]

    assert [c["id"] for c in ok_json("channel", "list", nid)] == [cid]
    code, out, _ = run("channel", "list", nid)
    assert code == 0 and "trade" in out and "acme-org, globex-org" in out  # a table
    code, out, _ = run("channel", "get", nid, cid)
    assert code == 0 and node["api_endpoint"] in out and "globex-org" in out
    code, out, _ = run("channel", "genesis", nid, cid)
    assert code == 0 and json.loads(out)["chain_id"] == cid
    # globex, a member of the channel, sees it and its nodes
    seen = ok_json("--profile", "globex", "channel", "get", nid, cid)
    assert seen["nodes"][0]["id"] == node["id"]

    # a member of the network outside the channel: created through the CLI, refused
    made = ok_json("tenant", "create", "initech", "--owner", "ivy", "--save-profile",
                   "initech")
    assert made["profile"] == "initech" and made["credentials_file"] == str(
        Path(".consortia/control/credentials"))
    assert read_profiles(creds_file)["initech"]["access_key_id"] == \
        made["access_key"]["access_key_id"]
    assert ok_json("--profile", "initech", "tenant", "me")["tenant"]["name"] == "initech"
    refused("not_found", "--profile", "initech", "channel", "get", nid, cid)

    # membership changes answer once committed on the channel's chain
    refused("config_not_allowed", "channel", "remove-member", nid, cid, acme)
    assert ok_json("channel", "remove-member", nid, cid, globex) == {
        "removed": globex, "channel_id": cid}
    assert [m["member_id"] for m in ok_json("channel", "get", nid, cid)["members"]] == [acme]
    refused("not_found", "--profile", "globex", "channel", "get", nid, cid)
    grown = ok_json("channel", "add-member", nid, cid, globex)
    assert [m["member_id"] for m in grown["members"]] == [acme, globex]

    # only its creator deletes it, with its name typed back
    refused("not_channel_creator", "--profile", "globex", "channel", "delete", nid, cid,
            "--confirm", "trade")
    err = refused("the name typed back", "channel", "delete", nid, cid, input="wrong\n")
    assert "nothing was deleted" in err
    assert ok_json("channel", "get", nid, cid)["status"] == "AVAILABLE"
    assert ok_json("channel", "delete", nid, cid, "--confirm", "trade") == {"deleted": cid}
    assert ok_json("channel", "get", nid, cid)["status"] == "DELETED"


def test_enroll_for_a_channel_writes_its_chain_and_spends_nothing_when_refused(
        world: ControlWorld, creds_file: Path, tmp_path: Path) -> None:
    net, members = consortium(world)
    nid, acme, globex = net["id"], members["acme"], members["globex"]
    ch = ok_json("channel", "create", nid, "trade", "--member", acme, "--with", globex)
    # under GREATER_THAN 50 %, acme alone is not enough to change the channel's members
    refused("not_enough_approvals", "channel", "remove-member", nid, ch["id"], globex)
    secret = ok_json("--profile", "globex", "ca", "identity", "register", nid, globex,
                     "erin")["enrollment_secret"]
    client_dir = tmp_path / "erin"
    done = ok_json("--profile", "globex", "ca", "enroll", nid, globex, "erin", "--secret",
                   secret, "--channel", ch["id"], "--dir", str(client_dir))
    assert done["chain_id"] == ch["id"] and done["identity"] == f"{globex}/erin"
    opened = LocalNetwork.open(client_dir)
    assert opened.chain_id == ch["id"]
    assert opened.node_url() == ch["nodes"][0]["api_endpoint"]
    assert json.loads(opened.genesis_path.read_text())["chain_id"] == ch["id"]
    assert opened.identity(f"{globex}/erin").org_id == globex

    # a channel the tenant cannot see: refused before the secret is spent
    ivy_secret = ok_json("--profile", "globex", "ca", "identity", "register", nid, globex,
                         "ivy")["enrollment_secret"]
    refused("not_found", "--profile", "globex", "ca", "enroll", nid, globex, "ivy",
            "--secret", ivy_secret, "--channel", "chn-doesnotexist0000")
    (ivy,) = [i for i in ok_json("--profile", "globex", "ca", "identity", "list", nid,
                                 globex) if i["enrollment_id"] == "ivy"]
    assert (ivy["status"], ivy["enrollment_count"]) == ("REGISTERED", 0)

    # the network's client directory lists the network's nodes, not the channel's validator
    acme_secret = ok_json("ca", "identity", "register", nid, acme, "ann")["enrollment_secret"]
    ok_json("ca", "enroll", nid, acme, "ann", "--secret", acme_secret, "--dir",
            str(tmp_path / "ann"))
    urls = {n["api"] for n in LocalNetwork.open(tmp_path / "ann").doc["nodes"]}
    assert ch["nodes"][0]["api_endpoint"] not in urls and len(urls) == 3


def test_external_node_and_its_join_bundle_through_the_cli(
        world: ControlWorld, creds_file: Path, tmp_path: Path) -> None:
    net = ok_json("network", "create", "net", "--consensus", "raft", "--validators", "1",
                  "--member", "acme-org")
    nid, mid = net["id"], net["member"]["id"]
    refused("go together", "node", "create", nid, mid, "far", "--external")
    refused("invalid_endpoint", "node", "create", nid, mid, "far", "--external",
            "--endpoint", "ftp://h:1")
    node = ok_json("node", "create", nid, mid, "far", "--external", "--endpoint",
                   "http://127.0.0.1:27999")
    assert (node["node_type"], node["provisioner"], node["status"]) == (
        "peer", "external", "CREATING")

    # the passphrase from the environment; the bundle 0600 and opened by that passphrase
    out = tmp_path / "far.join.json"
    done = ok_json("node", "bundle", nid, mid, node["id"], "--out", str(out),
                   env={PASSPHRASE_ENV: PASS})
    assert done == {"node_id": node["id"], "bundle": str(out), "bytes": out.stat().st_size}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert open_join_bundle(out.read_bytes(), PASS).node_id == node["id"]
    refused("exists", "node", "bundle", nid, mid, node["id"], "--out", str(out))

    # from a file, and from the prompt typed twice
    pw = tmp_path / "pw"
    pw.write_text("another long passphrase\n")
    again = tmp_path / "again.json"
    code, _, err = run("node", "bundle", nid, mid, node["id"], "--out", str(again),
                       "--passphrase-file", str(pw))
    assert code == 0, err
    assert open_join_bundle(again.read_bytes(), "another long passphrase").node_id == \
        node["id"]
    code, _, err = run("node", "bundle", nid, mid, node["id"], "--out", str(again),
                       "--force", input=f"{PASS}\n{PASS}\n")
    assert code == 0, err
    open_join_bundle(again.read_bytes(), PASS)

    # a weak passphrase is refused here: no identity is issued for it
    before = [r for r in ok_json("audit", "--action", "node.join_bundle")]
    refused("weak_passphrase", "node", "bundle", nid, mid, node["id"], "--out",
            str(tmp_path / "weak.json"), input="short\nshort\n")
    assert not (tmp_path / "weak.json").exists()
    assert ok_json("audit", "--action", "node.join_bundle") == before
    # the passphrase is never an argument
    code, _, err = run("node", "bundle", nid, mid, node["id"], "--out",
                       str(tmp_path / "x.json"), "--passphrase", PASS)
    assert code == 2 and "No such option" in err
