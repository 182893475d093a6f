"""Proposals, votes and invitations: how a network's members decide who joins and leaves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from consortia.control.http import schemas
from consortia.control.http import schemas_governance as gov
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE, UNAVAILABLE_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    Limit,
    NetworkId,
    PageToken,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.voting import Tally
from consortia.control.store import models
from consortia.control.store.enums import InvitationStatus, ProposalStatus, UserRole

proposals = router("proposals")
invitations = router("invitations")
admin = require(UserRole.ADMIN)
CHANGES = {**CONFLICT_RESPONSE, **UNAVAILABLE_RESPONSE}
ProposalId = Annotated[str, Path(min_length=1, max_length=64,
                                 description="A proposal id (prp-…).")]
InvitationId = Annotated[str, Path(min_length=1, max_length=64,
                                   description="An invitation id (inv-…).")]


def proposal_out(row: models.Proposal, counted: Tally) -> gov.Proposal:
    return gov.Proposal(
        id=row.id, network_id=row.network_id, proposer_member_id=row.proposer_member_id,
        action=row.action, target_tenant_id=row.target_tenant_id,
        target_member_id=row.target_member_id, description=row.description,
        threshold_percentage=row.threshold_percentage,
        threshold_comparator=row.threshold_comparator, status=row.status,
        tally=gov.Tally(yes=counted.yes, no=counted.no, eligible=counted.eligible,
                        outstanding=counted.outstanding),
        expires_at=row.expires_at, decided_at=row.decided_at,
        failure_reason=row.failure_reason, node_name=row.node_name,
        resource_class=row.node_resource_class, node_id=row.node_id,
        created_at=row.created_at, updated_at=row.updated_at)


def vote_out(row: models.Vote) -> gov.Vote:
    return gov.Vote(id=row.id, proposal_id=row.proposal_id, member_id=row.member_id,
                    vote=row.value, created_at=row.created_at)


def invitation_out(row: models.Invitation, network: models.Network) -> gov.Invitation:
    return gov.Invitation(
        id=row.id, network=gov.InvitedNetwork(
            id=network.id, name=network.name, description=network.description,
            profile=network.profile, consensus=network.consensus,
            voting_policy=schemas.VotingPolicy.model_validate(network)),
        inviting_tenant_id=row.tenant_id, invitee_tenant_id=row.invitee_tenant_id,
        proposal_id=row.proposal_id, message=row.message, status=row.status,
        expires_at=row.expires_at, responded_at=row.responded_at, member_id=row.member_id,
        created_at=row.created_at)


# --- proposals and votes -------------------------------------------------------------------


@proposals.post("/networks/{network_id}/proposals", response_model=gov.Proposal,
                status_code=201,
                summary="Propose to invite a tenant, remove a member or add a validator",
                operation_id="create_proposal", responses=CONFLICT_RESPONSE,
                openapi_extra=audited("proposal.create"))
def create_proposal(network_id: NetworkId, body: gov.ProposalCreate,
                    p: Principal = Depends(admin), ctl: Control = Depends(control)
                    ) -> gov.Proposal:
    """Made in the name of one of the caller's members; decided by the members' votes
    under the network's voting policy within its proposal duration. ADD_VALIDATOR adds a
    validator to one of the caller's members, signed for the members that vote YES."""
    created = ctl.proposals.create(
        p.actor, network_id, member_id=body.member_id, action=body.action,
        target_tenant_id=body.target_tenant_id, target_member_id=body.target_member_id,
        description=body.description, node_name=body.node_name,
        resource_class=body.resource_class, client_token=body.client_token)
    row, counted = ctl.proposals.get(p.actor, network_id, created.item.id)
    return proposal_out(row, counted)


@proposals.get("/networks/{network_id}/proposals", response_model=gov.ProposalList,
               summary="List a network's proposals", operation_id="list_proposals")
