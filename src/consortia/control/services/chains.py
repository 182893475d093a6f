"""The chains behind networks: member CAs sealed in the database, genesis and node
directories on disk, the validator changes signed for members, and how node statuses
settle a network's.

Files, under ``settings.data_dir`` (``ChainFiles``)::

    networks/<network id>/genesis.json              the chain's trust anchor
    networks/<network id>/nodes/<node id>/          one node (validator or peer) each:
        node.toml                                   its configuration
        keystore/<node id>/, passphrase             its own identity (key encrypted; 0600)
        data/, node.log                             its ledger and its output
    networks/<network id>/channels/<channel id>/    a channel's own chain (ADR 0017):
        genesis.json, nodes/<node id>/              laid out as the network's
    provisioner/                                    the local provisioner's state

A member's CA key never touches the disk: it is sealed in ``members.ca_key_sealed``
(``SecretBox`` domain ``member-ca-key``, bound to the member id) and opened in memory to
issue a validator's certificate, or an admin certificate valid for an hour whenever a
configuration (genesis, a validator change) must be signed for the member. Admin keys are
not kept: the CA, which the control plane holds for its members, can always issue another.

On-chain ids are the control plane's ids: the chain id is the network id (a channel's
chain: the channel id), an organization id the member id, a validator id the node id.

A ``quorum`` network's chain gets the ``evm`` section (ADR 0025, 0029) with the network's
EIP-155 chain id and gas limit and no account bound: its members bind their own
(``services/accounts.py``). A channel's chain is a notary (``ant``) chain whatever the
network's profile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortia.control.auth.keys import MEMBER_CA_KEY, SecretBox
from consortia.control.provision.base import NodeSpec
from consortia.control.store.enums import NodeStatus, NodeType, ResourceStatus
from consortia.control.store.enums import Profile as NetworkProfile
from consortia.control.store.models import Channel, Member, Network, Node
from consortia.crypto import CryptoError, get_suite
from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.sdk.identity import Identity
from consortia.sdk.network import write_genesis, write_node_config, write_node_identity
from consortia.sdk.tx import SignedTx, validator_update
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
from consortia.types.errors import ConsortiaError
from consortia.types.evm_config import EvmConfig
from consortia.types.tx import ValidatorUpdate

CA_SUITE = "p256-sha256"
RPC_PATH = "/rpc"
"""Where a quorum node serves Ethereum JSON-RPC under its API (HTTP and WebSocket)."""
ADMIN_VALIDITY = dt.timedelta(hours=1)
"""How long an admin certificate issued to sign one configuration stays valid."""
GONE = (NodeStatus.DELETING, NodeStatus.DELETED)
"""Node statuses that no longer count as part of a network."""


# --- member CAs ----------------------------------------------------------------------------


def new_member_ca(box: SecretBox, member_id: str) -> tuple[str, bytes]:
    """A new root CA for member ``member_id`` (its organization id): the certificate (PEM)
    and the private key sealed for that member."""
    ca = CertificateAuthority.create(member_id, suite=CA_SUITE)
    pem = ca.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return pem, box.seal_bytes(MEMBER_CA_KEY, member_id, ca.key.to_pem(None))


def open_member_ca(box: SecretBox, member: Member) -> CertificateAuthority:
    """The member's CA, its key opened in memory (``CryptoError`` if the seal is not this
    member's or the master key is not the one that sealed it)."""
    if member.ca_key_sealed is None or member.ca_certificate_pem is None:
        raise ValueError(f"member {member.id} has no CA")
    key = get_suite(CA_SUITE).load_private_key(
        box.open_bytes(MEMBER_CA_KEY, member.id, member.ca_key_sealed), None)
    cert = x509.load_pem_x509_certificate(member.ca_certificate_pem.encode("ascii"))
    return CertificateAuthority(member.org_id, key, cert, {}, member.crl_number)


