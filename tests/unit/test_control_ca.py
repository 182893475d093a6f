"""Members' CAs through the API, in process, with the fake provisioner and node gateway of
``tests/control_helpers.py``: register, enroll from a CSR made with a local key, refusals
that change nothing, throttling, re-enroll, revocation with the CRL sent to the chain (and
kept when the chain cannot take it), CSR requests from another tenant, expiring
certificates, roles.

Real node processes refusing a revoked certificate: ``tests/integration/test_control_ca.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from starlette.testclient import TestClient

from consortia.control.settings import RateLimit
from consortia.control.store.models import CaIdentity, Certificate, Member
from consortia.crypto import get_suite
from consortia.identity.ca import certificate_attributes
from consortia.identity.csr import make_csr
from consortia.sdk.tx import SignedTx
from consortia.types.tx import CrlUpdate
from tests.control_api_suite import error_code
from tests.control_helpers import ControlWorld, FakeGateway, make_world
from tests.unit.test_control_networks import create, failures


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data")
    try:
        yield w
    finally:
        w.close()


def chain(world: ControlWorld) -> str:
    """An AVAILABLE raft network of acme with one validator: the member's path."""
    with world.client(world.creds("acme")) as c:
        net = create(c, name="ca-net")
    world.flush()
    return f"/v1/networks/{net['id']}/members/{net['member']['id']}"


def csr(name: str) -> str:
    return make_csr(get_suite("p256-sha256").generate_key(), name)


