"""Three transaction managers as real processes over mutual TLS on 127.0.0.1.

Each organization has its own CA (made here), an admin who signs its directory entry, a
manager certificate (role peer) in a keystore and an encrypted X25519 key, written by the
product's own ``consortia.sdk.nettm`` (as ``init_network`` writes them). Nothing is
faked: the managers are ``python -m consortia.privacy serve`` processes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.keystore import FileKeystore
from consortia.p2p.tls import NodeCredentials, client_context
from consortia.privacy import PrivacyClient, PrivacyClientError
from consortia.privacy import keys as keyfiles
from consortia.privacy.box import public_bytes, seal
from consortia.privacy.directory import DirectoryEntry, sign_entry
from consortia.sdk import nettm
from consortia.sdk.identity import Identity
from consortia.types.config import Role
from tests.integration.helpers import free_port_block, subprocess_env, wait_until


def write_directory(path: Path, members: list[Member]) -> None:
    """The signed directory of ``members``, each entry signed by its organization's admin."""
    nettm.write_directory(path, [(m.files, Identity(m.admin_key, m.admin_cert))
                                 for m in members])


class Member:
    def __init__(self, root: Path, org_id: str, local_port: int, peer_port: int,
                 ca: CertificateAuthority | None = None) -> None:
        self.org_id = org_id
        self.dir = root / org_id
        self.dir.mkdir()
        self.ca = ca or CertificateAuthority.create(org_id)
        self.admin_key, admin = self.ca.issue_identity(f"{org_id}-admin", Role.ADMIN)
        self.admin_cert = cert_der(admin)
        self.files = nettm.write_manager(self.dir, org_id, self.ca, host="127.0.0.1",
                                         local_port=local_port, peer_port=peer_port)
        passphrase = (self.dir / nettm.PASSPHRASE_FILE).read_bytes().strip()
        self.token = (self.dir / nettm.TOKEN_FILE).read_text().strip()
        tls = FileKeystore(self.dir / "keystore").load(nettm.TLS_NAME, passphrase)
        self.tls_key, self.tls_cert = tls.key, tls.cert_der
        (self.dir / "ca.pem").write_bytes(
            self.ca.cert.public_bytes(serialization.Encoding.PEM))
        self.tm_key = keyfiles.load_key(self.dir / nettm.KEY_FILE, passphrase)
        self.pub = public_bytes(self.tm_key)
        assert self.pub == self.files.public_key
        self.local_port, self.peer_port = local_port, peer_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def write_config(self, members: list[Member]) -> None:
        nettm.write_manager_config(self.files, {m.org_id: str(m.dir / "ca.pem")
                                                for m in members}, "../directory.json",
                                   limits={"send_timeout_s": 1.5, "peer_timeout_s": 2.0})

    def start(self) -> None:
        log = (self.dir / "tm.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consortia.privacy", "serve", "--config",
             str(self.dir / "tm.toml")], stdout=log, stderr=log, env=subprocess_env())

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.org_id} exited: {(self.dir / 'tm.log').read_text()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(up, 45.0, f"the manager of {self.org_id}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> PrivacyClient:
        return PrivacyClient(self.url, self.token, timeout=20.0)

    def payload_rows(self) -> int:
        with sqlite3.connect(self.dir / "data" / "privacy.sqlite3") as db:
            n: int = db.execute("SELECT COUNT(*) FROM payloads").fetchone()[0]
        return n

    def db_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in (self.dir / "data").glob("privacy.sqlite3*"))


def mtls(creds: NodeCredentials, members: list[Member]) -> httpx.Client:
    ctx = client_context(creds, [m.ca.cert_der for m in members])
    return httpx.Client(verify=ctx, timeout=10.0)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Member]]:
    root = tmp_path_factory.mktemp("privacy")
    base = free_port_block(6)
    ms = [Member(root, f"org{i + 1}", base + i, base + 3 + i) for i in range(3)]
    write_directory(root / "directory.json", ms)
    for m in ms:
        m.write_config(ms)
    try:
        for m in ms:
            m.start()
        yield ms
    finally:
        for m in ms:
            m.stop()


