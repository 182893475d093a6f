"""Request and response bodies of proposals, votes and invitations (``/v1/…``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from consortia.control.http.schemas import ClientToken, Description, Name, VotingPolicy
from consortia.control.store.enums import (
    Consensus,
    InvitationStatus,
    Profile,
    ProposalAction,
    ProposalStatus,
    ResourceClass,
    ThresholdComparator,
    VoteValue,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProposalCreate(_In):
    member_id: str = Field(min_length=1, max_length=64,
                           description="The proposing member: one of the caller's tenant.")
    action: ProposalAction
    target_tenant_id: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="INVITE_TENANT: the tenant to invite (ten-…); REMOVE_MEMBER takes "
                    "target_member_id instead (422 invalid_target otherwise).")
    target_member_id: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="REMOVE_MEMBER: the member to remove (mem-…); ADD_VALIDATOR: the "
                    "member (of the caller's tenant) the new validator belongs to.")
    node_name: Name | None = Field(
        default=None, description="ADD_VALIDATOR: the new validator's name.")
    resource_class: ResourceClass | None = Field(
        default=None, description="ADD_VALIDATOR: the new validator's size (small).")
    description: Description = ""
    client_token: ClientToken | None = None


class Tally(BaseModel):
    yes: int = Field(description="YES votes of members entitled to vote now.")
    no: int
    eligible: int = Field(description="The network's AVAILABLE members.")
    outstanding: int = Field(description="Entitled members that have not voted.")


class Proposal(BaseModel):
    id: str = Field(examples=["prp-7k3q9d0xw2m4c8rt"])
    network_id: str
    proposer_member_id: str
    action: ProposalAction
    target_tenant_id: str | None
    target_member_id: str | None
    description: str
    threshold_percentage: int = Field(description="The network's policy when proposed.")
    threshold_comparator: ThresholdComparator
    status: ProposalStatus
    tally: Tally
    expires_at: datetime
    decided_at: datetime | None
    failure_reason: str | None = Field(description="Why an approved action failed.")
    node_name: str | None = Field(default=None, description="ADD_VALIDATOR: the node's name.")
    resource_class: ResourceClass | None = None
    node_id: str | None = Field(default=None,
                                description="ADD_VALIDATOR: the node its approval made.")
    created_at: datetime
    updated_at: datetime


class ProposalList(BaseModel):
    items: list[Proposal]
    next_page_token: str | None


class VoteCreate(_In):
    member_id: str = Field(min_length=1, max_length=64,
                           description="The voting member: one of the caller's tenant.")
    vote: VoteValue


class Vote(BaseModel):
    id: str
    proposal_id: str
    member_id: str
    vote: VoteValue
    created_at: datetime


class VoteCast(BaseModel):
    vote: Vote
    proposal: Proposal = Field(description="The proposal after the vote: decided, and its "
                                           "action carried out, when the vote made it certain.")


class VoteList(BaseModel):
    items: list[Vote]
    next_page_token: str | None


class InvitedNetwork(BaseModel):
    id: str
    name: str
    description: str
    profile: Profile
    consensus: Consensus
    voting_policy: VotingPolicy


class Invitation(BaseModel):
    id: str = Field(examples=["inv-7k3q9d0xw2m4c8rt"])
    network: InvitedNetwork
    inviting_tenant_id: str
    invitee_tenant_id: str
    proposal_id: str | None
    message: str
    status: InvitationStatus
    expires_at: datetime
    responded_at: datetime | None
    member_id: str | None = Field(description="The member created by accepting it.")
    created_at: datetime


class InvitationList(BaseModel):
    items: list[Invitation]
    next_page_token: str | None
