"""Members: a tenant's organization in a network, each with its own CA.

Rules (docs/spec/control-api.md, "Members"):

- the network's creator (admins and owners) creates the first member of a network made
  in ``standard`` mode, which founds its chain (genesis with the member's organization,
  its validators started);
- every later member is created by an invited tenant from its invitation (``join``; an
  approved join application carries one, and records the member made from it): the
  ``OrgUpdate`` configuration transaction adding its organization is signed for the
  members that voted YES on the invitation's proposal (``org_changes``); the member is
  AVAILABLE once it committed, CREATE_FAILED with the reason if the chain refused it (the
  invitation is PENDING again then, so the invitee can retry). Without an invitation, a
  chain that runs takes no new member: 409 ``invitation_required``;
- each member's CA is made with it; its private key is sealed under the master key, bound
  to the member id (``SecretBox`` domain ``member-ca-key``), never stored plain;
- a member is deleted by its own tenant, typing its name back; the last member of a
  network takes the chain (its nodes) and the network with it; removing one of several
  members takes a REMOVE_MEMBER proposal (409 ``member_removal_needs_proposal``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.applications import record_member
from consortia.control.services.chains import (
    all_nodes_of,
    new_member_ca,
    open_member_ca,
    rpc_endpoints,
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
from consortia.control.services.invitations import own_invitation, require_pending
from consortia.control.services.org_changes import add_organization
from consortia.control.services.runtime import ChainRuntime, teardown
from consortia.control.services.scope import (
    LIVE,
    live_members,
    own_member,
    visible_member,
    visible_network,
)
from consortia.control.services.voting import expire_due, tally
from consortia.control.store.base import new_id, utcnow
from consortia.control.store.enums import (
    Consensus,
    InvitationStatus,
    NodeStatus,
    NodeType,
    ResourceClass,
    ResourceStatus,
    UserRole,
)
from consortia.control.store.models import Invitation, Member, Network, Node, Proposal
from consortia.identity.ca import CertificateAuthority
from consortia.sdk.network import validator_count
from consortia.types.config import ConsensusKind
from consortia.types.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unavailable,
)

if TYPE_CHECKING:
    from consortia.control.services.control import Control


def founding_validators(consensus: Consensus, validators: int | None) -> int:
    """How many validators a chain founded with ``consensus`` gets (422 if it cannot run
    that many)."""
    try:
        return validator_count(ConsensusKind(consensus.value), validators)
    except ConfigError as exc:
        raise InvalidRequest(exc.message, code="invalid_validator_count") from None


def add_founder(db: Session, control: Control, runtime: ChainRuntime, actor: Actor,
                network: Network, *, name: str, description: str, validators: int,
                client_token: str | None = None, request_sha256: str | None = None
                ) -> Member:
    """The member that founds ``network``'s chain, with its CA and the rows of its
    ``validators`` nodes (``validator0`` …), each with ports of its own; the chain is
    written and started afterwards by ``ChainRuntime.launch``."""
    member_id = new_id("mem")
    ca_pem, sealed = new_member_ca(control.box, member_id)
    member = Member(id=member_id, network_id=network.id, tenant_id=actor.tenant_id,
                    name=name, org_id=member_id, description=description,
                    status=ResourceStatus.CREATING, ca_certificate_pem=ca_pem,
                    ca_key_sealed=sealed, client_token=client_token,
                    request_sha256=request_sha256)
    db.add(member)
    db.flush()
    solo = network.consensus is Consensus.SOLO
    ids = [new_id("nd") for _ in range(validators)]
    placed = runtime.placement.endpoints(db, ids, p2p=not solo)
    at = utcnow()
    for i, (node_id, ends) in enumerate(zip(ids, placed, strict=True)):
        rpc, ws = rpc_endpoints(network, ends.api)
        db.add(Node(id=node_id, network_id=network.id, member_id=member.id,
                    tenant_id=actor.tenant_id, name=f"validator{i}",
                    node_type=NodeType.VALIDATOR, resource_class=ResourceClass.SMALL,
                    status=NodeStatus.CREATING, provisioner=runtime.placement.provisioner,
                    api_endpoint=ends.api, p2p_endpoint=ends.p2p, rpc_endpoint=rpc,
                    ws_endpoint=ws,
                    created_at=at + timedelta(microseconds=i)))  # listed in their order
    network.status_reason = f"starting the {validators} validator(s) of its first member"
    db.flush()
    return member


class MemberService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, *, status: ResourceStatus | None = None,
             limit: int, page_token: str | None) -> Page[Member]:
        """The network's members, oldest first (to every tenant that sees the network)."""
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            stmt = select(Member).where(Member.network_id == network_id)
            if status is not None:
                stmt = stmt.where(Member.status == status)
            return paginate(db, stmt, Member, limit=limit, page_token=page_token)

    def get(self, actor: Actor, network_id: str, member_id: str) -> Member:
        with self._c.transaction() as db:
            return visible_member(db, actor.tenant_id, network_id, member_id)

    def certificate_authority(self, actor: Actor, network_id: str,
                              member_id: str) -> CertificateAuthority:
        """The member's CA with its key opened in memory, for issuing identities in this
        process (admins and owners of the member's tenant). Nothing is written."""
        actor.require(UserRole.ADMIN, "using a member's CA")
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
        return open_member_ca(self._c.box, member)

    # --- changing --------------------------------------------------------------------------

    def create(self, actor: Actor, network_id: str, *, name: str, description: str = "",
               validators: int | None = None, client_token: str | None = None
               ) -> Created[Member]:
        actor.require(UserRole.ADMIN, "creating members")
        fp = fingerprint(self._c.fingerprint_key, "member.create", actor, {
            "network_id": network_id, "name": name, "description": description,
            "validators": validators})
        runtime = self._c.runtime
        runtime.start()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Member, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            network = visible_network(db, actor.tenant_id, network_id)
            if network.tenant_id != actor.tenant_id:
                raise Forbidden("only the network's creator adds members directly; other "
                                "tenants join by invitation", code="not_network_creator")
            if network.status not in (ResourceStatus.CREATING, ResourceStatus.AVAILABLE):
                raise Conflict(f"network {network.id} is {network.status.value}",
                               code="network_not_available")
            if network.genesis_hash is not None or live_members(db, network.id):
                raise Conflict("the network's chain runs already: new members join by "
                               "invitation (a proposal the members vote on), creating the "
                               "member with its invitation_id", code="invitation_required")
            count = founding_validators(network.consensus, validators)
            try:
                with db.begin_nested():
                    member = add_founder(db, self._c, runtime, actor, network, name=name,
                                         description=description, validators=count,
                                         client_token=client_token,
                                         request_sha256=fp if client_token else None)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Member, actor.tenant_id, client_token))
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token or "")
                raise Conflict(f"network {network_id} already has a member named "
                               f"{name!r}") from None
            self._c.audit.record(db, actor, "member.create", member.id)
        runtime.launch(network_id)
        with self._c.transaction() as db:
            return Created(own_member(db, actor.tenant_id, network_id, member.id))

    def join(self, actor: Actor, network_id: str, invitation_id: str, *, name: str,
             description: str = "", client_token: str | None = None) -> Created[Member]:
        """Accept ``invitation_id`` by creating the tenant's member in ``network_id``: its
        CA, then its organization added to the chain (signed for the YES voters)."""
        actor.require(UserRole.ADMIN, "creating members")
        fp = fingerprint(self._c.fingerprint_key, "member.create", actor, {
            "network_id": network_id, "name": name, "description": description,
            "invitation_id": invitation_id})
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Member, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            expire_due(db, self._c.now(), invitee_tenant_id=actor.tenant_id)
            invitation = own_invitation(db, actor.tenant_id, invitation_id)
            if invitation.network_id != network_id:
                raise NotFound(f"no invitation {invitation_id} to network {network_id}")
            require_pending(invitation)
            network = db.get(Network, network_id)
            assert network is not None
            if network.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"network {network.id} is {network.status.value}",
                               code="network_not_available")
            proposal = (None if invitation.proposal_id is None
                        else db.get(Proposal, invitation.proposal_id))
            approvers = [] if proposal is None else list(tally(db, proposal).voters)
            member_id = new_id("mem")
            ca_pem, sealed = new_member_ca(self._c.box, member_id)
            member = Member(id=member_id, network_id=network.id, tenant_id=actor.tenant_id,
                            name=name, org_id=member_id, description=description,
                            status=ResourceStatus.CREATING, ca_certificate_pem=ca_pem,
                            ca_key_sealed=sealed, client_token=client_token,
                            request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(member)
            except IntegrityError:
                raise Conflict(f"network {network_id} already has a member named "
                               f"{name!r}") from None
            invitation.status = InvitationStatus.ACCEPTED
            invitation.responded_at = self._c.now()
            invitation.member_id = member.id
            record_member(db, invitation.id, member.id)
            self._c.audit.record(db, actor, "member.create", member.id)
        try:
            add_organization(self._c, network_id, member_id, approvers)
        except (Conflict, Unavailable) as exc:
            with self._c.transaction() as db:
                row = db.get(Member, member_id)
                reopened = db.get(Invitation, invitation_id)
                assert row is not None and reopened is not None
                row.status = ResourceStatus.CREATE_FAILED
                row.status_reason = f"{exc.code}: {exc.message}"[:1024]
                reopened.status = InvitationStatus.PENDING
                reopened.responded_at = None
                reopened.member_id = None
                record_member(db, invitation_id, None)
        else:
            with self._c.transaction() as db:
                row = db.get(Member, member_id)
                assert row is not None
                row.status = ResourceStatus.AVAILABLE
        with self._c.transaction() as db:
            return Created(own_member(db, actor.tenant_id, network_id, member_id))

    def delete(self, actor: Actor, network_id: str, member_id: str,
               confirm_name: str | None) -> None:
        """Leave the network: the member's nodes are stopped and the member DELETED; as the
        last member, the network is DELETED with it."""
        actor.require(UserRole.ADMIN, "deleting members")
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
            require_confirmation(confirm_name, member.name, f"member {member.id}")
            if member.status not in LIVE:
                raise Conflict(f"member {member.id} is {member.status.value} already")
            if any(m.id != member.id for m in live_members(db, network_id)):
                raise Conflict("the network has other members: removing one takes a "
                               "REMOVE_MEMBER proposal they vote on",
                               code="member_removal_needs_proposal")
            network = db.get(Network, network_id)
            assert network is not None
            nodes = [n.id for n in all_nodes_of(db, network_id)]  # the network ends
            member.status = ResourceStatus.DELETING
            network.status = ResourceStatus.DELETING
            for node in db.scalars(select(Node).where(Node.id.in_(nodes))):
                node.status = NodeStatus.DELETING
            self._c.audit.record(db, actor, "member.delete", member.id)
        teardown(self._c, network_id, nodes, [member_id])

    # --- helpers ---------------------------------------------------------------------------

    def _replay(self, db: Session, actor: Actor, member: Member, fp: str,
                client_token: str) -> Created[Member]:
        check_replay(member.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "member.create", member.id)
        return Created(member, replayed=True)

