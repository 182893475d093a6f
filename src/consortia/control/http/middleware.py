"""The ASGI layer every request passes: its request id, the body limit, common headers.

- **Request id.** ``X-Request-Id`` from the client is kept when it is 1-64 characters of
  ``[A-Za-z0-9._:-]``; otherwise one is made (``req-`` + 16 random characters). It is in
  ``request.state.request_id``, in every error body, in the audit trail, and echoed in the
  response's ``X-Request-Id``.
- **Body limit.** A declared ``Content-Length`` over the limit is refused at once (413
  ``too_large``); a body streamed without one is counted as it arrives and refused when it
  passes the limit.
- **Headers.** ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store`` (API
  answers carry secrets and per-user data) unless the app set them.
"""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consortia.control.store.base import new_id

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


def valid_request_id(value: str | None) -> str | None:
    return value if value is not None and _REQUEST_ID_RE.match(value) else None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                declared = value.decode("latin-1")
        request_id = valid_request_id(incoming) or new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ())
                           if k != b"x-request-id"]
                present = {k for k, _ in headers}
                headers.append(rid_header)
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        limit = self.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            body = json.dumps({"error": {
                "code": "too_large", "request_id": request_id,
                "message": f"the request body of {declared} bytes exceeds the limit of "
                           f"{limit} bytes"}}).encode()
            await send_with_headers({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send_with_headers({"type": "http.response.body", "body": body})
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_limited, send_with_headers)
