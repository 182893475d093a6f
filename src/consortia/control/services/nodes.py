"""Nodes: a member's validators and peers (``ant`` chains), added to and removed from a
running chain.

Rules (docs/spec/control-api.md, "Nodes"):

- operators and stronger of the member's tenant create and delete its nodes; only that
  tenant sees them;
- ``ant`` chains have validators and peers: ``orderer`` is refused with 422
  ``node_type_not_available``; a solo chain has exactly one validator (409
  ``config_not_allowed``) but takes peers; the network and the member must be AVAILABLE;
- **add a peer** (ADR 0015): no configuration change and no approval — the row is
  written (CREATING, its API port), the peer's identity is issued by the member's CA, its
  directory written to follow the APIs of the network's validators, and its process
  started: AVAILABLE when it answers its health check, which it does once caught up;
  **delete** stops it (name typed back);
- **add**: the row is written (CREATING, its ports), then the validator's identity is
  issued by the member's CA and its directory written, and the ``validator_update``
  configuration transaction that adds it — signed by an admin of the member's
  organization and approved by admins of a majority of the network's organizations — is
  submitted through an AVAILABLE validator's API and waited for; once it has committed, the
  node's process is started (AVAILABLE when it answers its health check, having caught up).
  A change that does not commit leaves the node FAILED with the reason;
- **delete** (name typed back): a node that joined the chain is first removed from the
  validators by the reverse transaction — refused (409) for the last one, answered 503 when
  the chain cannot take it now — then its process is stopped; the row stays DELETED and
  its directory stays on disk;
- **external** peers (``external.py``, ADR 0019) are rows only: their member runs them
  from a join bundle, their health is polled; deleting one revokes its identity;
- approvals are given by the admins of the caller tenant's members in the network; where
  they are not a majority, 409 ``not_enough_approvals``, whose message points at an
  ``ADD_VALIDATOR`` proposal (``validator_proposals``): the other organizations approve by
  voting YES, and the approved proposal adds the validator (``join_approved``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.chains import (
    CHAIN_ERRORS,
    GONE,
    admin_identity,
    open_member_ca,
    rpc_endpoints,
    validator_change,
    validators_of,
    why,
)
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
    require_confirmation,
)
from consortia.control.services.external import (
    check_endpoint,
    check_endpoint_free,
    new_external_peer,
)
from consortia.control.services.scope import live_members, own_member, own_node
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    Consensus,
    NodeStatus,
    NodeType,
    Provisioner,
    ResourceClass,
    ResourceStatus,
    UserRole,
)
from consortia.control.store.models import Member, Network, Node
from consortia.sdk.identity import Identity
from consortia.sdk.tx import SignedTx
from consortia.types.config import MAX_VALIDATORS
from consortia.types.errors import (
    Conflict,
    InvalidRequest,
    Unavailable,
)

if TYPE_CHECKING:
    from consortia.control.services.control import Control

_Approvers = Callable[[Session, Network, Member], Sequence[Member]]
"""Who signs a validator change: the members whose admins approve, the node's own first."""


@dataclass(frozen=True)
class _Change:
    """What a validator change needs, read in one transaction."""

    network: Network
    member: Member
    node: Node
    approvers: list[Member]
    """The members whose admins sign, the node's own first."""
    target: str
    """The API of an AVAILABLE validator to submit through."""
    peers: dict[str, str]
    """Validator id → p2p endpoint of the other validators."""


