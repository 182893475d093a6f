"""Join applications: a tenant asks to join a network it cannot see, with a join code.

Rules (docs/spec/control-api.md, "Join codes and applications"; ADR 0018):

- an admin of any tenant **submits** an application with a join code (``join_codes``):
  the name its member would take and a message. A code that is not usable answers 404
  ``join_code_not_found``; a tenant with a live member in the network, a PENDING
  application to it or a PENDING invitation to it gets 409 (``already_member``,
  ``duplicate_application``, ``invitation_pending``). The application is PENDING for
  ``APPLICATION_DAYS``;
- the applicant lists and reads its own applications (with the network's name and
  profile); admins of the tenants that see the network list and read the network's;
  anyone else gets 404;
- the network's admins **reject** it (REJECTED) or **accept** it, which opens an
  ``INVITE_TENANT`` proposal for the applicant in the name of one of their members,
  linked to the application: only while it is PENDING and no proposal was opened (409
  ``application_not_pending``). The proposal's outcome decides the application
  (``proposals``): APPROVED with the invitation the approval made, or REJECTED; an
  expired proposal expires it;
- the applicant creates its member from that invitation exactly as an invitee does
  (``MemberService.join``), after which the application carries the ``member_id``;
- the applicant **withdraws** a PENDING application (WITHDRAWN); a proposal opened for it
  stays open (an approval still invites the tenant, which may reject the invitation).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
    require_role,
)
from consortia.control.services.join_codes import redeem
from consortia.control.services.proposals import open_proposal
from consortia.control.services.scope import LIVE, visible_network, visible_networks
from consortia.control.services.voting import expire_due
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    ApplicationStatus,
    InvitationStatus,
    ProposalAction,
    ProposalStatus,
    ResourceStatus,
    UserRole,
)
from consortia.control.store.models import (
    Invitation,
    JoinApplication,
    Member,
    Network,
    Proposal,
)
from consortia.types.errors import Conflict, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control

APPLICATION_DAYS = 7
"""How long an application waits for its network's admins (as an invitation waits)."""


def expire_applications(db: Session, now: datetime, *, network_id: str | None = None,
                        tenant_id: str | None = None) -> None:
    """EXPIRED: PENDING applications (of ``network_id`` or by ``tenant_id``) whose deadline
    passed with no proposal opened, or whose proposal expired."""
    scope = (JoinApplication.network_id == network_id if network_id is not None
             else JoinApplication.tenant_id == tenant_id)
    proposals = select(JoinApplication.proposal_id).where(
        scope, JoinApplication.status == ApplicationStatus.PENDING,
        JoinApplication.proposal_id.is_not(None))
    for net in db.scalars(select(Proposal.network_id).where(
            Proposal.id.in_(proposals)).distinct()):
        expire_due(db, now, network_id=net)
    expired = select(Proposal.id).where(Proposal.status == ProposalStatus.EXPIRED)
    db.execute(update(JoinApplication).where(
        scope, JoinApplication.status == ApplicationStatus.PENDING,
        or_(JoinApplication.proposal_id.in_(expired),
            (JoinApplication.proposal_id.is_(None)) & (JoinApplication.expires_at <= now))
    ).values(status=ApplicationStatus.EXPIRED, decided_at=now, updated_at=now))


