"""Console sessions: password login and logout (cookie + CSRF token)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from consortia.control.http import schemas
from consortia.control.http.deps import (
    SESSION_COOKIE,
    Principal,
    app_state,
    control,
    principal,
    source_ip,
)
from consortia.control.http.errors import request_id_of
from consortia.control.http.routes.common import router, user_out
from consortia.control.http.routing import audited
from consortia.control.services import Actor, Control
from consortia.control.services.sessions import csrf_token
from consortia.types.errors import NotFound, RateLimited

api = router("session")


def _session_info(ctl: Control, p: Principal, session_id: str, token: str,
                  expires_at: datetime) -> schemas.SessionInfo:
    tenant = ctl.tenants.get(p.actor)
    user = ctl.users.get(p.actor, p.caller.user_id)
    return schemas.SessionInfo(
        session_id=session_id, tenant=schemas.Tenant.model_validate(tenant),
        user=user_out(user), expires_at=expires_at, csrf_token=csrf_token(token))


@api.post("/session", response_model=schemas.SessionInfo, status_code=201,
          summary="Log in to the console (password → session cookie)",
          operation_id="create_session", openapi_extra=audited("session.create"))
async def create_session(body: schemas.LoginRequest, request: Request, response: Response
                         ) -> schemas.SessionInfo:
    """Sets the HttpOnly, SameSite=Strict session cookie (Secure over https) and returns
    the CSRF token that every change made with the cookie must send as X-CSRF-Token.
    Attempts are rate limited per source address; failures answer 401 bad_credentials
    whatever was wrong."""
    st = app_state(request)
    ctl = st.control
    ip = source_ip(request)
    wait = st.login_limiter.take(f"login:{ip}")
    if wait is not None:
        raise RateLimited(f"too many login attempts; retry after {wait} s", retry_after=wait)
    new = await run_in_threadpool(
        lambda: ctl.sessions.login(body.tenant, body.username, body.password,
                                   request_id=request_id_of(request), source_ip=ip,
                                   http_status=201))
    settings = ctl.settings
    secure = (settings.secure_cookies if settings.secure_cookies is not None
              else request.url.scheme == "https")
    response.set_cookie(SESSION_COOKIE, new.token, max_age=settings.session_ttl_seconds,
                        path="/", secure=secure, httponly=True, samesite="strict")
    actor = Actor.of(new.caller, request_id_of(request), ip)
    p = Principal(new.caller, actor, "session", new.token)
    return await run_in_threadpool(_session_info, ctl, p, new.session.id, new.token,
                                   new.session.expires_at)


@api.get("/session", response_model=schemas.SessionInfo, summary="The current console session",
         operation_id="get_session")
def get_session(p: Principal = Depends(principal), ctl: Control = Depends(control)
                ) -> schemas.SessionInfo:
    """The session of the cookie, with its CSRF token (a page reloaded can fetch it again).
    A signed request has no session: 404."""
    if p.auth != "session" or p.session_token is None or p.caller.session_id is None:
        raise NotFound("this request carries no console session")
    resolved = ctl.sessions.resolve(p.session_token)
    return _session_info(ctl, p, p.caller.session_id, p.session_token,
                         resolved.session.expires_at)


@api.delete("/session", status_code=204, response_class=Response,
            summary="Log out (end the console session)", operation_id="delete_session",
            openapi_extra=audited("session.delete"))
def delete_session(request: Request, p: Principal = Depends(principal),
                   ctl: Control = Depends(control)) -> Response:
    if p.auth != "session" or p.caller.session_id is None:
        raise NotFound("this request carries no console session")
    ctl.sessions.logout(p.actor, p.caller.session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
