"""``consortia tenant|proposal|invitation`` (typer's ``CliRunner``) against the real app over
real HTTP (uvicorn on loopback; the fake provisioner and node gateway of
``tests/control_helpers.py`` stand for node processes), and ``consortia up``'s demo
(``cli/demo.py``) made twice against it: the second time creates nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consortia.cli.demo import DemoSpec, create_demo
from consortia.cli.main import app
from consortia.cli.watch import QuietReporter
from consortia.sdk.control import ControlClient, read_profiles
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


def env_of(url: str, key_id: str, secret: str) -> dict[str, str]:
    return {"CONSORTIA_ENDPOINT": url, "CONSORTIA_ACCESS_KEY_ID": key_id,
            "CONSORTIA_SECRET": secret, "COLUMNS": "200"}


@pytest.fixture
def env(world: ControlWorld, server: LiveServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for var in ("CONSORTIA_CREDENTIALS", "CONSORTIA_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    creds = world.creds("acme")
    return env_of(server.url, creds.access_key_id, creds.secret)


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def ok_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = run(env, *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def refused(env: dict[str, str], *args: str) -> dict[str, Any]:
    """The command exits 1; its ``--json`` error, whose code is also on stderr."""
    code, out, err = run(env, *args, "--json")
    assert code == 1, out + err
    error: dict[str, Any] = json.loads(out)["error"]
    assert f"[{error['code']}]" in err
    return error


def test_invite_vote_accept_and_reject_through_the_cli(world: ControlWorld,
                                                       server: LiveServer,
                                                       env: dict[str, str]) -> None:
    made = ok_json(env, "tenant", "create", "initech", "--owner", "ida")
    tid = made["tenant"]["id"]
    initech = env_of(server.url, made["access_key"]["access_key_id"],
                     made["access_key"]["secret"])
    assert "initech" in {t["name"] for t in ok_json(env, "tenant", "list")}
    # only the platform's owners create tenants
    assert refused(initech, "tenant", "create", "evil", "--owner", "eve")["status"] == 403
    assert refused(env, "tenant", "create", "initech", "--owner", "x")["status"] == 409

    net = ok_json(env, "network", "create", "consortium", "--consensus", "raft",
                  "--validators", "1", "--member", "acme-org")
    nid, mid = net["id"], net["member"]["id"]
    code, _, err = run(env, "proposal", "create", nid, "--member", mid)
    assert code == 1 and "exactly one of --invite" in err
    assert refused(env, "proposal", "create", nid, "--member", mid, "--invite",
                   "ten-nosuch")["code"] == "unknown_tenant"
    assert ok_json(env, "proposal", "list", nid) == []  # the refusal made nothing

    p = ok_json(env, "proposal", "create", nid, "--member", mid, "--invite", tid,
                "--description", "join us")
    assert (p["status"], p["action"], p["target_tenant_id"]) == ("IN_PROGRESS",
                                                                "INVITE_TENANT", tid)
    code, out, _ = run(env, "proposal", "list", nid)
    assert code == 0 and p["id"] in out and "IN_PROGRESS" in out  # a table
    assert ok_json(env, "proposal", "get", nid, p["id"])["votes"] == []
    code, _, err = run(env, "proposal", "vote", nid, p["id"], "--member", mid, "maybe")
    assert code == 1 and "vote yes or no" in err
    cast = ok_json(env, "proposal", "vote", nid, p["id"], "--member", mid, "yes")
    assert (cast["vote"]["vote"], cast["proposal"]["status"]) == ("YES", "APPROVED")
    got = ok_json(env, "proposal", "get", nid, p["id"])
    assert [v["member_id"] for v in got["votes"]] == [mid]
    assert refused(env, "proposal", "vote", nid, p["id"], "--member", mid,
                   "no")["status"] == 409  # decided: nothing changes
    assert ok_json(env, "proposal", "get", nid, p["id"])["status"] == "APPROVED"

    (inv,) = ok_json(initech, "invitation", "list", "--status", "PENDING")
    assert (inv["network"]["id"], inv["message"]) == (nid, "join us")
    member = ok_json(initech, "invitation", "accept", inv["id"], "--name", "initech-org")
    assert (member["name"], member["status"]) == ("initech-org", "AVAILABLE")
    assert refused(initech, "invitation", "reject", inv["id"])["code"] == \
        "invitation_not_pending"
    assert {m["name"] for m in ok_json(env, "member", "list", nid)} == {"acme-org",
                                                                        "initech-org"}

    # globex is invited by both members' votes, and declines
    globex = world.creds("globex")
    genv = env_of(server.url, globex.access_key_id, globex.secret)
    gid = ok_json(genv, "tenant", "me")["tenant"]["id"]
    p2 = ok_json(env, "proposal", "create", nid, "--member", mid, "--invite", gid)
    half = ok_json(env, "proposal", "vote", nid, p2["id"], "--member", mid, "yes")
    assert half["proposal"]["status"] == "IN_PROGRESS"  # 1 of 2 is not more than 50 %
    code, out, _ = run(initech, "proposal", "vote", nid, p2["id"], "--member",
                       member["id"], "yes")
    assert code == 0 and "APPROVED" in out
    (inv2,) = ok_json(genv, "invitation", "list")
    assert ok_json(genv, "invitation", "reject", inv2["id"])["status"] == "REJECTED"
    assert refused(genv, "invitation", "accept", inv2["id"], "--name",
                   "globex-org")["code"] == "invitation_not_pending"
    assert {m["name"] for m in ok_json(env, "member", "list", nid)} == {"acme-org",
                                                                        "initech-org"}


def test_the_demo_has_three_organizations_and_up_again_creates_nothing(
        world: ControlWorld, server: LiveServer, tmp_path: Path) -> None:
    creds_file = tmp_path / "credentials"
    spec = DemoSpec(validators=1)
    with ControlClient(server.url, world.creds("acme"), poll_interval=0.05) as c:
        demo = create_demo(c, QuietReporter(), spec, credentials_file=creds_file, timeout=30)
        assert not demo.errors
        assert demo.network.status == "AVAILABLE"
        assert [o.member.name for o in demo.orgs] == ["org1", "org2", "org3"]
        assert [o.profile for o in demo.orgs] == ["default", "demo-org2", "demo-org3"]
        assert [[n.node_type for n in o.nodes] for o in demo.orgs] == [
            ["validator"], ["peer"], ["peer"]]
        assert all(n.status == "AVAILABLE" for o in demo.orgs for n in o.nodes)
        assert all(o.member.status == "AVAILABLE" for o in demo.orgs)
        # org3 came in by the votes of org1 and org2
        invite3 = [p for p in c.iter_proposals(demo.network.id)
                   if p.target_tenant_id == demo.orgs[2].member.tenant_id]
        assert len(c.list_votes(demo.network.id, invite3[0].id).items) == 2
        profiles = read_profiles(creds_file)
        assert set(profiles) == {"demo-org2", "demo-org3"}
        assert profiles["demo-org2"]["endpoint"] == server.url

        def counts() -> tuple[int, ...]:
            return (len(list(c.iter_tenants())), len(list(c.iter_networks())),
                    len(list(c.iter_members(demo.network.id))),
                    len(list(c.iter_proposals(demo.network.id))),
                    len(world.provisioner.created))

        before = counts()
        again = create_demo(c, QuietReporter(), spec, credentials_file=creds_file, timeout=30)
        assert counts() == before
        assert [o.member.id for o in again.orgs] == [o.member.id for o in demo.orgs]
        assert [[n.id for n in o.nodes] for o in again.orgs] == [
            [n.id for n in o.nodes] for o in demo.orgs]
        assert read_profiles(creds_file) == profiles

    # a guest tenant whose key was lost is reported, not recreated; the others stand
    creds_file.unlink()
    with ControlClient(server.url, world.creds("acme"), poll_interval=0.05) as c:
        lost = create_demo(c, QuietReporter(), spec, credentials_file=creds_file, timeout=30)
    assert [o.member.name for o in lost.orgs] == ["org1"]
    assert len(lost.errors) == 2 and "has no profile [demo-org2]" in lost.errors[0]
