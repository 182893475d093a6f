"""A local network on disk: organizations with CAs, identities, genesis, node configs.

``init_network`` writes a directory a user can read and back up::

    network.json                      what is where (chain id, orgs, nodes, default identity)
    genesis.json                      the trust anchor for offline verification
    orgs/<org>/passphrase             random, mode 0600; encrypts that org's keys
    orgs/<org>/ca/                    the org CA: encrypted key, certificate, revocations
    orgs/<org>/keystore/<name>/       identities: encrypted key, certificate, CA certificate
    orgs/<org>/accounts/, account-password   quorum only: Ethereum key files and their
                                      password (``consortia.sdk.netaccounts``)
    orgs/<org>/tm/, privacy-directory.json   quorum only: the organization's transaction
                                      manager and the signed key directory
                                      (``consortia.sdk.nettm``; run by ``start``,
                                      ``consortia.sdk.netrun``)
    nodes/<id>/node.toml, data/       one node process each (validator0 … validator<n-1>,
                                      and the peers ``LocalNetwork.add_peer`` adds)

A ``solo`` network has one validator, ``validator0`` of the first organization. A ``raft``
or ``pbft`` network has several, spread round-robin over the organizations, each node with
its own API port and a ``[p2p]`` section naming every other validator's address.

No secret has a default: every passphrase is generated here from ``secrets``.

The writers it is made of (``write_genesis``, ``write_node_identity``, ``write_node_config``,
``write_secret``) live in ``consortia.sdk.netfiles`` and are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from eth_account.signers.local import LocalAccount

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.keystore import FileKeystore
from consortia.sdk import netaccounts, netrun, nettm
from consortia.sdk.evm.keys import load_key
from consortia.sdk.identity import Identity
from consortia.sdk.netaccounts import NetworkAccount
from consortia.sdk.netfiles import (
    read_passphrase,
    write_genesis,
    write_node_config,
    write_node_identity,
    write_org,
    write_org_accounts,
    write_secret,
)
from consortia.sdk.netplan import (
    DEFAULT_VALIDATORS,
    P2P_PORT_OFFSET,
    TM_PORT_OFFSET,
    plan_managers,
    plan_nodes,
    validator_count,
)
from consortia.sdk.nettm import NetworkManager
from consortia.sdk.tx import SignedTx, org_update, sign, validator_update
from consortia.types.config import (
    BlockLimits,
    ChainConfig,
    Comparator,
    ConsensusKind,
    MembershipPolicy,
    OrgConfig,
    Policies,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import ConfigError
from consortia.types.tx import AccountUpdate, CrlUpdate, OrgUpdate, ValidatorUpdate

__all__ = ["DEFAULT_VALIDATORS", "P2P_PORT_OFFSET", "TM_PORT_OFFSET", "LocalNetwork",
           "NetworkAccount", "NetworkNode", "init_network", "validator_count",
           "write_genesis", "write_node_config", "write_node_identity", "write_secret"]

NETWORK_FILE = "network.json"
RPC_PATH = "/rpc"
"""Where a quorum node serves Ethereum JSON-RPC on its API port: ``POST`` for HTTP and a
WebSocket upgrade on the same path (``RpcServer.routes(RPC_PATH)``, docs/spec/json-rpc.md)."""


@dataclass(frozen=True)
class NetworkNode:
    """One node of a local network, as ``network.json`` records it."""

    id: str
    org: str
    """The organization whose validator identity the node signs with."""
    config: Path
    """Its ``node.toml`` (under the network root)."""
    api: str
    """Base URL of its HTTP API, e.g. ``http://127.0.0.1:7050``."""
    p2p: str | None
    """``host:port`` it listens on for other validators; None for a solo node or a peer."""
    role: str = "validator"
    """``validator`` or ``peer`` (a node that follows the validators, ``add_peer``)."""


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

    @property
    def profile(self) -> Profile:
        """The profile of the genesis configuration (``ant`` when not recorded)."""
        return Profile(str(self.doc.get("profile", Profile.ANT)))

    @property
    def consensus(self) -> ConsensusKind:
        """The consensus of the genesis configuration (``solo`` when not recorded)."""
        return ConsensusKind(str(self.doc.get("consensus", ConsensusKind.SOLO)))

    def nodes(self, *, retired: bool = False) -> list[NetworkNode]:
        """Every node, in order (``validator0`` first); with ``retired``, also the nodes of
        validators a configuration change removed (``retire``), which nothing starts."""
        return [self._node(n) for n in self.doc["nodes"] if retired or not n.get("retired")]

    def peers(self) -> list[NetworkNode]:
        """The peer nodes ``add_peer`` added, in order (they are not in ``nodes()``)."""
        return [NetworkNode(str(e["id"]), str(e["org"]), self.root / str(e["config"]),
                            str(e["api"]), None, "peer") for e in self.doc.get("peers", [])]

    def node(self, node_id: str | None = None) -> NetworkNode:
        """The node named ``node_id`` (a validator's or a peer's), or the first one."""
        nodes = self.nodes(retired=node_id is not None)
        if node_id is None:
            return nodes[0]
        for n in [*nodes, *self.peers()]:
            if n.id == node_id:
                return n
        raise ConfigError(f"no node {node_id!r} in this network "
                          f"(nodes: {', '.join(n.id for n in nodes)})")

    def node_url(self, node_id: str | None = None) -> str:
        return self.node(node_id).api

    def rpc_url(self, node_id: str | None = None, *, websocket: bool = False) -> str:
        """The Ethereum JSON-RPC URL of node ``node_id`` (default: the first validator) of a
        quorum network: ``http://host:port/rpc``, or with ``websocket`` ``ws://…/rpc``."""
        self._quorum()
        url = self.node(node_id).api.rstrip("/") + RPC_PATH
        return "ws" + url.removeprefix("http") if websocket else url

    def _quorum(self) -> None:
        if self.profile is not Profile.QUORUM:
            raise ConfigError(f"network {self.chain_id} is an {self.profile.value} network; "
                              "Ethereum accounts and JSON-RPC belong to quorum networks")

    def accounts(self, org_id: str | None = None) -> list[NetworkAccount]:
        """The Ethereum accounts whose key files this network keeps (``init_network`` made
        them bound and funded; ``new_account`` adds unbound ones), of ``org_id`` or all."""
        if org_id is not None:
            self.org_dir(org_id)
        return [a for a in netaccounts.recorded(self.doc, self.root)
                if org_id is None or a.org == org_id]

    def eth_account(self, ref: str) -> LocalAccount:
        """The decrypted account ``ref`` names (an address or unique address prefix, or an
        organization id for its first account), ready to sign transactions."""
        found = netaccounts.find(self.accounts(), ref)
        return load_key(found.key_file, self.account_password(found.org))

    def account_password(self, org_id: str) -> str:
        """The password of ``org_id``'s key files (``orgs/<org>/account-password``)."""
        return netaccounts.account_password(self.org_dir(org_id))

    def new_account(self, org_id: str) -> NetworkAccount:
        """A new key file for ``org_id``, recorded here but not bound: submit
        ``bind_accounts(org_id, [account.address])`` to let it transact."""
        self._quorum()
        made = netaccounts.create_accounts(self.root, org_id, 1,
                                           self.account_password(org_id))
        netaccounts.record(self.doc, self.root, made)
        _write_doc(self.root, self.doc)
        return made[0]

    def bind_accounts(self, org_id: str, addresses: Sequence[str | bytes]) -> SignedTx:
        """The ``account_update`` that binds ``addresses`` (``0x`` hex or 20 bytes) to
        ``org_id``, signed by its admin (ADR 0025: no vote, an organization vouches for its
        own accounts). Submit it to a node; the chain refuses an address bound already."""
        return self._account_update("add", org_id, addresses)

    def unbind_accounts(self, org_id: str, addresses: Sequence[str | bytes]) -> SignedTx:
        """The ``account_update`` that unbinds ``addresses`` from ``org_id`` (signed by its
        admin); their transactions are refused once it commits."""
        return self._account_update("remove", org_id, addresses)

    def _account_update(self, op: str, org_id: str,
                        addresses: Sequence[str | bytes]) -> SignedTx:
        self._quorum()
        self.org_dir(org_id)
        update = AccountUpdate(op, org_id, netaccounts.addresses_of(addresses))
        return sign(self.identity(f"{org_id}/admin"), self.chain_id, update)

    def node_config(self, node_id: str | None = None) -> Path:
        return self.node(node_id).config

    def managers(self) -> list[NetworkManager]:
        """The organizations' transaction managers (quorum networks made with privacy)."""
        return nettm.recorded(self.doc, self.root)

    def _manager(self, org_id: str) -> NetworkManager | None:
        return next((m for m in self.managers() if m.org == org_id), None)

    def manager(self, org_id: str) -> NetworkManager:
        """``org_id``'s transaction manager; ``ConfigError`` when it has none."""
        self.org_dir(org_id)
        found = self._manager(org_id)
        if found is None:
            raise ConfigError(f"organization {org_id!r} has no transaction manager (a quorum "
                              "network made without privacy, or not a quorum network)")
        return found

    def privacy_key(self, org_id: str) -> str:
        """``org_id``'s manager public key (base64): what ``privateFor`` names."""
        return self.manager(org_id).public_key

    def tm_url(self, org_id: str) -> str:
        """The local API of ``org_id``'s manager (its nodes call it with their token)."""
        return self.manager(org_id).url

    def start(self, *, timeout: float = netrun.START_TIMEOUT) -> None:
        """Start, in the background, the managers and then the nodes (validators, peers)
        not running yet, and wait until each answers (``netrun.start``)."""
        netrun.start(self, timeout=timeout)

    def stop(self, *, timeout: float = netrun.STOP_TIMEOUT) -> list[str]:
        """Stop the nodes, then the managers, that run in the background; the ids of
        those that ran (a manager's is ``tm-<org>``)."""
        return netrun.stop(self, timeout=timeout)

    def status(self) -> list[netrun.ProcessStatus]:
        """Each manager and node: its pid when it runs in the background, and whether it
        answers."""
        return netrun.status(self)

    def _node(self, entry: dict[str, Any]) -> NetworkNode:
        node_id = str(entry["id"])
        org = entry.get("org")
        if org is None:  # solo networks record no org: it is the one holding the identity
            org = next((o for o, d in self.doc["orgs"].items()
                        if f"{o}/{node_id}" in d.get("identities", ())),
                       next(iter(self.doc["orgs"])))
        p2p = entry.get("p2p")
        return NetworkNode(node_id, str(org), self.root / str(entry["config"]),
                           str(entry["api"]), None if p2p is None else str(p2p))

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
        ca.revoke(x509.load_der_x509_certificate(target.cert_der).serial_number)
        crl = ca.crl()
        ca.save(self.org_dir(org_id) / "ca", self.passphrase(org_id))
        admin = self.identity(f"{org_id}/admin")
        return sign(admin, self.chain_id, CrlUpdate(org_id, crl))

    def _admins(self, first: str) -> list[Identity]:
        """Admins of a majority of the organizations, ``first``'s own first."""
        orgs = [first] + [o for o in self.doc["orgs"] if o != first]
        return [self.identity(f"{o}/admin") for o in orgs[: len(orgs) // 2 + 1]]

    def add_org(self, org_id: str, *, config: ChainConfig | Mapping[str, Any]) -> SignedTx:
        """Create organization ``org_id`` here (its CA, an ``admin`` and a client ``alice``,
        like ``init_network``'s) and return the ``OrgUpdate`` that adds it to the chain
        whose configuration in force is ``config`` — a ``ChainConfig`` or its summary, as
        ``GET /v1/chain`` returns it under ``config`` — approved by just enough admins of
        the organizations in force to pass its ``policies.membership``. Called again for an
        organization created here but not yet on chain, it returns the transaction again
        (for a newer sequence, say)."""
        sequence, _, _ = _vote_basis(config)
        if org_id not in self.doc["orgs"]:
            ca = CertificateAuthority.create(org_id)
            write_org(self.root, org_id, ca, [("admin", Role.ADMIN), ("alice", Role.CLIENT)])
            self.doc["orgs"][org_id] = {"identities": [f"{org_id}/admin", f"{org_id}/alice"]}
            _write_doc(self.root, self.doc)
        update = OrgUpdate("add", org_id, self.ca(org_id).cert_der, sequence)
        return org_update(self._voters(config, None), self.chain_id, update)

    def remove_org(self, org_id: str, *, config: ChainConfig | Mapping[str, Any]) -> SignedTx:
        """The ``OrgUpdate`` that removes ``org_id`` from the chain whose configuration in
        force is ``config`` (as for ``add_org``), signed by its own admin and approved by
        just enough others to pass the membership vote. Its validators must have been
        removed first (``remove_validator``). Its directory stays here."""
        self.org_dir(org_id)
        sequence, _, _ = _vote_basis(config)
        update = OrgUpdate("remove", org_id, b"", sequence)
        return org_update(self._voters(config, org_id), self.chain_id, update)

    def _voters(self, config: ChainConfig | Mapping[str, Any],
                first: str | None) -> list[Identity]:
        """Admins of the fewest organizations in force (``first`` first, then in order)
        that pass the membership vote; all of them when even that does not pass."""
        _, members, policy = _vote_basis(config)
        in_force = [o for o in members if o in self.doc["orgs"]]
        if first is not None and first in in_force:
            in_force = [first] + [o for o in in_force if o != first]
        count = next((k for k in range(1, len(in_force) + 1)
                      if policy.satisfied(k, len(members))), len(in_force))
        return [self.identity(f"{o}/admin") for o in in_force[:count]]

    def add_validator(self, node_id: str, org_id: str, *, sequence: int, api_port: int,
                      p2p_port: int, host: str = "127.0.0.1") -> SignedTx:
        """Prepare node ``node_id`` of ``org_id`` (validator identity from its CA, node
        directory, entry in network.json) and return the configuration transaction that
        makes it a validator, approved by the admins of a majority of organizations.
        ``sequence`` is the configuration sequence in force (``chain info``). Start the
        node once the transaction is submitted: it catches up and joins consensus when
        its ledger reaches the configuration block."""
        peers = {n.id: n.p2p for n in self.nodes() if n.p2p is not None}
        if not peers:
            raise ConfigError("only raft and pbft networks take more validators")
        if org_id not in self.doc["orgs"]:
            raise ConfigError(f"no organization {org_id!r} in this network (organizations: "
                              f"{', '.join(self.doc['orgs'])})")
        existing = next((n for n in self.nodes(retired=True) if n.id == node_id), None)
        if existing is not None:
            return self._readd(existing, org_id, sequence)
        ident = self.new_identity(org_id, node_id, Role.VALIDATOR)
        self.doc["nodes"].append(_write_node(self.root, node_id, org_id, host, api_port,
                                             p2p_port, peers, self._manager(org_id)))
        _write_doc(self.root, self.doc)
        update = ValidatorUpdate("add", node_id, org_id, ident.cert_der, f"{host}:{p2p_port}",
                                 sequence)
        return validator_update(self._admins(org_id), self.chain_id, update)

    def _readd(self, node: NetworkNode, org_id: str, sequence: int) -> SignedTx:
        """The add transaction again for a node prepared by an earlier ``add_validator``
        whose change never committed (refused, lost, stale sequence). A node that has run
        was a validator: its id is spent (its ledger and votes exist), so it is refused."""
        if node.org != org_id:
            raise ConfigError(f"node {node.id!r} already exists in this network, of {node.org}")
        if (node.config.parent / "data").exists() or self._entry(node.id).get("retired"):
            raise ConfigError(f"node {node.id!r} has run before (it was a validator); add a "
                              "validator under a new id")
        assert node.p2p is not None
        ident = self.identity(f"{node.org}/{node.id}")
        update = ValidatorUpdate("add", node.id, node.org, ident.cert_der, node.p2p, sequence)
        return validator_update(self._admins(node.org), self.chain_id, update)

    def remove_validator(self, node_id: str, *, sequence: int) -> SignedTx:
        """The configuration transaction that removes ``node_id`` from the validators,
        approved by the admins of a majority of organizations (the node's own first).
        Once it has committed, ``retire`` the node so that nothing starts it again."""
        node = self.node(node_id)
        update = ValidatorUpdate("remove", node_id, node.org, b"", "", sequence)
        return validator_update(self._admins(node.org), self.chain_id, update)

    def retire(self, node_id: str) -> None:
        """Record in network.json that ``node_id`` is no longer a validator: ``nodes()``
        (and so ``consortia dev up`` and ``chain info``) leaves it out; its directory stays."""
        self._entry(node_id)["retired"] = True
        _write_doc(self.root, self.doc)

    def add_peer(self, node_id: str, org_id: str, *, api_port: int, host: str = "127.0.0.1",
                 follow: list[str] | None = None) -> NetworkNode:
        """Prepare peer node ``node_id`` of ``org_id``: a ``peer`` identity from its CA, its
        directory (``nodes/<id>/``, its configuration following ``follow`` — by default
        every validator's API) and its entry in network.json. No configuration change and
        no approval: a peer orders nothing. Start it like any node; it syncs the chain."""
        if org_id not in self.doc["orgs"]:
            raise ConfigError(f"no organization {org_id!r} in this network (organizations: "
                              f"{', '.join(self.doc['orgs'])})")
        taken = {n.id for n in self.nodes(retired=True)} | {n.id for n in self.peers()}
        if node_id in taken:
            raise ConfigError(f"node {node_id!r} already exists in this network")
        urls = follow if follow is not None else [n.api for n in self.nodes()]
        if not urls:
            raise ConfigError("a peer follows at least one validator")
        self.new_identity(org_id, node_id, Role.PEER)
        write_node_config(self.root / "nodes" / node_id, node_id, genesis="../../genesis.json",
                          keystore=f"../../orgs/{org_id}/keystore",
                          passphrase_file=f"../../orgs/{org_id}/passphrase", host=host,
                          api_port=api_port, follow=urls,
                          privacy=nettm.node_privacy(self._manager(org_id), self.root,
                                                     self.root / "nodes" / node_id))
        self.doc.setdefault("peers", []).append(
            {"id": node_id, "org": org_id, "config": f"nodes/{node_id}/node.toml",
             "api": f"http://{host}:{api_port}"})
        _write_doc(self.root, self.doc)
        return self.node(node_id)

    def _entry(self, node_id: str) -> dict[str, Any]:
        for entry in self.doc["nodes"]:
            if entry["id"] == node_id:
                return entry  # type: ignore[no-any-return]
        raise ConfigError(f"no node {node_id!r} in this network")


def init_network(root: Path, *, chain_id: str = "dev", orgs: list[str] | None = None,
                 host: str = "127.0.0.1", port: int = 7050,
                 limits: BlockLimits | None = None, force: bool = False,
                 consensus: ConsensusKind | str = ConsensusKind.SOLO,
                 validators: int | None = None, p2p_port: int | None = None,
                 membership: MembershipPolicy | None = None,
                 profile: Profile | str = Profile.ANT, evm_chain_id: int | None = None,
                 evm_gas_limit: int | None = None, accounts_per_org: int | None = None,
                 balance: int | None = None, privacy: bool | None = None,
                 tm_port: int | None = None) -> LocalNetwork:
    """Create organizations, their CAs and identities, the validators and genesis.

    ``solo`` (the default): one validator ``validator0`` of the first organization, its node
    API on ``host:port``. ``raft`` and ``pbft``: ``validators`` nodes (default 3 for raft,
    4 for pbft, which needs at least 4: n = 3f + 1) named ``validator0`` … ``validator<n-1>``,
    validator i belonging to ``orgs[i % len(orgs)]``; node i serves its API on ``port + i``
    and talks to the other validators on ``(p2p_port or port + 100) + i``.

    An even raft count is allowed but tolerates no more crashes than the odd count below it
    (4 validators, like 3, survive one), and pbft counts other than 3f + 1 likewise tolerate
    only f = (n - 1) // 3 faults.

    ``membership`` is the consortium's vote on adding and removing organizations (default:
    more than 50% of them).

    ``profile="quorum"`` makes an Ethereum chain (ADR 0025, 0026): its configuration gets an
    ``evm`` section with ``evm_chain_id`` (default 1337) and ``evm_gas_limit`` (default 30
    million), and every organization ``accounts_per_org`` (default 1) new Ethereum
    accounts, bound to it and funded with ``balance`` wei (default 10**24) at genesis, their
    key files under ``orgs/<org>/accounts`` (``consortia.sdk.netaccounts``). Unless
    ``privacy=False``, every organization also gets a transaction manager (ADR 0028,
    ``consortia.sdk.nettm``; its ports from ``tm_port``, default ``port + 200``) and every
    node of it a ``[privacy]`` section naming that manager, so ``privateFor`` works at once.
    The ``ant`` profile (the default) takes none of these arguments and writes what it
    always did.
    """
    try:
        prof = Profile(profile)
    except ValueError:
        raise ConfigError(f"unknown profile {profile!r}; local networks are ant or "
                          "quorum") from None
    evm_args = (evm_chain_id, evm_gas_limit, accounts_per_org, balance, tm_port,
                privacy or None)
    if prof is Profile.ANT and any(a is not None for a in evm_args):
        raise ConfigError("EVM chain id, gas limit, accounts, balance and transaction "
                          "managers apply to quorum networks; pass profile='quorum'")
    if prof not in (Profile.ANT, Profile.QUORUM):
        raise ConfigError(f"local networks are ant or quorum, not {prof.value}")
    try:
        kind = ConsensusKind(consensus)
    except ValueError:
        raise ConfigError(f"unknown consensus {consensus!r}; choose one of "
                          f"{', '.join(k.value for k in ConsensusKind)}") from None
    orgs = orgs or ["org1"]
    root = Path(root)
    plans = plan_nodes(kind, validators, orgs, port, p2p_port)
    evm_plan = None if prof is Profile.ANT else netaccounts.evm_plan(
        orgs, chain_id=evm_chain_id, gas_limit=evm_gas_limit,
        accounts_per_org=accounts_per_org, balance=balance)
    tm_plans = [] if prof is Profile.ANT or privacy is False else plan_managers(
        orgs, port, tm_port, plans)
    if tm_plans == [] and tm_port is not None:
        raise ConfigError("a manager port applies to networks with transaction managers")
    if (root / NETWORK_FILE).exists() and not force:
        raise ConfigError(f"{root} already holds a network; pass force to overwrite")
    root.mkdir(parents=True, exist_ok=True)
    cas: dict[str, CertificateAuthority] = {}
    doc: dict[str, Any] = {"chain_id": chain_id, "orgs": {}, "nodes": [],
                           "default_identity": f"{orgs[0]}/alice"}
    admin_key = admin_cert = None
    validator_certs: dict[str, bytes] = {}
    for i, org_id in enumerate(orgs):
        ca = CertificateAuthority.create(org_id)
        cas[org_id] = ca
        names = [("admin", Role.ADMIN), ("alice", Role.CLIENT)]
        names += [(p.id, Role.VALIDATOR) for p in plans if p.org == org_id]
        for name, role, key, cert in write_org(root, org_id, ca, names):
            if i == 0 and role is Role.ADMIN:
                admin_key, admin_cert = key, cert_der(cert)
            if role is Role.VALIDATOR:
                validator_certs[name] = cert_der(cert)
        doc["orgs"][org_id] = {"identities": [f"{org_id}/{n}" for n, _ in names]}
    assert admin_key is not None and admin_cert is not None
    evm = None
    if evm_plan is not None:
        made = [a for o in orgs for a in write_org_accounts(root, o, evm_plan.accounts_per_org)]
        evm = netaccounts.evm_config(evm_plan, made)
        doc["profile"] = prof.value  # ant keeps the network.json of earlier releases
        doc["evm"] = {"chain_id": evm.chain_id, "gas_limit": evm.gas_limit}
        netaccounts.record(doc, root, made)
    if tm_plans:
        doc["managers"] = nettm.write_network_managers(
            root, cas, {o: read_passphrase(root, o) for o in orgs},
            {o: Identity.load(root / "orgs" / o / "keystore", "admin", read_passphrase(root, o))
             for o in orgs}, [(m.org, m.local_port, m.peer_port) for m in tm_plans], host)
    managers = {m.org: m for m in nettm.recorded(doc, root)}
    config = ChainConfig(
        chain_id=chain_id, profile=prof, suite="p256-sha256",
        consensus=kind,
        organizations=tuple(OrgConfig(o, cas[o].cert_der) for o in orgs),
        validators=tuple(ValidatorConfig(p.id, p.org, validator_certs[p.id],
                                         f"{host}:{p.p2p_port}" if p.p2p_port else "")
                         for p in plans),
        policies=Policies(membership=membership or MembershipPolicy()),
        limits=limits or BlockLimits(), evm=evm)
    genesis = write_genesis(root / "genesis.json", config, Identity(admin_key, admin_cert))
    for p in plans:
        peers = None if p.p2p_port is None else {q.id: f"{host}:{q.p2p_port}"
                                                 for q in plans if q is not p}
        doc["nodes"].append(_write_node(root, p.id, p.org, host, p.api_port, p.p2p_port,
                                        peers, managers.get(p.org)))
    if kind is not ConsensusKind.SOLO:  # solo keeps the network.json of earlier releases
        doc["consensus"] = kind.value
    doc["genesis_hash"] = genesis.hash.hex()
    _write_doc(root, doc)
    return LocalNetwork(root, doc)


def _vote_basis(config: ChainConfig | Mapping[str, Any]) -> tuple[int, list[str],
                                                                   MembershipPolicy]:
    """Sequence, organization ids and membership policy of a configuration or of its
    ``summary()``."""
    if isinstance(config, ChainConfig):
        return (config.sequence, [o.id for o in config.organizations],
                config.policies.membership)
    try:
        rule = config["policies"]["membership"]
        return (int(config["sequence"]), [str(o["id"]) for o in config["organizations"]],
                MembershipPolicy(int(rule["percentage"]), Comparator(rule["comparator"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a configuration summary: {exc!r}") from None


def _write_node(root: Path, node_id: str, org: str, host: str, api_port: int,
                p2p_port: int | None, peers: dict[str, str] | None,
                manager: NetworkManager | None = None) -> dict[str, Any]:
    """Write ``nodes/<id>/node.toml`` (its identity in its organization's keystore; the
    ``[privacy]`` section when the organization has a ``manager``) and return the node's
    entry for network.json (solo nodes keep the entry of earlier releases: no org, no
    p2p)."""
    node_dir = root / "nodes" / node_id
    write_node_config(node_dir, node_id, genesis="../../genesis.json",
                      keystore=f"../../orgs/{org}/keystore",
                      passphrase_file=f"../../orgs/{org}/passphrase", host=host,
                      api_port=api_port, p2p_port=p2p_port, peers=peers,
                      privacy=nettm.node_privacy(manager, root, node_dir))
    entry: dict[str, Any] = {"id": node_id, "config": f"nodes/{node_id}/node.toml",
                             "api": f"http://{host}:{api_port}"}
    if p2p_port is not None:
        entry = {"id": node_id, "org": org, "config": entry["config"], "api": entry["api"],
                 "p2p": f"{host}:{p2p_port}"}
    return entry


def _write_doc(root: Path, doc: dict[str, Any]) -> None:
    (root / NETWORK_FILE).write_text(json.dumps(doc, indent=2) + "\n")
