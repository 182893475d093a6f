"""The transaction managers of a local ``quorum`` network (ADR 0022, 0027, 0028).

A private transaction (``privateFor``) needs every taking-part organization to run a
transaction manager (``python -m consortia.privacy serve``) and its nodes to know it
(``[privacy]`` in ``node.toml``). ``init_network(profile="quorum")`` writes one per
organization unless told ``privacy=False``::

    orgs/<org>/tm/tm.toml          the manager's settings (consortia.privacy.settings)
    orgs/<org>/tm/tm.key           its X25519 key pair, encrypted (mode 0600); the public
                                   half is what ``privateFor`` names
    orgs/<org>/tm/passphrase       random, mode 0600; encrypts tm.key and the TLS key
    orgs/<org>/tm/token            random bearer token (mode 0600) the org's nodes present
                                   to the manager's local API
    orgs/<org>/tm/keystore/tm/     its TLS identity: a certificate of role ``peer`` from the
                                   organization's CA (the managers talk mutual TLS)
    orgs/<org>/tm/data/            its payload store, once it runs
    privacy-directory.json         which organization's manager holds which key at which
                                   peer address, each entry signed by that organization's
                                   admin (``consortia.privacy.directory``)

Each manager trusts every organization's CA (``orgs/<o>/ca/ca-cert.pem``) and reads the
one directory; every path in ``tm.toml`` is relative, so the network directory can move.
The manager's local API listens on loopback only. Organization i's manager serves its
local API on ``tm_port + 2i`` and its peer API on ``tm_port + 2i + 1``
(``consortia.sdk.netplan.manager_ports``).

These writers take a directory and the organization's CA, not a network, so that any
tool that lays out managers (the control plane, say) can use them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from consortia.identity.ca import CertificateAuthority
from consortia.identity.keystore import FileKeystore
from consortia.privacy import keys as keyfiles
from consortia.privacy.box import public_bytes
from consortia.privacy.directory import DirectoryEntry, sign_entry, write_directory_file
from consortia.sdk.identity import Identity
from consortia.sdk.netfiles import write_secret
from consortia.types.config import Role

TM_DIR = "tm"
"""A manager's directory, under ``orgs/<org>/``."""
CONFIG_FILE = "tm.toml"
KEY_FILE = "tm.key"
TOKEN_FILE = "token"  # noqa: S105 - the file's name, not a token
PASSPHRASE_FILE = "passphrase"  # noqa: S105 - the file's name
DIRECTORY_FILE = "privacy-directory.json"
"""The signed key directory, at the network root."""
TLS_NAME = "tm"
"""The TLS identity's name in the manager's keystore."""


@dataclass(frozen=True)
class ManagerFiles:
    """What ``write_manager`` made: enough to sign the directory and configure nodes."""

    org: str
    dir: Path
    public_key: bytes
    """The X25519 public key (32 bytes) recipients are named by."""
    host: str
    local_port: int
    peer_port: int

    @property
    def url(self) -> str:
        """The local API, as a node's ``[privacy] url`` names it."""
        return f"http://{self.host}:{self.local_port}"

    @property
    def peer(self) -> str:
        """``host:port`` of the mutual-TLS peer API, as the directory names it."""
        return f"{self.host}:{self.peer_port}"

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()


def write_manager(tm_dir: Path, org_id: str, ca: CertificateAuthority, *, host: str,
                  local_port: int, peer_port: int) -> ManagerFiles:
    """A manager's secrets in ``tm_dir``: a new random passphrase and bearer token (0600),
    a new X25519 key file and a TLS identity of role ``peer`` issued by ``ca`` (the caller
    saves ``ca`` afterwards, as after any issue). No ``tm.toml`` yet: that needs every
    organization's CA (``write_manager_config``)."""
    passphrase = secrets.token_urlsafe(24)
    write_secret(tm_dir / PASSPHRASE_FILE, passphrase)
    write_secret(tm_dir / TOKEN_FILE, secrets.token_urlsafe(32))  # 43 characters
    key = keyfiles.generate()
    keyfiles.save_key(tm_dir / KEY_FILE, key, passphrase.encode())
    tls_key, tls_cert = ca.issue_identity(f"{org_id}-tm", Role.PEER)
    FileKeystore(tm_dir / "keystore").save(TLS_NAME, tls_key, tls_cert, ca.cert,
                                          passphrase.encode())
    return ManagerFiles(org_id, tm_dir, public_bytes(key), host, local_port, peer_port)


