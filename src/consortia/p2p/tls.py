"""TLS 1.3 contexts for mutual authentication with node certificates.

Both sides present a certificate and require one (``CERT_REQUIRED``); the trust
roots are the organization CAs of the configuration in force; host names are not
checked, because a peer is identified by its exact certificate after the
handshake (``auth.authorize``), not by a name. Session tickets are off, so every
connection runs a full handshake with certificates.

The private key reaches OpenSSL only as an *encrypted* PKCS#8 PEM through
``SSLContext.load_cert_chain(..., password=...)``. The PEM is written to an
anonymous in-memory file (``memfd_create``, Linux) and read back through
``/proc/self/fd``; where that is unavailable, to a 0600 temporary file that is
removed at once. Either way it is the encrypted form: an unencrypted key never
touches a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from consortia.crypto import CryptoError, SigningKey, get_suite
from consortia.identity.keystore import FileKeystore
from consortia.types.errors import ConfigError


@dataclass(frozen=True)
class NodeCredentials:
    """A node's TLS identity: its certificate and its key, encrypted, with the passphrase."""

    cert_der: bytes
    key_pem: bytes = field(repr=False)
    """PKCS#8 PEM, encrypted with ``passphrase``."""
    passphrase: bytes = field(repr=False)

    @classmethod
    def from_signing_key(cls, cert_der: bytes, key: SigningKey) -> NodeCredentials:
        """Wrap an open key: it is re-encrypted under a fresh random one-time passphrase."""
        passphrase = secrets.token_urlsafe(32).encode()
        return cls(cert_der, key.to_pem(passphrase), passphrase)

    @classmethod
    def from_keystore(cls, root: Path, name: str, passphrase: bytes) -> NodeCredentials:
        """The keystore's own encrypted ``key.pem`` and ``cert.pem`` (see identity/keystore)."""
        d = FileKeystore(root).path(name)
        try:
            key_pem = (d / "key.pem").read_bytes()
            cert = x509.load_pem_x509_certificate((d / "cert.pem").read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read identity {name!r} in {root}: {exc}") from exc
        try:  # fail here, with a clear message, rather than inside OpenSSL
            get_suite("p256-sha256").load_private_key(key_pem, passphrase)
        except CryptoError as exc:
            raise ConfigError(f"cannot open identity {name!r}: wrong passphrase?") from exc
        return cls(cert.public_bytes(serialization.Encoding.DER), key_pem, passphrase)

    def chain_pem(self) -> bytes:
        cert = x509.load_der_x509_certificate(self.cert_der)
        return cert.public_bytes(serialization.Encoding.PEM) + self.key_pem


@contextlib.contextmanager
def _pem_path(data: bytes) -> Iterator[str]:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("consortia-tls", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="consortia-tls-") as d:
        path = os.path.join(d, "node.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            yield path
        finally:
            os.unlink(path)


def _context(server: bool, credentials: NodeCredentials,
             trust_roots: Iterable[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    roots = list(trust_roots)
    if not roots:
        raise ConfigError("no organization CA to trust: the configuration has no organizations")
    try:
        ctx.load_verify_locations(cadata=b"".join(roots))
    except ssl.SSLError as exc:
        raise ConfigError(f"an organization CA certificate is unusable for TLS: {exc}") from exc
    with _pem_path(credentials.chain_pem()) as path:
        try:
            ctx.load_cert_chain(path, password=credentials.passphrase)
        except ssl.SSLError as exc:
            raise ConfigError(f"the node certificate and key are unusable for TLS: {exc}") from exc
    if server:
        ctx.num_tickets = 0
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def server_context(credentials: NodeCredentials, trust_roots: Iterable[bytes]) -> ssl.SSLContext:
    return _context(True, credentials, trust_roots)


def client_context(credentials: NodeCredentials, trust_roots: Iterable[bytes]) -> ssl.SSLContext:
    return _context(False, credentials, trust_roots)


# OpenSSL X509_V_ERR_* codes that say "the certificate is out of its validity window".
_EXPIRED_CODES = {9, 10}


def refusal_of(exc: BaseException) -> str:
    """The ``refused.*`` reason of a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "expired" if exc.verify_code in _EXPIRED_CODES else "unknown"
    return "tls"
