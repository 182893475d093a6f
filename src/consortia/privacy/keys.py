"""A member's transaction-manager key pair (X25519), encrypted at rest.

File format (JSON, mode 0600)::

    {"version": 1, "type": "x25519", "public": b64, "kdf": {"name": "scrypt",
     "salt": b64, "n": 32768, "r": 8, "p": 1}, "nonce": b64, "ciphertext": b64}

The 32 private bytes are encrypted with AES-256-GCM under a key stretched from the
passphrase with scrypt; the public key is the associated data, so a file whose public
half was swapped does not open. Tessera protects its keys the same way with Argon2i;
scrypt is in ``cryptography`` already.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from consortia.crypto import CryptoError, aead
from consortia.privacy.box import public_bytes
from consortia.types.errors import ConfigError

_N, _R, _P = 2**15, 8, 1


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _stretch(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=aead.KEY_SIZE, n=n, r=r, p=p).derive(passphrase)


def generate() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def save_key(path: Path, key: X25519PrivateKey, passphrase: bytes) -> None:
    """Write ``key`` encrypted under ``passphrase`` (refused when empty) to a new 0600 file."""
    if not passphrase:
        raise ConfigError("a transaction-manager key is never stored without a passphrase")
    salt = os.urandom(16)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = public_bytes(key)
    nonce, ciphertext = aead.encrypt(_stretch(passphrase, salt, _N, _R, _P), raw, public)
    doc = {"version": 1, "type": "x25519", "public": _b64(public),
           "kdf": {"name": "scrypt", "salt": _b64(salt), "n": _N, "r": _R, "p": _P},
           "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)


def load_key(path: Path, passphrase: bytes) -> X25519PrivateKey:
    """Open a key file; ``ConfigError`` for an unreadable file or a wrong passphrase."""
    try:
        doc = json.loads(path.read_text())
        kdf = doc["kdf"]
        if doc["version"] != 1 or doc["type"] != "x25519" or kdf["name"] != "scrypt":
            raise ConfigError(f"{path}: not a version 1 x25519 key file")
        public = base64.b64decode(doc["public"], validate=True)
        kek = _stretch(passphrase, base64.b64decode(kdf["salt"], validate=True),
                       int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        raw = aead.decrypt(kek, base64.b64decode(doc["nonce"], validate=True),
                           base64.b64decode(doc["ciphertext"], validate=True), public)
    except CryptoError as exc:
        raise ConfigError(f"cannot open the key in {path}: wrong passphrase?") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the key file {path}: {exc}") from exc
    key = X25519PrivateKey.from_private_bytes(raw)
    if public_bytes(key) != public:
        raise ConfigError(f"{path}: the public key does not match the private key")
    return key
