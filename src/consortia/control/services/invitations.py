"""Invitations: what an approved INVITE_TENANT proposal gives the invited tenant.

Rules (docs/spec/control-api.md, "Invitations"):

- an invitation is made by the proposal's deciding vote (``proposals``), PENDING for
  ``INVITATION_DAYS``, then EXPIRED;
- the invited tenant lists and reads its invitations (with the network's name, profile,
  consensus and voting policy: it cannot read the network itself before it is a member);
  the inviting network's tenants read them too (``GET`` by id);
- the invitee **accepts** by creating its member from it (``POST
  /v1/networks/{id}/members`` with ``invitation_id``, ``MemberService.join``) or
  **rejects** it; either answers only while it is PENDING (409
  ``invitation_not_pending``);
- anyone else gets 404, exactly as for an id that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consortia.control.services.context import Actor, Page, paginate
from consortia.control.services.scope import visible_networks
from consortia.control.services.voting import expire_due
from consortia.control.store.enums import InvitationStatus, UserRole
from consortia.control.store.models import Invitation, Network
from consortia.types.errors import Conflict, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control


def readable_invitation(db: Session, tenant_id: str, invitation_id: str) -> Invitation:
    """An invitation to ``tenant_id``, or of a network it sees."""
    seen = select(visible_networks(tenant_id).subquery().c.id)
    row = db.scalar(select(Invitation).where(
        Invitation.id == invitation_id,
        or_(Invitation.invitee_tenant_id == tenant_id, Invitation.network_id.in_(seen))))
    if row is None:
        raise NotFound(f"no invitation {invitation_id}")
    return row


def own_invitation(db: Session, tenant_id: str, invitation_id: str) -> Invitation:
    """An invitation to ``tenant_id`` (another tenant's is "not found")."""
    row = db.scalar(select(Invitation).where(Invitation.id == invitation_id,
                                             Invitation.invitee_tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no invitation {invitation_id} to this tenant")
    return row


def require_pending(invitation: Invitation) -> None:
    if invitation.status is not InvitationStatus.PENDING:
        raise Conflict(f"invitation {invitation.id} is {invitation.status.value}",
                       code="invitation_not_pending")


class InvitationService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def list(self, actor: Actor, *, status: InvitationStatus | None = None, limit: int,
             page_token: str | None) -> Page[tuple[Invitation, Network]]:
        """The invitations to the caller's tenant, oldest first, with their networks."""
        with self._c.transaction() as db:
            expire_due(db, self._c.now(), invitee_tenant_id=actor.tenant_id)
            stmt = select(Invitation).where(Invitation.invitee_tenant_id == actor.tenant_id)
            if status is not None:
                stmt = stmt.where(Invitation.status == status)
            page = paginate(db, stmt, Invitation, limit=limit, page_token=page_token)
            return Page([(i, self._network(db, i)) for i in page.items], page.next_page_token)

    def get(self, actor: Actor, invitation_id: str) -> tuple[Invitation, Network]:
        with self._c.transaction() as db:
            expire_due(db, self._c.now(), invitee_tenant_id=actor.tenant_id)
            row = readable_invitation(db, actor.tenant_id, invitation_id)
            expire_due(db, self._c.now(), network_id=row.network_id)
            db.refresh(row)
            return row, self._network(db, row)

    def reject(self, actor: Actor, invitation_id: str) -> tuple[Invitation, Network]:
        actor.require(UserRole.ADMIN, "answering invitations")
        with self._c.transaction() as db:
            expire_due(db, self._c.now(), invitee_tenant_id=actor.tenant_id)
            row = own_invitation(db, actor.tenant_id, invitation_id)
            require_pending(row)
            row.status = InvitationStatus.REJECTED
            row.responded_at = self._c.now()
            self._c.audit.record(db, actor, "invitation.reject", row.id)
            return row, self._network(db, row)

    @staticmethod
    def _network(db: Session, invitation: Invitation) -> Network:
        network = db.get(Network, invitation.network_id)
        assert network is not None
        return network