class ApplicationService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- the applicant ---------------------------------------------------------------------

    def submit(self, actor: Actor, *, join_code: str, member_name: str, message: str = "",
               client_token: str | None = None) -> Created[tuple[JoinApplication, Network]]:
        actor.require(UserRole.ADMIN, "applying to join networks")
        fp = fingerprint(self._c.fingerprint_key, "join_application.create", actor, {
            "join_code": join_code, "member_name": member_name, "message": message})
        now = self._c.now()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, JoinApplication, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            code = redeem(db, self._c.join_codes.key, join_code, now)
            network = db.get(Network, code.network_id)
            assert network is not None
            self._check_applicant(db, actor, network, now)
            row = JoinApplication(
                id=new_id("app"), network_id=network.id, tenant_id=actor.tenant_id,
                member_name=member_name, message=message, status=ApplicationStatus.PENDING,
                expires_at=now + timedelta(days=APPLICATION_DAYS), join_code_id=code.id,
                client_token=client_token, request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(row)
            except IntegrityError:
                existing = (None if client_token is None else
                            by_client_token(db, JoinApplication, actor.tenant_id,
                                            client_token))
                if existing is None:
                    raise
                return self._replay(db, actor, existing, fp, client_token or "")
            self._c.audit.record(db, actor, "join_application.create", row.id)
            return Created((row, network))

    def list_own(self, actor: Actor, *, status: ApplicationStatus | None = None, limit: int,
                 page_token: str | None) -> Page[tuple[JoinApplication, Network]]:
        """The caller tenant's applications, oldest first, with their networks."""
        with self._c.transaction() as db:
            expire_applications(db, self._c.now(), tenant_id=actor.tenant_id)
            stmt = select(JoinApplication).where(JoinApplication.tenant_id == actor.tenant_id)
            if status is not None:
                stmt = stmt.where(JoinApplication.status == status)
            page = paginate(db, stmt, JoinApplication, limit=limit, page_token=page_token)
            return Page([(a, _network(db, a)) for a in page.items], page.next_page_token)

    def get(self, actor: Actor, application_id: str) -> tuple[JoinApplication, Network]:
        """To the applicant, and to admins of the tenants that see its network."""
        with self._c.transaction() as db:
            row = db.get(JoinApplication, application_id)
            if row is None or (row.tenant_id != actor.tenant_id
                               and not self._reviewer(db, actor, row.network_id)):
                raise NotFound(f"no join application {application_id}")
            expire_applications(db, self._c.now(), network_id=row.network_id)
            db.refresh(row)
            return row, _network(db, row)

    def withdraw(self, actor: Actor, application_id: str) -> tuple[JoinApplication, Network]:
        actor.require(UserRole.ADMIN, "withdrawing applications")
        with self._c.transaction() as db:
            expire_applications(db, self._c.now(), tenant_id=actor.tenant_id)
            row = db.scalar(select(JoinApplication).where(
                JoinApplication.id == application_id,
                JoinApplication.tenant_id == actor.tenant_id))
            if row is None:
                raise NotFound(f"no join application {application_id} of this tenant")
            _require_pending(row)
            row.status = ApplicationStatus.WITHDRAWN
            row.decided_at = self._c.now()
            self._c.audit.record(db, actor, "join_application.withdraw", row.id)
            return row, _network(db, row)

    # --- the network's admins --------------------------------------------------------------

    def list_for_network(self, actor: Actor, network_id: str, *,
                         status: ApplicationStatus | None = None, limit: int,
                         page_token: str | None) -> Page[tuple[JoinApplication, Network]]:
        actor.require(UserRole.ADMIN, "reading join applications")
        with self._c.transaction() as db:
            network = visible_network(db, actor.tenant_id, network_id)
            expire_applications(db, self._c.now(), network_id=network_id)
            stmt = select(JoinApplication).where(JoinApplication.network_id == network_id)
            if status is not None:
                stmt = stmt.where(JoinApplication.status == status)
            page = paginate(db, stmt, JoinApplication, limit=limit, page_token=page_token)
            return Page([(a, network) for a in page.items], page.next_page_token)

    def accept(self, actor: Actor, network_id: str, application_id: str, *, member_id: str,
               description: str | None = None) -> tuple[JoinApplication, Network]:
        """Open the INVITE_TENANT proposal that decides the application, in the name of
        ``member_id`` (one of the caller's members); its description defaults to the
        application's message."""
        actor.require(UserRole.ADMIN, "accepting join applications")
        with self._c.transaction() as db:
            row, network = self._reviewed(db, actor, network_id, application_id)
            proposal = open_proposal(
                self._c, db, actor, network_id, member_id, ProposalAction.INVITE_TENANT,
                target_tenant_id=row.tenant_id,
                description=row.message if description is None else description)
            row.proposal_id = proposal.id
            self._c.audit.record(db, actor, "join_application.accept", row.id)
            return row, network

    def reject(self, actor: Actor, network_id: str,
               application_id: str) -> tuple[JoinApplication, Network]:
        actor.require(UserRole.ADMIN, "rejecting join applications")
        with self._c.transaction() as db:
            row, network = self._reviewed(db, actor, network_id, application_id)
            row.status = ApplicationStatus.REJECTED
            row.decided_at = self._c.now()
            self._c.audit.record(db, actor, "join_application.reject", row.id)
            return row, network

    # --- helpers ---------------------------------------------------------------------------

    def _reviewed(self, db: Session, actor: Actor, network_id: str,
                  application_id: str) -> tuple[JoinApplication, Network]:
        """A PENDING application of a network the caller sees, no proposal opened yet."""
        network = visible_network(db, actor.tenant_id, network_id)
        expire_applications(db, self._c.now(), network_id=network_id)
        row = db.scalar(select(JoinApplication).where(
            JoinApplication.id == application_id, JoinApplication.network_id == network_id))
        if row is None:
            raise NotFound(f"no join application {application_id} in network {network_id}")
        _require_pending(row)
        if row.proposal_id is not None:
            raise Conflict(f"join application {row.id} was accepted already: proposal "
                           f"{row.proposal_id} decides it", code="application_not_pending")
        return row, network

    @staticmethod
    def _reviewer(db: Session, actor: Actor, network_id: str) -> bool:
        """Whether the caller is an admin of a tenant that sees the network."""
        seen = db.scalar(visible_networks(actor.tenant_id).where(Network.id == network_id))
        if seen is None:
            return False
        require_role(actor.role, UserRole.ADMIN, "reading join applications")
        return True

    @staticmethod
    def _check_applicant(db: Session, actor: Actor, network: Network, now: datetime) -> None:
        if network.status is not ResourceStatus.AVAILABLE:
            raise Conflict(f"network {network.id} is {network.status.value}: applications "
                           "are taken by AVAILABLE networks", code="network_not_available")
        if db.scalar(select(Member.id).where(Member.network_id == network.id,
                                             Member.tenant_id == actor.tenant_id,
                                             Member.status.in_(LIVE))) is not None:
            raise Conflict(f"this tenant is a member of network {network.id} already",
                           code="already_member")
        expire_applications(db, now, tenant_id=actor.tenant_id)
        if db.scalar(select(JoinApplication.id).where(
                JoinApplication.network_id == network.id,
                JoinApplication.tenant_id == actor.tenant_id,
                JoinApplication.status == ApplicationStatus.PENDING)) is not None:
            raise Conflict(f"this tenant has a PENDING application to network {network.id}",
                           code="duplicate_application")
        expire_due(db, now, invitee_tenant_id=actor.tenant_id)
        if db.scalar(select(Invitation.id).where(
                Invitation.network_id == network.id,
                Invitation.invitee_tenant_id == actor.tenant_id,
                Invitation.status == InvitationStatus.PENDING)) is not None:
            raise Conflict(f"this tenant holds a PENDING invitation to network {network.id}: "
                           "accept it by creating its member", code="invitation_pending")

    def _replay(self, db: Session, actor: Actor, row: JoinApplication, fp: str,
                client_token: str) -> Created[tuple[JoinApplication, Network]]:
        check_replay(row.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "join_application.create", row.id)
        return Created((row, _network(db, row)), replayed=True)


def _require_pending(row: JoinApplication) -> None:
    if row.status is not ApplicationStatus.PENDING:
        raise Conflict(f"join application {row.id} is {row.status.value}",
                       code="application_not_pending")


def _network(db: Session, row: JoinApplication) -> Network:
    network = db.get(Network, row.network_id)
    assert network is not None
    return network


def record_member(db: Session, invitation_id: str, member_id: str | None) -> None:
    """The applicant created (``member_id``) or lost (None, the join failed) its member
    from the invitation ``invitation_id``: the application it answers follows."""
    row = db.scalar(select(JoinApplication).where(
        JoinApplication.invitation_id == invitation_id))
    if row is not None:
        row.member_id = member_id