class NodeService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, member_id: str, *,
             status: NodeStatus | None = None, limit: int,
             page_token: str | None) -> Page[Node]:
        with self._c.transaction() as db:
            own_member(db, actor.tenant_id, network_id, member_id)
            stmt = select(Node).where(Node.member_id == member_id,
                                      Node.network_id == network_id,
                                      Node.tenant_id == actor.tenant_id)
            if status is not None:
                stmt = stmt.where(Node.status == status)
            return paginate(db, stmt, Node, limit=limit, page_token=page_token)

    def get(self, actor: Actor, network_id: str, member_id: str, node_id: str) -> Node:
        with self._c.transaction() as db:
            return own_node(db, actor.tenant_id, network_id, member_id, node_id)

    # --- add -------------------------------------------------------------------------------

    def create(self, actor: Actor, network_id: str, member_id: str, *, name: str,
               node_type: NodeType = NodeType.VALIDATOR,
               resource_class: ResourceClass = ResourceClass.SMALL,
               external: bool = False, api_endpoint: str | None = None,
               client_token: str | None = None) -> Created[Node]:
        actor.require(UserRole.OPERATOR, "creating nodes")
        if external:
            if node_type is not NodeType.PEER:
                raise InvalidRequest("external nodes are peers: a validator is run by the "
                                     "control plane", code="node_type_not_available")
            if api_endpoint is None:
                raise InvalidRequest("an external node needs the api_endpoint where its "
                                     "member runs it", code="invalid_endpoint")
            api_endpoint = check_endpoint(api_endpoint)
        elif api_endpoint is not None:
            raise InvalidRequest("api_endpoint is given for external nodes only; the "
                                 "control plane chooses its own nodes' ports",
                                 code="invalid_endpoint")
        fp = fingerprint(self._c.fingerprint_key, "node.create", actor, {
            "network_id": network_id, "member_id": member_id, "name": name,
            "node_type": node_type.value, "resource_class": resource_class.value,
            **({"external": True, "api_endpoint": api_endpoint} if external else {})})
        runtime = self._c.runtime
        runtime.start()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Node, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            network = db.get(Network, network_id)
            assert network is not None
            if node_type not in (NodeType.VALIDATOR, NodeType.PEER):
                raise InvalidRequest(f"{network.profile.value} chains run validators and "
                                     f"peers; {node_type.value} nodes are not available",
                                     code="node_type_not_available")
            peer = node_type is NodeType.PEER
            _check_available(network, member)
            if not peer:
                _check_changeable(network)
                validators = validators_of(db, network_id)
                if len(validators) >= MAX_VALIDATORS:
                    raise Conflict(f"a chain has at most {MAX_VALIDATORS} validators",
                                   code="config_not_allowed")
                _approvers(db, actor, network, member)  # refuse early, before any row
            if external:
                assert api_endpoint is not None
                check_endpoint_free(db, network_id, api_endpoint)
                node = new_external_peer(actor, network_id, member_id, name, api_endpoint)
                node.resource_class = resource_class
                node.client_token = client_token
                node.request_sha256 = fp if client_token else None
            else:
                node_id = new_id("nd")
                ends = runtime.placement.endpoints(db, [node_id], p2p=not peer)[0]
                node = Node(id=node_id, network_id=network_id, member_id=member_id,
                            tenant_id=actor.tenant_id, name=name, node_type=node_type,
                            resource_class=resource_class, status=NodeStatus.CREATING,
                            provisioner=runtime.placement.provisioner,
                            api_endpoint=ends.api, p2p_endpoint=ends.p2p,
                            client_token=client_token,
                            request_sha256=fp if client_token else None)
            node.rpc_endpoint, node.ws_endpoint = rpc_endpoints(network, node.api_endpoint)
            try:
                with db.begin_nested():
                    db.add(node)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Node, actor.tenant_id, client_token))
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token or "")
                raise Conflict(f"network {network_id} already has a node named "
                               f"{name!r}") from None
            self._c.audit.record(db, actor, "node.create", node.id)
        if external:  # its member runs it from a join bundle; its health is polled
            pass
        elif peer:
            self._start_peer(node.id)
        else:
            self._join(node.id, lambda db, network, member: _approvers(db, actor, network,
                                                                       member))
        with self._c.transaction() as db:
            return Created(own_node(db, actor.tenant_id, network_id, member_id, node.id))

    def join_approved(self, node_id: str, approver_ids: Sequence[str]) -> str | None:
        """Make node ``node_id`` (a row CREATING) a validator signed for the members
        ``approver_ids`` (its own first: an approved ADD_VALIDATOR proposal's), then start
        it; the reason it failed (the node is FAILED then), None once it is started."""
        def approvers(db: Session, _network: Network, _member: Member) -> Sequence[Member]:
            rows = [db.get(Member, i) for i in approver_ids]
            return [m for m in rows if m is not None and m.ca_key_sealed is not None]

        return self._join(node_id, approvers)

    def _join(self, node_id: str, approvers: _Approvers) -> str | None:
        """Make the new node a validator of its chain, then start it; FAILED on failure
        (the reason returned)."""
        runtime = self._c.runtime
        try:
            change = self._read_change(node_id, approvers)
            ca = open_member_ca(self._c.box, change.member)
            cert = runtime.files.write_validator(ca, change.node,
                                                 runtime.placement.listen_host, change.peers)
            tx = self._signed(change, "add", cert)
            receipt = runtime.gateway.commit(change.target, tx,
                                             timeout=self._c.settings.chain_timeout_seconds)
            if receipt.get("status") != "committed":
                raise Unavailable(_not_committed(tx, receipt))
            with self._c.transaction() as db:
                row = db.get(Node, node_id)
                assert row is not None
                row.provisioner_ref = node_id
            runtime.provision(change.node)
        except CHAIN_ERRORS as exc:
            reason = f"could not join the chain: {why(exc)}"[:1024]
            with self._c.transaction() as db:
                row = db.get(Node, node_id)
                if row is not None and row.status not in GONE:
                    row.status = NodeStatus.FAILED
                    row.status_reason = reason
            return reason
        return None

    def _start_peer(self, node_id: str) -> None:
        """Issue the peer's identity, write its directory following the network's
        validators and start it; FAILED with the reason when that cannot be done."""
        runtime = self._c.runtime
        try:
            with self._c.transaction() as db:
                node = db.get(Node, node_id)
                assert node is not None
                member = db.get(Member, node.member_id)
                assert member is not None
                validators = validators_of(db, node.network_id)
                urls = [v.api_endpoint for v in sorted(
                    validators, key=lambda v: v.status is not NodeStatus.AVAILABLE)
                    if v.api_endpoint]
                if not urls:
                    raise Unavailable("the network has no validator to follow",
                                      code="chain_unavailable")
                node.provisioner_ref = node_id
            ca = open_member_ca(self._c.box, member)
            runtime.files.write_peer(ca, node, runtime.placement.listen_host, urls)
            runtime.provision(node)
        except CHAIN_ERRORS as exc:
            with self._c.transaction() as db:
                row = db.get(Node, node_id)
                if row is not None and row.status not in GONE:
                    row.status = NodeStatus.FAILED
                    row.status_reason = f"could not start the peer: {why(exc)}"[:1024]

    # --- delete ----------------------------------------------------------------------------

    def delete(self, actor: Actor, network_id: str, member_id: str, node_id: str,
               confirm_name: str | None) -> None:
        actor.require(UserRole.OPERATOR, "deleting nodes")
        runtime = self._c.runtime
        runtime.start()
        with self._c.transaction() as db:
            node = own_node(db, actor.tenant_id, network_id, member_id, node_id)
            require_confirmation(confirm_name, node.name, f"node {node.id}")
            if node.channel_id is not None:
                raise Conflict(f"node {node.id} runs channel {node.channel_id}: it stops with "
                               "the channel (delete the channel)", code="channel_node")
            if node.status in GONE:
                raise Conflict(f"node {node.id} is {node.status.value} already")
            network = db.get(Network, network_id)
            assert network is not None
            joined = (node.node_type is NodeType.VALIDATOR
                      and network.status is ResourceStatus.AVAILABLE
                      and node.provisioner_ref is not None)
            if joined:
                if network.consensus is Consensus.SOLO:
                    raise Conflict("a solo chain has exactly one validator; delete the "
                                   "network instead", code="config_not_allowed")
                others = [v for v in validators_of(db, network_id)
                          if v.id != node.id and v.provisioner_ref is not None]
                if not others:
                    raise Conflict("the last validator of a chain cannot be removed; delete "
                                   "the network instead", code="config_not_allowed")
        if joined:
            self._leave(actor, node_id)
        with self._c.transaction() as db:
            node = own_node(db, actor.tenant_id, network_id, member_id, node_id)
            node.status = NodeStatus.DELETING
            self._c.audit.record(db, actor, "node.delete", node.id)
            external = node.provisioner is Provisioner.EXTERNAL
            revoked = external and self._c.external_nodes.retire(db, node)
        if not external:
            runtime.unprovision(node_id)
        with self._c.transaction() as db:
            node = own_node(db, actor.tenant_id, network_id, member_id, node_id)
            node.status = NodeStatus.DELETED
        if revoked:
            self._c.external_nodes.publish_crl(member_id)

    def _leave(self, actor: Actor, node_id: str) -> None:
        """Remove the node from the chain's validators; raise when the chain refuses or
        cannot take the change now (nothing is changed then)."""
        runtime = self._c.runtime
        change = self._read_change(node_id, lambda db, network, member: _approvers(
            db, actor, network, member))
        try:
            tx = self._signed(change, "remove", b"")
            receipt = runtime.gateway.commit(change.target, tx,
                                             timeout=self._c.settings.chain_timeout_seconds)
        except CHAIN_ERRORS as exc:
            raise Unavailable(f"could not remove the validator from the chain: {why(exc)}",
                              code="chain_unavailable") from None
        status = receipt.get("status")
        if status == "committed" or receipt.get("error") == "unknown_validator":
            return
        if status == "pending":
            raise Unavailable(_not_committed(tx, receipt), code="chain_unavailable")
        raise Conflict(_not_committed(tx, receipt), code="validator_change_refused")

    # --- helpers ---------------------------------------------------------------------------

    def _read_change(self, node_id: str, approvers_of: _Approvers) -> _Change:
        with self._c.transaction() as db:
            node = db.get(Node, node_id)
            assert node is not None
            network = db.get(Network, node.network_id)
            member = db.get(Member, node.member_id)
            assert network is not None and member is not None
            approvers = approvers_of(db, network, member)
            others = [v for v in validators_of(db, network.id) if v.id != node.id]
            target = next((v.api_endpoint for v in others
                           if v.status is NodeStatus.AVAILABLE and v.api_endpoint), None)
            if target is None:
                raise Unavailable("no other validator of the network is AVAILABLE to take "
                                  "the configuration change", code="chain_unavailable")
            peers = {v.id: v.p2p_endpoint for v in others if v.p2p_endpoint}
            return _Change(network, member, node, list(approvers), target, peers)

    def _signed(self, change: _Change, op: str, cert: bytes) -> SignedTx:
        """The validator change, bound to the configuration in force (read from the node
        it is submitted to), signed and approved by the approvers' admins."""
        info = self._c.runtime.gateway.chain_info(change.target)
        sequence = int(info["config"]["sequence"])
        admins: list[Identity] = [admin_identity(open_member_ca(self._c.box, m))
                                  for m in change.approvers]
        return validator_change(admins, change.network.chain_id, op, change.node,
                                change.member.org_id, cert, sequence)

    def _replay(self, db: Session, actor: Actor, node: Node, fp: str,
                client_token: str) -> Created[Node]:
        check_replay(node.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "node.create", node.id)
        return Created(node, replayed=True)



