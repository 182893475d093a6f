"""Proposals and votes: how a network's members decide who joins and who leaves.

Rules (docs/spec/control-api.md, "Proposals and votes"):

- an admin of a member's tenant proposes, in the member's name, to invite a tenant
  (``INVITE_TENANT``), to remove a member (``REMOVE_MEMBER``) or to add a validator to one
  of its own members (``ADD_VALIDATOR``, ``validator_proposals``) of an AVAILABLE network;
  the network's voting policy is copied onto the proposal, which is open for the
  network's proposal duration;
- each AVAILABLE member votes once (YES or NO), by an admin of its tenant; the proposal is
  decided by the rule of ``voting`` as soon as the outcome is certain, EXPIRED when its
  duration passes undecided;
- an approved proposal's action executes on its own, in the request of the deciding vote:
  an invitation to the tenant (which then creates its member from it — the configuration
  transaction adding its organization is signed for the members that voted YES), or the
  member's removal (its validators leave the validator set, then its organization leaves
  the configuration, both signed for the members that voted YES; its nodes are stopped),
  or the new validator (its ``validator_update`` signed for the target member and the
  members that voted YES); an INVITE_TENANT proposal opened by accepting a join
  application decides the application with it (``applications``).
  An action that fails leaves the proposal ACTION_FAILED with the reason;
- proposals and votes are visible to every tenant that sees the network.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.chains import GONE
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
)
from consortia.control.services.org_changes import remove_organization
from consortia.control.services.scope import own_member, visible_member, visible_network
from consortia.control.services.validator_proposals import check_addition, execute_addition
from consortia.control.services.voting import Tally, expire_due, outcome, tally
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    ApplicationStatus,
    InvitationStatus,
    NodeStatus,
    ProposalAction,
    ProposalStatus,
    ResourceClass,
    ResourceStatus,
    TenantStatus,
    UserRole,
    VoteValue,
)
from consortia.control.store.models import (
    Channel,
    Invitation,
    JoinApplication,
    Member,
    Network,
    Node,
    Proposal,
    Tenant,
    Vote,
)
from consortia.types.errors import Conflict, InvalidRequest, NotFound, Unavailable

if TYPE_CHECKING:
    from consortia.control.services.control import Control

INVITATION_DAYS = 7
"""How long an invitation made by an approved proposal stays open (as in AMB)."""


def live_proposal(db: Session, network_id: str, proposal_id: str) -> Proposal:
    proposal = db.scalar(select(Proposal).where(Proposal.id == proposal_id,
                                                Proposal.network_id == network_id))
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} in network {network_id}")
    return proposal


class ProposalService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, *, status: ProposalStatus | None = None,
             limit: int, page_token: str | None) -> Page[tuple[Proposal, Tally]]:
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            expire_due(db, self._c.now(), network_id=network_id)
            stmt = select(Proposal).where(Proposal.network_id == network_id)
            if status is not None:
                stmt = stmt.where(Proposal.status == status)
            page = paginate(db, stmt, Proposal, limit=limit, page_token=page_token)
            return Page([(p, tally(db, p)) for p in page.items], page.next_page_token)

    def get(self, actor: Actor, network_id: str, proposal_id: str) -> tuple[Proposal, Tally]:
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            expire_due(db, self._c.now(), network_id=network_id)
            proposal = live_proposal(db, network_id, proposal_id)
            return proposal, tally(db, proposal)

    def votes(self, actor: Actor, network_id: str, proposal_id: str, *, limit: int,
              page_token: str | None) -> Page[Vote]:
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            live_proposal(db, network_id, proposal_id)
            stmt = select(Vote).where(Vote.proposal_id == proposal_id)
            return paginate(db, stmt, Vote, limit=limit, page_token=page_token)

    # --- proposing -------------------------------------------------------------------------

    def create(self, actor: Actor, network_id: str, *, member_id: str,
               action: ProposalAction, target_tenant_id: str | None = None,
               target_member_id: str | None = None, description: str = "",
               node_name: str | None = None, resource_class: ResourceClass | None = None,
               client_token: str | None = None) -> Created[Proposal]:
        """Open a proposal in the name of ``member_id`` (a member of the caller's tenant)."""
        actor.require(UserRole.ADMIN, "making proposals")
        params: dict[str, object] = {
            "network_id": network_id, "member_id": member_id, "action": action.value,
            "target_tenant_id": target_tenant_id, "target_member_id": target_member_id,
            "description": description}
        if action is ProposalAction.ADD_VALIDATOR:
            params.update(node_name=node_name, resource_class=resource_class)
        fp = fingerprint(self._c.fingerprint_key, "proposal.create", actor, params)
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Proposal, actor.tenant_id, client_token)
                if existing is not None:
                    check_replay(existing.request_sha256, fp, client_token)
                    self._c.audit.record(db, actor, "proposal.create", existing.id)
                    return Created(existing, replayed=True)
            try:
                with db.begin_nested():
                    proposal = open_proposal(
                        self._c, db, actor, network_id, member_id, action,
                        target_tenant_id=target_tenant_id, target_member_id=target_member_id,
                        description=description, node_name=node_name,
                        resource_class=resource_class, client_token=client_token,
                        request_sha256=fp if client_token else None)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Proposal, actor.tenant_id, client_token))
                if existing is None:
                    raise
                check_replay(existing.request_sha256, fp, client_token or "")
                return Created(existing, replayed=True)
            self._c.audit.record(db, actor, "proposal.create", proposal.id)
        return Created(proposal)

    # --- voting ----------------------------------------------------------------------------

    def vote(self, actor: Actor, network_id: str, proposal_id: str, *, member_id: str,
             value: VoteValue) -> tuple[Vote, Proposal, Tally]:
        """Cast ``member_id``'s vote; decide the proposal when the votes make it certain,
        and carry out an approved one's action."""
        actor.require(UserRole.ADMIN, "voting")
        now = self._c.now()
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            expire_due(db, now, network_id=network_id)
            proposal = live_proposal(db, network_id, proposal_id)
            if proposal.status is not ProposalStatus.IN_PROGRESS:
                raise Conflict(f"proposal {proposal.id} is {proposal.status.value}: votes are "
                               "taken while it is IN_PROGRESS", code="proposal_not_open")
            if member.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"member {member.id} is {member.status.value}: only AVAILABLE "
                               "members vote", code="member_not_available")
            if db.scalar(select(Vote.id).where(Vote.proposal_id == proposal.id,
                                               Vote.member_id == member.id)) is not None:
                raise Conflict(f"member {member.id} has voted on proposal {proposal.id} "
                               "already", code="already_voted")
            vote = Vote(id=new_id("vot"), proposal_id=proposal.id, network_id=network_id,
                        member_id=member.id, tenant_id=actor.tenant_id, value=value)
            db.add(vote)
            db.flush()
            counted = tally(db, proposal)
            decided = outcome(proposal, counted)
            if decided is not ProposalStatus.IN_PROGRESS:
                proposal.status = decided
                proposal.decided_at = now
                self._decided(db, proposal)
            self._c.audit.record(db, actor, "proposal.vote", proposal.id)
        if proposal.status is ProposalStatus.APPROVED \
                and proposal.action is ProposalAction.REMOVE_MEMBER:
            execute_removal(self._c, proposal.id)
        if proposal.status is ProposalStatus.APPROVED \
                and proposal.action is ProposalAction.ADD_VALIDATOR:
            execute_addition(self._c, proposal.id)
        with self._c.transaction() as db:
            proposal = live_proposal(db, network_id, proposal_id)
            return vote, proposal, tally(db, proposal)

    def _decided(self, db: Session, proposal: Proposal) -> None:
        """What a decision does within the deciding vote's transaction: an approved
        invitation is issued; an application decided by it follows it."""
        application = db.scalar(select(JoinApplication).where(
            JoinApplication.proposal_id == proposal.id))
        invitation = None
        if proposal.action is ProposalAction.INVITE_TENANT \
                and proposal.status is ProposalStatus.APPROVED:
            assert proposal.target_tenant_id is not None
            invitation = Invitation(
                id=new_id("inv"), network_id=proposal.network_id,
                tenant_id=proposal.tenant_id, invitee_tenant_id=proposal.target_tenant_id,
                proposal_id=proposal.id, message=proposal.description,
                status=InvitationStatus.PENDING,
                expires_at=self._c.now() + timedelta(days=INVITATION_DAYS))
            db.add(invitation)
            db.flush()
        if application is not None and application.status is ApplicationStatus.PENDING:
            application.status = (ApplicationStatus.APPROVED
                                  if proposal.status is ProposalStatus.APPROVED
                                  else ApplicationStatus.REJECTED)
            application.invitation_id = None if invitation is None else invitation.id
            application.decided_at = self._c.now()


