"""A member's CA through the control-plane API with a real node process: a client enrolled
with a key made here commits a notary transaction; once its certificate is revoked through
the API (the CRL committed on chain as a configuration transaction), the node refuses the
next transaction it signs.

The API runs in process (Starlette's TestClient); the node is a real process on a
loopback port. Waits are on statuses, polled, never on measured durations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from consortia.crypto import get_suite
from consortia.identity.csr import make_csr
from consortia.sdk import Identity, NodeClient, notary, sign
from consortia.sdk.client import NodeError
from tests.control_helpers import ControlWorld
from tests.integration.control_real import node_logs, real_control_world, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(
        serialization.Encoding.DER)


def test_an_enrolled_client_commits_until_its_certificate_is_revoked(
        world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "ca", "profile": "ant", "consensus": "solo"})
        assert r.status_code == 201, r.text
        net = r.json()
        path = f"/v1/networks/{net['id']}"
        wait_for(lambda: c.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", lambda: node_logs(world, net["id"]))
        member = f"{path}/members/{net['member']['id']}"
        (node,) = c.get(f"{member}/nodes").json()["items"]

        ident = c.post(f"{member}/identities", json={"enrollment_id": "alice",
                                                      "identity_type": "client"}).json()
        key = get_suite("p256-sha256").generate_key()  # never leaves this test
        r = c.post(f"{member}/enroll", json={
            "enrollment_id": "alice", "enrollment_secret": ident["enrollment_secret"],
            "csr_pem": make_csr(key, "alice")})
        assert r.status_code == 201, r.text
        cert = r.json()
        ca_pem = c.get(member).json()["ca_certificate_pem"]
    alice = Identity(key, _der(cert["certificate_pem"]), _der(ca_pem))

    with NodeClient(node["api_endpoint"], timeout=30) as nc:
        tx = sign(alice, net["chain_id"], notary.content("invoice-1", b"paid"))
        receipt = nc.submit(tx, wait=True, timeout=20)
        assert receipt["status"] == "committed", receipt

        with world.client(world.creds("acme")) as c:
            r = c.post(f"{member}/certificates/{cert['id']}/revoke",
                       json={"reason": "keyCompromise"})
            assert r.status_code == 200, r.text
            assert (r.json()["crl_published"], r.json()["crl_number"]) == (True, 1)
            assert c.get(f"{member}/crl").json()["crl_published_number"] == 1
        assert nc.chain_info()["config"]["organizations"][0]["has_crl"]

        tx = sign(alice, net["chain_id"], notary.content("invoice-2", b"after revocation"))
        with pytest.raises(NodeError) as refused:
            nc.submit(tx, wait=True, timeout=20)
        assert (refused.value.status, refused.value.code) == (403, "revoked_identity")
