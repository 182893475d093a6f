"""The JSON-RPC server of one node: ``POST /`` (HTTP) and a WebSocket on ``/``, as
Ethereum nodes answer on their root path.

Mount it in the node's FastAPI app with ``app.router.routes.extend(server.routes())`` (a
Starlette ``Mount("/")`` would shadow every other route), or run it alone on its own port
with :func:`serve`. It imports nothing of the node but this package: everything it knows
of the chain comes through the :class:`EthBackend` it is given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from consortia.node.ethrpc.backend import EthBackend
from consortia.node.ethrpc.dispatch import Dispatcher, error_response
from consortia.node.ethrpc.errors import INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from consortia.node.ethrpc.filters import Filters
from consortia.node.ethrpc.limits import RpcLimits
from consortia.node.ethrpc.methods import EthMethods, Handler
from consortia.node.ethrpc.private import PrivacyBackend, PrivateMethods
from consortia.node.ethrpc.subscriptions import HeadHub, WsConnection

_JSON = "application/json"


async def _no_notifications(params: list[Any]) -> Any:
    raise RpcError(METHOD_NOT_FOUND, "notifications not supported")


class RpcServer:
    """The methods, filters and subscription hub over one backend."""

    def __init__(self, backend: EthBackend, limits: RpcLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.limits = limits or RpcLimits()
        self.methods = EthMethods(backend, self.limits)
        self.filters = Filters(backend, self.limits, clock)
        self.hub = HeadHub(backend)
        self._handlers: dict[str, Handler] = self.methods.handlers()
        if isinstance(backend, PrivacyBackend):  # a quorum node with a transaction manager
            self._handlers.update(PrivateMethods(backend, self.limits.max_body_bytes
                                                 ).handlers())
        self.http = Dispatcher({**self._handlers, **self.filters.handlers(owner=None),
                                "eth_subscribe": _no_notifications,
                                "eth_unsubscribe": _no_notifications}, self.limits)

    def routes(self, path: str = "/") -> list[BaseRoute]:
        """``POST path`` and the WebSocket on ``path``."""
        return [Route(path, self.http_endpoint, methods=["POST"]),
                WebSocketRoute(path, self.ws_endpoint)]

    def app(self) -> Starlette:
        """A Starlette app serving only the JSON-RPC (for its own port)."""
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        return Starlette(routes=self.routes(), lifespan=lifespan)

    async def aclose(self) -> None:
        """Stop reading the backend's new heads."""
        await self.hub.aclose()

    async def http_endpoint(self, request: Request) -> Response:
        kind = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
        if kind != _JSON:
            return _refusal(415, f"invalid content type, only {_JSON} is supported")
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _refusal(413, f"request body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _refusal(413, f"request body larger than {limit} bytes")
            chunks.append(chunk)
        answer = await self.http.handle_bytes(b"".join(chunks))
        if answer is None:
            return Response(status_code=204)
        return Response(answer, media_type=_JSON)

    async def ws_endpoint(self, ws: WebSocket) -> None:
        await WsConnection(ws, self._handlers, self.filters, self.hub, self.limits).run()


def _refusal(status: int, message: str) -> Response:
    body = orjson.dumps(error_response(RpcError(INVALID_REQUEST, message)))
    return Response(body, status_code=status, media_type=_JSON)


async def serve(backend: EthBackend, host: str, port: int,
                limits: RpcLimits | None = None) -> None:
    """Run the JSON-RPC alone on ``host:port`` until cancelled."""
    limits = limits or RpcLimits()
    server = RpcServer(backend, limits)
    config = uvicorn.Config(server.app(), host=host, port=port, log_level="warning",
                            access_log=False, ws_max_size=limits.max_body_bytes,
                            timeout_keep_alive=30)
    await uvicorn.Server(config).serve()
