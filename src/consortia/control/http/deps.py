"""Dependencies of the routes: who is calling (``principal``), with which role (``require``).

``principal`` authenticates a request in one of two ways:

- **signed** (an ``Authorization`` header): ``control.auth.parse_request`` checks what
  needs no secret, then ``Control.auth.signed`` looks the key up, opens its sealed secret,
  verifies the signature and body, claims the nonce in the shared SQL store and notes
  the key's use (docs/spec/api-signing.md);
- **console session** (the ``consortia_session`` cookie, no ``Authorization``): the
  session must be live, and a change (any method but GET, HEAD, OPTIONS) must carry the
  session's CSRF token in ``X-CSRF-Token``.

Then it takes a token from the caller's rate-limit bucket (per access key, or per console
user) and leaves the ``Actor`` in ``request.state.actor`` for the audit of refusals.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, APIKeyHeader

from consortia.control.auth import parse_request
from consortia.control.http.errors import request_id_of
from consortia.control.http.ratelimit import TokenBuckets
from consortia.control.services import Actor, Caller, Control
from consortia.control.services.sessions import csrf_token
from consortia.control.store.enums import UserRole
from consortia.types.errors import Forbidden, RateLimited, SignatureError

SESSION_COOKIE = "consortia_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

signature_scheme = APIKeyHeader(
    name="Authorization", scheme_name="signature", auto_error=False,
    description="CONSORTIA-HMAC-SHA256 signed request (docs/spec/api-signing.md): "
                "Authorization, X-Consortia-Date, X-Consortia-Nonce and "
                "X-Consortia-Content-SHA256 made with an access key's secret.")
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE, scheme_name="session", auto_error=False,
    description="Console session from POST /v1/session; changes also need X-CSRF-Token.")


@dataclass
class AppState:
    """What the app holds for its routes (``app.state.consortia``)."""

    control: Control
    limiter: TokenBuckets
    login_limiter: TokenBuckets


@dataclass(frozen=True, slots=True)
class Principal:
    caller: Caller
    actor: Actor
    auth: Literal["signature", "session"]
    session_token: str | None = field(default=None, repr=False)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.consortia
    return state


def control(request: Request) -> Control:
    return app_state(request).control


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


async def principal(request: Request,
                    _signature: str | None = Security(signature_scheme),
                    _session: str | None = Security(session_scheme)) -> Principal:
    st = app_state(request)
    ctl = st.control
    session_token: str | None = None
    if "authorization" in request.headers:
        body = await request.body()
        now = ctl.clock()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        parsed = parse_request(request.method, request.scope["path"],
                               request.scope["query_string"], headers, body, now=now,
                               window=ctl.settings.signature_window_seconds)
        caller = await run_in_threadpool(ctl.auth.signed, parsed, now)
        auth: Literal["signature", "session"] = "signature"
        bucket = f"key:{caller.access_key_id}"
    else:
        session_token = request.cookies.get(SESSION_COOKIE)
        if not session_token:
            raise SignatureError("sign the request with an access key (Authorization, "
                                 "docs/spec/api-signing.md) or log in (POST /v1/session)",
                                 code="missing_header")
        caller = (await run_in_threadpool(ctl.sessions.resolve, session_token)).caller
        auth = "session"
        bucket = f"user:{caller.user_id}"
    actor = Actor.of(caller, request_id_of(request), source_ip(request),
                     getattr(request.state, "success_status", None))
    request.state.actor = actor
    if auth == "session" and request.method not in SAFE_METHODS:
        supplied = request.headers.get(CSRF_HEADER, "")
        expected = csrf_token(session_token or "")
        if not hmac.compare_digest(supplied.encode("utf-8", "replace"), expected.encode()):
            raise Forbidden(f"a change made with a console session needs its {CSRF_HEADER} "
                            "header (csrf_token of POST /v1/session or GET /v1/session)",
                            code="csrf_failed")
    wait = st.limiter.take(bucket)
    if wait is not None:
        raise RateLimited(f"too many requests; retry after {wait} s", retry_after=wait)
    return Principal(caller, actor, auth, session_token)


def require(minimum: UserRole) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, if its role is ``minimum`` or stronger (else 403)."""

    async def dependency(p: Principal = Depends(principal)) -> Principal:
        p.actor.require(minimum)
        return p

    dependency.__name__ = f"require_{minimum.value}"
    return dependency