def register(c: TestClient, path: str, name: str = "alice", **body: Any) -> dict[str, Any]:
    r = c.post(f"{path}/identities", json={"enrollment_id": name, **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def enroll(c: TestClient, path: str, name: str, secret: str, status: int = 201,
           pem: str | None = None) -> dict[str, Any]:
    r = c.post(f"{path}/enroll", json={"enrollment_id": name, "enrollment_secret": secret,
                                       "csr_pem": pem if pem is not None else csr(name)})
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def counts(world: ControlWorld) -> tuple[int, int]:
    """(certificates issued, enrollments counted) in the database."""
    with world.control.transaction() as db:
        certs = db.scalar(select(func.count()).select_from(Certificate)) or 0
        enrolled = db.scalar(select(func.sum(CaIdentity.enrollment_count))) or 0
        return certs, enrolled


def crl_updates(world: ControlWorld) -> list[SignedTx]:
    gateway: FakeGateway = world.gateway
    return [tx for tx in gateway.committed if isinstance(tx.payload.body, CrlUpdate)]


# --- register and enroll -------------------------------------------------------------------


def test_register_then_enroll_with_a_key_the_server_never_sees(world: ControlWorld) -> None:
    path = chain(world)
    _, viewer = world.add_user("acme", "vic", "viewer")
    with world.client(world.creds("acme")) as c:
        made = register(c, path, "alice", identity_type="client",
                        attributes={"department": "audit", "level": "3"}, max_enrollments=2)
        secret = made["enrollment_secret"]
        assert secret and len(secret) >= 32
        assert (made["status"], made["enrollment_count"]) == ("REGISTERED", 0)
        assert made["attributes"] == {"department": "audit", "level": "3"}
        member = c.get(path).json()
    with world.control.transaction() as db:  # the secret is stored as Argon2id only
        row = db.get(CaIdentity, made["id"])
        assert row is not None and row.secret_hash is not None
        assert row.secret_hash.startswith("$argon2id$") and secret not in row.secret_hash

    key = get_suite("p256-sha256").generate_key()
    with world.client(viewer) as c:  # any user of the tenant enrolls, with the secret
        cert_doc = enroll(c, path, "alice", secret, pem=make_csr(key, "alice"))
    cert = x509.load_pem_x509_certificate(cert_doc["certificate_pem"].encode())
    ca = x509.load_pem_x509_certificate(member["ca_certificate_pem"].encode())
    assert cert.issuer == ca.subject
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    ca_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ) == key.public_key().public_bytes()
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[NameOID.COMMON_NAME] == "alice"
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "client"
    assert subject[NameOID.ORGANIZATION_NAME] == member["org_id"]
    assert certificate_attributes(cert) == {"department": "audit", "level": "3",
                                            "hf.EnrollmentID": "alice", "hf.Type": "client"}
    assert cert_doc["serial_number"] == format(cert.serial_number, "x")
    assert (cert_doc["status"], cert_doc["ca_identity_id"]) == ("ACTIVE", made["id"])
    assert cert_doc["not_after"] > cert_doc["not_before"]
    with world.client(world.creds("acme")) as c:
        got = c.get(f"{path}/identities/{made['id']}").json()
        assert (got["status"], got["enrollment_count"]) == ("ENROLLED", 1)
        assert "enrollment_secret" not in got
        listed = c.get(f"{path}/certificates").json()["items"]
        assert [x["id"] for x in listed] == [cert_doc["id"]]
        assert c.get(f"{path}/certificates/{cert_doc['id']}").json() == cert_doc
        # the same enrollment id cannot be registered twice
        r = c.post(f"{path}/identities", json={"enrollment_id": "alice"})
        assert r.status_code == 409 and error_code(r) == "identity_exists"
        r = c.post(f"{path}/identities", json={"enrollment_id": "x",
                                               "attributes": {"hf.Type": "admin"}})
        assert r.status_code == 422 and error_code(r) == "invalid_attributes"


def test_refused_enrollments_change_nothing(world: ControlWorld) -> None:
    path = chain(world)
    with world.client(world.creds("acme")) as c:
        secret = register(c, path, "bob", max_enrollments=1)["enrollment_secret"]
        good = csr("bob")
        der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(
            serialization.Encoding.DER))
        der[-1] ^= 0x01  # the last byte of the signature's s: still DER, no longer valid
        tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(
            serialization.Encoding.PEM).decode()
        k1_key = ec.generate_private_key(ec.SECP256K1())
        k1 = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "bob")])).sign(k1_key, hashes.SHA256())
        k1_pem = k1.public_bytes(serialization.Encoding.PEM).decode()
        cases = [
            ({"enrollment_secret": "wrong" * 6}, 403, "invalid_enrollment_secret"),
            ({"enrollment_id": "nobody"}, 403, "invalid_enrollment_secret"),
            ({"csr_pem": csr("mallory")}, 422, "csr_subject_mismatch"),
            ({"csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"}, 422, "malformed_csr"),
            ({"csr_pem": "x" * 9000}, 413, "csr_too_large"),
            ({"csr_pem": tampered}, 422, "csr_bad_signature"),
            ({"csr_pem": k1_pem}, 422, "unsupported_key_type"),
        ]
        for change, status, code in cases:
            body = {"enrollment_id": "bob", "enrollment_secret": secret, "csr_pem": good,
                    **change}
            r = c.post(f"{path}/enroll", json=body)
            assert r.status_code == status, (change, r.text)
            assert error_code(r) == code
            assert counts(world) == (0, 0)
        enroll(c, path, "bob", secret, pem=good)
        r = c.post(f"{path}/enroll", json={"enrollment_id": "bob", "enrollment_secret": secret,
                                           "csr_pem": csr("bob")})
        assert r.status_code == 409 and error_code(r) == "enrollments_exhausted"
        assert counts(world) == (1, 1)
    codes = [code for code, _ in failures(world, "certificate.enroll")]
    assert codes.count("invalid_enrollment_secret") == 2 and "enrollments_exhausted" in codes


