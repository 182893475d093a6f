"""One test suite for the control-plane API, run against every database backend.

``tests/unit/test_control_api.py`` runs it on a SQLite file and
``tests/integration/test_control_api_pg.py`` on a real PostgreSQL server. A subclass
provides ``url``: an empty database. The app runs in process (Starlette's TestClient:
the whole ASGI stack, middleware, dependencies, services and database); every call is
signed with ``SigningAuth`` from the SDK, or made with a console session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from sqlalchemy import select

from consortia.control.http.routing import action_of, api_routes
from consortia.control.store.models import AccessKey, AuditRecord, ConsoleSession
from consortia.crypto import get_suite
from consortia.identity.csr import make_csr
from consortia.sdk import Credentials
from tests.control_helpers import PASSWORD, ControlWorld, make_world

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
ADDRESS = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
"""An Ethereum address (EIP-55), for the accounts of quorum networks."""
NOT_IDS = {"evm_chain_id"}
"""Body fields named ``*_id`` that name no resource (an EIP-155 chain id is a number)."""


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def audit_rows(world: ControlWorld, **where: Any) -> list[AuditRecord]:
    with world.control.transaction() as db:
        stmt = select(AuditRecord)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditRecord, name) == value)
        return list(db.scalars(stmt.order_by(AuditRecord.created_at)))


class ControlApiSuite:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def world(self, url: str) -> Iterator[ControlWorld]:
        w = make_world(url)
        try:
            yield w
        finally:
            w.close()

    # --- authentication ------------------------------------------------------------------

    def test_signed_call_identifies_the_caller(self, world: ControlWorld) -> None:
        with world.client(world.creds("acme")) as c:
            r = c.get("/v1/tenant", headers={"X-Request-Id": "trace-42"})
        assert r.status_code == 200, r.text
        me = r.json()
        assert me["tenant"]["name"] == "acme"
        assert me["user"]["username"] == "acme-owner"
        assert me["user"]["role"] == "owner"
        assert me["auth"] == "signature"
        assert me["access_key_id"] == world.creds("acme").access_key_id
        assert r.headers["x-request-id"] == "trace-42"
        with world.control.transaction() as db:
            key = db.get(AccessKey, world.creds("acme").access_key_id)
            assert key is not None and key.last_used_at is not None
            assert key.sealed_secret != world.creds("acme").secret.encode()

    def test_unauthenticated_calls_are_refused_with_the_error_format(
            self, world: ControlWorld) -> None:
        with world.client() as c:
            r = c.get("/v1/users")
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "missing_header"
        assert err["request_id"] == r.headers["x-request-id"]
        assert r.headers["www-authenticate"].startswith("CONSORTIA-HMAC-SHA256")

    def test_a_new_key_works_at_once_and_a_disabled_one_does_not(
            self, world: ControlWorld) -> None:
        _, bob = world.add_user("acme", "bob", "operator")
        with world.client(bob) as c:
            assert c.get("/v1/tenant").json()["user"]["username"] == "bob"
        with world.client(world.creds("acme")) as c:
            r = c.post(f"/v1/access-keys/{bob.access_key_id}/disable")
            assert r.status_code == 200 and r.json()["status"] == "DISABLED"
        with world.client(bob) as c:
            r = c.get("/v1/tenant")
        assert r.status_code == 401 and error_code(r) == "disabled_access_key"
        with world.client(world.creds("acme")) as c:
            assert c.post(f"/v1/access-keys/{bob.access_key_id}/enable").status_code == 200
        with world.client(bob) as c:
            assert c.get("/v1/tenant").status_code == 200

    def test_a_disabled_user_cannot_use_keys_or_sessions(self, world: ControlWorld) -> None:
        bob_id, bob = world.add_user("acme", "bob", "operator")
        with world.client() as browser:
            assert browser.post("/v1/session", json={
                "tenant": "acme", "username": "bob", "password": PASSWORD}).status_code == 201
            with world.client(world.creds("acme")) as c:
                r = c.patch(f"/v1/users/{bob_id}", json={"status": "DISABLED"})
                assert r.status_code == 200, r.text
            assert error_code(browser.get("/v1/tenant")) == "invalid_session"
        with world.client(bob) as c:
            assert error_code(c.get("/v1/tenant")) == "disabled_access_key"

    # --- roles -----------------------------------------------------------------------------

    def test_roles(self, world: ControlWorld) -> None:
        _, viewer = world.add_user("acme", "vera", "viewer")
        operator_id, operator = world.add_user("acme", "otto", "operator")
        admin_id, admin = world.add_user("acme", "ada", "admin")
        owner = world.creds("acme")

        with world.client(viewer) as c:
            assert c.get("/v1/tenant").status_code == 200
            assert c.get("/v1/access-keys").status_code == 200
            for r in (c.post("/v1/access-keys", json={}),
                      c.post("/v1/users", json={"username": "x", "role": "viewer"}),
                      c.get("/v1/users"), c.get("/v1/audit"),
                      c.post(f"/v1/access-keys/{viewer.access_key_id}/disable")):
                assert r.status_code == 403 and error_code(r) == "forbidden_role", r.text

        with world.client(operator) as c:
            r = c.post("/v1/access-keys", json={"description": "own"})
            assert r.status_code == 201 and r.json()["user_id"] == operator_id
            for r in (c.get("/v1/users"),
                      c.post("/v1/users", json={"username": "x", "role": "viewer"}),
                      c.patch(f"/v1/users/{operator_id}", json={"role": "admin"}),
                      c.delete(f"/v1/users/{admin_id}"),
                      c.post("/v1/access-keys", json={"user_id": admin_id})):
                assert r.status_code == 403 and error_code(r) == "forbidden_role", r.text
            # another user's key is invisible to an operator: 404, not 403
            r = c.get(f"/v1/access-keys/{admin.access_key_id}")
            assert r.status_code == 404 and error_code(r) == "not_found"
            keys = c.get("/v1/access-keys").json()["items"]
            assert {k["user_id"] for k in keys} == {operator_id}

        with world.client(admin) as c:
            r = c.post("/v1/users", json={"username": "carl", "role": "operator"})
            assert r.status_code == 201
            r = c.post("/v1/users", json={"username": "oscar", "role": "owner"})
            assert r.status_code == 403 and error_code(r) == "forbidden_role"
            owner_id = c.get("/v1/users", params={"role": "owner"}).json()["items"][0]["id"]
            r = c.patch(f"/v1/users/{owner_id}", json={"role": "viewer"})
            assert r.status_code == 403
            r = c.post(f"/v1/access-keys/{owner.access_key_id}/disable")
            assert r.status_code == 403
            r = c.post(f"/v1/access-keys/{operator.access_key_id}/disable")
            assert r.status_code == 200
            assert c.get("/v1/audit").status_code == 200

        with world.client(owner) as c:
            r = c.post("/v1/users", json={"username": "oscar", "role": "owner"})
            assert r.status_code == 201
            assert c.patch(f"/v1/users/{admin_id}", json={"role": "owner"}).status_code == 200

    def test_the_last_owner_stays(self, world: ControlWorld) -> None:
        with world.client(world.creds("acme")) as c:
            me = c.get("/v1/tenant").json()["user"]["id"]
            for r in (c.patch(f"/v1/users/{me}", json={"role": "admin"}),
                      c.patch(f"/v1/users/{me}", json={"status": "DISABLED"}),
                      c.delete(f"/v1/users/{me}")):
                assert r.status_code == 409 and error_code(r) == "last_owner"
            second = c.post("/v1/users", json={"username": "o2", "role": "owner"}).json()["id"]
            assert c.patch(f"/v1/users/{me}", json={"role": "admin"}).status_code == 200
            assert c.get(f"/v1/users/{second}").json()["role"] == "owner"

    # --- tenant isolation ------------------------------------------------------------------

    def test_tenant_b_gets_404_for_every_id_of_tenant_a(self, world: ControlWorld) -> None:
        """Every operation of the OpenAPI document that takes an id (in its path, its body
        or its query) is called by globex's owner with acme's ids. A new operation taking
        an id this test does not know fails it until the test is taught the id."""
        bob_id, bob = world.add_user("acme", "bob", "operator")
        net = acme_chain(world)
        a_tenant = world.tenants["acme"].tenant.id
        with world.client(world.creds("acme")) as c:
            request_id = c.get("/v1/tenant").headers["x-request-id"]
            spec = c.get("/openapi.json").json()
            # acme invites itself (a second member): a proposal, a vote, an invitation
            proposals = f"/v1/networks/{net['id']}/proposals"
            proposal = c.post(proposals, json={"member_id": net["member"]["id"],
                                               "action": "INVITE_TENANT",
                                               "target_tenant_id": a_tenant}).json()
            c.post(f"{proposals}/{proposal['id']}/votes",
                   json={"member_id": net["member"]["id"], "vote": "YES"})
            (invitation,) = c.get("/v1/invitations").json()["items"]
            channel = c.post(f"/v1/networks/{net['id']}/channels",
                             json={"name": "acme-channel", "member_id": net["member"]["id"]})
            assert channel.status_code == 201, channel.text
            # a join code of acme's, and a third tenant's application to acme's network
            code = c.post(f"/v1/networks/{net['id']}/join-codes",
                          json={"member_id": net["member"]["id"]}).json()
            hooli = c.post("/v1/tenants", json={"name": "hooli", "owner": "hooli-owner"}
                           ).json()["access_key"]
        with world.client(Credentials(hooli["access_key_id"], hooli["secret"])) as h:
            application = h.post("/v1/join-applications", json={
                "join_code": code["join_code"], "member_name": "hooli-org"}).json()
        ca = acme_ca(world, net)
        a_ids = {"user_id": bob_id, "access_key_id": bob.access_key_id,
                 "resource_id": bob_id, "request_id": request_id,
                 "network_id": net["id"], "member_id": net["member"]["id"],
                 "node_id": net["node"]["id"], "proposal_id": proposal["id"],
                 "invitation_id": invitation["id"], "target_tenant_id": a_tenant,
                 "target_member_id": net["member"]["id"], "identity_id": ca["identity_id"],
                 "certificate_id": ca["certificate_id"], "csr_id": ca["csr_id"],
                 "enrollment_id": "alice", "channel_id": channel.json()["id"],
                 "join_code_id": code["id"], "application_id": application["id"],
                 "address": ADDRESS}
        csr_pem = make_csr(get_suite("p256-sha256").generate_key(), "alice")
        bodies: dict[str, dict[str, Any]] = {
            "update_user": {"role": "viewer"}, "create_member": {"name": "intruder"},
            "create_node": {"name": "intruder"},
            "create_proposal": {"action": "REMOVE_MEMBER"}, "vote_on_proposal": {"vote": "YES"},
            "register_identity": {},
            "enroll": {"enrollment_secret": ca["secret"], "csr_pem": csr_pem},
            "reenroll_certificate": {"csr_pem": csr_pem}, "revoke_certificate": {},
            "revoke_identity": {}, "create_csr_request": {"csr_pem": csr_pem},
            "reject_csr_request": {"reason": "intruder"}, "create_channel": {"name": "intruder"},
            "create_join_bundle": {"passphrase": "a long enough passphrase"},
            "bind_account": {"address": ADDRESS}}
        b_tenant = world.tenants["globex"].tenant.id

        checked = []
        with world.client(world.creds("globex")) as b:
            for path, item in spec["paths"].items():
                for method, op in item.items():
                    params = op.get("parameters", [])
                    path_ids = [p["name"] for p in params if p["in"] == "path"]  # (address too)
                    query_ids = [p["name"] for p in params
                                 if p["in"] == "query" and p["name"].endswith("_id")]
                    body_ids = [name for name in _body_properties(spec, op)
                                if name.endswith("_id") and name not in NOT_IDS]
                    for name in (*path_ids, *query_ids, *body_ids):
                        assert name in a_ids, (f"{op['operationId']} takes {name}: teach "
                                               "this test tenant A's id for it")
                    if path_ids or body_ids:
                        body = dict(bodies.get(op["operationId"], {}))
                        body.update({name: a_ids[name] for name in body_ids})
                        r = b.request(method.upper(), path.format(**a_ids),
                                      json=body if "requestBody" in op else None)
                        assert r.status_code == 404, (op["operationId"], r.text)
                        assert error_code(r) == "not_found"
                        checked.append(op["operationId"])
                    if query_ids and method == "get":
                        for name in query_ids:
                            r = b.get(path, params={name: a_ids[name]})
                            assert r.status_code == 200, (op["operationId"], r.text)
                            # only globex's own rows (its audit trail records its own
                            # refused attempts on acme's ids); nothing of acme's
                            items = r.json()["items"]
                            assert all(i.get("tenant_id") == b_tenant for i in items), (
                                op["operationId"], name, items)
                        checked.append(op["operationId"])
        assert {"get_user", "update_user", "delete_user", "get_access_key",
                "disable_access_key", "enable_access_key", "delete_access_key",
                "create_access_key", "list_access_keys", "list_audit_records",
                "get_network", "get_network_genesis", "delete_network", "create_member",
                "list_members", "get_member", "delete_member", "create_node", "list_nodes",
                "get_node", "delete_node", "create_proposal", "list_proposals",
                "get_proposal", "vote_on_proposal", "list_votes", "get_invitation",
                "reject_invitation", "register_identity", "list_identities",
                "get_identity", "revoke_identity", "enroll", "list_certificates",
                "get_certificate", "reenroll_certificate", "revoke_certificate", "get_crl",
                "create_csr_request", "list_csr_requests", "get_csr_request",
                "approve_csr_request", "reject_csr_request", "create_channel", "list_channels",
                "get_channel", "get_channel_genesis", "add_channel_member",
                "remove_channel_member", "delete_channel", "create_join_bundle",
                "create_join_code", "list_join_codes", "revoke_join_code",
                "get_join_application", "withdraw_join_application",
                "list_network_join_applications", "accept_join_application",
                "reject_join_application", "bind_account", "list_accounts",
                "unbind_account"} <= set(checked)
        with world.client(bob) as c:  # nothing of acme's was touched
            assert c.get("/v1/tenant").json()["user"]["role"] == "operator"
            assert c.get(f"/v1/access-keys/{bob.access_key_id}").json()["status"] == "ACTIVE"
            assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "AVAILABLE"
            nodes = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes")
            assert [n["status"] for n in nodes.json()["items"]
                    if n["channel_id"] is None] == ["AVAILABLE"]  # (and its channel's)
            assert c.get(f"/v1/invitations/{invitation['id']}").json()["status"] == "PENDING"
            assert c.get(f"/v1/networks/{net['id']}/channels/{channel.json()['id']}"
                         ).json()["members"][0]["member_id"] == net["member"]["id"]
            assert c.get(f"/v1/networks/{net['id']}/proposals").json()["items"][0][
                "tally"]["yes"] == 1
        with world.client(world.creds("acme")) as c:  # nor acme's code and applications
            assert c.get(f"/v1/networks/{net['id']}/join-codes").json()["items"][0][
                "status"] == "ACTIVE"
            assert c.get(f"/v1/join-applications/{application['id']}").json()[
                "status"] == "PENDING"
        with world.client(world.creds("acme")) as c:  # nor anything of acme's CA
            member = f"/v1/networks/{net['id']}/members/{net['member']['id']}"
            assert c.get(f"{member}/certificates/{ca['certificate_id']}").json()[
                "status"] == "ACTIVE"
            assert c.get(f"{member}/csrs/{ca['csr_id']}").json()["status"] == "PENDING"
            assert c.get(f"{member}/identities/{ca['identity_id']}").json()[
                "enrollment_count"] == 1
        with world.client(world.creds("globex")) as b:  # and globex lists none of it
            assert b.get("/v1/networks").json()["items"] == []
            assert b.get("/v1/invitations").json()["items"] == []
            assert b.get("/v1/join-applications").json()["items"] == []

    # --- idempotency -----------------------------------------------------------------------

    def test_idempotent_creates(self, world: ControlWorld) -> None:
        with world.client(world.creds("acme")) as c:
            body = {"username": "ida", "role": "viewer", "client_token": "tok-1"}
            first, again = c.post("/v1/users", json=body), c.post("/v1/users", json=body)
            assert first.status_code == again.status_code == 201
            assert first.json() == again.json()
            r = c.post("/v1/users", json={**body, "role": "admin"})
            assert r.status_code == 409 and error_code(r) == "idempotency_conflict"
            assert len(c.get("/v1/users", params={"role": "viewer"}).json()["items"]) == 1

            body = {"description": "ci", "client_token": "tok-1"}  # tokens are per table
            k1, k2 = c.post("/v1/access-keys", json=body), c.post("/v1/access-keys", json=body)
            assert k1.status_code == k2.status_code == 201
            assert k1.json()["secret"] and k1.json() == k2.json()
            r = c.post("/v1/access-keys", json={**body, "description": "other"})
            assert error_code(r) == "idempotency_conflict"
        new = Credentials(k1.json()["access_key_id"], k1.json()["secret"])
        with world.client(new) as c:  # once the key was used, a retry no longer shows it
            assert c.get("/v1/tenant").status_code == 200
            k3 = c.post("/v1/access-keys", json=body)
        # the same token from another user (the new key's owner is the same user) ...
        assert k3.status_code == 201 and k3.json()["secret"] is None
        _, other = world.add_user("acme", "olga", "admin")
        with world.client(other) as c:  # ... but another user cannot collect it
            r = c.post("/v1/access-keys", json=body)
            assert r.status_code == 409 and error_code(r) == "idempotency_conflict"
        with world.client(world.creds("globex")) as c:  # another tenant: another request
            assert c.post("/v1/access-keys", json=body).status_code == 201

    # --- console sessions ------------------------------------------------------------------

    def test_session_login_csrf_and_logout(self, world: ControlWorld) -> None:
        with world.client() as browser:
            r = browser.post("/v1/session", json={"tenant": "acme", "username": "acme-owner",
                                                  "password": "wrong password"})
            assert r.status_code == 401 and error_code(r) == "bad_credentials"
            r = browser.post("/v1/session", json={"tenant": "acme", "username": "acme-owner",
                                                  "password": PASSWORD})
            assert r.status_code == 201, r.text
            info = r.json()
            cookie = SimpleCookie(r.headers["set-cookie"])["consortia_session"]
            assert cookie["httponly"] and cookie["samesite"] == "strict"
            assert not cookie["secure"]  # plain http here; https below
            token = cookie.value
            with world.control.transaction() as db:
                row = db.get(ConsoleSession, info["session_id"])
                assert row is not None
                assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()

            assert browser.get("/v1/tenant").json()["auth"] == "session"
            assert browser.get("/v1/session").json()["csrf_token"] == info["csrf_token"]
            r = browser.post("/v1/access-keys", json={})
            assert r.status_code == 403 and error_code(r) == "csrf_failed"
            r = browser.post("/v1/access-keys", json={},
                             headers={"X-CSRF-Token": "0" * 64})
            assert r.status_code == 403 and error_code(r) == "csrf_failed"
            r = browser.post("/v1/access-keys", json={},
                             headers={"X-CSRF-Token": info["csrf_token"]})
            assert r.status_code == 201
            r = browser.delete("/v1/session", headers={"X-CSRF-Token": info["csrf_token"]})
            assert r.status_code == 204
            browser.cookies.set("consortia_session", token)
            r = browser.get("/v1/tenant")
            assert r.status_code == 401 and error_code(r) == "invalid_session"

        with world.client(base_url="https://testserver") as browser:
            r = browser.post("/v1/session", json={"tenant": "acme", "username": "acme-owner",
                                                  "password": PASSWORD})
            assert SimpleCookie(r.headers["set-cookie"])["consortia_session"]["secure"]

        failures = audit_rows(world, action="session.create", result="FAILURE")
        assert [(f.error_code, f.http_status) for f in failures] == [("bad_credentials", 401)]
        assert len(audit_rows(world, action="session.create", result="SUCCESS")) == 2
        assert len(audit_rows(world, action="session.delete")) == 1

    def test_sessions_expire(self, world: ControlWorld) -> None:
        with world.client() as browser:
            assert browser.post("/v1/session", json={
                "tenant": "acme", "username": "acme-owner",
                "password": PASSWORD}).status_code == 201
            world.clock.advance(world.settings.session_ttl_seconds + 1)
            r = browser.get("/v1/tenant")
            assert r.status_code == 401 and error_code(r) == "invalid_session"

    # --- audit -----------------------------------------------------------------------------

    def test_every_mutating_call_is_audited(self, world: ControlWorld) -> None:
        """Every mutating route names its audit action, and the scenario below performs
        each action once: a new mutating route fails this test until it is exercised."""
        routes = [r for r in api_routes(world.app) if r.methods & MUTATING]
        missing = [r.path for r in routes if action_of(r) is None]
        assert not missing, f"mutating routes without an audit action: {missing}"
        expected = {action_of(r) for r in routes}

        owner = world.creds("acme")
        calls: list[tuple[str, str]] = []  # (action, request id)
        with world.client(owner) as c:
            def call(action: str, method: str, path: str, **kw: Any) -> Any:
                r = c.request(method, path, **kw)
                assert r.status_code < 300, r.text
                calls.append((action, r.headers["x-request-id"]))
                return r

            uid = call("user.create", "POST", "/v1/users", json={
                "username": "una", "role": "operator", "password": PASSWORD}).json()["id"]
            call("user.update", "PATCH", f"/v1/users/{uid}", json={"role": "viewer"})
            kid = call("access_key.create", "POST", "/v1/access-keys",
                       json={"user_id": uid}).json()["access_key_id"]
            call("access_key.disable", "POST", f"/v1/access-keys/{kid}/disable")
            call("access_key.enable", "POST", f"/v1/access-keys/{kid}/enable")
            call("access_key.delete", "DELETE", f"/v1/access-keys/{kid}")
            call("session.create", "POST", "/v1/session", json={
                "tenant": "acme", "username": "una", "password": PASSWORD})
            csrf = c.get("/v1/session", auth=None).json()["csrf_token"]
            call("session.delete", "DELETE", "/v1/session", auth=None,
                 headers={"X-CSRF-Token": csrf})
            call("user.delete", "DELETE", f"/v1/users/{uid}")
            net = call("network.create", "POST", "/v1/networks", json={
                "name": "audited", "profile": "ant", "consensus": "raft",
                "validators": 1}).json()
            world.flush()
            nodes = f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes"
            nid = call("node.create", "POST", nodes, json={"name": "extra"}).json()["id"]
            world.flush()
            call("node.delete", "DELETE", f"{nodes}/{nid}", params={"confirm_name": "extra"})
            ext = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                      "api_endpoint": "http://127.0.0.1:27997"}).json()["id"]
            call("node.join_bundle", "POST", f"{nodes}/{ext}/join-bundle",
                 json={"passphrase": "a long enough passphrase"})
            member = f"/v1/networks/{net['id']}/members/{net['member']['id']}"
            ident = call("ca_identity.create", "POST", f"{member}/identities",
                         json={"enrollment_id": "una"}).json()
            csr_pem = make_csr(get_suite("p256-sha256").generate_key(), "una")
            cert = call("certificate.enroll", "POST", f"{member}/enroll", json={
                "enrollment_id": "una", "enrollment_secret": ident["enrollment_secret"],
                "csr_pem": csr_pem}).json()
            again = call("certificate.reenroll", "POST",
                         f"{member}/certificates/{cert['id']}/reenroll",
                         json={"csr_pem": csr_pem}).json()
            call("certificate.revoke", "POST", f"{member}/certificates/{again['id']}/revoke",
                 json={"reason": "superseded"})
            call("ca_identity.revoke", "POST", f"{member}/identities/{ident['id']}/revoke",
                 json={})
            csr_ids = [call("csr_request.create", "POST", f"{member}/csrs",
                            json={"csr_pem": csr_pem}).json()["id"] for _ in range(2)]
            call("csr_request.approve", "POST", f"{member}/csrs/{csr_ids[0]}/approve")
            call("csr_request.reject", "POST", f"{member}/csrs/{csr_ids[1]}/reject",
                 json={"reason": "no"})
            call("network.delete", "DELETE", f"/v1/networks/{net['id']}",
                 params={"confirm_name": "audited"})
            std = call("network.create", "POST", "/v1/networks", json={
                "name": "std", "profile": "ant", "consensus": "solo",
                "usage_mode": "standard"}).json()
            mid = call("member.create", "POST", f"/v1/networks/{std['id']}/members",
                       json={"name": "first"}).json()["id"]
            call("member.delete", "DELETE", f"/v1/networks/{std['id']}/members/{mid}",
                 params={"confirm_name": "first"})
            call("tenant.create", "POST", "/v1/tenants", json={"name": "umbrella",
                                                              "owner": "uma"})
            gov = call("network.create", "POST", "/v1/networks", json={
                "name": "governed", "profile": "ant", "consensus": "raft",
                "validators": 1}).json()
            world.flush()
            proposals, mine = f"/v1/networks/{gov['id']}/proposals", gov["member"]["id"]
            for name in ("invite-first", "invite-second"):
                prp = call("proposal.create", "POST", proposals, json={
                    "member_id": mine, "action": "INVITE_TENANT",
                    "target_tenant_id": world.tenants["acme"].tenant.id,
                    "description": name}).json()
                call("proposal.vote", "POST", f"{proposals}/{prp['id']}/votes",
                     json={"member_id": mine, "vote": "YES"})
                inv = c.get("/v1/invitations", params={"status": "PENDING"}).json()["items"]
                if name == "invite-first":
                    call("invitation.reject", "POST", f"/v1/invitations/{inv[0]['id']}/reject")
            second = call("member.create", "POST", f"/v1/networks/{gov['id']}/members",
                          json={"name": "second", "invitation_id": inv[0]["id"]}).json()["id"]
            channels = f"/v1/networks/{gov['id']}/channels"
            chn = call("channel.create", "POST", channels,
                       json={"name": "shared", "member_id": mine}).json()["id"]
            world.flush()
            call("channel.add_member", "POST", f"{channels}/{chn}/members",
                 json={"member_id": second})
            call("channel.remove_member", "DELETE", f"{channels}/{chn}/members/{second}")
            call("channel.delete", "DELETE", f"{channels}/{chn}",
                 params={"confirm_name": "shared"})
            # join codes and applications: acme reviews globex's, and applies to globex's
            codes, apps = f"/v1/networks/{gov['id']}/join-codes", "/v1/join-applications"
            code = call("join_code.create", "POST", codes, json={"member_id": mine}).json()
            with world.client(world.creds("globex")) as g:
                first = g.post(apps, json={"join_code": code["join_code"],
                                           "member_name": "globex-org"}).json()
                theirs = g.post("/v1/networks", json={
                    "name": "theirs", "profile": "ant", "consensus": "raft",
                    "validators": 1}).json()
                world.flush()
                their_code = g.post(f"/v1/networks/{theirs['id']}/join-codes", json={
                    "member_id": theirs["member"]["id"]}).json()["join_code"]
            reviewed = f"/v1/networks/{gov['id']}/join-applications"
            call("join_application.reject", "POST", f"{reviewed}/{first['id']}/reject")
            with world.client(world.creds("globex")) as g:
                second_app = g.post(apps, json={"join_code": code["join_code"],
                                                "member_name": "globex-org"}).json()
            call("join_application.accept", "POST", f"{reviewed}/{second_app['id']}/accept",
                 json={"member_id": mine})
            call("join_code.revoke", "POST", f"{codes}/{code['id']}/revoke")
            mine_app = call("join_application.create", "POST", apps, json={
                "join_code": their_code, "member_name": "acme-org"}).json()
            call("join_application.withdraw", "POST", f"{apps}/{mine_app['id']}/withdraw")
            # a quorum network's member binds an Ethereum account, then unbinds it
            quorum = call("network.create", "POST", "/v1/networks", json={
                "name": "evm", "profile": "quorum", "consensus": "solo"}).json()
            world.flush()
            accounts = f"/v1/networks/{quorum['id']}/members/{quorum['member']['id']}/accounts"
            call("account.bind", "POST", accounts, json={"address": ADDRESS})
            call("account.unbind", "DELETE", f"{accounts}/{ADDRESS}")
            # a refused change is recorded too, with its code and status
            r = c.patch("/v1/users/usr-doesnotexist0000", json={"role": "admin"})
            assert r.status_code == 404
            refused_rid = r.headers["x-request-id"]
        assert {a for a, _ in calls} == expected

        acme = world.tenants["acme"].tenant.id
        for action, rid in calls:
            # (a new tenant's owner and key are in the new tenant's trail, same request id)
            (row,) = audit_rows(world, request_id=rid, tenant_id=acme)
            assert (row.action, row.result) == (action, "SUCCESS")
            assert row.resource_type == action.split(".")[0]
            assert row.http_status in (200, 201, 204)
            assert row.source_ip
        (refused,) = audit_rows(world, request_id=refused_rid)
        assert (refused.action, refused.result, refused.error_code, refused.http_status) == (
            "user.update", "FAILURE", "not_found", 404)
        assert refused.resource_id == "usr-doesnotexist0000"
        assert refused.access_key_id == owner.access_key_id

        with world.client(owner) as c:  # and the trail can be queried
            r = c.get("/v1/audit", params={"action": "user.update", "limit": 10})
            items = r.json()["items"]
            assert [i["result"] for i in items] == ["FAILURE", "SUCCESS"]  # newest first
            r = c.get("/v1/audit", params={"result": "FAILURE", "resource_type": "user"})
            assert [i["request_id"] for i in r.json()["items"]] == [refused_rid]
            r = c.get("/v1/audit", params={"user_id": "usr-nobody0000000000"})
            assert r.json()["items"] == []
        with world.client(world.creds("globex")) as c:  # another tenant sees none of it
            items = c.get("/v1/audit").json()["items"]
            assert all(i["tenant_id"] == world.tenants["globex"].tenant.id for i in items)

    def test_audit_pages_and_time_filters(self, world: ControlWorld) -> None:
        with world.client(world.creds("acme")) as c:
            for i in range(5):
                assert c.post("/v1/users", json={"username": f"u{i}",
                                                 "role": "viewer"}).status_code == 201
            seen: list[str] = []
            token = None
            while True:
                params: dict[str, Any] = {"action": "user.create", "limit": 2}
                if token:
                    params["page_token"] = token
                page = c.get("/v1/audit", params=params).json()
                seen += [i["id"] for i in page["items"]]
                token = page["next_page_token"]
                if token is None:
                    break
            assert len(seen) == len(set(seen)) == 6  # five and the owner's
            r = c.get("/v1/audit", params={"until": "2000-01-01T00:00:00Z"})
            assert r.json()["items"] == []
            r = c.get("/v1/audit", params={"since": "2000-01-01T00:00:00"})  # no zone
            assert r.status_code == 422 and error_code(r) == "validation_failed"
            r = c.get("/v1/audit", params={"page_token": "garbage!"})
            assert r.status_code == 422 and error_code(r) == "invalid_page_token"


def acme_chain(world: ControlWorld) -> dict[str, Any]:
    """A raft network of acme with its member and one validator, AVAILABLE: the created
    network, its ``member`` and its ``node``."""
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "acme-net", "profile": "ant",
                                          "consensus": "raft", "validators": 1})
        assert r.status_code == 201, r.text
        net: dict[str, Any] = r.json()
        world.flush()
        nodes = c.get(f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes")
        (net["node"],) = nodes.json()["items"]
    return net


def acme_ca(world: ControlWorld, net: dict[str, Any]) -> dict[str, str]:
    """In acme's member CA: identity ``alice`` enrolled once (its ``identity_id``,
    ``secret``, ``certificate_id``) and a PENDING CSR request (``csr_id``)."""
    member = f"/v1/networks/{net['id']}/members/{net['member']['id']}"
    with world.client(world.creds("acme")) as c:
        ident = c.post(f"{member}/identities", json={"enrollment_id": "alice",
                                                      "max_enrollments": 0}).json()
        pem = make_csr(get_suite("p256-sha256").generate_key(), "alice")
        r = c.post(f"{member}/enroll", json={"enrollment_id": "alice", "csr_pem": pem,
                                             "enrollment_secret": ident["enrollment_secret"]})
        assert r.status_code == 201, r.text
        csr = c.post(f"{member}/csrs", json={"csr_pem": pem})
        assert csr.status_code == 201, csr.text
    return {"identity_id": ident["id"], "secret": ident["enrollment_secret"],
            "certificate_id": r.json()["id"], "csr_id": csr.json()["id"]}


def _body_properties(spec: dict[str, Any], op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    schema = content["schema"]
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return list(schema.get("properties", {}))