def open_proposal(control: Control, db: Session, actor: Actor, network_id: str,
                  member_id: str, action: ProposalAction, *,
                  target_tenant_id: str | None = None, target_member_id: str | None = None,
                  description: str = "", node_name: str | None = None,
                  resource_class: ResourceClass | None = None,
                  client_token: str | None = None, request_sha256: str | None = None
                  ) -> Proposal:
    """Check and add a proposal in ``db``'s transaction (``create``, and a join
    application's acceptance): the network's voting policy is copied onto it."""
    now = control.now()
    network = visible_network(db, actor.tenant_id, network_id)
    proposer = own_member(db, actor.tenant_id, network_id, member_id)
    expire_due(db, now, network_id=network_id)
    _check_open(network, proposer)
    if action is ProposalAction.ADD_VALIDATOR:
        check_addition(db, actor, network, target_tenant_id, target_member_id, node_name)
    else:
        if node_name is not None or resource_class is not None:
            raise InvalidRequest("node_name and resource_class are given for ADD_VALIDATOR "
                                 "only", code="invalid_target")
        _check_target(db, actor, network, action, target_tenant_id, target_member_id)
    proposal = Proposal(
        id=new_id("prp"), network_id=network_id, tenant_id=actor.tenant_id,
        proposer_member_id=proposer.id, action=action,
        target_tenant_id=target_tenant_id, target_member_id=target_member_id,
        description=description, threshold_percentage=network.threshold_percentage,
        threshold_comparator=network.threshold_comparator,
        expires_at=now + timedelta(hours=network.proposal_duration_hours),
        node_name=node_name,
        node_resource_class=(resource_class or ResourceClass.SMALL
                             if action is ProposalAction.ADD_VALIDATOR else None),
        client_token=client_token, request_sha256=request_sha256)
    db.add(proposal)
    db.flush()
    return proposal