def test_enrollment_attempts_are_throttled(tmp_path: Path) -> None:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=tmp_path / "data",
                   login_rate_limit=RateLimit(per_second=0.001, burst=3))
    try:
        path = chain(w)
        with w.client(w.creds("acme")) as c:
            secret = register(c, path, "carol", max_enrollments=0)["enrollment_secret"]
            for _ in range(3):
                enroll(c, path, "carol", "not the secret at all", status=403)
            r = c.post(f"{path}/enroll", json={"enrollment_id": "carol",
                                               "enrollment_secret": secret,
                                               "csr_pem": csr("carol")})
            assert r.status_code == 429 and error_code(r) == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
        assert counts(w) == (0, 0)
    finally:
        w.close()


def test_idempotent_register_and_enroll(world: ControlWorld) -> None:
    path = chain(world)
    with world.client(world.creds("acme")) as c:
        first = register(c, path, "dan", client_token="reg-1")
        again = register(c, path, "dan", client_token="reg-1")
        assert again["id"] == first["id"] and again["enrollment_secret"] is None
        r = c.post(f"{path}/identities", json={"enrollment_id": "dan", "max_enrollments": 5,
                                               "client_token": "reg-1"})
        assert r.status_code == 409 and error_code(r) == "idempotency_conflict"
        body = {"enrollment_id": "dan", "enrollment_secret": first["enrollment_secret"],
                "csr_pem": csr("dan"), "client_token": "enr-1"}
        a, b = c.post(f"{path}/enroll", json=body), c.post(f"{path}/enroll", json=body)
        assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert counts(world) == (1, 1)


# --- re-enroll, revoke ---------------------------------------------------------------------


def test_reenroll_links_the_new_certificate(world: ControlWorld) -> None:
    path = chain(world)
    _, viewer = world.add_user("acme", "vic", "viewer")
    with world.client(world.creds("acme")) as c:
        secret = register(c, path, "erin")["enrollment_secret"]
        old = enroll(c, path, "erin", secret)
        url = f"{path}/certificates/{old['id']}/reenroll"
        r = c.post(url, json={"csr_pem": csr("frank")})
        assert r.status_code == 422 and error_code(r) == "csr_subject_mismatch"
        r = c.post(url, json={"csr_pem": csr("erin")})
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["previous_certificate_id"] == old["id"]
        assert new["serial_number"] != old["serial_number"]
        assert new["ca_identity_id"] == old["ca_identity_id"]
        assert c.get(f"{path}/certificates/{old['id']}").json()["status"] == "ACTIVE"
        ident = c.get(f"{path}/identities/{old['ca_identity_id']}").json()
        assert ident["enrollment_count"] == 1  # a re-enrollment is not an enrollment
    with world.client(viewer) as c:
        r = c.post(url, json={"csr_pem": csr("erin")})
        assert r.status_code == 403 and error_code(r) == "forbidden_role"