def list_proposals(network_id: NetworkId, p: Principal = Depends(principal),
                   ctl: Control = Depends(control),
                   status: ProposalStatus | None = Query(None), limit: Limit = DEFAULT_LIMIT,
                   page_token: PageToken = None) -> gov.ProposalList:
    page = ctl.proposals.list(p.actor, network_id, status=status, limit=limit,
                              page_token=page_token)
    return gov.ProposalList(items=[proposal_out(r, c) for r, c in page.items],
                            next_page_token=page.next_page_token)


@proposals.get("/networks/{network_id}/proposals/{proposal_id}", response_model=gov.Proposal,
               summary="Get a proposal and its tally", operation_id="get_proposal")
def get_proposal(network_id: NetworkId, proposal_id: ProposalId,
                 p: Principal = Depends(principal), ctl: Control = Depends(control)
                 ) -> gov.Proposal:
    return proposal_out(*ctl.proposals.get(p.actor, network_id, proposal_id))


@proposals.post("/networks/{network_id}/proposals/{proposal_id}/votes",
                response_model=gov.VoteCast, status_code=201, summary="Vote on a proposal",
                operation_id="vote_on_proposal", responses=CHANGES,
                openapi_extra=audited("proposal.vote"))
def vote_on_proposal(network_id: NetworkId, proposal_id: ProposalId, body: gov.VoteCreate,
                     p: Principal = Depends(admin), ctl: Control = Depends(control)
                     ) -> gov.VoteCast:
    """One vote per AVAILABLE member. The vote that makes the outcome certain decides the
    proposal and carries out an approved one's action (an invitation; a member's removal
    from the chain) before answering."""
    vote, row, counted = ctl.proposals.vote(p.actor, network_id, proposal_id,
                                            member_id=body.member_id, value=body.vote)
    return gov.VoteCast(vote=vote_out(vote), proposal=proposal_out(row, counted))


@proposals.get("/networks/{network_id}/proposals/{proposal_id}/votes",
               response_model=gov.VoteList, summary="List a proposal's votes",
               operation_id="list_votes")
def list_votes(network_id: NetworkId, proposal_id: ProposalId,
               p: Principal = Depends(principal), ctl: Control = Depends(control),
               limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None) -> gov.VoteList:
    page = ctl.proposals.votes(p.actor, network_id, proposal_id, limit=limit,
                               page_token=page_token)
    return gov.VoteList(items=[vote_out(v) for v in page.items],
                        next_page_token=page.next_page_token)


# --- invitations ---------------------------------------------------------------------------


@invitations.get("/invitations", response_model=gov.InvitationList,
                 summary="List the invitations to your tenant", operation_id="list_invitations")
def list_invitations(p: Principal = Depends(principal), ctl: Control = Depends(control),
                     status: InvitationStatus | None = Query(None),
                     limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                     ) -> gov.InvitationList:
    """Accept one by creating your member with its invitation_id (POST
    /v1/networks/{network_id}/members)."""
    page = ctl.invitations.list(p.actor, status=status, limit=limit, page_token=page_token)
    return gov.InvitationList(items=[invitation_out(i, n) for i, n in page.items],
                              next_page_token=page.next_page_token)


@invitations.get("/invitations/{invitation_id}", response_model=gov.Invitation,
                 summary="Get an invitation", operation_id="get_invitation")
def get_invitation(invitation_id: InvitationId, p: Principal = Depends(principal),
                   ctl: Control = Depends(control)) -> gov.Invitation:
    """To the invited tenant, and to the tenants of the inviting network."""
    return invitation_out(*ctl.invitations.get(p.actor, invitation_id))


@invitations.post("/invitations/{invitation_id}/reject", response_model=gov.Invitation,
                  summary="Reject an invitation", operation_id="reject_invitation",
                  responses=CONFLICT_RESPONSE, openapi_extra=audited("invitation.reject"))
def reject_invitation(invitation_id: InvitationId, p: Principal = Depends(admin),
                      ctl: Control = Depends(control)) -> gov.Invitation:
    return invitation_out(*ctl.invitations.reject(p.actor, invitation_id))
