"""Certificate signing requests (PKCS#10): what a CA checks before it signs one.

The key pair is the requester's: it makes the CSR, signing it with the private key, and
sends only the CSR (PEM). ``parse_csr`` refuses, each with its own code, a request too big
to be one (``csr_too_large``, 413), one that is not a PEM PKCS#10 request
(``malformed_csr``), one whose self-signature does not verify — proof that the requester
holds the key — (``csr_bad_signature``), one whose key is not of the chain's suite
(``unsupported_key_type``: the ``p256-sha256`` suite takes ECDSA P-256 keys only), and one
without exactly one usable common name (``csr_subject_invalid``); all 422 but the first.

Only the public key and the common name are taken from a CSR: the CA writes the rest of the
subject (role OU, organization O) and every extension itself, so a requester cannot ask
for a CA certificate, another organization, or a role it was not given.

``make_csr`` builds one for a key, as a client would.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consortia.crypto import CryptoError, PublicKey, SigningKey, get_suite
from consortia.crypto.p256 import native_signing_key
from consortia.types.errors import InvalidRequest, TooLarge

MAX_CSR_BYTES = 8 * 1024
"""A P-256 CSR is well under 1 KiB; anything over 8 KiB is not one worth parsing."""
MAX_NAME = 64
"""Longest common name a CA issues (``CertificateAuthority.issue``)."""


@dataclass(frozen=True, slots=True)
class ParsedCsr:
    """A CSR that passed every check."""

    common_name: str
    subject: str
    """The requested subject, RFC 4514 (what the requester asked for; not what is issued)."""
    public_key: PublicKey
    """The requester's key, loaded by the suite."""


def parse_csr(pem: str | bytes, *, suite: str = "p256-sha256") -> ParsedCsr:
    """Check ``pem`` as described in the module docstring; the request's key and name."""
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_CSR_BYTES:
        raise TooLarge(f"a CSR is at most {MAX_CSR_BYTES} bytes; this one is {len(data)}",
                       code="csr_too_large")
    try:
        csr = x509.load_pem_x509_csr(data)
        native = csr.public_key()
        signed = csr.is_signature_valid
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        subject = csr.subject.rfc4514_string()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidRequest(f"csr_pem is not a PEM PKCS#10 certificate request: {exc}",
                             code="malformed_csr") from None
    if not signed:
        raise InvalidRequest("the CSR's signature does not verify with its own key: it was "
                             "not made with the key it names", code="csr_bad_signature")
    if not isinstance(native, ec.EllipticCurvePublicKey) or native.curve.name != "secp256r1":
        raise InvalidRequest(f"the {suite} suite takes ECDSA P-256 keys; the CSR holds "
                             f"{type(native).__name__.lstrip('_')}",
                             code="unsupported_key_type")
    spki = native.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        key = get_suite(suite).public_key_from_spki(spki)
    except CryptoError as exc:
        raise InvalidRequest(f"the CSR's key cannot be used: {exc}",
                             code="unsupported_key_type") from None
    if len(names) != 1:
        raise InvalidRequest("the CSR's subject must carry exactly one common name (CN)",
                             code="csr_subject_invalid")
    cn = names[0].value
    cn = cn.decode("utf-8", "replace") if isinstance(cn, bytes) else cn
    if not 1 <= len(cn) <= MAX_NAME:
        raise InvalidRequest(f"the CSR's common name must be 1 to {MAX_NAME} characters",
                             code="csr_subject_invalid")
    return ParsedCsr(cn, subject, key)


def make_csr(key: SigningKey, common_name: str) -> str:
    """A PEM CSR for ``common_name`` signed with ``key`` (a client's own)."""
    native = native_signing_key(key)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(native, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
