"""One JSON error format for every refusal: ``{"error": {"code", "message", "request_id"}}``.

Every error the project raises on purpose is a ``ConsortiaError`` whose class gives the
HTTP status and whose ``code`` is the stable contract (``consortia.types.errors``). The
framework's own refusals are mapped here too: request validation, and a body that cannot
even be parsed → 422 ``validation_failed`` (with ``details``), an unknown path → 404
``not_found``, a wrong method → 405 ``method_not_allowed``, a body over the limit → 413
``too_large``; anything unexpected → 500 ``internal``, logged with its request id and never
detailed to the caller.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from consortia.types.errors import ConsortiaError, RateLimited

log = logging.getLogger("consortia.control.http")

AUTH_CHALLENGE = 'CONSORTIA-HMAC-SHA256, Cookie realm="consortia-console"'

_HTTP_CODES = {
    401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 413: "too_large",
    415: "unsupported_media_type",
}


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="Where the invalid value is: body, query, path …")
    msg: str
    type: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code (docs/spec/control-api.md).")
    message: str = Field(description="Human-readable explanation; may change.")
    request_id: str = Field(description="The X-Request-Id of the call, for support and audit.")
    details: list[ErrorDetail] | None = Field(
        default=None, description="Validation failures, for validation_failed.")


class ErrorResponse(BaseModel):
    error: ErrorInfo


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else "-"


def error_response(request: Request, status: int, code: str, message: str, *,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    request.state.error_code = code
    body: dict[str, Any] = {"code": code, "message": message,
                            "request_id": request_id_of(request)}
    if details is not None:
        body["details"] = details
    out = {"x-request-id": request_id_of(request), **(headers or {})}
    return JSONResponse({"error": body}, status_code=status, headers=out)


def error_code_of(exc: BaseException) -> tuple[int, str]:
    """The status and code an exception is answered with."""
    if isinstance(exc, ConsortiaError):
        return exc.status, exc.code
    if isinstance(exc, RequestValidationError):
        return 422, "validation_failed"
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI: a body it could not parse (bad encoding …)
            return 422, "validation_failed"
        return exc.status_code, _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return 500, "internal"


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


async def _consortia_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConsortiaError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["retry-after"] = str(exc.retry_after)
    if exc.status == 401:
        headers["www-authenticate"] = AUTH_CHALLENGE
    if exc.status >= 500:
        log.error("request %s failed: %s %s", request_id_of(request), exc.code, exc.message)
    return error_response(request, exc.status, exc.code, exc.message, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    first = details[0] if details else None
    where = ".".join(str(p) for p in first["loc"]) if first else "request"
    message = f"{where}: {first['msg']}" if first else "the request is not valid"
    return error_response(request, 422, "validation_failed", message, details=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status, code = error_code_of(exc)
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 400:
        message = f"body: {message}"
    if status == 404 and code == "not_found" and message == "Not Found":
        message = f"no such path {request.url.path}"
    return error_response(request, status, code, message, headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s failed", request_id_of(request), exc_info=exc)
    return error_response(request, 500, "internal",
                          "internal error; quote the request id to the operator")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ConsortiaError, _consortia_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (401, "Not authenticated: a signature failure (one code per failure) or no valid "
              "console session."),
        (403, "Authenticated, but the role does not allow the call (forbidden_role), or a "
              "cookie-authenticated change without its CSRF token (csrf_failed), or an "
              "enrollment whose id and secret do not match (invalid_enrollment_secret)."),
        (404, "No such resource in the caller's tenant (not_found)."),
        (422, "The request's values are refused (validation_failed and others)."),
        (413, "The body is larger than the server accepts (too_large)."),
        (429, "Rate limited (rate_limited); retry after the Retry-After seconds."),
    )
}
"""Added to every operation's OpenAPI responses."""

CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorResponse,
    "description": "Conflicts with the current state (conflict, last_owner, key_limit, "
                   "network_not_available, invitation_required, config_not_allowed, "
                   "not_enough_approvals, identity_exists, enrollments_exhausted, "
                   "already_revoked, csr_not_pending, …) or a reused client_token with "
                   "other parameters (idempotency_conflict)."}}
"""Added to the operations that can conflict."""

UNAVAILABLE_RESPONSE: dict[int | str, dict[str, Any]] = {503: {
    "model": ErrorResponse,
    "description": "The control plane cannot do it now: it runs no chains (no data "
                   "directory), has no free ports, or the chain does not take the "
                   "configuration change now (unavailable, chain_unavailable)."}}
"""Added to the operations that start, change or stop chains."""
