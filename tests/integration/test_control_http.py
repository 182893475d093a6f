"""The control-plane API over real HTTP: uvicorn on a loopback port, the SDK's
``SigningAuth`` as the client, and the explorer's JavaScript run by Node.js.

- every signature failure answers 401 with its own code, end to end (what a proxy or a
  client bug really produces on the wire: a header dropped, a body swapped after signing);
- per-key rate limits answer 429 with Retry-After, and refill;
- the explorer's logic (explorer-core.js + signing.js, the files the page loads) signs
  calls that this server accepts.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest

from consortia.control.settings import RateLimit
from consortia.sdk import Credentials, SigningAuth
from tests.control_helpers import (
    PASSWORD,
    ControlWorld,
    LiveServer,
    live_server,
    make_world,
    require_node,
)

pytestmark = pytest.mark.integration

STATIC = Path(__file__).resolve().parents[2] / "src/consortia/control/http/static"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def server(world: ControlWorld) -> Iterator[LiveServer]:
    with live_server(world.app) as s:
        yield s


class Tamper(httpx.Auth):
    """Signs with ``inner``, then changes the signed request the way a proxy might."""

    requires_request_body = True

    def __init__(self, inner: httpx.Auth, change: Callable[[httpx.Request], None]) -> None:
        self.inner = inner
        self.change = change

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.inner.sync_auth_flow(request)
        signed = next(flow)
        self.change(signed)
        yield signed


def _swap_body(request: httpx.Request) -> None:
    body = request.content.replace(b"viewer", b"admin")
    request.stream = httpx.ByteStream(body)
    request._content = body
    request.headers["content-length"] = str(len(body))


def _code(r: httpx.Response) -> str:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    return str(r.json()["error"]["code"])


def test_every_signature_failure_has_its_own_401(world: ControlWorld,
                                                 server: LiveServer) -> None:
    creds = world.creds("acme")
    good = SigningAuth(creds)
    body = {"username": "eve", "role": "viewer"}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/v1/tenant", auth=good).status_code == 200

        assert _code(c.get("/v1/tenant")) == "missing_header"
        no_date = Tamper(good, lambda r: r.headers.pop("x-consortia-date"))
        assert _code(c.get("/v1/tenant", auth=no_date)) == "missing_header"

        wrong_secret = SigningAuth(Credentials(creds.access_key_id, "not-the-secret"))
        assert _code(c.get("/v1/tenant", auth=wrong_secret)) == "bad_signature"
        other_path = Tamper(good, lambda r: setattr(r, "url", r.url.copy_with(
            path="/v1/users")))
        assert _code(c.get("/v1/tenant", auth=other_path)) == "bad_signature"

        stale = SigningAuth(creds, clock=lambda: time.time() - 901)
        assert _code(c.get("/v1/tenant", auth=stale)) == "expired_timestamp"
        future = SigningAuth(creds, clock=lambda: time.time() + 901)
        assert _code(c.get("/v1/tenant", auth=future)) == "expired_timestamp"

        fixed = SigningAuth(creds, nonce=lambda: "f" * 32)
        assert c.get("/v1/tenant", auth=fixed).status_code == 200
        assert _code(c.get("/v1/tenant", auth=fixed)) == "reused_nonce"

        r = c.post("/v1/users", json=body, auth=Tamper(good, _swap_body))
        assert _code(r) == "body_mismatch"
        assert c.post("/v1/users", json=body, auth=good).status_code == 201  # untouched

        unknown = SigningAuth(Credentials("CKAAAAAAAAAAAAAAAA", creds.secret))
        assert _code(c.get("/v1/tenant", auth=unknown)) == "unknown_access_key"
        bearer = Tamper(good, lambda r: r.headers.__setitem__("authorization", "Bearer x"))
        assert _code(c.get("/v1/tenant", auth=bearer)) == "malformed_authorization"


def test_refused_signatures_write_nothing(world: ControlWorld, server: LiveServer) -> None:
    """A forged request neither burns the real client's nonce nor enters the audit trail."""
    creds = world.creds("acme")
    nonce = "a" * 32
    forged = SigningAuth(Credentials(creds.access_key_id, "forged"), nonce=lambda: nonce)
    with server.client() as c:
        r = c.post("/v1/users", json={"username": "x", "role": "owner"}, auth=forged)
        assert _code(r) == "bad_signature"
        real = SigningAuth(creds, nonce=lambda: nonce)
        assert c.get("/v1/tenant", auth=real).status_code == 200
        audit = c.get("/v1/audit", auth=SigningAuth(creds)).json()["items"]
    assert all(i["request_id"] != r.headers["x-request-id"] for i in audit)


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    world = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}",
                       rate_limit=RateLimit(per_second=0.5, burst=3),
                       login_rate_limit=RateLimit(per_second=0.1, burst=2))
    try:
        with live_server(world.app) as server:
            acme = SigningAuth(world.creds("acme"), clock=world.clock)
            with server.client() as c:
                for _ in range(3):
                    assert c.get("/v1/tenant", auth=acme).status_code == 200
                r = c.post("/v1/access-keys", json={}, auth=acme)
                assert r.status_code == 429
                assert r.json()["error"]["code"] == "rate_limited"
                assert r.headers["retry-after"] == "2"
                # one key's bucket is not another's
                globex = SigningAuth(world.creds("globex"), clock=world.clock)
                assert c.get("/v1/tenant", auth=globex).status_code == 200
                world.clock.advance(2)
                assert c.get("/v1/tenant", auth=acme).status_code == 200
                # the refused change is in the trail
                world.clock.advance(10)
                rows = c.get("/v1/audit", auth=acme,
                             params={"result": "FAILURE"}).json()["items"]
                assert [(i["action"], i["error_code"], i["http_status"]) for i in rows] == [
                    ("access_key.create", "rate_limited", 429)]

                login = {"tenant": "acme", "username": "acme-owner", "password": "wrong!"}
                codes = [c.post("/v1/session", json=login).status_code for _ in range(3)]
                assert codes == [401, 401, 429]
                r = c.post("/v1/session", json={**login, "password": PASSWORD})
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    finally:
        world.close()