@pytest.mark.slow
def test_a_sends_to_b_b_reads_c_learns_nothing(members: list[Member]) -> None:
    a, b, c = members
    secret = b"transfer(0xb0b, 1000) -- private calldata"
    with a.client() as ta, b.client() as tb, c.client() as tc:
        assert ta.public_keys() == [a.pub]
        h = ta.send(secret, private_for=[b.pub])
        assert len(h) == 64
        assert tb.receive(h) == secret
        assert ta.receive(h) == secret  # the sender keeps its own copy
        assert tc.receive(h) is None  # not a participant
        assert [d["state"] for d in ta.deliveries(h)] == ["delivered"]
    assert c.payload_rows() == 0
    assert h not in c.db_bytes()
    assert secret not in b.db_bytes() and secret not in a.db_bytes()  # encrypted at rest


@pytest.mark.slow
def test_signed_transaction_flow_keeps_the_hash(members: list[Member]) -> None:
    a, b, c = members
    with a.client() as ta, b.client() as tb, c.client() as tc:
        h = ta.store_raw(b"signed-tx data")
        assert tb.receive(h) is None
        assert ta.send_signed(h, [b.pub]) == h
        assert tb.receive(h) == b"signed-tx data"
        assert tc.receive(h) is None


@pytest.mark.slow
def test_c_cannot_register_or_announce_bs_key(members: list[Member]) -> None:
    a, b, c = members
    c_creds = NodeCredentials.from_signing_key(c.tls_cert, c.tls_key)
    claim_b_key = sign_entry(DirectoryEntry("org3", 2, f"127.0.0.1:{c.peer_port}", (b.pub,)),
                             c.admin_key, c.admin_cert)
    as_org2 = sign_entry(DirectoryEntry("org2", 2, f"127.0.0.1:{c.peer_port}", (b.pub,)),
                         c.admin_key, c.admin_cert)
    with mtls(c_creds, members) as http:
        for target in (a, b):
            url = f"https://127.0.0.1:{target.peer_port}/v1/partyinfo"
            r = http.post(url, json=claim_b_key.to_json())
            assert r.status_code == 403 and r.json()["error"]["code"] == "foreign_key", r.text
            r = http.post(url, json=as_org2.to_json())
            assert r.status_code == 403 and r.json()["error"]["code"] == "foreign_key", r.text
        entries = http.get(f"https://127.0.0.1:{a.peer_port}/v1/partyinfo").json()["entries"]
    org2 = next(e for e in entries if e["org_id"] == "org2")
    assert org2["endpoint"] == f"127.0.0.1:{b.peer_port}" and org2["sequence"] == 1
    with a.client() as ta, b.client() as tb:  # A still delivers to the real B
        assert tb.receive(ta.send(b"still to b", [b.pub])) == b"still to b"


