"""The audit trail: who did what to which resource, from where, and how it ended.

Successful changes are recorded by the service that makes them, in the same database
transaction (``record``): a change is never committed without its record. Refused calls
are recorded by the HTTP layer after the refusal (``record_failure``, its own
transaction) whenever the tenant is known — the caller authenticated, or a login named an
existing tenant. Records are append-only and listed newest first (``query``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortia.control.services.context import Actor, Page, paginate
from consortia.control.store.enums import AuditResult, UserRole
from consortia.control.store.models import AuditRecord

if TYPE_CHECKING:
    from consortia.control.services.control import Control

_ID_MAX = 64
"""``resource_id``'s width: ids, and Ethereum addresses (``account.*``)."""
_TEXT_MAX = 64


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    user_id: str | None = None
    access_key_id: str | None = None
    request_id: str | None = None
    result: AuditResult | None = None
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""


def _fit(value: str | None, size: int) -> str | None:
    """Values from the request (a path id, a code) are cut to their column's width."""
    return None if value is None else value[:size]


def resource_type_of(action: str) -> str:
    """``access_key.create`` → ``access_key``."""
    return action.split(".", 1)[0]


class AuditService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def record(self, db: Session, actor: Actor, action: str, resource_id: str | None, *,
               result: AuditResult = AuditResult.SUCCESS, error_code: str | None = None,
               http_status: int | None = None, platform: bool = False) -> AuditRecord:
        """Add a record to ``db``'s transaction. ``platform`` actions (creating a tenant)
        are recorded without a tenant: they belong to the platform's own trail."""
        row = AuditRecord(
            tenant_id=None if platform else actor.tenant_id,
            user_id=actor.user_id, access_key_id=actor.access_key_id, action=action,
            resource_type=resource_type_of(action), resource_id=_fit(resource_id, _ID_MAX),
            request_id=actor.request_id[:_TEXT_MAX], result=result,
            error_code=_fit(error_code, _TEXT_MAX),
            http_status=actor.http_status if http_status is None else http_status,
            source_ip=_fit(actor.source_ip, 45), created_at=self._c.now())
        db.add(row)
        return row

    def record_failure(self, actor: Actor, action: str, resource_id: str | None, *,
                       error_code: str, http_status: int) -> None:
        """Record a refused call, in a transaction of its own."""
        with self._c.transaction() as db:
            self.record(db, actor, action, resource_id, result=AuditResult.FAILURE,
                        error_code=error_code, http_status=http_status)

    def query(self, actor: Actor, where: AuditFilter, *, limit: int,
              page_token: str | None) -> Page[AuditRecord]:
        """The tenant's records matching ``where``, newest first (admins and owners)."""
        actor.require(UserRole.ADMIN, "reading the audit trail")
        stmt = select(AuditRecord).where(AuditRecord.tenant_id == actor.tenant_id)
        for column, value in (
            (AuditRecord.action, where.action),
            (AuditRecord.resource_type, where.resource_type),
            (AuditRecord.resource_id, where.resource_id),
            (AuditRecord.user_id, where.user_id),
            (AuditRecord.access_key_id, where.access_key_id),
            (AuditRecord.request_id, where.request_id),
            (AuditRecord.result, where.result),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if where.since is not None:
            stmt = stmt.where(AuditRecord.created_at >= where.since)
        if where.until is not None:
            stmt = stmt.where(AuditRecord.created_at < where.until)
        with self._c.transaction() as db:
            return paginate(db, stmt, AuditRecord, limit=limit, page_token=page_token,
                            newest_first=True)