def _check_open(network: Network, proposer: Member) -> None:
    if network.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"network {network.id} is {network.status.value}: proposals are made "
                       "in AVAILABLE networks", code="network_not_available")
    if proposer.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"member {proposer.id} is {proposer.status.value}: only AVAILABLE "
                       "members propose", code="member_not_available")


def _check_target(db: Session, actor: Actor, network: Network, action: ProposalAction,
                  target_tenant_id: str | None, target_member_id: str | None) -> None:
    """The target fits the action, exists, and no open proposal or invitation has it."""
    open_ = select(Proposal.id).where(Proposal.network_id == network.id,
                                      Proposal.status == ProposalStatus.IN_PROGRESS,
                                      Proposal.action == action)
    if action is ProposalAction.INVITE_TENANT:
        if target_tenant_id is None or target_member_id is not None:
            raise InvalidRequest("INVITE_TENANT names target_tenant_id (and no "
                                 "target_member_id)", code="invalid_target")
        tenant = db.get(Tenant, target_tenant_id)
        if tenant is None or tenant.status is not TenantStatus.ACTIVE:
            raise InvalidRequest(f"no active tenant {target_tenant_id} to invite",
                                 code="unknown_tenant")
        if db.scalar(open_.where(Proposal.target_tenant_id == target_tenant_id)) is not None:
            raise Conflict(f"an open proposal invites tenant {target_tenant_id} already",
                           code="duplicate_proposal")
        pending = db.scalar(select(Invitation.id).where(
            Invitation.network_id == network.id,
            Invitation.invitee_tenant_id == target_tenant_id,
            Invitation.status == InvitationStatus.PENDING))
        if pending is not None:
            raise Conflict(f"tenant {target_tenant_id} holds a pending invitation "
                           f"({pending}) to this network", code="duplicate_proposal")
        return
    if target_member_id is None or target_tenant_id is not None:
        raise InvalidRequest("REMOVE_MEMBER names target_member_id (and no "
                             "target_tenant_id)", code="invalid_target")
    target = visible_member(db, actor.tenant_id, network.id, target_member_id)
    if target.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"member {target.id} is {target.status.value}",
                       code="member_not_available")
    others = db.scalar(select(Member.id).where(
        Member.network_id == network.id, Member.id != target.id,
        Member.status == ResourceStatus.AVAILABLE))
    if others is None:
        raise Conflict("the network's only member cannot be voted out; it deletes itself "
                       "(and the network with it)", code="last_member")
    if db.scalar(open_.where(Proposal.target_member_id == target.id)) is not None:
        raise Conflict(f"an open proposal removes member {target.id} already",
                       code="duplicate_proposal")