def admin_identity(ca: CertificateAuthority) -> Identity:
    """An admin of ``ca``'s organization for one configuration signature (valid an hour)."""
    now = dt.datetime.now(dt.UTC)
    key, cert = ca.issue_identity("control-plane-admin", Role.ADMIN,
                                  not_after=now + ADMIN_VALIDITY)
    return Identity(key, cert_der(cert), ca.cert_der)


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainFiles:
    """Where the control plane keeps its networks' files (``settings.data_dir``)."""

    root: Path

    def network_dir(self, network_id: str) -> Path:
        return self.root / "networks" / network_id

    def chain_dir(self, network_id: str, channel_id: str | None = None) -> Path:
        """The directory of the network's chain, or of one of its channels' chains."""
        d = self.network_dir(network_id)
        return d if channel_id is None else d / "channels" / channel_id

    def genesis_path(self, network_id: str, channel_id: str | None = None) -> Path:
        return self.chain_dir(network_id, channel_id) / "genesis.json"

    def node_dir(self, network_id: str, node_id: str, channel_id: str | None = None) -> Path:
        return self.chain_dir(network_id, channel_id) / "nodes" / node_id

    @property
    def provisioner_dir(self) -> Path:
        return self.root / "provisioner"

    def spec(self, node: Node) -> NodeSpec:
        """What the provisioner runs for ``node``."""
        d = self.node_dir(node.network_id, node.id, node.channel_id)
        if node.api_endpoint is None:
            raise ValueError(f"node {node.id} has no API endpoint")
        return NodeSpec(node.id, d / "node.toml", d / "data", d / "node.log", node.api_endpoint,
                        node.resource_class.value)

    def write_validator(self, ca: CertificateAuthority, node: Node, host: str,
                        peers: dict[str, str]) -> bytes:
        """Issue ``node``'s validator identity from its member's CA and write its directory
        (identity, configuration naming ``peers``); its certificate (DER)."""
        d = self.node_dir(node.network_id, node.id, node.channel_id)
        key, cert = ca.issue_identity(node.id, Role.VALIDATOR)
        write_node_identity(d, node.id, key, cert, ca.cert)
        p2p = None if node.p2p_endpoint is None else port_of(node.p2p_endpoint)
        write_node_config(d, node.id, genesis="../../genesis.json", keystore="keystore",
                          passphrase_file="passphrase", host=host,  # noqa: S106 - a file name
                          api_port=port_of(node.api_endpoint or ""), p2p_port=p2p,
                          peers=None if p2p is None else peers)
        return cert_der(cert)

    def write_peer(self, ca: CertificateAuthority, node: Node, host: str,
                   follow: list[str]) -> None:
        """Issue ``node``'s ``peer`` identity from its member's CA and write its directory:
        a peer node following the validators' APIs ``follow`` (ADR 0015)."""
        d = self.node_dir(node.network_id, node.id)
        key, cert = ca.issue_identity(node.id, Role.PEER)
        write_node_identity(d, node.id, key, cert, ca.cert)
        write_node_config(d, node.id, genesis="../../genesis.json", keystore="keystore",
                          passphrase_file="passphrase", host=host,  # noqa: S106 - a file name
                          api_port=port_of(node.api_endpoint or ""), follow=follow)

    def write_chain(self, network: Network, member: Member, ca: CertificateAuthority,
                    validators: list[Node], host: str) -> str:
        """The chain of ``network`` founded by ``member`` with ``validators`` (its nodes):
        their directories, then genesis signed by the member's admin; the genesis hash."""
        evm = None
        if network.profile is NetworkProfile.QUORUM:
            if network.evm_chain_id is None or network.evm_gas_limit is None:
                raise ValueError(f"quorum network {network.id} has no EVM chain id")
            evm = EvmConfig(network.evm_chain_id, network.evm_gas_limit)
        return self._write(network, network.chain_id, None, network.consensus.value,
                           [member], member, ca, validators, host, evm)

    def write_channel(self, network: Network, channel: Channel, members: list[Member],
                      founder: Member, ca: CertificateAuthority, validators: list[Node],
                      host: str) -> str:
        """The chain of ``channel`` (chain id = the channel id): ``members``' organizations
        with their existing CAs, ``validators`` of ``founder`` (whose CA is ``ca``), the
        network's voting policy as membership policy; the genesis hash."""
        return self._write(network, channel.id, channel.id, channel.consensus.value, members,
                           founder, ca, validators, host)

    def _write(self, network: Network, chain_id: str, channel_id: str | None,
               consensus: str, members: list[Member], founder: Member,
               ca: CertificateAuthority, validators: list[Node], host: str,
               evm: EvmConfig | None = None) -> str:
        certs = {}
        for node in validators:
            peers = {o.id: o.p2p_endpoint for o in validators
                     if o is not node and o.p2p_endpoint is not None}
            certs[node.id] = self.write_validator(ca, node, host, peers)
        orgs = tuple(OrgConfig(m.org_id, ca.cert_der if m.id == founder.id else member_ca_der(m))
                     for m in members)
        config = ChainConfig(
            chain_id=chain_id, profile=Profile.ANT if evm is None else Profile.QUORUM,
            suite=CA_SUITE,
            consensus=ConsensusKind(consensus), organizations=orgs,
            validators=tuple(ValidatorConfig(n.id, founder.org_id, certs[n.id],
                                             n.p2p_endpoint or "") for n in validators),
            policies=Policies(membership=MembershipPolicy(
                network.threshold_percentage, Comparator(network.threshold_comparator.value))),
            limits=BlockLimits(), evm=evm)
        genesis = write_genesis(self.genesis_path(network.id, channel_id), config,
                                admin_identity(ca))
        return genesis.hash.hex()


