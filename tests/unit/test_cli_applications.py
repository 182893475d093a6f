"""``consortia join-code|application`` and ``proposal create --add-validator`` (typer's
``CliRunner``) against the real app over real HTTP (uvicorn on loopback; the fake
provisioner and node gateway of ``tests/control_helpers.py`` stand for node processes).
"""

from __future__ import annotations

from tests.control_helpers import ControlWorld, LiveServer
from tests.unit.test_cli_governance import (  # noqa: F401 - fixtures
    env,
    env_of,
    ok_json,
    refused,
    run,
    server,
    world,
)


def test_join_code_apply_accept_vote_join_then_a_validator_by_proposal(
        world: ControlWorld, server: LiveServer,  # noqa: F811 - the fixtures
        env: dict[str, str]) -> None:  # noqa: F811
    net = ok_json(env, "network", "create", "consortium", "--consensus", "raft",
                  "--validators", "1", "--member", "acme-org")
    world.flush()
    nid, mid = net["id"], net["member"]["id"]
    made = ok_json(env, "join-code", "create", nid, "--member", mid, "--max-uses", "2")
    code = made["join_code"]
    assert code.startswith(made["id"] + ".")
    code_, out, _ = run(env, "join-code", "list", nid)
    assert code_ == 0 and made["id"] in out and code not in out  # a table, no secret

    globex = world.creds("globex")
    genv = env_of(server.url, globex.access_key_id, globex.secret)
    assert refused(genv, "application", "submit", "jc-0000000000000000.x", "--name",
                   "globex-org")["code"] == "join_code_not_found"
    app = ok_json(genv, "application", "submit", code, "--name", "globex-org",
                  "--message", "hello")
    assert app["status"] == "PENDING"
    code_, out, _ = run(genv, "application", "list")
    assert code_ == 0 and app["id"] in out and "consortium" in out
    (seen,) = ok_json(env, "application", "list", "--network", nid)
    assert seen["id"] == app["id"]
    accepted = ok_json(env, "application", "accept", nid, app["id"], "--member", mid)
    code_, _, err = run(genv, "application", "join", app["id"])
    assert code_ == 1 and "no invitation" in err  # not decided yet
    ok_json(env, "proposal", "vote", nid, accepted["proposal_id"], "--member", mid, "yes")
    assert ok_json(genv, "application", "get", app["id"])["status"] == "APPROVED"
    member = ok_json(genv, "application", "join", app["id"])
    assert (member["name"], member["status"]) == ("globex-org", "AVAILABLE")
    assert ok_json(genv, "application", "get", app["id"])["member_id"] == member["id"]

    # globex alone cannot approve a validator of its own: it proposes one
    gm = member["id"]
    assert refused(genv, "node", "create", nid, gm, "globex-v0")["code"] == \
        "not_enough_approvals"
    code_, _, err = run(genv, "proposal", "create", nid, "--member", gm, "--invite", "x",
                        "--add-validator", "v")
    assert code_ == 1 and "exactly one of" in err
    p = ok_json(genv, "proposal", "create", nid, "--member", gm, "--add-validator",
                "globex-v0")
    assert (p["action"], p["target_member_id"], p["node_name"]) == (
        "ADD_VALIDATOR", gm, "globex-v0")
    ok_json(genv, "proposal", "vote", nid, p["id"], "--member", gm, "yes")
    cast = ok_json(env, "proposal", "vote", nid, p["id"], "--member", mid, "yes")
    assert (cast["proposal"]["status"], cast["proposal"]["failure_reason"]) == (
        "APPROVED", None)
    assert cast["proposal"]["node_id"]

    other = ok_json(env, "join-code", "revoke", nid, made["id"])
    assert (other["status"], other["usable"]) == ("REVOKED", False)
    code_, out, _ = run(env, "application", "withdraw", app["id"])
    assert code_ == 1
