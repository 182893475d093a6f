"""External nodes through the API, in process (the fake provisioner and gateway of
``tests/control_helpers.py`` run the validators; ADR 0019): the row, the refusals, the
join bundle (identity issued per download, the previous one revoked, nothing secret
kept), deletion revoking the identity, and health from polling a real HTTP endpoint.
Real node processes: ``tests/integration/test_control_external.py``."""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select

from consortia.control.services import Control
from consortia.control.services.external import WAITING
from consortia.control.store.models import AuditRecord, Certificate, Node
from consortia.sdk.bundle import open_join_bundle
from consortia.sdk.control import ControlClient
from consortia.types.errors import ConsortiaError
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, FakeGateway, LiveServer, make_world
from tests.integration.helpers import free_port

PASS = "a long enough passphrase"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data",
                   external_poll_seconds=0, external_probe_timeout_seconds=2)
    try:
        yield w
    finally:
        w.close()


class Healthz:
    """A real HTTP server on loopback whose ``/healthz`` answers ``status`` (stands for a
    member's node: what is probed is only its HTTP answer)."""

    def __init__(self) -> None:
        self.status = 503
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status if self.path == "/healthz" else 404)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _network(world: ControlWorld, c: Any) -> tuple[dict[str, Any], str]:
    r = c.post("/v1/networks", json={"name": "net", "profile": "ant", "consensus": "raft",
                                      "validators": 1})
    assert r.status_code == 201, r.text
    world.flush()
    net: dict[str, Any] = c.get(f"/v1/networks/{r.json()['id']}").json()
    assert net["status"] == "AVAILABLE"
    member = c.get(f"/v1/networks/{net['id']}/members").json()["items"][0]
    return net, f"/v1/networks/{net['id']}/members/{member['id']}/nodes"


def _certs(world: ControlWorld, node_id: str) -> list[Certificate]:
    with world.control.transaction() as db:
        rows = list(db.scalars(select(Certificate).order_by(Certificate.created_at)))
        return [r for r in rows if f"CN={node_id}" in r.subject]


def test_an_external_peer_is_a_row_and_its_bundle_a_fresh_identity(
        world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net, nodes = _network(world, c)
        r = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                "api_endpoint": "http://127.0.0.1:27999/"})
        assert r.status_code == 201, r.text
        node = r.json()
        assert (node["provisioner"], node["status"], node["api_endpoint"],
                node["p2p_endpoint"]) == ("external", "CREATING", "http://127.0.0.1:27999",
                                          None)
        assert node["id"] not in {s.spec.node_id for s in world.provisioner.nodes()}
        assert _certs(world, node["id"]) == []  # no identity before the bundle

        r = c.post(f"{nodes}/{node['id']}/join-bundle", json={"passphrase": PASS})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == 'attachment; filename="far.join.json"'
        assert r.headers["cache-control"] == "no-store"
        bundle = open_join_bundle(r.content, PASS, expected_genesis_hash=net["genesis_hash"])
        h = bundle.header
        assert (h["network_id"], h["node_id"], h["node_name"]) == (net["id"], node["id"],
                                                                   "far")
        validator = c.get(nodes).json()["items"][0]
        assert validator["node_type"] == "validator"
        config = tomllib.loads(h["node_toml"])
        assert config["follow"]["validators"] == [validator["api_endpoint"]]
        assert config["api"] == {"host": "127.0.0.1", "port": 27999}
        cert = x509.load_pem_x509_certificate(h["certificate_pem"].encode())
        assert cert.public_key().public_numbers() == \
            bundle.key.native.public_key().public_numbers()  # type: ignore[attr-defined]
        (first,) = _certs(world, node["id"])
        assert (first.identity_type.value, first.status.value,
                first.serial_number) == ("peer", "ACTIVE", h["certificate_serial"])
        # nothing of the key or the passphrase is kept on disk
        data = Path(world.settings.data_dir or "")
        for path in data.rglob("*"):
            if path.is_file():
                assert PASS.encode() not in path.read_bytes()
        assert not (data / "networks" / net["id"] / "nodes" / node["id"]).exists()

        # a second download: a new identity, the first revoked (superseded), CRL published
        crl_before = c.get(f"{nodes.rsplit('/nodes', 1)[0]}/crl").json()
        again = open_join_bundle(
            c.post(f"{nodes}/{node['id']}/join-bundle", json={"passphrase": PASS}).content,
            PASS)
        assert again.header["certificate_serial"] != h["certificate_serial"]
        old, new = _certs(world, node["id"])
        assert (old.status.value, old.revocation_reason) == ("REVOKED", "superseded")
        assert new.status.value == "ACTIVE"
        crl = c.get(f"{nodes.rsplit('/nodes', 1)[0]}/crl").json()
        assert crl["crl_number"] == crl["crl_published_number"] > crl_before["crl_number"]

        # deleting it revokes its identity; nothing was ever started
        r = c.delete(f"{nodes}/{node['id']}", params={"confirm_name": "far"})
        assert r.status_code == 204, r.text
        assert c.get(f"{nodes}/{node['id']}").json()["status"] == "DELETED"
        assert [x.revocation_reason for x in _certs(world, node["id"])] == [
            "superseded", "cessationOfOperation"]
        r = c.post(f"{nodes}/{node['id']}/join-bundle", json={"passphrase": PASS})
        assert r.status_code == 409, r.text
    with world.control.transaction() as db:
        actions = [a.action for a in db.scalars(select(AuditRecord).where(
            AuditRecord.resource_id == node["id"]))]
    assert actions.count("node.join_bundle") == 3  # two given, one refused
    assert {"node.create", "node.delete"} <= set(actions)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"node_type": "peer", "external": True}, 422, "invalid_endpoint"),
    ({"node_type": "peer", "external": True, "api_endpoint": "ftp://h:1"}, 422,
     "invalid_endpoint"),
    ({"node_type": "peer", "external": True, "api_endpoint": "http://h"}, 422,
     "invalid_endpoint"),
    ({"node_type": "peer", "external": True, "api_endpoint": "http://h:1/x"}, 422,
     "invalid_endpoint"),
    ({"node_type": "validator", "external": True, "api_endpoint": "http://h:1"}, 422,
     "node_type_not_available"),
    ({"node_type": "peer", "api_endpoint": "http://h:1"}, 422, "invalid_endpoint"),
])
def test_bad_external_requests_are_refused_and_change_nothing(
        world: ControlWorld, body: dict[str, Any], status: int, code: str) -> None:
    with world.client(world.creds("acme")) as c:
        _, nodes = _network(world, c)
        r = c.post(nodes, json={"name": "bad", **body})
        assert (r.status_code, error_code(r)) == (status, code), r.text
        assert [n["node_type"] for n in c.get(nodes).json()["items"]] == ["validator"]


