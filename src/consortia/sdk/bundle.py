"""Join bundles: one file that lets a member run a peer of its network on its own machine.

The control plane makes one (``make_join_bundle``) when a member downloads it for an
external node; ``consortia node join BUNDLE`` opens it (``open_join_bundle``) and writes a
node directory (``unpack_join_bundle``). The format is ``docs/spec/join-bundle.md``
(ADR 0019)::

    bundle = make_join_bundle(header, key, passphrase)          # bytes (JSON)
    opened = open_join_bundle(bundle, passphrase)               # checks everything
    config = unpack_join_bundle(opened, Path("peer0"), passphrase)   # node.toml's path

The node's private key is the only secret: it travels encrypted with AES-256-GCM under a
key derived from the member's passphrase with scrypt, and every other field of the bundle
is the AEAD's associated data, so changing any of them (the genesis, the validators to
follow, the CA certificate) makes the bundle refuse to open. The passphrase is never
written anywhere: the node directory keeps the key in a keystore encrypted under the same
passphrase, and the node reads it from an environment variable (``PASSPHRASE_ENV``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509

from consortia.crypto import CryptoError, SigningKey, aead, get_suite
from consortia.identity.keystore import FileKeystore
from consortia.ledger.genesis import load_genesis
from consortia.types.errors import ConfigError, InvalidRequest

FORMAT = "consortia-join-bundle"
VERSION = 1
MIN_PASSPHRASE = 12
"""Characters a bundle passphrase has at least: it alone protects the key in transit."""
MAX_PASSPHRASE = 1024
PASSPHRASE_ENV = "CONSORTIA_NODE_PASSPHRASE"  # noqa: S105 - a variable name
"""The environment variable a joined node reads its keystore passphrase from."""
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
"""scrypt cost (32 MiB, about 0.1 s): each passphrase guess costs an attacker as much."""
_CHECK = b"consortia-join-bundle-v1 passphrase check"
HEADER_FIELDS = ("network_id", "chain_id", "member_id", "org_id", "node_id", "node_name",
                 "api_endpoint", "issued_at", "certificate_serial", "genesis_hash",
                 "genesis", "node_toml", "certificate_pem", "ca_certificate_pem")
"""Every public field of a bundle, all of them strings (``docs/spec/join-bundle.md``)."""


class BundleError(InvalidRequest):
    """A bundle refused: ``bundle_invalid`` (not a readable bundle of this version),
    ``wrong_passphrase``, ``bundle_tampered`` (the passphrase is right but a field was
    changed), ``genesis_mismatch`` (its genesis is not the one it or the caller names),
    ``weak_passphrase``, ``directory_not_empty``."""

    code = "bundle_invalid"


@dataclass(frozen=True)
class JoinBundle:
    """An opened bundle: its public fields (``HEADER_FIELDS``) and the node's key."""

    header: dict[str, str]
    key: SigningKey

    @property
    def node_id(self) -> str:
        return self.header["node_id"]

    @property
    def genesis_bytes(self) -> bytes:
        return base64.b64decode(self.header["genesis"])


