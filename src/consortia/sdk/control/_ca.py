"""A member's CA through the control API: identities, enrollment, certificates,
revocation, CRL, CSR requests (``docs/spec/control-api.md`` "Member CAs").

``ControlClient`` inherits these methods (this module keeps ``_client`` a readable size).
Every path is under ``/v1/networks/{network_id}/members/{member_id}``. The holder's key
never leaves the machine: ``new_csr`` makes a P-256 key and a CSR for it, ``enroll`` sends
only the CSR, ``save_enrollment`` writes the key encrypted with the certificate into a
client directory that ``consortia notary -N DIR`` and ``LocalNetwork`` open.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from consortia.crypto import SigningKey, get_suite
from consortia.identity.csr import make_csr
from consortia.identity.keystore import FileKeystore
from consortia.sdk.control._models import (
    CaIdentity,
    Certificate,
    Channel,
    Crl,
    CsrRequest,
    Member,
    Network,
    Node,
    Page,
    R,
    Revocation,
)
from consortia.sdk.network import write_secret

SUITE = "p256-sha256"
CLIENT_DIR_FILE = "network.json"


def new_csr(common_name: str) -> tuple[SigningKey, str]:
    """A new P-256 key and a PEM CSR for ``common_name`` signed with it."""
    key = get_suite(SUITE).generate_key()
    return key, make_csr(key, common_name)


def common_name(certificate_pem: str) -> str:
    """The CN of a PEM certificate (what a re-enrollment's CSR must name again)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value
    return value.decode() if isinstance(value, bytes) else value


def save_enrollment(root: Path, *, network: Network | Channel, member: Member, genesis: bytes,
                    key: SigningKey, certificate_pem: str,
                    nodes: Sequence[Node] = ()) -> str:
    """Write ``key`` (encrypted) and its certificate into the client directory ``root``;
    the identity's reference ``org/name``.

    Layout (that of ``consortia dev init``, so ``LocalNetwork.open(root)`` and
    ``consortia notary -N root --as org/name`` use it): ``network.json`` (chain id, the
    organizations and identities, the nodes' API endpoints, the default identity),
    ``genesis.json``, ``orgs/<org>/passphrase`` (a random one, 0600, made once) and
    ``orgs/<org>/keystore/<name>/`` (``key.pem`` encrypted with it, ``cert.pem``,
    ``ca.pem``: the member's CA). Identities saved before stay; the newest one becomes
    the default.

    ``network`` is the chain the directory is for: a network, or one of its channels (a
    chain of its own, ADR 0017) with that channel's genesis and nodes; the member's
    identity is valid on every chain its organization is in."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    if member.ca_certificate_pem is None:
        raise ValueError(f"member {member.id} has no CA certificate")
    ca = x509.load_pem_x509_certificate(member.ca_certificate_pem.encode())
    name = common_name(certificate_pem)
    org = member.org_id
    org_dir = root / "orgs" / org
    org_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pw_file = org_dir / "passphrase"
    if not pw_file.exists():
        write_secret(pw_file, secrets.token_urlsafe(24))
    passphrase = pw_file.read_text().strip().encode()
    FileKeystore(org_dir / "keystore").save(name, key, cert, ca, passphrase)
    (root / "genesis.json").write_bytes(genesis)
    doc_file = root / CLIENT_DIR_FILE
    doc: dict[str, Any] = (json.loads(doc_file.read_text()) if doc_file.exists()
                           else {"orgs": {}, "nodes": []})
    ref = f"{org}/{name}"
    idents = doc.setdefault("orgs", {}).setdefault(org, {}).setdefault("identities", [])
    if ref not in idents:
        idents.append(ref)
    doc.update({"chain_id": network.chain_id, "consensus": network.consensus,
                "default_identity": ref, "client": True})
    if nodes or not doc.get("nodes"):
        ordered = sorted(nodes, key=lambda n: n.node_type != "validator")
        doc["nodes"] = [{"id": n.id, "org": n.member_id, "api": n.api_endpoint, "config": "",
                         "role": n.node_type} for n in ordered if n.api_endpoint]
    doc_file.write_text(json.dumps(doc, indent=2) + "\n")
    return ref


class CaCalls:
    """The member-CA calls of ``ControlClient``."""

    if TYPE_CHECKING:  # provided by ControlClient
        def _get(self, model: type[R], path: str, **params: Any) -> R: ...

        def _post(self, model: type[R], path: str, body: dict[str, Any]) -> R: ...

        def _page(self, model: type[R], path: str, **params: Any) -> Page[R]: ...

        def _iterate(self, model: type[R], path: str, **params: Any) -> Iterator[R]: ...

        @staticmethod
        def _create(body: dict[str, Any], client_token: str | None) -> dict[str, Any]: ...

    @staticmethod
    def _member(network_id: str, member_id: str) -> str:
        return f"/v1/networks/{network_id}/members/{member_id}"

    # --- identities ----------------------------------------------------------------------

    def register_identity(self, network_id: str, member_id: str, enrollment_id: str, *,
                          identity_type: str | None = None,
                          attributes: dict[str, str] | None = None,
                          max_enrollments: int | None = None,
                          client_token: str | None = None) -> CaIdentity:
        """Register an identity (admins of the member's tenant); ``enrollment_secret`` is
        in this answer only."""
        return self._post(CaIdentity, f"{self._member(network_id, member_id)}/identities",
                          self._create({"enrollment_id": enrollment_id,
                                        "identity_type": identity_type,
                                        "attributes": attributes,
                                        "max_enrollments": max_enrollments}, client_token))

    def list_identities(self, network_id: str, member_id: str, *, status: str | None = None,
                        limit: int | None = None,
                        page_token: str | None = None) -> Page[CaIdentity]:
        return self._page(CaIdentity, f"{self._member(network_id, member_id)}/identities",
                          status=status, limit=limit, page_token=page_token)

    def iter_identities(self, network_id: str, member_id: str, *,
                        status: str | None = None) -> Iterator[CaIdentity]:
        return self._iterate(CaIdentity, f"{self._member(network_id, member_id)}/identities",
                             status=status)

    def get_identity(self, network_id: str, member_id: str, identity_id: str) -> CaIdentity:
        return self._get(CaIdentity,
                         f"{self._member(network_id, member_id)}/identities/{identity_id}")

    def revoke_identity(self, network_id: str, member_id: str, identity_id: str, *,
                        reason: str | None = None) -> Revocation:
        """Every certificate of the identity; it enrolls no more. The CRL is committed on
        the chain (503 ``chain_unavailable``: recorded, retry to publish)."""
        return self._post(
            Revocation, f"{self._member(network_id, member_id)}/identities/{identity_id}/revoke",
            {"reason": reason} if reason else {})

    # --- enrollment and certificates -----------------------------------------------------

    def enroll(self, network_id: str, member_id: str, enrollment_id: str,
               enrollment_secret: str, csr_pem: str, *,
               client_token: str | None = None) -> Certificate:
        """A certificate for a registered identity from a CSR made with the holder's key
        (its CN the enrollment id; ``new_csr`` makes both)."""
        return self._post(Certificate, f"{self._member(network_id, member_id)}/enroll",
                          self._create({"enrollment_id": enrollment_id,
                                        "enrollment_secret": enrollment_secret,
                                        "csr_pem": csr_pem}, client_token))

    def reenroll(self, network_id: str, member_id: str, certificate_id: str, csr_pem: str, *,
                 client_token: str | None = None) -> Certificate:
        """A new certificate for the same identity from a new CSR (same CN); the old one
        stays valid until revoked or expired."""
        return self._post(
            Certificate,
            f"{self._member(network_id, member_id)}/certificates/{certificate_id}/reenroll",
            self._create({"csr_pem": csr_pem}, client_token))

    def list_certificates(self, network_id: str, member_id: str, *,
                          status: str | None = None, identity_type: str | None = None,
                          expiring_within_days: int | None = None, limit: int | None = None,
                          page_token: str | None = None) -> Page[Certificate]:
        return self._page(Certificate, f"{self._member(network_id, member_id)}/certificates",
                          status=status, identity_type=identity_type,
                          expiring_within_days=expiring_within_days, limit=limit,
                          page_token=page_token)

    def iter_certificates(self, network_id: str, member_id: str, *,
                          status: str | None = None, identity_type: str | None = None,
                          expiring_within_days: int | None = None) -> Iterator[Certificate]:
        return self._iterate(Certificate,
                             f"{self._member(network_id, member_id)}/certificates",
                             status=status, identity_type=identity_type,
                             expiring_within_days=expiring_within_days)

    def get_certificate(self, network_id: str, member_id: str,
                        certificate_id: str) -> Certificate:
        return self._get(Certificate, f"{self._member(network_id, member_id)}/certificates/"
                                      f"{certificate_id}")

    def revoke_certificate(self, network_id: str, member_id: str, certificate_id: str, *,
                           reason: str | None = None) -> Revocation:
        """With an RFC 5280 reason name (default ``unspecified``)."""
        return self._post(
            Revocation,
            f"{self._member(network_id, member_id)}/certificates/{certificate_id}/revoke",
            {"reason": reason} if reason else {})

    def get_crl(self, network_id: str, member_id: str) -> Crl:
        return self._get(Crl, f"{self._member(network_id, member_id)}/crl")

    # --- CSR requests --------------------------------------------------------------------

    def submit_csr(self, network_id: str, member_id: str, csr_pem: str, *,
                   identity_type: str | None = None,
                   client_token: str | None = None) -> CsrRequest:
        """Ask the member's CA (any tenant seeing the network) for a certificate: PENDING
        until one of its admins approves or rejects it."""
        return self._post(CsrRequest, f"{self._member(network_id, member_id)}/csrs",
                          self._create({"csr_pem": csr_pem, "identity_type": identity_type},
                                       client_token))

    def list_csrs(self, network_id: str, member_id: str, *, status: str | None = None,
                  limit: int | None = None, page_token: str | None = None) -> Page[CsrRequest]:
        return self._page(CsrRequest, f"{self._member(network_id, member_id)}/csrs",
                          status=status, limit=limit, page_token=page_token)

    def iter_csrs(self, network_id: str, member_id: str, *,
                  status: str | None = None) -> Iterator[CsrRequest]:
        return self._iterate(CsrRequest, f"{self._member(network_id, member_id)}/csrs",
                             status=status)

    def get_csr(self, network_id: str, member_id: str, csr_id: str) -> CsrRequest:
        return self._get(CsrRequest, f"{self._member(network_id, member_id)}/csrs/{csr_id}")

    def approve_csr(self, network_id: str, member_id: str, csr_id: str) -> CsrRequest:
        return self._post(CsrRequest,
                          f"{self._member(network_id, member_id)}/csrs/{csr_id}/approve", {})

    def reject_csr(self, network_id: str, member_id: str, csr_id: str,
                   reason: str) -> CsrRequest:
        return self._post(CsrRequest,
                          f"{self._member(network_id, member_id)}/csrs/{csr_id}/reject",
                          {"reason": reason})