def test_bundle_refusals(world: ControlWorld) -> None:
    _, operator = world.add_user("acme", "vic", "operator")
    with world.client(world.creds("acme")) as c:
        _, nodes = _network(world, c)
        body = {"node_type": "peer", "external": True, "api_endpoint": "http://10.0.0.9:7060"}
        node = c.post(nodes, json={"name": "far", **body}).json()
        r = c.post(nodes, json={"name": "twin", **body})  # the same endpoint twice
        assert (r.status_code, error_code(r)) == (409, "endpoint_in_use")
        bundle = f"{nodes}/{node['id']}/join-bundle"
        r = c.post(bundle, json={"passphrase": "too short"})
        assert (r.status_code, error_code(r)) == (422, "weak_passphrase")
        r = c.post(bundle, content=b'{"passphrase": "' + b"\\ud800" * 12 + b'"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text  # JSON escapes what UTF-8 cannot carry
        validator = c.get(nodes).json()["items"][0]
        r = c.post(f"{nodes}/{validator['id']}/join-bundle", json={"passphrase": PASS})
        assert (r.status_code, error_code(r)) == (409, "not_external")
    with world.client(operator) as c:  # an operator adds nodes but gets no keys
        r = c.post(bundle, json={"passphrase": PASS})
        assert (r.status_code, error_code(r)) == (403, "forbidden_role")
    assert _certs(world, node["id"]) == []
    with world.client(world.creds("globex")) as c:  # another tenant: not found
        assert c.post(bundle, json={"passphrase": PASS}).status_code == 404


def test_health_comes_from_polling_the_endpoint(world: ControlWorld) -> None:
    server = Healthz()
    try:
        with world.client(world.creds("acme")) as c:
            _, nodes = _network(world, c)
            node = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                       "api_endpoint": server.url}).json()
            url = f"{nodes}/{node['id']}"

            def poll() -> dict[str, Any]:
                world.control.runtime.poll_external()
                world.flush()
                out: dict[str, Any] = c.get(url).json()
                return out

            got = poll()  # syncing: 503
            assert (got["status"], got["health"]) == ("CREATING", "UNKNOWN")
            assert "503" in got["status_reason"]
            server.status = 200
            got = poll()
            assert (got["status"], got["health"], got["status_reason"]) == (
                "AVAILABLE", "PASSING", None)
            assert got["health_checked_at"] is not None
            server.status = 500
            assert poll()["status"] == "AVAILABLE"  # one lost probe is not an outage
            got = poll()
            assert (got["status"], got["health"]) == ("UNHEALTHY", "FAILING")
            server.stop()
            got = poll()
            assert got["status"] == "UNHEALTHY" and "stopped answering" in got["status_reason"]
            c.delete(url, params={"confirm_name": "far"})
            assert poll()["status"] == "DELETED"  # a late probe never revives it
    finally:
        server.stop()


def test_the_runtime_leaves_external_nodes_to_the_poller_after_a_restart(
        world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        _, nodes = _network(world, c)
        node = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                   "api_endpoint": "http://127.0.0.1:27998"}).json()
    world.control.close(stop_nodes=False)
    control = Control(world.settings, provisioner=world.provisioner, gateway=FakeGateway())
    try:
        control.start()  # reconciles: the provisioner knows no such node, and need not
        control.runtime.flush()
        with control.transaction() as db:
            row = db.get(Node, node["id"])
            assert row is not None
            assert (row.status.value, row.status_reason) == ("CREATING", WAITING)
    finally:
        control.close()


def test_the_sdk_downloads_a_bundle(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        net, nodes = _network(world, c)
        node = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                   "api_endpoint": "http://127.0.0.1:27996"}).json()
    server = LiveServer(world.app).start()
    try:
        with ControlClient(server.url, world.creds("acme")) as client:
            data = client.download_join_bundle(net["id"], node["member_id"], node["id"],
                                               PASS)
            with pytest.raises(ConsortiaError) as err:
                client.download_join_bundle(net["id"], node["member_id"], node["id"], "x")
            assert err.value.code == "weak_passphrase"
    finally:
        server.stop()
    assert open_join_bundle(data, PASS).node_id == node["id"]