@pytest.mark.slow
def test_a_manager_without_a_valid_org_certificate_cannot_connect(members: list[Member]
                                                                  ) -> None:
    a, b, _ = members
    rogue_ca = CertificateAuthority.create("org2")  # same name, not the consortium's CA
    k, cert = rogue_ca.issue_identity("org2-tm", Role.PEER)
    rogue = NodeCredentials.from_signing_key(cert_der(cert), k)
    body = seal(b"x", b.tm_key, [a.pub]).encode()
    ctx = client_context(rogue, [b.ca.cert_der])
    with httpx.Client(verify=ctx, timeout=10.0) as http, pytest.raises(httpx.HTTPError):
        http.post(f"https://127.0.0.1:{a.peer_port}/v1/push", content=body)
    # a certificate of a member CA but not a manager's (role client) is refused by the app
    k2, client_cert = a.ca.issue_identity("org1-user", Role.CLIENT)
    with mtls(NodeCredentials.from_signing_key(cert_der(client_cert), k2), members) as http:
        r = http.post(f"https://127.0.0.1:{b.peer_port}/v1/push", content=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "peer_refused"


@pytest.mark.slow
def test_a_push_addressed_to_nobody_on_the_receiver_is_refused(members: list[Member]
                                                               ) -> None:
    a, b, c = members
    before = c.payload_rows()
    creds = NodeCredentials.from_signing_key(a.tls_cert, a.tls_key)
    for_b_only = seal(b"not for c", a.tm_key, [b.pub]).encode()
    with mtls(creds, members) as http:
        r = http.post(f"https://127.0.0.1:{c.peer_port}/v1/push", content=for_b_only)
        assert r.status_code == 422 and r.json()["error"]["code"] == "not_addressed"
        r = http.post(f"https://127.0.0.1:{c.peer_port}/v1/push", content=b"\x00" * 10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed"
        r = http.post(f"https://127.0.0.1:{c.peer_port}/v1/push", content=b"\x00" * (4 << 20))
        assert r.status_code == 413
        # the pusher must own the sender key: org1's manager pushing org2's payload
        spoof = seal(b"from b?", b.tm_key, [c.pub]).encode()
        r = http.post(f"https://127.0.0.1:{c.peer_port}/v1/push", content=spoof)
        assert r.status_code == 422 and r.json()["error"]["code"] == "tampered"
    assert c.payload_rows() == before


@pytest.mark.slow
def test_local_api_needs_the_token(members: list[Member]) -> None:
    a = members[0]
    r = httpx.get(f"{a.url}/v1/keys", timeout=5.0)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_token"
    with PrivacyClient(a.url, "w" * 40, timeout=5.0) as bad, \
            pytest.raises(PrivacyClientError) as err:
        bad.send(b"x", [])
    assert err.value.code == "bad_token"


@pytest.mark.slow
def test_send_to_an_unreachable_recipient_fails_clearly_and_is_recorded(
        members: list[Member]) -> None:
    a, b, c = members
    c.stop()
    try:
        with a.client() as ta, pytest.raises(PrivacyClientError) as err:
            ta.send(b"to c, who is down", [b.pub, c.pub])
        assert err.value.status == 503 and err.value.code == "recipient_unreachable"
        assert set(err.value.failures) == {"org3"}
        h = bytes.fromhex(err.value.detail["hash"])
        with a.client() as ta:
            states = {d["org_id"]: (d["state"], d["attempts"]) for d in ta.deliveries(h)}
        assert states["org2"][0] == "delivered"
        assert states["org3"][0] == "failed" and states["org3"][1] >= 2  # retried
    finally:
        c.start()
    with a.client() as ta, c.client() as tc:  # a new send after the restart succeeds
        assert tc.receive(ta.send(b"c is back", [c.pub])) == b"c is back"
    assert b.proc is not None  # B acknowledged h: it survives SIGKILL and a restart
    b.proc.kill()
    b.proc.wait()
    b.start()
    with b.client() as tb:
        assert tb.receive(h) == b"to c, who is down"


@pytest.mark.slow
def test_a_wrong_endpoint_cannot_redirect_a_payload(members: list[Member]) -> None:
    """Tessera 649: even if org2's endpoint pointed at org3's manager, A would not push."""
    from consortia.privacy.directory import OrgTrust
    from consortia.privacy.peers import DeliveryError, PeerClient

    a, b, c = members
    before = c.payload_rows()
    trust = OrgTrust.from_ca_certs({m.org_id: m.ca.cert_der for m in members})
    peers = PeerClient(NodeCredentials.from_signing_key(a.tls_cert, a.tls_key), trust,
                       timeout_s=5.0)
    body = seal(b"for b", a.tm_key, [b.pub, c.pub]).encode()
    with pytest.raises(DeliveryError):
        peers.post("org2", f"127.0.0.1:{c.peer_port}", "/v1/push", body,
                   "application/octet-stream")
    assert c.payload_rows() == before
