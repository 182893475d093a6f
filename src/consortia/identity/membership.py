"""Membership validation (Fabric's MSP): may this certificate act under this configuration?

A certificate is a member when it is issued directly by the CA of an
organization in the configuration (issuer name, AKI-free signature check), its
O= names that organization, it is inside its validity window at the time of the
action, its serial is not on the organization's on-chain CRL, and its OU role
is one the action allows. The expensive part (parsing and the issuer signature)
is cached per certificate; the cheap checks run every time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from consortia.crypto import CryptoError, PublicKey, Suite, get_suite
from consortia.types.config import ChainConfig, OrgConfig, Role
from consortia.types.errors import ConfigError, Unauthorized

_CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Member:
    org_id: str
    role: Role
    name: str
    serial: int
    not_before_ms: int
    not_after_ms: int
    public_key: PublicKey
    fingerprint: bytes


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def parse_role(cert: x509.Certificate) -> Role:
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(ous) != 1:
        raise Unauthorized("certificate must carry exactly one OU role", code="wrong_role")
    try:
        return Role(str(ous[0].value))
    except ValueError:
        raise Unauthorized(f"certificate OU {ous[0].value!r} is not a role",
                           code="wrong_role") from None


def spki(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo, DER (what a suite loads keys from)."""
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else ""


@dataclass(frozen=True, slots=True)
class _Org:
    config: OrgConfig
    cert: x509.Certificate
    revoked: frozenset[int]
    crl_number: int


# What ``cryptography`` raises on damaged DER. It parses lazily, so these can surface
# from any attribute access, not only from the load call.
_PARSE_ERRORS = (ValueError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm)


def load_crl(org_cert: x509.Certificate, crl_der: bytes) -> tuple[frozenset[int], int]:
    """Parse a CRL, check it is signed by ``org_cert``; returns (revoked serials, CRL number).

    The CRL comes from a transaction, so it is untrusted input: every parse failure is a
    ``ConfigError``, never an exception that could reach the commit path."""
    try:
        return _load_crl(org_cert, crl_der)
    except _PARSE_ERRORS as exc:
        raise ConfigError(f"CRL cannot be parsed: {exc}") from exc


def _load_crl(org_cert: x509.Certificate, crl_der: bytes) -> tuple[frozenset[int], int]:
    crl = x509.load_der_x509_crl(crl_der)
    if crl.issuer != org_cert.subject:
        raise ConfigError("CRL issuer is not the organization's CA")
    pub = org_cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(pub):
        raise ConfigError("CRL signature does not verify against the organization's CA")
    try:
        number = int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        number = 0
    return frozenset(r.serial_number for r in crl), number


def check_ca_certificate(ca_der: bytes, org_id: str, suite: Suite, at_ms: int) -> None:
    """Refuse (``ConfigError`` code ``invalid_ca_cert``) a certificate that cannot be the
    root of a new organization ``org_id``: it must be what ``identity/ca.py`` issues — a
    self-signed CA certificate (basic constraints CA, its own signature verifying), its
    O= the organization id, its key of the chain's suite, valid at ``at_ms``. It comes in
    a transaction, so every parse failure is a refusal, never an exception."""
    try:
        _check_ca_certificate(ca_der, org_id, suite, at_ms)
    except _PARSE_ERRORS as exc:
        raise ConfigError(f"the CA certificate of {org_id} cannot be parsed: {exc}",
                          code="invalid_ca_cert") from exc


def _check_ca_certificate(ca_der: bytes, org_id: str, suite: Suite, at_ms: int) -> None:
    def refuse(why: str) -> ConfigError:
        return ConfigError(f"the CA certificate of {org_id} {why}", code="invalid_ca_cert")

    cert = x509.load_der_x509_certificate(ca_der)
    if cert.issuer != cert.subject:
        raise refuse("is not self-signed (its issuer is not its subject)")
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        raise refuse("does not verify under its own key") from None
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise refuse("has no basic constraints (it must be a CA)") from None
    if not bc.ca:
        raise refuse("is not a CA certificate")
    if _attr(cert.subject, NameOID.ORGANIZATION_NAME) != org_id:
        raise refuse("does not name the organization in its O=")
    try:
        suite.public_key_from_spki(spki(cert))
    except CryptoError:
        raise refuse(f"has a key that does not fit the chain's suite {suite.name}") from None
    if not _ms(cert.not_valid_before_utc) <= at_ms <= _ms(cert.not_valid_after_utc):
        raise refuse("is outside its validity window")


