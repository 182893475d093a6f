"""A passphrase-encrypted file keystore.

Layout: ``<root>/<name>/key.pem`` (PKCS#8, encrypted with the passphrase, mode
0600), ``cert.pem`` and ``ca.pem`` (the issuing organization's root). There is
no default passphrase: storing a key unencrypted is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from consortia.crypto import CryptoError, SigningKey, get_suite
from consortia.types.errors import ConfigError


@dataclass(frozen=True)
class StoredIdentity:
    name: str
    key: SigningKey
    cert_der: bytes
    ca_der: bytes


class FileKeystore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"invalid identity name {name!r}")
        return self.root / name

    def save(self, name: str, key: SigningKey, cert: x509.Certificate,
             ca_cert: x509.Certificate, passphrase: bytes) -> Path:
        if not passphrase:
            raise ConfigError("the keystore never stores a key without a passphrase")
        d = self.path(name)
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with a looser mode
        with os.fdopen(fd, "wb") as f:
            f.write(key.to_pem(passphrase))
        (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        return d

    def load(self, name: str, passphrase: bytes) -> StoredIdentity:
        d = self.path(name)
        if not (d / "key.pem").exists():
            raise ConfigError(f"no identity {name!r} in {self.root}")
        try:
            key = get_suite("p256-sha256").load_private_key((d / "key.pem").read_bytes(),
                                                             passphrase)
        except CryptoError as exc:
            raise ConfigError(f"cannot open identity {name!r}: wrong passphrase?") from exc
        cert = x509.load_pem_x509_certificate((d / "cert.pem").read_bytes())
        ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
        return StoredIdentity(name, key, cert.public_bytes(serialization.Encoding.DER),
                              ca.public_bytes(serialization.Encoding.DER))

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "key.pem").exists())