def check_passphrase(passphrase: str) -> bytes:
    """``passphrase`` as bytes, or ``weak_passphrase`` when too short (or too long)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise BundleError(f"a bundle passphrase has at least {MIN_PASSPHRASE} characters",
                          code="weak_passphrase")
    if len(passphrase) > MAX_PASSPHRASE:
        raise BundleError(f"a bundle passphrase has at most {MAX_PASSPHRASE} characters",
                          code="weak_passphrase")
    try:
        return passphrase.encode()
    except UnicodeEncodeError:
        raise BundleError("a bundle passphrase is text (it holds a lone surrogate)",
                          code="validation_failed") from None


def peer_config(node_id: str, *, host: str, port: int, follow: list[str]) -> str:
    """The ``node.toml`` of a joined peer: paths relative to its directory, the keystore
    passphrase from ``PASSPHRASE_ENV`` (never a file)."""
    return tomli_w.dumps({
        "node": {"id": node_id, "role": "peer", "data_dir": "data", "genesis": "genesis.json"},
        "api": {"host": host, "port": port},
        "identity": {"keystore": "keystore", "name": node_id,
                     "passphrase_env": PASSPHRASE_ENV},
        "follow": {"validators": list(follow)},
    })


def make_join_bundle(header: dict[str, str], key: SigningKey, passphrase: str) -> bytes:
    """The bundle file (UTF-8 JSON) for ``header`` (every ``HEADER_FIELDS`` entry) and the
    node's ``key``, encrypted under ``passphrase`` (``weak_passphrase`` when short)."""
    pw = check_passphrase(passphrase)
    missing = [f for f in HEADER_FIELDS if not isinstance(header.get(f), str)]
    if missing or set(header) != set(HEADER_FIELDS):
        raise ValueError(f"a bundle header has exactly {HEADER_FIELDS}; missing {missing}")
    salt = os.urandom(16)
    kdf = {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)}
    enc_key, check_key = _derive(pw, kdf)
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, **header,
                           "key": {"kdf": kdf, "aead": aead.ALGORITHM,
                                   "check": _b64(_check(check_key))}}
    nonce, sealed = aead.encrypt(enc_key, key.to_pem(None), _aad(doc))
    doc["key"]["nonce"] = _b64(nonce)
    doc["key"]["ciphertext"] = _b64(sealed)
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def open_join_bundle(data: bytes, passphrase: str, *,
                     expected_genesis_hash: str | None = None) -> JoinBundle:
    """Check and open a bundle: its format and version, the passphrase, every field's
    integrity, and that its genesis is the one it names (and ``expected_genesis_hash``,
    the hash the member learned elsewhere, e.g. ``GET /v1/networks/{id}``)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"not a join bundle (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError("not a join bundle (no format \"consortia-join-bundle\")")
    if doc.get("version") != VERSION:
        raise BundleError(f"join bundle version {doc.get('version')!r} is not supported "
                          f"(this Consortia reads version {VERSION})")
    try:
        header = {f: doc[f] for f in HEADER_FIELDS}
        sealed = doc["key"]
        kdf = sealed["kdf"]
        if (not all(isinstance(v, str) for v in header.values())
                or set(doc) != {"format", "version", "key", *HEADER_FIELDS}
                or sealed["aead"] != aead.ALGORITHM or kdf["name"] != "scrypt"):
            raise BundleError("the join bundle's fields are not those of its version")
        enc_key, check_key = _derive(check_passphrase(passphrase), kdf)
        if not hmac.compare_digest(_check(check_key), _unb64(sealed["check"])):
            raise BundleError("wrong passphrase for this join bundle", code="wrong_passphrase")
        nonce, ciphertext = _unb64(sealed["nonce"]), _unb64(sealed["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"the join bundle is malformed ({exc.__class__.__name__}: {exc})"
                          ) from None
    try:
        pem = aead.decrypt(enc_key, nonce, ciphertext, _aad(doc))
        key = get_suite("p256-sha256").load_private_key(pem, None)
    except CryptoError:
        raise BundleError("the join bundle was altered after it was made (its fields do not "
                          "match its sealed key)", code="bundle_tampered") from None
    _check_genesis(header, expected_genesis_hash)
    return JoinBundle(header, key)


def unpack_join_bundle(bundle: JoinBundle, node_dir: Path, passphrase: str) -> Path:
    """Write the node directory (mode 0700) of ``bundle`` and return its ``node.toml``:
    ``genesis.json``, ``keystore/<node id>/`` (the key encrypted under ``passphrase``),
    ``join.json`` (the bundle's public fields) and ``node.toml``. An empty or missing
    directory is filled; one holding this very bundle (same node, same certificate) is
    left as it is, for a restart; anything else is ``directory_not_empty``."""
    node_dir = Path(node_dir)
    marker = node_dir / "join.json"
    if node_dir.exists() and any(node_dir.iterdir()):
        try:
            known = json.loads(marker.read_text())
        except (OSError, ValueError):
            known = None
        if (isinstance(known, dict) and known.get("node_id") == bundle.node_id
                and known.get("certificate_serial") == bundle.header["certificate_serial"]):
            return node_dir / "node.toml"
        raise BundleError(f"{node_dir} is not empty and holds no node of this bundle; give "
                          "an empty or new directory", code="directory_not_empty")
    node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(node_dir, 0o700)
    h = bundle.header
    cert = x509.load_pem_x509_certificate(h["certificate_pem"].encode())
    ca = x509.load_pem_x509_certificate(h["ca_certificate_pem"].encode())
    FileKeystore(node_dir / "keystore").save(bundle.node_id, bundle.key, cert, ca,
                                             check_passphrase(passphrase))
    (node_dir / "genesis.json").write_bytes(bundle.genesis_bytes)
    public = {k: v for k, v in h.items() if k != "genesis"}
    config = node_dir / "node.toml"
    config.write_text(h["node_toml"])
    marker.write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    return config


# --- helpers -------------------------------------------------------------------------------


def _check_genesis(header: dict[str, str], expected: str | None) -> None:
    try:
        genesis = load_genesis(base64.b64decode(header["genesis"], validate=True))
    except (ConfigError, ValueError) as exc:
        raise BundleError(f"the join bundle's genesis does not load: {exc}",
                          code="genesis_mismatch") from None
    actual = genesis.hash.hex()
    if actual != header["genesis_hash"]:
        raise BundleError(f"the join bundle's genesis hashes to {actual}, not to the "
                          f"{header['genesis_hash']} it names", code="genesis_mismatch")
    if genesis.config.chain_id != header["chain_id"]:
        raise BundleError(f"the join bundle's genesis is of chain {genesis.config.chain_id}, "
                          f"not {header['chain_id']}", code="genesis_mismatch")
    if expected is not None and actual != expected.lower():
        raise BundleError(f"the join bundle's genesis is {actual}, not the expected "
                          f"{expected}", code="genesis_mismatch")


def _derive(passphrase: bytes, kdf: dict[str, Any]) -> tuple[bytes, bytes]:
    """(AEAD key, passphrase-check key) from ``passphrase`` under ``kdf``'s scrypt."""
    n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    if not (1 << 14 <= n <= 1 << 20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise BundleError("the join bundle's scrypt parameters are out of range")
    out = hashlib.scrypt(passphrase, salt=_unb64(kdf["salt"]), n=n, r=r, p=p,
                         maxmem=256 * 1024 * 1024, dklen=64)
    return out[:32], out[32:]


def _check(check_key: bytes) -> bytes:
    return hmac.new(check_key, _CHECK, hashlib.sha256).digest()


def _aad(doc: dict[str, Any]) -> bytes:
    """Every field but the sealed key's nonce and ciphertext, as canonical JSON."""
    sealed = {k: v for k, v in doc["key"].items() if k not in ("nonce", "ciphertext")}
    rest = {**doc, "key": sealed}
    return json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)
