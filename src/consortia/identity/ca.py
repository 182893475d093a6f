"""An organization's certificate authority: root key, issuance, revocation, CRL.

The CA is a root (self-signed, path length 0) that issues end-entity
certificates directly. The role is the subject's single OU; the organization
id is the subject's O. The CA persists as an encrypted key, its certificate and
a JSON list of revocations, so a CRL can be regenerated with a growing number.

Attributes (key/value pairs an application reads from a certificate) travel in
Hyperledger Fabric CA's attribute extension, OID ``1.2.3.4.5.6.7.8.1``, non-critical,
whose value is the UTF-8 JSON ``{"attrs": {"key": "value", ...}}`` (ADR 0013): Fabric's
chaincode libraries (``cid``) read them as they are. A revocation may carry an RFC 5280
reason, written into its CRL entry's reasonCode extension.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from consortia.crypto import CryptoError, PublicKey, SigningKey, get_suite
from consortia.crypto.p256 import P256PublicKey, native_signing_key
from consortia.types.config import Role
from consortia.types.errors import ConfigError

DEFAULT_CA_DAYS = 3650
DEFAULT_CERT_DAYS = 365
ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Fabric CA's attribute extension: ``{"attrs": {...}}`` as UTF-8 JSON."""


def attributes_extension(attributes: Mapping[str, str]) -> x509.UnrecognizedExtension:
    """The extension carrying ``attributes`` the way Fabric CA writes them."""
    value = json.dumps({"attrs": dict(attributes)}, sort_keys=True,
                       separators=(",", ":")).encode("utf-8")
    return x509.UnrecognizedExtension(ATTRIBUTES_OID, value)


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The attributes ``cert`` carries (empty without the extension)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    assert isinstance(value, x509.UnrecognizedExtension)
    attrs = json.loads(value.value.decode("utf-8")).get("attrs", {})
    return {str(k): str(v) for k, v in attrs.items()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class CertificateAuthority:
    org_id: str
    key: SigningKey
    cert: x509.Certificate
    revoked: dict[int, int] = field(default_factory=dict)
    """serial → revocation time (ms since epoch)."""
    crl_number: int = 0
    reasons: dict[int, x509.ReasonFlags] = field(default_factory=dict)
    """serial → RFC 5280 reason of the revocation, where one was given (kept in memory
    only: ``save`` writes the revocations without them)."""

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @classmethod
    def create(cls, org_id: str, *, suite: str = "p256-sha256", days: int = DEFAULT_CA_DAYS,
               not_before: dt.datetime | None = None) -> CertificateAuthority:
        """A new root. ``not_before`` backdates it (default: five minutes ago, for clock
        skew between machines)."""
        if not org_id or len(org_id) > 64 or not all(c.isalnum() or c in "-_." for c in org_id):
            raise ConfigError(f"invalid organization id {org_id!r}: use letters, digits, - _ .")
        key = get_suite(suite).generate_key()
        native = native_signing_key(key)
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org_id} CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
        ])
        now = _now()
        start = not_before or (now - dt.timedelta(minutes=5))
        ski = x509.SubjectKeyIdentifier.from_public_key(native.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(native.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(native, hashes.SHA256())
        )
        return cls(org_id, key, cert)

    def issue(self, name: str, role: Role, public_key: PublicKey, *,
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None,
              attributes: Mapping[str, str] | None = None) -> x509.Certificate:
        """Issue a certificate for ``name`` with ``role`` (the OU) to ``public_key``, with
        ``attributes`` in the attribute extension (none: no extension)."""
        if not name or len(name) > 64:
            raise ConfigError("identity names are 1 to 64 characters")
        if not isinstance(public_key, P256PublicKey):
            raise ConfigError("this CA issues P-256 certificates")
        now = _now()
        start = not_before or (now - dt.timedelta(minutes=5))
        end = not_after or (now + dt.timedelta(days=DEFAULT_CERT_DAYS))
        ca_native = native_signing_key(self.key)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, str(role)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.org_id),
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key.native)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_native.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key.native),
                           critical=False)
        )
        if role in (Role.PEER, Role.VALIDATOR):
            builder = builder.add_extension(x509.ExtendedKeyUsage([
                x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if attributes is not None:
            builder = builder.add_extension(attributes_extension(attributes), critical=False)
        return builder.sign(ca_native, hashes.SHA256())

    def issue_identity(self, name: str, role: Role, *, not_before: dt.datetime | None = None,
                       not_after: dt.datetime | None = None
                       ) -> tuple[SigningKey, x509.Certificate]:
        key = get_suite("p256-sha256").generate_key()
        return key, self.issue(name, role, key.public_key(), not_before=not_before,
                               not_after=not_after)

    def revoke(self, serial: int, *, at: dt.datetime | None = None,
               reason: x509.ReasonFlags | None = None) -> None:
        self.revoked[serial] = int((at or _now()).timestamp() * 1000)
        if reason is not None:
            self.reasons[serial] = reason

    def crl(self, *, days: int = 30) -> bytes:
        """A new CRL listing every revocation, with the next CRL number (DER)."""
        self.crl_number += 1
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=days))
            .add_extension(x509.CRLNumber(self.crl_number), critical=False)
        )
        for serial, at_ms in sorted(self.revoked.items()):
            entry = (x509.RevokedCertificateBuilder().serial_number(serial)
                     .revocation_date(dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)))
            reason = self.reasons.get(serial)
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(native_signing_key(self.key), hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise ConfigError("a CA key is never stored without a passphrase")
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / "ca-key.pem"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with a looser mode
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.to_pem(passphrase))
        (directory / "ca-cert.pem").write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        (directory / "ca-state.json").write_text(json.dumps({
            "org_id": self.org_id, "crl_number": self.crl_number,
            "revoked": {str(k): v for k, v in self.revoked.items()}}, indent=2))

    @classmethod
    def load(cls, directory: Path, passphrase: bytes) -> CertificateAuthority:
        state = json.loads((directory / "ca-state.json").read_text())
        try:
            key = get_suite("p256-sha256").load_private_key(
                (directory / "ca-key.pem").read_bytes(), passphrase)
        except CryptoError as exc:
            raise ConfigError(f"cannot open the CA key in {directory}: wrong passphrase?") from exc
        cert = x509.load_pem_x509_certificate((directory / "ca-cert.pem").read_bytes())
        return cls(state["org_id"], key, cert,
                   {int(k): int(v) for k, v in state["revoked"].items()},
                   int(state["crl_number"]))


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
