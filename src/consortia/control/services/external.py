"""External nodes: peers a member runs on its own machine from a join bundle (ADR 0019).

Rules (docs/spec/control-api.md, "External nodes"; docs/spec/join-bundle.md):

- ``POST …/nodes`` with ``external: true`` and the ``api_endpoint`` where the member will
  run it makes a ``peer`` row with provisioner ``external`` (CREATING): no port is taken,
  no file is written, nothing is started, no key is made;
- ``POST …/nodes/{id}/join-bundle`` (admins and owners of the member's tenant, audited
  ``node.join_bundle``) **issues** the node's ``peer`` identity from the member's CA and
  answers the bundle, its key sealed under the passphrase of the request. The control
  plane keeps the certificate (a row of the member's certificates, type ``peer``) and
  never the key nor the passphrase. A second download issues a new identity and revokes
  the previous one (reason ``superseded``), so one bundle runs one node: a leaked older
  bundle is worthless once the member's CRL is on chain;
- the status comes from the control plane polling the endpoint's ``/healthz``
  (``ExternalHealth`` in ``external_health.py``): CREATING until the first 200,
  AVAILABLE, UNHEALTHY when it stops answering;
- deleting it marks it DELETED and revokes its identity (``cessationOfOperation``); the
  member's CRL is published to the chain, best effort (a chain that cannot take it now
  gets it with the member's next revocation).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortia.control.services.chains import GONE, open_member_ca, validators_of
from consortia.control.services.context import Actor
from consortia.control.services.scope import own_node
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    CertificateStatus,
    IdentityType,
    NodeStatus,
    NodeType,
    Provisioner,
    ResourceStatus,
    RevocationReason,
    UserRole,
)
from consortia.control.store.models import Certificate, Member, Network, Node
from consortia.sdk.bundle import check_passphrase, make_join_bundle, peer_config
from consortia.types.config import Role
from consortia.types.errors import Conflict, ConsortiaError, InvalidRequest, Unavailable

if TYPE_CHECKING:
    from consortia.control.services.control import Control

log = logging.getLogger("consortia.control.external")

WAITING = "waiting for the member to run its join bundle (the node has not answered yet)"


def check_endpoint(url: str) -> str:
    """``url`` as ``http(s)://host:port`` (no path, query, fragment or credentials; the
    port given explicitly), or 422 ``invalid_endpoint``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"api_endpoint {url!r} is not a URL: {exc}",
                             code="invalid_endpoint") from None
    if (parts.scheme not in ("http", "https") or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username is not None or parts.password is not None):
        raise InvalidRequest(f"api_endpoint {url!r}: give http(s)://host:port, nothing more",
                             code="invalid_endpoint")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


def listen_host(endpoint: str) -> str:
    """The address a joined node listens on: loopback stays loopback, anything else is
    every interface (the endpoint's name may be a NAT's or a load balancer's)."""
    host = urlsplit(endpoint).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
    return "0.0.0.0"  # noqa: S104 - the member's own machine, reached at its endpoint


def new_external_peer(actor: Actor, network_id: str, member_id: str, name: str,
                      endpoint: str) -> Node:
    """The row of an external peer (CREATING, provisioner ``external``)."""
    return Node(id=new_id("nd"), network_id=network_id, member_id=member_id,
                tenant_id=actor.tenant_id, name=name, node_type=NodeType.PEER,
                status=NodeStatus.CREATING, status_reason=WAITING,
                provisioner=Provisioner.EXTERNAL, api_endpoint=endpoint, p2p_endpoint=None)


def check_endpoint_free(db: Session, network_id: str, endpoint: str) -> None:
    """409 ``endpoint_in_use`` when a live node of the network answers at ``endpoint``."""
    taken = db.scalar(select(Node.id).where(Node.network_id == network_id,
                                            Node.api_endpoint == endpoint,
                                            Node.status.not_in(GONE)).limit(1))
    if taken is not None:
        raise Conflict(f"node {taken} of this network has api_endpoint {endpoint}",
                       code="endpoint_in_use")