def write_manager_config(files: ManagerFiles, trust: Mapping[str, str], directory: str, *,
                         limits: Mapping[str, Any] | None = None) -> Path:
    """``tm.toml`` of the manager ``files`` describes: ``trust`` maps every organization to
    its CA certificate (PEM) and ``directory`` names the signed directory, as paths the
    manager reads (relative ones against ``files.dir``)."""
    cfg: dict[str, Any] = {
        "manager": {"org_id": files.org, "data_dir": "data"},
        "keys": {"files": [KEY_FILE], "passphrase_file": PASSPHRASE_FILE},
        "local": {"host": files.host, "port": files.local_port, "token_file": TOKEN_FILE},
        "peer": {"host": files.host, "port": files.peer_port},
        "tls": {"keystore": "keystore", "name": TLS_NAME, "passphrase_file": PASSPHRASE_FILE},
        "trust": [{"org_id": o, "ca_cert": path} for o, path in trust.items()],
        "directory": {"file": directory},
    }
    if limits:
        cfg["limits"] = dict(limits)
    path = files.dir / CONFIG_FILE
    path.write_text(tomli_w.dumps(cfg))
    return path


def write_directory(path: Path, signed_by: Sequence[tuple[ManagerFiles, Identity]]) -> None:
    """The signed directory at ``path``: each manager's key and peer address, signed by the
    admin identity paired with it (an admin of that organization; the managers refuse an
    entry signed by anyone else)."""
    write_directory_file(path, [
        sign_entry(DirectoryEntry(m.org, 1, m.peer, (m.public_key,)), admin.key,
                   admin.cert_der)
        for m, admin in signed_by])


def privacy_section(url: str, token_file: str) -> dict[str, Any]:
    """A node's ``[privacy]`` section: its manager's local API and the token file."""
    return {"url": url, "token_file": token_file}


@dataclass(frozen=True)
class NetworkManager:
    """One organization's transaction manager, as ``network.json`` records it
    (``managers: {org: {config, url, peer, public_key}}``)."""

    org: str
    config: Path
    """Its ``tm.toml``."""
    url: str
    """Its local API (what the organization's nodes call), e.g. ``http://127.0.0.1:7250``."""
    peer: str
    """``host:port`` of its mutual-TLS peer API (what the other managers call)."""
    public_key: str
    """Its X25519 public key, base64: what ``privateFor`` names to include this
    organization in a private transaction."""

    @property
    def dir(self) -> Path:
        return self.config.parent

    @property
    def token_file(self) -> Path:
        return self.dir / TOKEN_FILE


def write_network_managers(root: Path, cas: Mapping[str, CertificateAuthority],
                           passphrases: Mapping[str, bytes], admins: Mapping[str, Identity],
                           plans: Sequence[tuple[str, int, int]], host: str
                           ) -> dict[str, dict[str, str]]:
    """Every organization's manager of the network at ``root`` (``plans``: org, local
    port, peer port), each org's CA saved again under its passphrase after issuing the
    manager's certificate, and the directory signed by each org's admin; the
    ``managers`` record for network.json."""
    made = []
    for org, local_port, peer_port in plans:
        files = write_manager(root / "orgs" / org / TM_DIR, org, cas[org], host=host,
                              local_port=local_port, peer_port=peer_port)
        cas[org].save(root / "orgs" / org / "ca", passphrases[org])
        made.append(files)
    trust = {o: f"../../{o}/ca/ca-cert.pem" for o in cas}
    for files in made:
        write_manager_config(files, trust, f"../../../{DIRECTORY_FILE}")
    write_directory(root / DIRECTORY_FILE, [(m, admins[m.org]) for m in made])
    return {m.org: {"config": f"orgs/{m.org}/{TM_DIR}/{CONFIG_FILE}", "url": m.url,
                    "peer": m.peer, "public_key": m.public_key_b64} for m in made}


def recorded(doc: Mapping[str, Any], root: Path) -> list[NetworkManager]:
    """The managers network.json records, in the organizations' order."""
    return [NetworkManager(org, root / str(e["config"]), str(e["url"]), str(e["peer"]),
                           str(e["public_key"]))
            for org, e in doc.get("managers", {}).items()]


def node_privacy(manager: NetworkManager | None, root: Path,
                 node_dir: Path) -> dict[str, Any] | None:
    """The ``[privacy]`` section of a node in ``node_dir`` whose organization has
    ``manager`` (None: the organization has none, so neither has the node)."""
    if manager is None:
        return None
    token = Path(*[".."] * len(node_dir.relative_to(root).parts)) / \
        manager.token_file.relative_to(root)
    return privacy_section(manager.url, str(token))
