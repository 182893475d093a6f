"""``consortia.sdk.control``: the client against the real control-plane app over real HTTP
(uvicorn on loopback, ``tests/control_helpers.py``), with the fake provisioner and node
gateway (node processes: ``tests/integration/test_up.py``). Profiles and their files.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.sdk.control import (
    ApiError,
    ControlClient,
    ControlError,
    CredentialsError,
    Network,
    ResourceFailed,
    TransportError,
    WaitTimeout,
    load_profile,
    write_profile,
)
from consortia.sdk.signing import Credentials
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
def acme(world: ControlWorld, server: LiveServer) -> Iterator[ControlClient]:
    with ControlClient(server.url, world.creds("acme"), poll_interval=0.05) as c:
        yield c


def test_me_users_and_pagination(acme: ControlClient) -> None:
    me = acme.me()
    assert (me.tenant.name, me.user.username, me.auth) == ("acme", "acme-owner", "signature")
    made = [acme.create_user(f"user{i}", "viewer") for i in range(5)]
    page = acme.list_users(limit=2)
    assert len(page.items) == 2 and page.next_page_token
    names = [u.username for u in acme.iter_users(role="viewer")]
    assert names == [u.username for u in made]  # every page, oldest first
    bob = acme.update_user(made[0].id, role="operator", email="bob@example.com")
    assert (bob.role, bob.email) == ("operator", "bob@example.com")
    assert acme.get_user(bob.id).raw["role"] == "operator"
    acme.delete_user(bob.id)
    with pytest.raises(ApiError) as err:
        acme.get_user(bob.id)
    assert (err.value.status, err.value.code) == (404, "not_found")


def test_errors_carry_status_code_message_and_request_id(acme: ControlClient) -> None:
    with pytest.raises(ApiError) as err:
        acme.create_user("x", "emperor")
    e = err.value
    assert (e.status, e.code) == (422, "validation_failed")
    assert e.request_id and e.request_id.startswith("req-") and e.details
    assert e.code in str(e) and "422" in str(e)
    assert isinstance(e, ControlError)
    acme.create_user("dup", "viewer")
    with pytest.raises(ApiError) as err:
        acme.create_user("dup", "viewer")
    assert (err.value.status, err.value.code) == (409, "conflict")


def test_a_create_sends_a_client_token_so_a_retry_meets_the_first_result(
        acme: ControlClient) -> None:
    first = acme.create_user("carol", "viewer", client_token="retry-1")
    again = acme.create_user("carol", "viewer", client_token="retry-1")
    assert again.id == first.id
    with pytest.raises(ApiError) as err:
        acme.create_user("carol2", "viewer", client_token="retry-1")
    assert err.value.code == "idempotency_conflict"
    # without a token, each call gets a new one: two creates are two users (or a conflict)
    acme.create_user("dave", "viewer")
    with pytest.raises(ApiError) as err:
        acme.create_user("dave", "viewer")
    assert err.value.code == "conflict"


def test_access_keys_and_audit(world: ControlWorld, acme: ControlClient,
                               server: LiveServer) -> None:
    key = acme.create_access_key(description="ci")
    assert key.secret and key.status == "ACTIVE"
    with ControlClient(server.url, Credentials(key.access_key_id, key.secret)) as second:
        assert second.me().access_key_id == key.access_key_id
        assert acme.disable_access_key(key.access_key_id).status == "DISABLED"
        with pytest.raises(ApiError) as err:
            second.me()
        assert (err.value.status, err.value.code) == (401, "disabled_access_key")
        assert acme.enable_access_key(key.access_key_id).status == "ACTIVE"
        assert second.me().tenant.name == "acme"
    assert key.access_key_id in {k.access_key_id for k in acme.iter_access_keys()}
    assert acme.get_access_key(key.access_key_id).secret is None
    acme.delete_access_key(key.access_key_id)
    actions = [r.action for r in acme.iter_audit()]
    assert actions[:4] == ["access_key.delete", "access_key.enable", "access_key.disable",
                           "access_key.create"]  # newest first
    assert [r.action for r in acme.iter_audit(action="access_key.disable")] == [
        "access_key.disable"]
    assert acme.list_audit(limit=1).next_page_token


def test_networks_members_nodes_and_waiting(world: ControlWorld, acme: ControlClient) -> None:
    net = acme.create_network("ledger", consensus="raft", validators=1, member_name="acme-org")
    assert net.member is not None and net.member.name == "acme-org"
    seen: list[str] = []
    ready = acme.wait_for_network(net.id, timeout=30, on_poll=lambda n: seen.append(n.status))
    assert ready.status == "AVAILABLE" and seen[-1] == "AVAILABLE"
    assert [n.id for n in acme.iter_networks()] == [net.id]
    member = acme.get_member(net.id, net.member.id)
    assert member.org_id == member.id and member.ca_certificate_pem
    assert [m.id for m in acme.iter_members(net.id)] == [member.id]
    node = acme.create_node(net.id, member.id, "extra")
    node = acme.wait_for_node(net.id, member.id, node.id, timeout=30)
    assert node.status == "AVAILABLE" and node.api_endpoint
    assert {n.name for n in acme.iter_nodes(net.id, member.id)} == {"validator0", "extra"}
    assert json.loads(acme.genesis(net.id))["chain_id"] == net.id
    with pytest.raises(ApiError) as err:
        acme.delete_node(net.id, member.id, node.id, confirm_name="EXTRA")
    assert err.value.code == "confirmation_mismatch"
    acme.delete_node(net.id, member.id, node.id, confirm_name="extra")
    assert acme.get_node(net.id, member.id, node.id).status == "DELETED"
    with pytest.raises(ResourceFailed) as failed:
        acme.wait_for_node(net.id, member.id, node.id, timeout=5)
    assert failed.value.code == "resource_failed"
    acme.delete_network(net.id, confirm_name="ledger")
    assert acme.get_network(net.id).status == "DELETED"


def test_another_tenant_sees_404(world: ControlWorld, acme: ControlClient,
                                 server: LiveServer) -> None:
    net = acme.create_network("mine", consensus="raft", validators=1)
    with ControlClient(server.url, world.creds("globex")) as globex:
        with pytest.raises(ApiError) as err:
            globex.get_network(net.id)
        assert (err.value.status, err.value.code) == (404, "not_found")
        assert list(globex.iter_networks()) == []


def test_a_failed_chain_ends_the_wait(world: ControlWorld, acme: ControlClient) -> None:
    world.provisioner.fail_all = True
    net = acme.create_network("doomed", consensus="raft", validators=1)
    with pytest.raises(ResourceFailed) as err:
        acme.wait_for_network(net.id, timeout=30)
    assert isinstance(err.value.resource, Network)
    assert err.value.resource.status == "CREATE_FAILED"
    assert "crash loop" in str(err.value)


def test_wait_for_gives_up_after_its_timeout(acme: ControlClient) -> None:
    class Pending:
        status = "CREATING"

    polls: list[str] = []
    with pytest.raises(WaitTimeout) as err:
        acme.wait_for(Pending, what="thing", timeout=0,
                      on_poll=lambda p: polls.append(p.status))
    assert polls == ["CREATING"] and err.value.code == "wait_timeout"


def test_no_answer_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with ControlClient(f"http://127.0.0.1:{port}", Credentials("CKX", "s"),
                           timeout=2) as c, pytest.raises(TransportError) as err:
            c.me()
    assert err.value.status is None and err.value.code == "unreachable"


def test_health_needs_no_credentials(server: LiveServer) -> None:
    with ControlClient(server.url, None) as c:
        assert c.health()
        with pytest.raises(ApiError) as err:
            c.me()
        assert (err.value.status, err.value.code) == (401, "missing_header")


# --- tenants, proposals, votes, invitations ------------------------------------------------


def test_the_amb_journey_through_the_client(world: ControlWorld, server: LiveServer,
                                             acme: ControlClient) -> None:
    made = acme.create_tenant("initech", "ida")
    assert made.access_key.secret and made.tenant.name == "initech"
    creds = Credentials(made.access_key.access_key_id, made.access_key.secret)
    net = acme.wait_for_network(acme.create_network("consortium", consensus="raft",
                                                    validators=1).id)
    mine = acme.list_members(net.id).items[0].id
    proposal = acme.create_proposal(net.id, mine, "INVITE_TENANT",
                                    target_tenant_id=made.tenant.id, description="join us")
    assert (proposal.status, proposal.proposer_member_id) == ("IN_PROGRESS", mine)
    cast = acme.vote(net.id, proposal.id, mine, "YES")
    assert (cast.vote.vote, cast.proposal.status) == ("YES", "APPROVED")
    assert [v.member_id for v in acme.list_votes(net.id, proposal.id).items] == [mine]
    with ControlClient(server.url, creds, poll_interval=0.05) as initech:
        (invitation,) = initech.list_invitations(status="PENDING").items
        assert (invitation.network_id, invitation.message) == (net.id, "join us")
        member = initech.accept_invitation(invitation.id, "initech-org")
        assert member.status == "AVAILABLE"
        assert initech.get_invitation(invitation.id).status == "ACCEPTED"
        with pytest.raises(ApiError) as err:
            initech.reject_invitation(invitation.id)
        assert (err.value.status, err.value.code) == (409, "invitation_not_pending")
    assert [p.status for p in acme.iter_proposals(net.id)] == ["APPROVED"]


# --- profiles ------------------------------------------------------------------------------


def test_profile_file_is_written_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    write_profile(path, "http://a:1", Credentials("CKAAA", "s1"))
    write_profile(path, "http://b:2", Credentials("CKBBB", "s2"), profile="other")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    p = load_profile(path=path, env={})
    assert (p.endpoint, p.credentials.access_key_id, p.source) == ("http://a:1", "CKAAA",
                                                                   str(path))
    assert load_profile("other", path, env={}).credentials.secret == "s2"
    with pytest.raises(CredentialsError, match=r"no profile \[nope\]"):
        load_profile("nope", path, env={})
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_profile(path=path, env={})


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    write_profile(path, "http://file:1", Credentials("CKFILE", "sf"))
    env = {"CONSORTIA_ACCESS_KEY_ID": "CKENV", "CONSORTIA_SECRET": "se",
           "CONSORTIA_CREDENTIALS": str(path)}
    p = load_profile(env=env, home=tmp_path)
    assert (p.endpoint, p.credentials.access_key_id, p.source) == ("http://file:1", "CKENV",
                                                                   "environment")
    env["CONSORTIA_ENDPOINT"] = "http://env:2/"
    assert load_profile(env=env, home=tmp_path).endpoint == "http://env:2"
    with pytest.raises(CredentialsError, match="both"):
        load_profile(env={"CONSORTIA_ACCESS_KEY_ID": "CKENV",
                          "CONSORTIA_ENDPOINT": "http://x"}, home=tmp_path)


def test_no_credentials_anywhere_says_where_it_looked(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CredentialsError, match="consortia up") as err:
        load_profile(env={}, home=tmp_path / "home")
    assert ".consortia/control/credentials" in str(err.value)
