"""The control client's exception tree: one type to catch, the API's own words inside.

::

    ConsortiaError
    └── ControlError            status, code, message, request_id
        ├── ApiError            the API refused the call (HTTP 4xx/5xx): its status, its
        │                       stable error code, its message and request id
        ├── TransportError      no answer: connection refused, timeout (status None,
        │                       code "unreachable" or "timeout")
        ├── CredentialsError    no usable profile: missing, malformed or insecure file
        │                       (code "credentials")
        ├── WaitTimeout         a ``wait_for_*`` helper gave up (code "wait_timeout")
        └── ResourceFailed      a waited-for resource reached FAILED / CREATE_FAILED /
                                DELETED (code "resource_failed"; ``.resource`` holds it)

``except ControlError`` handles everything a ``ControlClient`` raises on purpose; the
``code`` is the stable contract (docs/spec/control-api.md lists the API's codes).
"""

from __future__ import annotations

from typing import Any

from consortia.types.errors import ConsortiaError


class ControlError(ConsortiaError):
    """Base of what ``ControlClient`` raises. ``status`` is None when no HTTP answer came."""

    def __init__(self, message: str, *, code: str, status: int | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status  # type: ignore[assignment]  # None: no HTTP answer
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (HTTP {self.status}" if self.status is not None else ""
        if where:
            where += f", request {self.request_id})" if self.request_id else ")"
        return f"{self.message} [{self.code}]{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "status": self.status,
                "request_id": self.request_id}


class ApiError(ControlError):
    """The API answered with an error body ``{"error": {code, message, request_id}}``."""

    def __init__(self, message: str, *, code: str, status: int,
                 request_id: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id)
        self.details = details or []
        """Validation failures (422 ``validation_failed``): ``[{loc, msg, type}]``."""


class TransportError(ControlError):
    """The control plane did not answer (refused connection, DNS, timeout)."""


class CredentialsError(ControlError):
    """No usable credentials: a missing, malformed or group/other-readable profile file."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="credentials")


class WaitTimeout(ControlError):
    """A ``wait_for_*`` helper ran out of time; ``resource`` is the last state seen."""

    def __init__(self, message: str, resource: object) -> None:
        super().__init__(message, code="wait_timeout")
        self.resource = resource


class ResourceFailed(ControlError):
    """A waited-for resource failed; ``resource`` holds it, its ``status_reason`` says why."""

    def __init__(self, message: str, resource: object) -> None:
        super().__init__(message, code="resource_failed")
        self.resource = resource