def execute_removal(control: Control, proposal_id: str) -> None:
    """Carry out an approved REMOVE_MEMBER proposal: the member's validators and
    organization leave the chain (signed for the members that voted YES), its nodes stop,
    and it is DELETED; ACTION_FAILED with the reason when the chain refuses or cannot take
    it. Safe to call again (a removal done already is a no-op)."""
    with control.transaction() as db:
        proposal = db.get(Proposal, proposal_id)
        if proposal is None or proposal.status is not ProposalStatus.APPROVED \
                or proposal.action is not ProposalAction.REMOVE_MEMBER:
            return
        member = db.get(Member, proposal.target_member_id)
        if member is None or member.status is ResourceStatus.DELETED:
            return
        approvers = list(tally(db, proposal).voters)
        network_id, member_id = proposal.network_id, member.id
        member.status = ResourceStatus.DELETING
    try:
        remove_organization(control, network_id, member_id, approvers)
    except (Conflict, Unavailable) as exc:
        with control.transaction() as db:
            proposal = db.get(Proposal, proposal_id)
            member = db.get(Member, member_id)
            assert proposal is not None and member is not None
            proposal.status = ProposalStatus.ACTION_FAILED
            proposal.failure_reason = f"{exc.code}: {exc.message}"[:1024]
            member.status = ResourceStatus.AVAILABLE
        return
    with control.transaction() as db:
        nodes = list(db.scalars(select(Node).where(Node.member_id == member_id,
                                                   Node.status.not_in(GONE))))
        for node in nodes:
            node.status = NodeStatus.DELETING
        node_ids = [n.id for n in nodes]
    for node_id in node_ids:
        control.runtime.unprovision(node_id)
    with control.transaction() as db:
        for node in db.scalars(select(Node).where(Node.id.in_(node_ids))):
            node.status = NodeStatus.DELETED
        member = db.get(Member, member_id)
        assert member is not None
        member.status = ResourceStatus.DELETED
        member.status_reason = f"removed by proposal {proposal_id}"
        for channel in db.scalars(select(Channel).where(  # its validators were stopped
                Channel.creator_member_id == member_id,
                Channel.status != ResourceStatus.DELETED)):
            channel.status = ResourceStatus.DELETED
            channel.status_reason = (f"its creating member {member_id} was removed by "
                                     f"proposal {proposal_id}")
