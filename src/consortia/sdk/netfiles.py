"""The files of a node and of a chain, as a local network, the control plane and external
nodes write them: 0600 secrets, the genesis file, a node's identity and its ``node.toml``.

``consortia.sdk.network`` composes them into a network directory and re-exports them (the
control plane keeps each organization's CA sealed in its database and gives every node a
directory of its own, so it uses them directly)::

    genesis = write_genesis(root / "genesis.json", config, admin)   # block 0, signed
    write_node_identity(node_dir, "nd-1", key, cert, ca.cert)        # keystore + passphrase
    write_node_config(node_dir, "nd-1", genesis="../../genesis.json", keystore="keystore",
                      passphrase_file="passphrase", host="127.0.0.1", api_port=7050)

A local network's organization directories (``write_org``, ``write_org_accounts``,
``read_passphrase``) are written here too.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509

from consortia.crypto import SigningKey
from consortia.identity.ca import CertificateAuthority
from consortia.identity.keystore import FileKeystore
from consortia.ledger.genesis import Genesis, make_genesis
from consortia.sdk import netaccounts
from consortia.sdk.identity import Identity
from consortia.sdk.netaccounts import NetworkAccount
from consortia.types.config import ChainConfig, Role
from consortia.types.errors import ConfigError


def write_secret(path: Path, value: str) -> None:
    """``value`` and a newline into ``path``, mode 0600 (whatever the file had before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a looser mode
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def write_genesis(path: Path, config: ChainConfig, admin: Identity, *,
                  timestamp_ms: int | None = None) -> Genesis:
    """Block 0 for ``config``, signed by ``admin`` (an admin of one of its organizations),
    written to ``path`` as a genesis file; the genesis it wrote."""
    at = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    genesis = make_genesis(config, admin.key, admin.cert_der, at)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(genesis.to_file_bytes())
    return genesis


def write_node_identity(node_dir: Path, name: str, key: SigningKey, cert: x509.Certificate,
                        ca_cert: x509.Certificate) -> None:
    """A node's own signing identity: ``keystore/<name>/`` (the key encrypted) and a new
    random ``passphrase`` (mode 0600) beside it, as ``write_node_config(keystore="keystore",
    passphrase_file="passphrase")`` names them."""
    pw = secrets.token_urlsafe(24)
    write_secret(node_dir / "passphrase", pw)
    FileKeystore(node_dir / "keystore").save(name, key, cert, ca_cert, pw.encode())


def write_node_config(node_dir: Path, node_id: str, *, genesis: str, keystore: str,
                      passphrase_file: str, host: str, api_port: int,
                      identity: str | None = None, p2p_port: int | None = None,
                      peers: dict[str, str] | None = None,
                      follow: list[str] | None = None,
                      privacy: dict[str, Any] | None = None) -> Path:
    """Write ``node_dir/node.toml`` for validator ``node_id`` and return its path.

    ``genesis``, ``keystore`` and ``passphrase_file`` are paths as the node reads them
    (relative ones against ``node_dir``); ``identity`` is the keystore entry (default: the
    node id). With ``p2p_port`` the node talks to ``peers`` (validator id → ``host:port``)
    over the p2p transport (raft, pbft); without, it is a solo node. With ``follow`` (the
    API URLs of validators) it is a peer instead, which follows them (ADR 0015). With
    ``privacy`` (a quorum node's ``[privacy]`` section: ``url``, ``token_file``) it talks to
    its organization's transaction manager (ADR 0027). Data goes to ``node_dir/data``.
    """
    if follow is not None and p2p_port is not None:
        raise ConfigError("a peer takes no part in consensus: it has no p2p port")
    node_dir.mkdir(parents=True, exist_ok=True)
    node: dict[str, Any] = {"id": node_id, "data_dir": "data", "genesis": genesis}
    if follow is not None:
        node["role"] = "peer"
    settings: dict[str, Any] = {
        "node": node,
        "api": {"host": host, "port": api_port},
        "identity": {"keystore": keystore, "name": identity or node_id,
                     "passphrase_file": passphrase_file},
    }
    if p2p_port is not None:
        settings["p2p"] = {"host": host, "port": p2p_port, "peers": peers or {}}
    if follow is not None:
        settings["follow"] = {"validators": list(follow)}
    if privacy is not None:
        settings["privacy"] = dict(privacy)
    path = node_dir / "node.toml"
    path.write_text(tomli_w.dumps(settings))
    return path


def write_org(root: Path, org_id: str, ca: CertificateAuthority,
              names: list[tuple[str, Role]]) -> list[tuple[str, Role, SigningKey,
                                                            x509.Certificate]]:
    """``orgs/<org>/``: a new random passphrase (0600), the CA and an identity per name in
    the keystore, all encrypted under it; the identities written."""
    pw = secrets.token_urlsafe(24)
    org_dir = root / "orgs" / org_id
    write_secret(org_dir / "passphrase", pw)
    ks = FileKeystore(org_dir / "keystore")
    issued = []
    for name, role in names:
        key, cert = ca.issue_identity(name, role)
        ks.save(name, key, cert, ca.cert, pw.encode())
        issued.append((name, role, key, cert))
    ca.save(org_dir / "ca", pw.encode())
    return issued


def write_org_accounts(root: Path, org_id: str, count: int) -> list[NetworkAccount]:
    """``count`` new key files for ``org_id`` under a new random password (0600)."""
    pw = secrets.token_urlsafe(24)
    write_secret(root / "orgs" / org_id / netaccounts.PASSWORD_FILE, pw)
    return netaccounts.create_accounts(root, org_id, count, pw)


def read_passphrase(root: Path, org_id: str) -> bytes:
    return (root / "orgs" / org_id / "passphrase").read_text().strip().encode()
