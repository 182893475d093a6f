"""An identity the SDK signs with: private key, certificate, issuing CA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from consortia.crypto import PublicKey, SigningKey, Suite, get_suite
from consortia.identity.keystore import FileKeystore
from consortia.identity.membership import spki


@dataclass(frozen=True)
class Identity:
    key: SigningKey
    cert_der: bytes
    ca_der: bytes = b""
    suite_name: str = "p256-sha256"

    @property
    def suite(self) -> Suite:
        return get_suite(self.suite_name)

    @property
    def fingerprint(self) -> bytes:
        """Suite hash of the certificate: how envelopes name this identity as recipient."""
        return self.suite.hash(self.cert_der)

    @property
    def _cert(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.cert_der)

    @property
    def name(self) -> str:
        return str(self._cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    @property
    def org_id(self) -> str:
        return str(self._cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)

    @property
    def role(self) -> str:
        ous = self._cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        return str(ous[0].value) if ous else ""

    @classmethod
    def load(cls, keystore: Path | str, name: str, passphrase: bytes | str) -> Identity:
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        stored = FileKeystore(Path(keystore)).load(name, pw)
        return cls(stored.key, stored.cert_der, stored.ca_der)


@dataclass(frozen=True)
class Recipient:
    """Someone an envelope can be sealed for: a certificate's public key and fingerprint."""

    cert_der: bytes
    fingerprint: bytes
    public_key: PublicKey

    @classmethod
    def from_cert(cls, cert: bytes, suite: str = "p256-sha256") -> Recipient:
        """From a certificate in DER or PEM."""
        c = (x509.load_pem_x509_certificate(cert) if cert.lstrip().startswith(b"-----")
             else x509.load_der_x509_certificate(cert))
        der = c.public_bytes(Encoding.DER)
        s = get_suite(suite)
        return cls(der, s.hash(der), s.public_key_from_spki(spki(c)))