def member_ca_der(member: Member) -> bytes:
    """The member's CA certificate, DER (as a chain configuration carries it)."""
    if member.ca_certificate_pem is None:
        raise ValueError(f"member {member.id} has no CA")
    return x509.load_pem_x509_certificate(member.ca_certificate_pem.encode("ascii")
                                          ).public_bytes(serialization.Encoding.DER)


def rpc_endpoints(network: Network, api_endpoint: str | None) -> tuple[str | None,
                                                                      str | None]:
    """The Ethereum JSON-RPC URLs (HTTP, WebSocket) of a node of ``network`` serving its API
    at ``api_endpoint``: under ``/rpc`` on quorum networks; none on others."""
    if network.profile is not NetworkProfile.QUORUM or not api_endpoint:
        return None, None
    http = api_endpoint.rstrip("/") + RPC_PATH
    return http, "ws" + http.removeprefix("http")


def port_of(endpoint: str) -> int:
    """The port of ``http://host:port`` or ``host:port``."""
    port = endpoint.rpartition(":")[2]
    if not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} names no port")
    return int(port)


# --- validator changes ---------------------------------------------------------------------


def validator_change(admins: list[Identity], chain_id: str, op: str, node: Node,
                     org_id: str, cert: bytes, sequence: int) -> SignedTx:
    """The configuration transaction that adds (``op="add"``, with the validator's
    ``cert``) or removes ``node`` of organization ``org_id``, signed by the first admin
    and approved by the others."""
    endpoint = (node.p2p_endpoint or "") if op == "add" else ""
    update = ValidatorUpdate(op, node.id, org_id, cert if op == "add" else b"",
                             endpoint, sequence)
    return validator_update(admins, chain_id, update)


# --- talking to chains ---------------------------------------------------------------------


CHAIN_ERRORS = (ConsortiaError, CryptoError, OSError, ValueError, KeyError, httpx.HTTPError)
"""What writing a node's files, opening a member's CA and talking to a node can raise."""


def why(exc: BaseException) -> str:
    """``code: message`` of a project error, ``Class: text`` of any other: for reasons."""
    if isinstance(exc, ConsortiaError):
        return f"{exc.code}: {exc.message}"
    return f"{exc.__class__.__name__}: {exc}"


# --- statuses ------------------------------------------------------------------------------


