"""HTTP clients of a node's API, sync (``NodeClient``) and async (``AsyncNodeClient``).

Both build the same requests (``_Call``) and read the same responses
(``_parse``); only the I/O differs. Every call has a timeout. A refusal raises
``NodeError`` carrying the node's HTTP status and stable error code; pass an
``httpx.MockTransport`` as ``transport`` to test code that uses these clients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgpack

from consortia import __version__
from consortia.sdk.tx import SignedTx
from consortia.types.errors import ConsortiaError

DEFAULT_TIMEOUT = 30.0
_UA = f"consortia-sdk/{__version__}"


class NodeError(ConsortiaError):
    """The node refused a request; ``status`` and ``code`` are the node's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    content: bytes | None = None
    content_type: str | None = None
    raw: bool = False
    timeout: float | None = None


def _parse(call: _Call, resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            err = resp.json()["error"]
            raise NodeError(resp.status_code, str(err["code"]), str(err["message"]))
        except (ValueError, KeyError, TypeError):
            raise NodeError(resp.status_code, "http_error", resp.text[:500]) from None
    return resp.content if call.raw else resp.json()


def _env(tx: SignedTx | bytes) -> bytes:
    return tx.envelope if isinstance(tx, SignedTx) else tx


class _Calls:
    """The API surface as request descriptions."""

    @staticmethod
    def submit(tx: SignedTx | bytes, wait: bool, timeout: float) -> _Call:
        return _Call("POST", "/v1/transactions", {"wait": wait, "timeout": timeout}, _env(tx),
                     "application/octet-stream", timeout=timeout + 5)

    @staticmethod
    def submit_batch(txs: Sequence[SignedTx | bytes], wait: bool, timeout: float) -> _Call:
        body = msgpack.packb([_env(t) for t in txs], use_bin_type=True)
        return _Call("POST", "/v1/transactions/batch", {"wait": wait, "timeout": timeout}, body,
                     "application/msgpack", timeout=timeout + 30)

    @staticmethod
    def records(business_id: str | None, category: str | None, from_ms: int, to_ms: int,
                limit: int, after: str | None) -> _Call:
        params: dict[str, Any] = {"limit": limit, "from_ms": from_ms, "to_ms": to_ms}
        if business_id is not None:
            params["business_id"] = business_id
        if category is not None:
            params["category"] = category
        if after:
            params["after"] = after
        return _Call("GET", "/v1/records", params)


class NodeClient:
    """Synchronous client: ``with NodeClient(url) as c: c.submit(tx, wait=True)``."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"user-agent": _UA})

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _do(self, call: _Call) -> Any:
        headers = {"content-type": call.content_type} if call.content_type else None
        resp = self._http.request(call.method, call.path, params=call.params,
                                  content=call.content, headers=headers,
                                  timeout=call.timeout or httpx.USE_CLIENT_DEFAULT)
        return _parse(call, resp)

    def submit(self, tx: SignedTx | bytes, *, wait: bool = False,
               timeout: float = 30.0) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Calls.submit(tx, wait, timeout))
        return out

    def submit_batch(self, txs: Sequence[SignedTx | bytes], *, wait: bool = False,
                     timeout: float = 30.0) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Calls.submit_batch(txs, wait, timeout))
        return out

    def receipt(self, tx_id: str | bytes) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Call("GET", f"/v1/receipts/{_hex(tx_id)}"))
        return out

    def wait(self, tx_id: str | bytes, *, timeout: float = 30.0,
             interval: float = 0.1) -> dict[str, Any]:
        """Poll the receipt until the transaction leaves the pool or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.receipt(tx_id)
            if r["status"] != "pending" or time.monotonic() >= deadline:
                return r
            time.sleep(interval)

    def transaction(self, tx_id: str | bytes) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Call("GET", f"/v1/transactions/{_hex(tx_id)}"))
        return out

    def proof(self, tx_id: str | bytes) -> bytes:
        out: bytes = self._do(_Call("GET", f"/v1/proofs/{_hex(tx_id)}", raw=True))
        return out

    def block(self, block_id: int | str) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Call("GET", f"/v1/blocks/{block_id}"))
        return out

    def blocks(self, limit: int = 10) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Call("GET", "/v1/blocks", {"limit": limit}))
        return out

    def chain_info(self) -> dict[str, Any]:
        out: dict[str, Any] = self._do(_Call("GET", "/v1/chain"))
        return out

    def genesis(self) -> bytes:
        out: bytes = self._do(_Call("GET", "/v1/genesis", raw=True))
        return out

    def records(self, *, business_id: str | None = None, category: str | None = None,
                from_ms: int = 0, to_ms: int = 2**62, limit: int = 100,
                after: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self._do(
            _Calls.records(business_id, category, from_ms, to_ms, limit, after))
        return out


class AsyncNodeClient:
    """Asynchronous client with the same methods as ``NodeClient``."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                       headers={"user-agent": _UA},
                                       limits=limits or httpx.Limits(max_connections=64))

    async def __aenter__(self) -> AsyncNodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _do(self, call: _Call) -> Any:
        headers = {"content-type": call.content_type} if call.content_type else None
        resp = await self._http.request(call.method, call.path, params=call.params,
                                        content=call.content, headers=headers,
                                        timeout=call.timeout or httpx.USE_CLIENT_DEFAULT)
        return _parse(call, resp)

    async def submit(self, tx: SignedTx | bytes, *, wait: bool = False,
                     timeout: float = 30.0) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Calls.submit(tx, wait, timeout))
        return out

    async def submit_batch(self, txs: Sequence[SignedTx | bytes], *, wait: bool = False,
                           timeout: float = 30.0) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Calls.submit_batch(txs, wait, timeout))
        return out

    async def receipt(self, tx_id: str | bytes) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Call("GET", f"/v1/receipts/{_hex(tx_id)}"))
        return out

    async def wait(self, tx_id: str | bytes, *, timeout: float = 30.0,
                   interval: float = 0.1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.receipt(tx_id)
            if r["status"] != "pending" or time.monotonic() >= deadline:
                return r
            await asyncio.sleep(interval)

    async def transaction(self, tx_id: str | bytes) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Call("GET", f"/v1/transactions/{_hex(tx_id)}"))
        return out

    async def proof(self, tx_id: str | bytes) -> bytes:
        out: bytes = await self._do(_Call("GET", f"/v1/proofs/{_hex(tx_id)}", raw=True))
        return out

    async def block(self, block_id: int | str) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Call("GET", f"/v1/blocks/{block_id}"))
        return out

    async def blocks(self, limit: int = 10) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Call("GET", "/v1/blocks", {"limit": limit}))
        return out

    async def chain_info(self) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(_Call("GET", "/v1/chain"))
        return out

    async def genesis(self) -> bytes:
        out: bytes = await self._do(_Call("GET", "/v1/genesis", raw=True))
        return out

    async def records(self, *, business_id: str | None = None, category: str | None = None,
                      from_ms: int = 0, to_ms: int = 2**62, limit: int = 100,
                      after: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = await self._do(
            _Calls.records(business_id, category, from_ms, to_ms, limit, after))
        return out


def _hex(tx_id: str | bytes) -> str:
    return tx_id.hex() if isinstance(tx_id, bytes) else tx_id