_EXPLORER_RUN = """
import { listOperations, exampleFor, send } from %(core)s;
const base = %(base)s;
const auth = { mode: "key", accessKeyId: %(key_id)s, secret: %(secret)s };
const host = new URL(base).host;
const spec = await (await fetch(base + "/openapi.json")).json();
const all = listOperations(spec).flatMap((g) => g.operations);
const ops = Object.fromEntries(all.map((o) => [o.id, o]));
const out = {};
out.tags = listOperations(spec).map((g) => g.tag);
out.example = exampleFor(spec, ops.create_user.bodySchema);
out.me = await send({ baseUrl: base, host, op: ops.get_tenant, auth });
const body = JSON.stringify({ username: "js-user", role: "viewer" });
out.created = await send({ baseUrl: base, host, op: ops.create_user, body, auth });
out.got = await send({ baseUrl: base, host, op: ops.get_user,
                       values: { user_id: out.created.json.id }, auth });
out.listed = await send({ baseUrl: base, host, op: ops.list_users,
                          values: { role: "viewer", limit: "5" }, auth });
out.wrong = await send({ baseUrl: base, host, op: ops.get_tenant,
                         auth: { ...auth, secret: "nope" } });
const login = { tenant: "acme", username: "acme-owner", password: %(password)s };
out.login = await send({ baseUrl: base, host, op: ops.create_session,
                         body: JSON.stringify(login) });
console.log(JSON.stringify(out));
"""


def test_the_explorer_signs_calls_this_server_accepts(world: ControlWorld,
                                                       server: LiveServer) -> None:
    creds = world.creds("acme")
    script = _EXPLORER_RUN % {
        "core": json.dumps((STATIC / "explorer-core.js").as_uri()),
        "base": json.dumps(server.url), "key_id": json.dumps(creds.access_key_id),
        "secret": json.dumps(creds.secret), "password": json.dumps(PASSWORD)}
    proc = subprocess.run([require_node(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tags"][:5] == ["tenant", "users", "access keys", "session", "audit"]
    assert out["example"] == {"username": "alice", "role": "owner"}
    assert out["me"]["status"] == 200, out["me"]
    assert out["me"]["json"]["tenant"]["name"] == "acme"
    assert out["me"]["canonicalRequest"].startswith("GET\n/v1/tenant\n")
    assert out["created"]["status"] == 201, out["created"]
    assert out["got"]["json"]["username"] == "js-user"
    assert [u["username"] for u in out["listed"]["json"]["items"]] == ["js-user"]
    assert out["wrong"]["status"] == 401
    assert out["wrong"]["json"]["error"]["code"] == "bad_signature"
    assert out["login"]["status"] == 201 and len(out["login"]["json"]["csrf_token"]) == 64
