"""``GET /v1/audit``: the tenant's audit trail (owners and admins)."""

from __future__ import annotations

from fastapi import Depends, Query
from pydantic import AwareDatetime

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, require
from consortia.control.http.routes.common import DEFAULT_LIMIT, Limit, PageToken, router
from consortia.control.services import AuditFilter, Control
from consortia.control.store.enums import AuditResult, UserRole

api = router("audit")


@api.get("/audit", response_model=schemas.AuditList, summary="Query the audit trail",
         operation_id="list_audit_records")
def list_audit_records(
    p: Principal = Depends(require(UserRole.ADMIN)), ctl: Control = Depends(control),
    action: str | None = Query(None, max_length=64, description="e.g. user.create"),
    resource_type: str | None = Query(None, max_length=32),
    resource_id: str | None = Query(None, max_length=64),
    user_id: str | None = Query(None, max_length=64),
    access_key_id: str | None = Query(None, max_length=64),
    request_id: str | None = Query(None, max_length=64),
    result: AuditResult | None = Query(None),
    since: AwareDatetime | None = Query(None, description="From this time (inclusive)."),
    until: AwareDatetime | None = Query(None, description="Before this time (exclusive)."),
    limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None,
) -> schemas.AuditList:
    """Every change made in the tenant and every refused attempt by an authenticated
    caller, newest first."""
    page = ctl.audit.query(p.actor, AuditFilter(
        action=action, resource_type=resource_type, resource_id=resource_id,
        user_id=user_id, access_key_id=access_key_id, request_id=request_id,
        result=result, since=since, until=until), limit=limit, page_token=page_token)
    return schemas.AuditList(
        items=[schemas.AuditRecord.model_validate(r) for r in page.items],
        next_page_token=page.next_page_token)