def test_revocation_publishes_the_crl_and_survives_an_unavailable_chain(
        world: ControlWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    path = chain(world)
    with world.client(world.creds("acme")) as c:
        secret = register(c, path, "gina", max_enrollments=3)["enrollment_secret"]
        one, two, three = (enroll(c, path, "gina", secret) for _ in range(3))
        r = c.post(f"{path}/certificates/{one['id']}/revoke", json={"reason": "keyCompromise"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["crl_number"], out["crl_published"]) == (1, True)
        (revoked,) = out["certificates"]
        assert (revoked["status"], revoked["revocation_reason"]) == ("REVOKED", "keyCompromise")
        (tx,) = crl_updates(world)
        body = tx.payload.body
        assert isinstance(body, CrlUpdate)
        crl = x509.load_der_x509_crl(body.crl_der)
        entry = crl.get_revoked_certificate_by_serial_number(int(one["serial_number"], 16))
        assert entry is not None
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
            x509.ReasonFlags.key_compromise)
        signer = x509.load_der_x509_certificate(_signer(tx))
        assert signer.subject.get_attributes_for_oid(
            NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "admin"
        r = c.post(f"{path}/certificates/{one['id']}/revoke", json={})
        assert r.status_code == 409 and error_code(r) == "already_revoked"

        def down(*_a: Any, **_k: Any) -> dict[str, Any]:
            raise httpx.ConnectError("connection refused")

        monkeypatch.setattr(world.gateway, "commit", down)
        r = c.post(f"{path}/certificates/{two['id']}/revoke", json={"reason": "superseded"})
        assert r.status_code == 503 and error_code(r) == "chain_unavailable"
        assert c.get(f"{path}/certificates/{two['id']}").json()["status"] == "REVOKED"
        crl_doc = c.get(f"{path}/crl").json()
        assert (crl_doc["crl_number"], crl_doc["crl_published_number"]) == (2, 1)
        monkeypatch.undo()
        r = c.post(f"{path}/certificates/{two['id']}/revoke", json={"reason": "superseded"})
        assert r.status_code == 200 and r.json()["crl_published"], r.text
        assert c.get(f"{path}/crl").json()["crl_published_number"] == 2
        assert len(crl_updates(world)) == 2

        # revoking the identity revokes what is left and stops its enrollments
        r = c.post(f"{path}/identities/{one['ca_identity_id']}/revoke",
                   json={"reason": "cessationOfOperation"})
        assert r.status_code == 200, r.text
        assert {x["status"] for x in r.json()["certificates"]} == {"REVOKED"}
        assert r.json()["crl_number"] == 3
        assert c.get(f"{path}/certificates/{three['id']}").json()[
            "revocation_reason"] == "cessationOfOperation"
        r = c.post(f"{path}/enroll", json={"enrollment_id": "gina",
                                           "enrollment_secret": secret, "csr_pem": csr("gina")})
        assert r.status_code == 409 and error_code(r) == "identity_revoked"
        revoked_list = c.get(f"{path}/certificates", params={"status": "REVOKED"}).json()
        assert len(revoked_list["items"]) == 3
    with world.control.transaction() as db:
        member = db.scalars(select(Member)).one()
        assert (member.crl_number, member.crl_published_number) == (3, 3)


def _signer(tx: SignedTx) -> bytes:
    from consortia.types.tx import Envelope

    return Envelope.decode(tx.envelope).signer


# --- CSR requests, expiring certificates, roles --------------------------------------------


def test_csr_requests_from_another_tenant(world: ControlWorld) -> None:
    path = chain(world)
    net_id, member_id = path.split("/")[3], path.split("/")[5]
    # globex joins the network: invitations are another engineer's work, so its member row
    # is written here directly (no CA, no nodes) — all a CSR request needs is to see the
    # network
    globex = world.tenants["globex"].tenant.id
    with world.control.transaction() as db:
        db.add(Member(id="mem-globex0000000000", network_id=net_id, tenant_id=globex,
                      name="globex-org", org_id="mem-globex0000000000", status="AVAILABLE"))
    _, viewer = world.add_user("acme", "vic", "viewer")
    with world.client(world.creds("globex")) as g:
        r = g.post(f"{path}/csrs", json={"csr_pem": csr("globex-peer0"),
                                         "identity_type": "peer"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert (first["status"], first["tenant_id"]) == ("PENDING", globex)
        assert first["subject"] == "CN=globex-peer0"
        second = g.post(f"{path}/csrs", json={"csr_pem": csr("globex-x")}).json()
        r = g.post(f"{path}/csrs/{first['id']}/approve")
        assert r.status_code == 404  # not globex's CA
        r = g.post(f"{path}/csrs", json={"csr_pem": "garbage"})
        assert r.status_code == 422 and error_code(r) == "malformed_csr"
    with world.client(world.creds("acme")) as c:
        own = c.post(f"{path}/csrs", json={"csr_pem": csr("acme-app")}).json()
    with world.client(viewer) as v:
        listed = v.get(f"{path}/csrs").json()["items"]
        assert [x["id"] for x in listed] == [first["id"], second["id"], own["id"]]
        r = v.post(f"{path}/csrs/{first['id']}/approve")
        assert r.status_code == 403 and error_code(r) == "forbidden_role"
    with world.client(world.creds("acme")) as c:
        approved = c.post(f"{path}/csrs/{first['id']}/approve").json()
        assert approved["status"] == "APPROVED" and approved["certificate_id"]
        r = c.post(f"{path}/csrs/{second['id']}/reject", json={"reason": "unknown host"})
        assert r.json()["status"] == "REJECTED" and r.json()["reason"] == "unknown host"
        for action, body in (("approve", None), ("reject", {"reason": "x"})):
            r = c.post(f"{path}/csrs/{first['id']}/{action}", json=body)
            assert r.status_code == 409 and error_code(r) == "csr_not_pending"
        cert = c.get(f"{path}/certificates/{approved['certificate_id']}").json()
        assert (cert["identity_type"], cert["ca_identity_id"]) == ("peer", None)
        assert c.get(f"{path}/csrs", params={"status": "PENDING"}).json()["items"][0][
            "id"] == own["id"]
    with world.client(world.creds("globex")) as g:
        mine = g.get(f"{path}/csrs").json()["items"]
        assert [x["id"] for x in mine] == [first["id"], second["id"]]  # not acme's own
        got = g.get(f"{path}/csrs/{first['id']}").json()
        pem = x509.load_pem_x509_certificate(got["certificate_pem"].encode())
        assert pem.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
            "globex-peer0")
        assert g.get(f"{path}/csrs/{own['id']}").status_code == 404
        assert g.get(f"{path}/certificates").status_code == 404  # the CA's list is acme's
        assert g.get(f"/v1/networks/{net_id}/members/{member_id}/identities"
                     ).status_code == 404


def test_expiring_certificates(world: ControlWorld) -> None:
    path = chain(world)
    with world.client(world.creds("acme")) as c:
        secret = register(c, path, "hal", max_enrollments=0)["enrollment_secret"]
        cert = enroll(c, path, "hal", secret)

        def ids(**params: Any) -> list[str]:
            r = c.get(f"{path}/certificates", params=params)
            assert r.status_code == 200, r.text
            return [x["id"] for x in r.json()["items"]]

        assert ids(expiring_within_days=30) == []
        assert ids(status="ACTIVE") == [cert["id"]]
        world.clock.advance(350 * 86400)  # the certificate is valid for 365 days
        assert ids(expiring_within_days=30) == [cert["id"]]
        assert ids(expiring_within_days=30, identity_type="peer") == []
        world.clock.advance(30 * 86400)
        assert ids(expiring_within_days=30) == []
        assert ids(status="EXPIRED") == [cert["id"]] and ids(status="ACTIVE") == []
        assert c.get(f"{path}/certificates/{cert['id']}").json()["status"] == "EXPIRED"
        r = c.get(f"{path}/certificates", params={"expiring_within_days": -1})
        assert r.status_code == 422


def test_roles(world: ControlWorld) -> None:
    path = chain(world)
    _, viewer = world.add_user("acme", "vic", "viewer")
    _, operator = world.add_user("acme", "otto", "operator")
    with world.client(world.creds("acme")) as c:
        ident = register(c, path, "ivy")
        cert = enroll(c, path, "ivy", ident["enrollment_secret"])
    for creds in (viewer, operator):
        with world.client(creds) as c:
            for r in (c.post(f"{path}/identities", json={"enrollment_id": "x"}),
                      c.post(f"{path}/certificates/{cert['id']}/revoke", json={}),
                      c.post(f"{path}/identities/{ident['id']}/revoke", json={})):
                assert r.status_code == 403 and error_code(r) == "forbidden_role", r.text
            assert c.get(f"{path}/identities").status_code == 200
            assert c.get(f"{path}/certificates").status_code == 200
            assert c.get(f"{path}/crl").status_code == 200
    with world.client(viewer) as c:
        r = c.post(f"{path}/csrs", json={"csr_pem": csr("v")})
        assert r.status_code == 403
    assert counts(world) == (1, 1)
