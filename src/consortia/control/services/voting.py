"""The voting rule of a network, and the deadlines of proposals and invitations.

A proposal is decided by the network's voting policy as it stood when the proposal was
made (copied onto the proposal): the share of YES votes among the members entitled to
vote, compared with the threshold percentage by the comparator (Amazon Managed
Blockchain's ``ApprovalThresholdPolicy``). The entitled members are the network's
AVAILABLE members when the votes are counted — a member still being created or being
removed has no vote — which are exactly the organizations of the chain's configuration,
so the rule the chain checks on the configuration transaction (``MembershipPolicy``)
gives the same answer.

A proposal is decided as soon as its outcome is certain: APPROVED once the YES votes
meet the threshold, REJECTED once they no longer can (even if every member yet to vote
said YES). One still open when its duration has passed is EXPIRED. Deadlines are
checked lazily: every read or change of a network's proposals or a tenant's invitations
first settles what has expired (``expire_due``), in the same transaction, so no clock
thread is needed and every answer is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consortia.control.store.enums import (
    InvitationStatus,
    ProposalStatus,
    ResourceStatus,
    ThresholdComparator,
    VoteValue,
)
from consortia.control.store.models import Invitation, Member, Proposal, Vote


@dataclass(frozen=True, slots=True)
class Tally:
    """The votes on a proposal that count: those of the members entitled to vote now."""

    yes: int
    no: int
    eligible: int
    """AVAILABLE members of the network."""
    voters: tuple[str, ...] = ()
    """Ids of the entitled members that voted YES, oldest vote first."""

    @property
    def outstanding(self) -> int:
        return self.eligible - self.yes - self.no


def meets(yes: int, eligible: int, percentage: int, comparator: ThresholdComparator) -> bool:
    """Whether ``yes`` of ``eligible`` votes meet ``percentage`` by ``comparator`` (exact
    integer arithmetic: 2 of 3 is more than 66 % and less than 67 %)."""
    if eligible <= 0:
        return False
    if comparator is ThresholdComparator.GREATER_THAN:
        return yes * 100 > percentage * eligible
    return yes * 100 >= percentage * eligible


def tally(db: Session, proposal: Proposal) -> Tally:
    eligible = {m.id for m in db.scalars(select(Member).where(
        Member.network_id == proposal.network_id,
        Member.status == ResourceStatus.AVAILABLE))}
    votes = list(db.scalars(select(Vote).where(Vote.proposal_id == proposal.id)
                            .order_by(Vote.created_at, Vote.id)))
    counted = [v for v in votes if v.member_id in eligible]
    yes = tuple(v.member_id for v in counted if v.value is VoteValue.YES)
    return Tally(yes=len(yes), no=len(counted) - len(yes), eligible=len(eligible), voters=yes)


def outcome(proposal: Proposal, counted: Tally) -> ProposalStatus:
    """IN_PROGRESS, or the decision the votes make certain."""
    pct, cmp = proposal.threshold_percentage, proposal.threshold_comparator
    if meets(counted.yes, counted.eligible, pct, cmp):
        return ProposalStatus.APPROVED
    if not meets(counted.yes + counted.outstanding, counted.eligible, pct, cmp):
        return ProposalStatus.REJECTED
    return ProposalStatus.IN_PROGRESS


def expire_due(db: Session, now: datetime, *, network_id: str | None = None,
               invitee_tenant_id: str | None = None) -> None:
    """Mark EXPIRED the open proposals (of ``network_id``) and the pending invitations (of
    ``network_id`` or to ``invitee_tenant_id``) whose deadline has passed."""
    if network_id is not None:
        db.execute(update(Proposal).where(
            Proposal.network_id == network_id, Proposal.status == ProposalStatus.IN_PROGRESS,
            Proposal.expires_at <= now).values(status=ProposalStatus.EXPIRED, decided_at=now,
                                               updated_at=now))
    clauses = []
    if network_id is not None:
        clauses.append(Invitation.network_id == network_id)
    if invitee_tenant_id is not None:
        clauses.append(Invitation.invitee_tenant_id == invitee_tenant_id)
    for clause in clauses:
        db.execute(update(Invitation).where(
            clause, Invitation.status == InvitationStatus.PENDING,
            Invitation.expires_at <= now).values(status=InvitationStatus.EXPIRED,
                                                 updated_at=now))