class Membership:
    """Validates signers against one chain configuration (rebuild on config change)."""

    def __init__(self, config: ChainConfig, suite: Suite | None = None) -> None:
        self.config = config
        self.suite = suite or get_suite(config.suite)
        self._orgs: dict[bytes, _Org] = {}
        for org in config.organizations:
            try:
                cert = x509.load_der_x509_certificate(org.ca_cert)
            except ValueError as exc:
                raise ConfigError(f"organization {org.id}: CA certificate is not DER") from exc
            revoked, number = load_crl(cert, org.crl) if org.crl else (frozenset(), 0)
            subject = cert.subject.public_bytes()
            if subject in self._orgs:
                raise ConfigError(f"organizations {self._orgs[subject].config.id} and {org.id} "
                                  "have CA certificates with the same subject")
            self._orgs[subject] = _Org(org, cert, revoked, number)
        self._cache: dict[bytes, Member] = {}

    def org_crl_number(self, org_id: str) -> int:
        for o in self._orgs.values():
            if o.config.id == org_id:
                return o.crl_number
        raise ConfigError(f"unknown organization {org_id}")

    def org_certificate(self, org_id: str) -> x509.Certificate:
        for o in self._orgs.values():
            if o.config.id == org_id:
                return o.cert
        raise ConfigError(f"unknown organization {org_id}")

    def identify(self, cert_der: bytes) -> Member:
        """Chain check, cached: which organization issued this certificate, in what role."""
        member = self._cache.get(cert_der)
        if member is not None:
            return member
        try:
            member = self._identify(cert_der)
        except _PARSE_ERRORS:
            raise Unauthorized("signer is not a valid X.509 certificate",
                               code="unknown_identity") from None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[cert_der] = member
        return member

    def _identify(self, cert_der: bytes) -> Member:
        cert = x509.load_der_x509_certificate(cert_der)
        org = self._orgs.get(cert.issuer.public_bytes())
        if org is None:
            raise Unauthorized("signer's issuer is not a CA of this chain",
                               code="unknown_identity")
        try:
            cert.verify_directly_issued_by(org.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise Unauthorized("signer's certificate is not signed by its organization's CA",
                               code="unknown_identity") from None
        if _attr(cert.subject, NameOID.ORGANIZATION_NAME) != org.config.id:
            raise Unauthorized("certificate O= does not name the issuing organization",
                               code="unknown_identity")
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                raise Unauthorized("a CA certificate cannot sign transactions", code="wrong_role")
        except x509.ExtensionNotFound:
            pass
        try:
            public_key = self.suite.public_key_from_spki(spki(cert))
        except CryptoError:
            raise Unauthorized("certificate key does not fit the chain's crypto suite",
                               code="unknown_identity") from None
        member = Member(
            org_id=org.config.id, role=parse_role(cert),
            name=_attr(cert.subject, NameOID.COMMON_NAME), serial=cert.serial_number,
            not_before_ms=max(_ms(cert.not_valid_before_utc), _ms(org.cert.not_valid_before_utc)),
            not_after_ms=min(_ms(cert.not_valid_after_utc), _ms(org.cert.not_valid_after_utc)),
            public_key=public_key, fingerprint=self.suite.hash(cert_der),
        )
        return member

    def validate(self, cert_der: bytes, roles: tuple[Role, ...], at_ms: int) -> Member:
        """Full check of a signer for an action allowed to ``roles`` at time ``at_ms``."""
        member = self.identify(cert_der)
        org = self.org_by_id(member.org_id)
        if member.serial in org.revoked:
            raise Unauthorized(f"certificate {member.serial:x} of {member.org_id} is revoked",
                               code="revoked_identity")
        if not member.not_before_ms <= at_ms <= member.not_after_ms:
            raise Unauthorized("certificate is outside its validity window",
                               code="expired_identity")
        if member.role not in roles:
            raise Unauthorized(
                f"role {member.role} may not do this (allowed: {', '.join(roles)})",
                code="wrong_role")
        return member

    def org_by_id(self, org_id: str) -> _Org:
        for o in self._orgs.values():
            if o.config.id == org_id:
                return o
        raise Unauthorized(f"unknown organization {org_id}", code="unknown_identity")
