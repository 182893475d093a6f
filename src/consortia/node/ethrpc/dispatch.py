"""JSON-RPC 2.0 framing: one request or a batch in, the answers out.

- A body that is not JSON → one -32700 answer (id null).
- A batch (JSON array): empty → one -32600 answer; more than ``max_batch`` requests → one
  -32600 ``batch too large`` answer (as geth); otherwise each element is answered in order,
  and an answer is an array of the non-notification answers (no array at all when they
  were all notifications).
- A request without ``id`` is a notification: it is run, and never answered.
- ``params`` must be an array (or absent); by-name params are -32602 ``non-array args``.
- A backend error maps through ``errors.from_backend``; anything unexpected is logged with
  its traceback and answered -32603 without details.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from consortia.node.ethrpc.backend import EthBackendError
from consortia.node.ethrpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_ERROR,
    RpcError,
    from_backend,
)
from consortia.node.ethrpc.limits import RpcLimits
from consortia.node.ethrpc.methods import Handler

log = logging.getLogger("consortia.node.ethrpc")
_NO_ID = object()


def error_response(exc: RpcError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}


class Dispatcher:
    """Runs requests against a table of method handlers."""

    def __init__(self, handlers: Mapping[str, Handler], limits: RpcLimits) -> None:
        self.handlers = handlers
        self.limits = limits

    async def handle_bytes(self, body: bytes | str) -> bytes | None:
        """The encoded answer to ``body``, ``None`` when nothing is to be answered."""
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(error_response(RpcError(PARSE_ERROR, "parse error")))
        answer = await self.handle(message)
        return None if answer is None else orjson.dumps(answer)

    async def handle(self, message: Any) -> Any:
        """The answer object (or array) to a decoded message; ``None`` for none."""
        if not isinstance(message, list):
            return await self.handle_one(message)
        if not message:
            return error_response(RpcError(INVALID_REQUEST, "empty batch"))
        if len(message) > self.limits.max_batch:
            return error_response(RpcError(INVALID_REQUEST, "batch too large"))
        answers = [await self.handle_one(item) for item in message]
        kept = [a for a in answers if a is not None]
        return kept or None

    async def handle_one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return error_response(RpcError(INVALID_REQUEST, "invalid request"))
        request_id = request.get("id", _NO_ID)
        if request_id is not _NO_ID and (
                isinstance(request_id, bool)
                or not isinstance(request_id, str | int | float | type(None))):
            return error_response(RpcError(INVALID_REQUEST, "invalid request id"))
        answer_id = None if request_id is _NO_ID else request_id
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error_response(RpcError(INVALID_REQUEST, "invalid request"), answer_id)
        params = request.get("params", [])
        try:
            if params is None:
                params = []
            if not isinstance(params, list):
                raise RpcError(INVALID_PARAMS, "non-array args")
            result = await self.call(method, params)
        except RpcError as exc:
            return None if request_id is _NO_ID else error_response(exc, answer_id)
        if request_id is _NO_ID:
            return None
        return {"jsonrpc": "2.0", "id": answer_id, "result": result}

    async def call(self, method: str, params: list[Any]) -> Any:
        """Run one method; every failure comes out as an :class:`RpcError`."""
        handler = self.handlers.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND,
                           f"the method {method} does not exist/is not available")
        try:
            return await asyncio.wait_for(handler(params), self.limits.method_timeout_s)
        except RpcError:
            raise
        except EthBackendError as exc:
            raise from_backend(exc) from exc
        except TimeoutError as exc:
            raise RpcError(SERVER_ERROR, f"request timed out after "
                                         f"{self.limits.method_timeout_s:g} s") from exc
        except Exception as exc:  # a bug or a broken backend: logged, answered generically
            log.exception("JSON-RPC method %s failed", method)
            raise RpcError(INTERNAL_ERROR, "internal error") from exc
