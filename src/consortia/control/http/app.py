"""``create_app(settings)``: the control plane's FastAPI application.

::

    settings = ControlSettings.from_files("sqlite:///var/consortia/control.sqlite3",
                                          Path("/etc/consortia/master.key"))
    app = create_app(settings)          # uvicorn.run(app, host=..., port=...)

Layers, outermost first: Starlette's error middleware (unexpected exceptions → 500 in the
JSON error format), ``RequestContextMiddleware`` (request id, body limit, headers), the
exception handlers (``errors.py``), the routers (``routes/``), whose routes are
``ControlRoute``s (audit of refused changes) and whose dependencies authenticate
(``deps.principal``) and check roles (``deps.require``). Routes call the services
(``consortia.control.services``), which hold every rule.

``GET /explorer`` serves the built-in API explorer (``static/``): it reads
``/openapi.json`` and signs calls in the browser with ``static/signing.js``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from os import PathLike
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from consortia import __version__
from consortia.control.http import errors
from consortia.control.http.deps import AppState
from consortia.control.http.middleware import RequestContextMiddleware
from consortia.control.http.ratelimit import TokenBuckets
from consortia.control.http.routes import (
    access_keys,
    accounts,
    applications,
    audit,
    ca,
    channels,
    governance,
    networks,
    sessions,
    tenant,
    users,
)
from consortia.control.http.schemas import Health
from consortia.control.services import Control
from consortia.control.settings import ControlSettings

STATIC_DIR = Path(__file__).with_name("static")

EXPLORER_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'")

PAGE_HEADERS = {"content-security-policy": EXPLORER_CSP, "referrer-policy": "no-referrer",
                "x-frame-options": "DENY"}


class _StaticFiles(StaticFiles):
    """The explorer's files, with the page's security headers on each of them."""

    def file_response(self, full_path: PathLike[str] | str, stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PAGE_HEADERS)
        return response


TAGS: list[dict[str, Any]] = [
    {"name": "tenant", "description": "Who the caller is; the platform operator's tenant "
                                     "creates tenants."},
    {"name": "users", "description": "Users of the tenant and their roles (owner, admin)."},
    {"name": "access keys", "description": "API access keys: the secret is shown once."},
    {"name": "session", "description": "Console login with a password: a session cookie "
                                       "and a CSRF token."},
    {"name": "audit", "description": "Every change and every refused attempt."},
    {"name": "networks", "description": "Consortium networks: profile, consensus, voting "
                                         "policy; their chains and genesis."},
    {"name": "members", "description": "Organizations of a network, each with its own CA."},
    {"name": "nodes", "description": "A member's validators: added to and removed from a "
                                      "running chain; status, health, endpoints."},
    {"name": "proposals", "description": "Proposals to invite a tenant or remove a member, "
                                          "and the members' votes on them."},
    {"name": "invitations", "description": "Invitations to a tenant, made by approved "
                                            "proposals: accept by creating a member."},
    {"name": "join codes", "description": "Shareable codes with which a tenant applies to "
                                          "join a network it cannot see (ADR 0018)."},
    {"name": "join applications", "description": "Applications to join, reviewed by the "
                                                 "network's admins and decided by a vote."},
    {"name": "ca identities", "description": "Identities registered with a member's CA; "
                                             "their one-time enrollment secrets."},
    {"name": "certificates", "description": "Enrollment from the holder's CSR, re-enrollment, "
                                            "expiring certificates, revocation with the CRL "
                                            "published on chain."},
    {"name": "csr requests", "description": "CSRs submitted to a member's CA, approved or "
                                            "rejected by its admins."},
    {"name": "channels", "description": "Ledgers shared by some members of a network, "
                                         "each a chain of its own."},
    {"name": "accounts", "description": "Ethereum accounts a member binds to its "
                                         "organization on a quorum chain (ADR 0029)."},
    {"name": "service", "description": "Health of the control plane."},
]

DESCRIPTION = """\
The Consortia control plane: tenants, users, access keys, sessions, the audit trail,
networks with their members and nodes, proposals and votes, invitations.

Every call is **signed** with an access key (`CONSORTIA-HMAC-SHA256`, see
docs/spec/api-signing.md) or made with a **console session** (`POST /v1/session`; changes
then need `X-CSRF-Token`). Errors are `{"error": {"code", "message", "request_id"}}`;
docs/spec/control-api.md lists the codes, the roles each operation needs, idempotency
(`client_token`), rate limits and the audit record. Try every call at `/explorer`.
"""


def create_app(settings: ControlSettings, *, control: Control | None = None) -> FastAPI:
    """The API over ``settings``' database; ``control`` (for tests) shares one already open.

    With ``settings.data_dir`` the app runs chains: at start-up its ``Control`` opens the
    local provisioner (adopting the nodes still running) and reconciles node statuses; at
    shutdown an owned ``Control`` closes, leaving the nodes running for the next start."""
    ctl = control if control is not None else Control(settings)
    owned = control is None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ctl.start)  # adopt the nodes that run, reconcile statuses
        yield
        if owned:
            await run_in_threadpool(ctl.close)

    app = FastAPI(title="Consortia control plane", version=__version__,
                  description=DESCRIPTION, openapi_tags=TAGS, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.consortia = AppState(
        control=ctl,
        limiter=TokenBuckets(settings.rate_limit, max_entries=settings.rate_limit_max_entries,
                             clock=settings.clock),
        login_limiter=TokenBuckets(settings.login_rate_limit,
                                   max_entries=settings.rate_limit_max_entries,
                                   clock=settings.clock))
    errors.install(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    for module in (tenant, users, access_keys, sessions, audit):
        app.include_router(module.api)
    for api in (networks.networks, networks.members, networks.nodes, governance.proposals,
                governance.invitations, applications.join_codes, applications.applications,
                channels.channels, accounts.accounts):
        app.include_router(api)
    for api in (ca.identities, ca.certificates, ca.csrs):
        app.include_router(api)

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness",
             operation_id="health")
    def health() -> Health:
        return Health(status="ok")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/explorer")

    @app.get("/explorer", include_in_schema=False)
    def explorer() -> FileResponse:
        return FileResponse(STATIC_DIR / "explorer.html", media_type="text/html",
                            headers=PAGE_HEADERS)

    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
    return app
