"""The two HTTP faces of a manager (FastAPI): the node's local API and the peer API.

Local (loopback, ``Authorization: Bearer <token>``, the token from a 0600 file the
node also reads): ``/v1/keys``, ``/v1/send``, ``/v1/storeraw``, ``/v1/sendsignedtx``,
``/v1/transactions/{hash}``, ``/v1/transactions/{hash}/deliveries``; ``/healthz`` open.

Peer (mutual TLS only; the client certificate, put in the ASGI scope by ``server.py``,
must be a member organization's manager): ``POST /v1/push``, ``POST /v1/partyinfo``
(announce a signed entry of one's own organization), ``GET /v1/partyinfo``.

Every refusal is ``{"error": {"code", "message"}}`` with the code's status
(``errors.py``; docs/spec/privacy.md). Bodies are read up to a limit, never whole first.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from consortia.privacy.box import HASH_SIZE, KEY_SIZE
from consortia.privacy.directory import SignedEntry
from consortia.privacy.errors import PeerRefused, RecipientUnreachable
from consortia.privacy.manager import Manager
from consortia.types.errors import ConsortiaError, Malformed, TooLarge, Unauthorized

PEER_CERT_SCOPE_KEY = "consortia.peer_cert"
"""Where ``server.py`` puts the DER client certificate of a peer connection."""
_JSON_LIMIT_OVERHEAD = 4096
_M = TypeVar("_M", bound=BaseModel)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _key(s: str, what: str) -> bytes:
    try:
        k = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"{what}: not base64") from None
    if len(k) != KEY_SIZE:
        raise Malformed(f"{what}: a public key is 32 bytes")
    return k


def _hash(s: str) -> bytes:
    try:
        h = bytes.fromhex(s)
    except ValueError:
        raise Malformed("hash: not hex") from None
    if len(h) != HASH_SIZE:
        raise Malformed("hash: SHA3-512, 64 bytes")
    return h


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SendBody(_Body):
    payload: str
    sender: str | None = Field(default=None, alias="from")
    private_for: list[str] = Field(default_factory=list, alias="privateFor", max_length=255)


class StoreRawBody(_Body):
    payload: str
    sender: str | None = Field(default=None, alias="from")


class SendSignedBody(_Body):
    hash: str
    private_for: list[str] = Field(alias="privateFor", min_length=1, max_length=255)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _model(cls: type[_M], raw: bytes) -> _M:
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        raise Malformed(f"invalid body: {exc.errors()[0]['msg']}") from None


def _payload(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("payload: not base64") from None


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ConsortiaError)
    async def _consortia_error(_: Request, exc: ConsortiaError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.to_dict()}
        if isinstance(exc, RecipientUnreachable):
            body["error"]["hash"] = exc.payload_hash.hex()
            body["error"]["failures"] = exc.failures
        return JSONResponse(body, status_code=exc.status)


def local_app(manager: Manager, token: bytes) -> FastAPI:
    app = FastAPI(title="Consortia transaction manager (local)", openapi_url=None)
    _errors(app)
    json_limit = manager.limits.max_payload_bytes * 4 // 3 + _JSON_LIMIT_OVERHEAD \
        + 64 * manager.limits.max_recipients

    def auth(request: Request) -> None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), b"Bearer " + token):
            raise Unauthorized("missing or wrong bearer token", code="bad_token")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/keys")
    def keys(request: Request) -> dict[str, Any]:
        auth(request)
        return {"org_id": manager.org_id, "public_keys": [_b64(k) for k in manager.public_keys]}

    @app.post("/v1/send")
    async def send(request: Request) -> dict[str, str]:
        auth(request)
        body = _model(SendBody, await _read(request, json_limit))
        payload = _payload(body.payload)
        sender = _key(body.sender, "from") if body.sender else None
        recipients = [_key(k, "privateFor") for k in body.private_for]
        h = await run_in_threadpool(manager.send, payload, recipients, sender)
        return {"hash": h.hex()}

    @app.post("/v1/storeraw")
    async def storeraw(request: Request) -> dict[str, str]:
        auth(request)
        body = _model(StoreRawBody, await _read(request, json_limit))
        sender = _key(body.sender, "from") if body.sender else None
        h = await run_in_threadpool(manager.store_raw, _payload(body.payload), sender)
        return {"hash": h.hex()}

    @app.post("/v1/sendsignedtx")
    async def sendsignedtx(request: Request) -> dict[str, str]:
        auth(request)
        body = _model(SendSignedBody, await _read(request, _JSON_LIMIT_OVERHEAD * 8))
        recipients = [_key(k, "privateFor") for k in body.private_for]
        h = await run_in_threadpool(manager.send_signed, _hash(body.hash), recipients)
        return {"hash": h.hex()}

    @app.get("/v1/transactions/{payload_hash}")
    def receive(payload_hash: str, request: Request, to: str | None = None) -> dict[str, str]:
        auth(request)
        payload, sender = manager.receive(_hash(payload_hash), _key(to, "to") if to else None)
        return {"payload": _b64(payload), "sender": _b64(sender)}

    @app.get("/v1/transactions/{payload_hash}/deliveries")
    def deliveries(payload_hash: str, request: Request) -> dict[str, Any]:
        auth(request)
        return {"deliveries": [
            {"org_id": d.org_id, "state": d.state, "attempts": d.attempts,
             "last_error": d.last_error} for d in manager.deliveries(_hash(payload_hash))]}

    return app


def peer_app(manager: Manager) -> FastAPI:
    app = FastAPI(title="Consortia transaction manager (peer)", openapi_url=None)
    _errors(app)

    def peer_org(request: Request) -> str:
        der = request.scope.get(PEER_CERT_SCOPE_KEY)
        if not der:
            raise PeerRefused("no client certificate")
        return manager.identify_peer(der)

    @app.post("/v1/push")
    async def push(request: Request) -> dict[str, str]:
        org = peer_org(request)
        body = await _read(request, manager.limits.max_envelope_bytes)
        h = await run_in_threadpool(manager.accept_push, org, body)
        return {"hash": h.hex()}

    @app.post("/v1/partyinfo")
    async def announce(request: Request) -> dict[str, Any]:
        org = peer_org(request)
        raw = await _read(request, 64 * 1024)
        try:
            doc = json.loads(raw)
        except ValueError:
            raise Malformed("partyinfo: not JSON") from None
        signed = SignedEntry.from_json(doc)
        await run_in_threadpool(manager.accept_announce, org, signed)
        return {"accepted": True, "org_id": signed.entry.org_id,
                "sequence": signed.entry.sequence}

    @app.get("/v1/partyinfo")
    def partyinfo(request: Request) -> dict[str, Any]:
        peer_org(request)
        return {"version": 1, "entries": [s.to_json() for s in
                                          manager.directory.signed_entries()]}

    return app
