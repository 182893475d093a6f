"""``consortia ca`` (typer's ``CliRunner``) against the real app over real HTTP (uvicorn on
loopback; the fake provisioner and node gateway of ``tests/control_helpers.py`` stand for
node processes, which cannot be the point here): register, enroll with a key made locally
and saved encrypted where ``consortia notary -N`` finds it, re-enroll, certificates expiring
soon, revocation and CRL, CSR requests; refusals exit 1 with the API's code and change
nothing.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.sdk import LocalNetwork, notary, sign
from consortia.sdk.control import ControlClient, new_csr
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


def env_for(world: ControlWorld, server: LiveServer, tenant: str) -> dict[str, str]:
    creds = world.creds(tenant)
    return {"CONSORTIA_ENDPOINT": server.url, "CONSORTIA_ACCESS_KEY_ID": creds.access_key_id,
            "CONSORTIA_SECRET": creds.secret, "COLUMNS": "200"}


@pytest.fixture
def env(world: ControlWorld, server: LiveServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for var in ("CONSORTIA_CREDENTIALS", "CONSORTIA_PROFILE", "CONSORTIA_ENROLLMENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return env_for(world, server, "acme")


def run(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), env=env, input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def ok_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = run(env, *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def network(env: dict[str, str]) -> tuple[str, str]:
    net = ok_json(env, "network", "create", "ledger", "--consensus", "raft",
                  "--validators", "1", "--member", "acme-org")
    return net["id"], net["member"]["id"]


def test_register_enroll_reenroll_revoke(env: dict[str, str], tmp_path: Path) -> None:
    nid, mid = network(env)
    made = ok_json(env, "ca", "identity", "register", nid, mid, "alice", "--attr", "dept=ops",
                   "--max-enrollments", "2")
    assert made["enrollment_secret"] and made["attributes"] == {"dept": "ops"}
    secret = made["enrollment_secret"]
    listed = ok_json(env, "ca", "identity", "list", nid, mid)
    assert [(i["enrollment_id"], i["status"]) for i in listed] == [("alice", "REGISTERED")]
    assert "enrollment_secret" not in listed[0]

    # a wrong secret: 403 with its code, exit 1, nothing written, nothing counted
    client_dir = tmp_path / "client"
    code, out, err = run(env, "ca", "enroll", nid, mid, "alice", "--secret", "wrong",
                         "--dir", str(client_dir))
    assert code == 1 and "invalid_enrollment_secret" in err
    assert not client_dir.exists()
    assert ok_json(env, "ca", "identity", "get", nid, mid, made["id"])["enrollment_count"] == 0

    # the secret from the prompt (hidden); the key made here, saved encrypted
    code, out, err = run(env, "ca", "enroll", nid, mid, "alice", "--dir", str(client_dir),
                         input=f"{secret}\n")
    assert code == 0, out + err
    assert f"--as {mid}/alice" in out
    key_file = client_dir / "orgs" / mid / "keystore" / "alice" / "key.pem"
    assert b"ENCRYPTED" in key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    local = LocalNetwork.open(client_dir)
    ident = local.identity()
    assert (local.chain_id, ident.org_id, ident.name, ident.role) == (nid, mid, "alice",
                                                                      "client")
    assert json.loads((client_dir / "genesis.json").read_text())["chain_id"] == nid
    assert local.node_url().startswith("http://")  # the validator the tenant sees
    sign(ident, local.chain_id, notary.content("r1", b"hello"))  # the key opens and signs

    (cert,) = ok_json(env, "ca", "cert", "list", nid, mid, "--type", "client")
    assert "CN=alice" in cert["subject"] and cert["status"] == "ACTIVE"
    assert [c["id"] for c in ok_json(env, "ca", "cert", "list", nid, mid,
                                     "--expiring-within-days", "400")] == [cert["id"]]
    assert ok_json(env, "ca", "cert", "list", nid, mid, "--expiring-within-days", "30") == []
    code, pem, _ = run(env, "ca", "cert", "get", nid, mid, cert["id"], "--pem")
    assert code == 0 and pem == cert["certificate_pem"]

    # re-enroll: a new key and certificate for alice, linked to the old one
    renewed = ok_json(env, "ca", "reenroll", nid, mid, cert["id"], "--dir", str(client_dir))
    assert renewed["previous_certificate_id"] == cert["id"]
    saved = x509.load_pem_x509_certificate(
        (client_dir / "orgs" / mid / "keystore" / "alice" / "cert.pem").read_bytes())
    assert format(saved.serial_number, "x") == renewed["serial_number"]

    r = ok_json(env, "ca", "cert", "revoke", nid, mid, cert["id"], "--reason",
                "superseded")
    assert (r["crl_number"], r["crl_published"]) == (1, True)
    assert r["certificates"][0]["revocation_reason"] == "superseded"
    code, _, err = run(env, "ca", "cert", "revoke", nid, mid, cert["id"])
    assert code == 1 and "already_revoked" in err
    crl_file = tmp_path / "crl.pem"
    info = ok_json(env, "ca", "crl", nid, mid, "--out", str(crl_file))
    assert (info["crl_number"], info["crl_published_number"]) == (1, 1)
    assert x509.load_pem_x509_crl(crl_file.read_bytes()).get_revoked_certificate_by_serial_number(
        int(cert["serial_number"], 16)) is not None

    r = ok_json(env, "ca", "identity", "revoke", nid, mid, made["id"])
    assert r["crl_number"] == 2
    assert ok_json(env, "ca", "identity", "get", nid, mid, made["id"])["status"] == "REVOKED"
    code, _, err = run(env, "ca", "enroll", nid, mid, "alice", "--secret", secret,
                       "--dir", str(tmp_path / "again"))
    assert code == 1 and "identity_revoked" in err


def test_csr_requests(world: ControlWorld, server: LiveServer, env: dict[str, str],
                      tmp_path: Path) -> None:
    nid, mid = network(env)
    _, pem = new_csr("bob")
    csr_file = tmp_path / "bob.csr"
    csr_file.write_text(pem)
    req = ok_json(env, "ca", "csr", "submit", nid, mid, "--csr", str(csr_file))
    assert (req["status"], req["subject"]) == ("PENDING", "CN=bob")
    assert [r["id"] for r in ok_json(env, "ca", "csr", "list", nid, mid,
                                     "--status", "PENDING")] == [req["id"]]
    code, _, err = run(env, "ca", "csr", "get", nid, mid, req["id"], "--out",
                       str(tmp_path / "none.pem"))
    assert code == 1 and "no certificate" in err
    done = ok_json(env, "ca", "csr", "approve", nid, mid, req["id"])
    assert done["status"] == "APPROVED" and done["certificate_id"]
    out = tmp_path / "bob.pem"
    ok_json(env, "ca", "csr", "get", nid, mid, req["id"], "--out", str(out))
    assert "OU=client" in x509.load_pem_x509_certificate(out.read_bytes()).subject.rfc4514_string()
    code, _, err = run(env, "ca", "csr", "reject", nid, mid, req["id"], "--reason", "late")
    assert code == 1 and "csr_not_pending" in err

    bad = tmp_path / "bad.csr"
    bad.write_text("not a csr")
    code, _, err = run(env, "ca", "csr", "submit", nid, mid, "--csr", str(bad))
    assert code == 1 and "malformed_csr" in err
    second = ok_json(env, "ca", "csr", "submit", nid, mid, "--csr", str(csr_file))
    rejected = ok_json(env, "ca", "csr", "reject", nid, mid, second["id"], "--reason", "no")
    assert (rejected["status"], rejected["reason"]) == ("REJECTED", "no")
    assert len(ok_json(env, "ca", "csr", "list", nid, mid)) == 2

    # another tenant: the member's CA is not its own (404), whatever the command
    code, _, err = run(env_for(world, server, "globex"), "ca", "identity", "list", nid, mid)
    assert code == 1 and "not_found" in err


def test_the_sdk_calls_every_ca_endpoint(world: ControlWorld, server: LiveServer,
                                         env: dict[str, str]) -> None:
    nid, mid = network(env)
    with ControlClient(server.url, world.creds("acme")) as c:
        made = c.register_identity(nid, mid, "carol", identity_type="admin")
        assert made.enrollment_secret and made.identity_type == "admin"
        assert [i.id for i in c.iter_identities(nid, mid, status="REGISTERED")] == [made.id]
        _key, csr = new_csr("carol")
        cert = c.enroll(nid, mid, "carol", made.enrollment_secret, csr)
        assert c.get_certificate(nid, mid, cert.id).serial_number == cert.serial_number
        assert c.get_identity(nid, mid, made.id).status == "ENROLLED"
        _, csr2 = new_csr("carol")
        again = c.reenroll(nid, mid, cert.id, csr2)
        assert [x.id for x in c.list_certificates(nid, mid, limit=1).items] == [cert.id]
        r = c.revoke_identity(nid, mid, made.id, reason="keyCompromise")
        assert {x.id for x in r.certificates} == {cert.id, again.id} and r.crl_published
        assert c.get_crl(nid, mid).crl_published_number == r.crl_number
        req = c.submit_csr(nid, mid, new_csr("dave")[1], identity_type="peer")
        assert c.get_csr(nid, mid, req.id).identity_type == "peer"
        assert c.approve_csr(nid, mid, req.id).certificate_pem
        assert [x.status for x in c.iter_csrs(nid, mid)] == ["APPROVED"]