class ExternalNodeService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def join_bundle(self, actor: Actor, network_id: str, member_id: str, node_id: str,
                    passphrase: str) -> tuple[Node, bytes]:
        """Issue the node's identity (revoking the one a previous bundle carried) and make
        its bundle sealed under ``passphrase``; the node and the bundle's bytes."""
        actor.require(UserRole.ADMIN, "downloading join bundles")
        check_passphrase(passphrase)
        with self._c.transaction() as db:
            node = own_node(db, actor.tenant_id, network_id, member_id, node_id)
            if node.provisioner is not Provisioner.EXTERNAL:
                raise Conflict(f"node {node.id} is run by the control plane "
                               f"({node.provisioner.value}); join bundles are for external "
                               "nodes", code="not_external")
            if node.status in GONE:
                raise Conflict(f"node {node.id} is {node.status.value}")
            network = db.get(Network, network_id)
            member = db.get(Member, member_id)
            assert network is not None and member is not None
            if network.status is not ResourceStatus.AVAILABLE or network.genesis_hash is None:
                raise Conflict(f"network {network.id} is {network.status.value}",
                               code="network_not_available")
            if member.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"member {member.id} is {member.status.value}",
                               code="member_not_available")
            follow = [v.api_endpoint for v in sorted(
                validators_of(db, network_id),
                key=lambda v: v.status is not NodeStatus.AVAILABLE) if v.api_endpoint]
            if not follow:
                raise Unavailable("the network has no validator to follow",
                                  code="chain_unavailable")
            superseded = self._retire(db, node, RevocationReason.SUPERSEDED)
            ca = open_member_ca(self._c.box, member)
            key, cert = ca.issue_identity(node.id, Role.PEER)
            row = Certificate(
                id=new_id("crt"), member_id=member.id, network_id=network_id,
                tenant_id=member.tenant_id, serial_number=format(cert.serial_number, "x"),
                subject=cert.subject.rfc4514_string()[:512], identity_type=IdentityType.PEER,
                certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                status=CertificateStatus.ACTIVE)
            db.add(row)
            db.flush()
            node.provisioner_ref = row.id
            self._c.audit.record(db, actor, "node.join_bundle", node.id)
            header = {
                "network_id": network.id, "chain_id": network.chain_id,
                "member_id": member.id, "org_id": member.org_id, "node_id": node.id,
                "node_name": node.name, "api_endpoint": node.api_endpoint or "",
                "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "certificate_serial": row.serial_number, "genesis_hash": network.genesis_hash,
                "certificate_pem": row.certificate_pem,
                "ca_certificate_pem": member.ca_certificate_pem or "",
                "node_toml": peer_config(node.id, host=listen_host(node.api_endpoint or ""),
                                         port=_port(node.api_endpoint or ""), follow=follow),
            }
        genesis = self._c.runtime.files.genesis_path(network_id).read_bytes()
        header["genesis"] = base64.b64encode(genesis).decode("ascii")
        bundle = make_join_bundle(header, key, passphrase)
        if superseded:
            self.publish_crl(member_id)
        return node, bundle

    def retire(self, db: Session, node: Node) -> bool:
        """On delete: revoke ``node``'s identity, if a bundle issued one; whether the
        member's CRL changed (then ``publish_crl`` after the commit)."""
        return self._retire(db, node, RevocationReason.CESSATION_OF_OPERATION)

    def _retire(self, db: Session, node: Node, reason: RevocationReason) -> bool:
        if node.provisioner_ref is None:
            return False
        row = db.get(Certificate, node.provisioner_ref)
        if row is None or row.status is CertificateStatus.REVOKED:
            return False
        row.status = CertificateStatus.REVOKED
        row.revoked_at = self._c.now()
        row.revocation_reason = reason.value
        member = db.get(Member, node.member_id)
        assert member is not None
        db.flush()
        self._c.certificates.regenerate_crl(db, member)
        return True

    def publish_crl(self, member_id: str) -> None:
        """Put the member's newest CRL on chain now if the chain takes it; otherwise it
        waits for the member's next revocation (logged, not raised: the revocation itself
        is recorded)."""
        try:
            self._c.certificates.publish(member_id)
        except ConsortiaError as exc:
            log.warning("member %s: CRL not published now (%s: %s)", member_id, exc.code,
                        exc.message)


def _port(endpoint: str) -> int:
    port = urlsplit(endpoint).port
    if port is None:
        raise ValueError(f"endpoint {endpoint!r} names no port")
    return port

