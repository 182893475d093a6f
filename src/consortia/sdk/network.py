"""A local network on disk: organizations with CAs, identities, genesis, node configs.

``init_network`` writes a directory a user can read and back up::

    network.json                      what is where (chain id, orgs, nodes, default identity)
    genesis.json                      the trust anchor for offline verification
    orgs/<org>/passphrase             random, mode 0600; encrypts that org's keys
    orgs/<org>/ca/                    the org CA: encrypted key, certificate, revocations
    orgs/<org>/keystore/<name>/       identities: encrypted key, certificate, CA certificate
    nodes/<id>/node.toml, data/       one node process each

No secret has a default: every passphrase is generated here from ``secrets``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.keystore import FileKeystore
from consortia.ledger.genesis import make_genesis
from consortia.sdk.identity import Identity
from consortia.sdk.tx import SignedTx, sign
from consortia.types.config import (
    BlockLimits,
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import ConfigError
from consortia.types.tx import CrlUpdate

NETWORK_FILE = "network.json"


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a looser mode
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


@dataclass(frozen=True)
class LocalNetwork:
    """A network directory written by ``init_network``."""

    root: Path
    doc: dict[str, Any]

    @classmethod
    def open(cls, root: Path | str) -> LocalNetwork:
        root = Path(root)
        path = root / NETWORK_FILE
        if not path.exists():
            raise ConfigError(f"{root} is not a Consortia network directory (no {NETWORK_FILE})")
        return cls(root, json.loads(path.read_text()))

    @property
    def chain_id(self) -> str:
        return str(self.doc["chain_id"])

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    def node_url(self, node_id: str | None = None) -> str:
        nodes = self.doc["nodes"]
        node = nodes[0] if node_id is None else next(n for n in nodes if n["id"] == node_id)
        return str(node["api"])

    def node_config(self, node_id: str | None = None) -> Path:
        nodes = self.doc["nodes"]
        node = nodes[0] if node_id is None else next(n for n in nodes if n["id"] == node_id)
        return self.root / str(node["config"])

    def org_dir(self, org_id: str) -> Path:
        if org_id not in self.doc["orgs"]:
            raise ConfigError(f"no organization {org_id!r} in this network")
        return self.root / "orgs" / org_id

    def passphrase(self, org_id: str) -> bytes:
        return (self.org_dir(org_id) / "passphrase").read_text().strip().encode()

    def identity(self, ref: str | None = None) -> Identity:
        """``org/name``, or the network's default client identity."""
        ref = ref or str(self.doc["default_identity"])
        org_id, _, name = ref.partition("/")
        if not name:
            raise ConfigError("identities are named org/name, e.g. org1/alice")
        return Identity.load(self.org_dir(org_id) / "keystore", name, self.passphrase(org_id))

    def ca(self, org_id: str) -> CertificateAuthority:
        return CertificateAuthority.load(self.org_dir(org_id) / "ca", self.passphrase(org_id))

    def new_identity(self, org_id: str, name: str, role: Role) -> Identity:
        ca = self.ca(org_id)
        ks = FileKeystore(self.org_dir(org_id) / "keystore")
        if name in ks.names():
            raise ConfigError(f"identity {org_id}/{name} already exists")
        key, cert = ca.issue_identity(name, role)
        ks.save(name, key, cert, ca.cert, self.passphrase(org_id))
        ca.save(self.org_dir(org_id) / "ca", self.passphrase(org_id))
        return Identity(key, cert_der(cert), ca.cert_der)

    def revoke(self, org_id: str, name: str) -> SignedTx:
        """Revoke ``org_id/name`` at its CA; returns the signed CRL update to submit.

        The CRL is signed by the org CA and the transaction by the org's admin,
        as the configuration policy requires.
        """
        ca = self.ca(org_id)
        target = self.identity(f"{org_id}/{name}")
        from cryptography import x509
        ca.revoke(x509.load_der_x509_certificate(target.cert_der).serial_number)
        crl = ca.crl()
        ca.save(self.org_dir(org_id) / "ca", self.passphrase(org_id))
        admin = self.identity(f"{org_id}/admin")
        return sign(admin, self.chain_id, CrlUpdate(org_id, crl))


def init_network(root: Path, *, chain_id: str = "dev", orgs: list[str] | None = None,
                 host: str = "127.0.0.1", port: int = 7050,
                 limits: BlockLimits | None = None, force: bool = False) -> LocalNetwork:
    """Create organizations, their CAs and identities, a solo validator and genesis."""
    orgs = orgs or ["org1"]
    root = Path(root)
    if (root / NETWORK_FILE).exists() and not force:
        raise ConfigError(f"{root} already holds a network; pass force to overwrite")
    root.mkdir(parents=True, exist_ok=True)
    cas: dict[str, CertificateAuthority] = {}
    doc: dict[str, Any] = {"chain_id": chain_id, "orgs": {}, "nodes": [],
                           "default_identity": f"{orgs[0]}/alice"}
    admin_key = admin_cert = None
    validator_cert = None
    for i, org_id in enumerate(orgs):
        ca = CertificateAuthority.create(org_id)
        cas[org_id] = ca
        pw = secrets.token_urlsafe(24)
        org_dir = root / "orgs" / org_id
        _write_secret(org_dir / "passphrase", pw)
        ks = FileKeystore(org_dir / "keystore")
        names = [("admin", Role.ADMIN), ("alice", Role.CLIENT)]
        if i == 0:
            names.append(("validator0", Role.VALIDATOR))
        for name, role in names:
            key, cert = ca.issue_identity(name, role)
            ks.save(name, key, cert, ca.cert, pw.encode())
            if i == 0 and role is Role.ADMIN:
                admin_key, admin_cert = key, cert_der(cert)
            if role is Role.VALIDATOR:
                validator_cert = cert_der(cert)
        ca.save(org_dir / "ca", pw.encode())
        doc["orgs"][org_id] = {"identities": [f"{org_id}/{n}" for n, _ in names]}
    assert admin_key is not None and admin_cert is not None and validator_cert is not None
    config = ChainConfig(
        chain_id=chain_id, profile=Profile.ANT, suite="p256-sha256",
        consensus=ConsensusKind.SOLO,
        organizations=tuple(OrgConfig(o, cas[o].cert_der) for o in orgs),
        validators=(ValidatorConfig("validator0", orgs[0], validator_cert),),
        limits=limits or BlockLimits())
    genesis = make_genesis(config, admin_key, admin_cert, time.time_ns() // 1_000_000)
    (root / "genesis.json").write_bytes(genesis.to_file_bytes())
    node_dir = root / "nodes" / "validator0"
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "node.toml").write_text(tomli_w.dumps({
        "node": {"id": "validator0", "data_dir": "data", "genesis": "../../genesis.json"},
        "api": {"host": host, "port": port},
        "identity": {"keystore": f"../../orgs/{orgs[0]}/keystore", "name": "validator0",
                     "passphrase_file": f"../../orgs/{orgs[0]}/passphrase"},
    }))
    doc["nodes"].append({"id": "validator0", "config": "nodes/validator0/node.toml",
                         "api": f"http://{host}:{port}"})
    doc["genesis_hash"] = genesis.hash.hex()
    (root / NETWORK_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return LocalNetwork(root, doc)
