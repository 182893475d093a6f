"""``ControlRoute``: every route of the API, and the audit record of refused changes.

A mutating operation names its audit action in its OpenAPI extension
``x-consortia-action`` (``audited("user.create")``). Its success is recorded by the
service in the change's transaction; when the call is refused — by the role check, a
validation error, a 404, a 409, a 429 — after the caller was authenticated, this route
class records the failure (action, the id in the path, the error code and HTTP status) in
a transaction of its own, then lets the refusal go on to its error handler. Refusals
before authentication (401) are not recorded: the tenant is not known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute

from consortia.control.http.errors import error_code_of
from consortia.types.errors import ConsortiaError

ACTION_KEY = "x-consortia-action"
log = logging.getLogger("consortia.control.http")


def audited(action: str) -> dict[str, Any]:
    """``openapi_extra`` of a mutating operation: its audit action, ``<resource>.<verb>``."""
    return {ACTION_KEY: action}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every operation route of ``app``, including those of included routers."""
    found: list[APIRoute] = []

    def walk(routes: Iterable[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            if inner is not None:
                walk(inner.routes)

    walk(app.routes)
    return found


def action_of(route: APIRoute) -> str | None:
    extra = route.openapi_extra or {}
    action = extra.get(ACTION_KEY)
    return action if isinstance(action, str) else None


class ControlRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = action_of(self)
        success_status = self.status_code or 200

        async def route_handler(request: Request) -> Response:
            request.state.audit_action = action
            request.state.success_status = success_status
            if action is None:
                return await handler(request)
            try:
                return await handler(request)
            except Exception as exc:
                await _record_failure(request, action, exc)
                raise

        return route_handler


async def _record_failure(request: Request, action: str, exc: Exception) -> None:
    actor = getattr(request.state, "actor", None)
    if actor is None:
        return
    status, code = error_code_of(exc)
    params = list(request.path_params.values())
    resource_id = params[-1] if params and isinstance(params[-1], str) else None
    control = request.app.state.consortia.control
    try:
        await run_in_threadpool(control.audit.record_failure, actor, action, resource_id,
                                error_code=code, http_status=status)
    except (SQLAlchemyError, ConsortiaError):
        log.exception("request %s: could not record the refused %s", actor.request_id, action)