def validators_of(db: Session, network_id: str) -> list[Node]:
    """The network's validator nodes that have not been deleted, oldest first (those of its
    own chain: a channel's validators run another chain, ``channel_validators``)."""
    return list(db.scalars(select(Node).where(
        Node.network_id == network_id, Node.node_type == NodeType.VALIDATOR,
        Node.channel_id.is_(None), Node.status.not_in(GONE)).order_by(Node.created_at,
                                                                       Node.id)))


def channel_validators(db: Session, channel_id: str) -> list[Node]:
    """The validators of a channel's chain that have not been deleted, oldest first."""
    return list(db.scalars(select(Node).where(
        Node.channel_id == channel_id, Node.status.not_in(GONE)).order_by(Node.created_at,
                                                                           Node.id)))


def all_nodes_of(db: Session, network_id: str) -> list[Node]:
    """Every node of the network not deleted yet — validators, peers (external ones
    included) and the channels' validators: what ends with the network."""
    return list(db.scalars(select(Node).where(
        Node.network_id == network_id, Node.status.not_in(GONE)).order_by(Node.created_at,
                                                                           Node.id)))


def channel_nodes_of(db: Session, network_id: str) -> list[Node]:
    """The validators of every channel of the network that have not been deleted: they go
    with the network."""
    return list(db.scalars(select(Node).where(
        Node.network_id == network_id, Node.channel_id.is_not(None),
        Node.status.not_in(GONE))))


def settle_channel(db: Session, channel_id: str) -> None:
    """A channel being created becomes AVAILABLE once all its validators are; CREATE_FAILED
    when one of them failed (as ``settle_network``)."""
    channel = db.get(Channel, channel_id)
    if channel is None or channel.status is not ResourceStatus.CREATING \
            or channel.genesis_hash is None:
        return
    nodes = channel_validators(db, channel_id)
    failed = next((n for n in nodes if n.status is NodeStatus.FAILED), None)
    if failed is not None:
        channel.status = ResourceStatus.CREATE_FAILED
        channel.status_reason = (f"validator {failed.name} ({failed.id}) failed: "
                                 f"{failed.status_reason or 'no reason given'}")[:1024]
    elif nodes and all(n.status is NodeStatus.AVAILABLE for n in nodes):
        channel.status = ResourceStatus.AVAILABLE
        channel.status_reason = None


def settle_network(db: Session, network_id: str) -> None:
    """A network being created becomes AVAILABLE once all its validators are, with the
    members that founded it; CREATE_FAILED when one of them failed. Networks in service
    keep their status whatever their nodes do: the nodes' own statuses say that."""
    network = db.get(Network, network_id)
    if network is None or network.status is not ResourceStatus.CREATING \
            or network.genesis_hash is None:
        return
    nodes = validators_of(db, network_id)
    failed = next((n for n in nodes if n.status is NodeStatus.FAILED), None)
    if failed is not None:
        fail_network(db, network, f"validator {failed.name} ({failed.id}) failed: "
                                   f"{failed.status_reason or 'no reason given'}")
    elif nodes and all(n.status is NodeStatus.AVAILABLE for n in nodes):
        network.status = ResourceStatus.AVAILABLE
        network.status_reason = None
        for member in _members(db, network_id, ResourceStatus.CREATING):
            member.status = ResourceStatus.AVAILABLE
            member.status_reason = None


def fail_network(db: Session, network: Network, reason: str) -> None:
    """CREATE_FAILED with ``reason``, for the network and its members being created."""
    network.status = ResourceStatus.CREATE_FAILED
    network.status_reason = reason[:1024]
    for member in _members(db, network.id, ResourceStatus.CREATING):
        member.status = ResourceStatus.CREATE_FAILED
        member.status_reason = network.status_reason


def _members(db: Session, network_id: str, status: ResourceStatus) -> list[Member]:
    return list(db.scalars(select(Member).where(Member.network_id == network_id,
                                                Member.status == status)))