def _approvers(db: Session, actor: Actor, network: Network, member: Member) -> list[Member]:
    """Members of the caller's tenant whose admins approve: as many as a majority of
    the network's organizations needs, the node's own member first."""
    members = [m for m in live_members(db, network.id) if m.ca_key_sealed is not None]
    need = len(members) // 2 + 1
    mine = [member] + [m for m in members
                       if m.tenant_id == actor.tenant_id and m.id != member.id]
    if len(mine) < need:
        raise Conflict(f"changing the validators needs the admins of {need} of the "
                       f"network's {len(members)} organizations; this tenant holds "
                       f"{len(mine)}: propose it for the other members to approve (POST "
                       f"/v1/networks/{network.id}/proposals with action ADD_VALIDATOR, "
                       f"target_member_id {member.id} and node_name)",
                       code="not_enough_approvals")
    return mine[:need]


def _check_available(network: Network, member: Member) -> None:
    if network.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"network {network.id} is {network.status.value}: nodes are added to "
                       "AVAILABLE networks", code="network_not_available")
    if member.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"member {member.id} is {member.status.value}",
                       code="member_not_available")


def _check_changeable(network: Network) -> None:
    """The validator set of ``network`` can change (not a solo chain's)."""
    if network.consensus is Consensus.SOLO:
        raise Conflict("a solo chain has exactly one validator; create a raft or pbft "
                       "network for more", code="config_not_allowed")


def _not_committed(tx: SignedTx, receipt: dict[str, object]) -> str:
    status = receipt.get("status")
    error = receipt.get("error")
    return (f"the validator change (transaction {tx.id_hex}) did not commit: {status}"
            + (f" ({error})" if error else ""))

