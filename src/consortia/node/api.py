"""The node's HTTP API (FastAPI); the published OpenAPI document is at ``/openapi.json``.

Transactions are submitted as their canonical envelope bytes: raw
(``application/octet-stream``; a batch as a msgpack array, ``application/msgpack``)
or base64 inside JSON. Every refusal is ``{"error": {"code", "message"}}`` with
the status of ``consortia.types.errors``; docs/spec/rest-api.md lists the codes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from typing import Any

import msgpack
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from consortia import __version__
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import load_block
from consortia.node.bodies import split_bin_array
from consortia.node.peer import HEIGHT_HEADER, SYNC_PATH, PeerNode
from consortia.node.rpcmount import mount_rpc
from consortia.node.service import Node
from consortia.node.views import block_view, record_view, tx_view
from consortia.types.errors import (
    ConsortiaError,
    Malformed,
    NotFound,
    TooLarge,
    UnsupportedMediaType,
)
from consortia.types.tx import Tx

_MAX_WAIT_S = 60.0
_MAX_INT = 2**62
_SYNC_MAX_BLOCKS = 1_000
_SYNC_MAX_BYTES = 16 * 1024 * 1024
"""A sync answer stops adding blocks past this size (it always holds at least one)."""
log = logging.getLogger("consortia.node.api")


class ORJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(exc: ConsortiaError) -> ORJSONResponse:
    return ORJSONResponse({"error": exc.to_dict()}, status_code=exc.status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Malformed(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"{what}: not valid base64") from None


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("request body is not valid JSON") from None


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


def _check_json_size(body: bytes, limit: int) -> None:
    # Parsed JSON costs many times its size in Python objects: cap it well below raw bodies.
    if len(body) > limit:
        raise TooLarge(f"a JSON body is at most {limit} bytes; send raw or msgpack bodies "
                       "for more")


def _parse_single(request: Request, body: bytes) -> bytes:
    ctype = _content_type(request)
    if ctype == "application/json":
        doc = _json(body)
        if not isinstance(doc, dict) or "envelope" not in doc:
            raise Malformed('expected {"envelope": "<base64>"}')
        return _b64(doc["envelope"], "envelope")
    if ctype in ("application/octet-stream", ""):
        if not body:
            raise Malformed("empty request body")
        return body
    raise UnsupportedMediaType(f"unsupported content type {ctype!r}")


def _parse_batch(request: Request, body: bytes, max_batch: int) -> list[bytes]:
    ctype = _content_type(request)
    if ctype == "application/json":
        doc = _json(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("envelopes"), list):
            raise Malformed('expected {"envelopes": ["<base64>", ...]}')
        items = [_b64(x, f"envelopes[{i}]") for i, x in enumerate(doc["envelopes"])]
    elif ctype == "application/msgpack":
        items = split_bin_array(body, max_batch)
    else:
        raise UnsupportedMediaType(f"unsupported content type {ctype!r}")
    if len(items) > max_batch:
        raise TooLarge(f"a batch holds at most {max_batch} transactions")
    if not items:
        raise Malformed("empty batch")
    return items


def _hex_id(value: str, what: str = "transaction id") -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise Malformed(f"{what} must be hex") from None
    if len(raw) != 32:
        raise Malformed(f"{what} must be 32 bytes")
    return raw


def _raw_blocks(store: LedgerStore, first: int, last: int) -> bytes:
    """Blocks ``first..last`` as a msgpack array of their canonical bytes, cut short (never
    below one block) past ``_SYNC_MAX_BYTES``."""
    raws: list[bytes] = []
    size = 0
    for h in range(first, last + 1):
        raw = load_block(store, h)[0].encode()
        if raws and size + len(raw) > _SYNC_MAX_BYTES:
            break
        raws.append(raw)
        size += len(raw)
    return bytes(msgpack.packb(raws, use_bin_type=True))


_HEIGHT = re.compile(r"[0-9]{1,18}")

_SINGLE_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["envelope"],
                                    "properties": {"envelope": {"type": "string",
                                                                "format": "byte"}}}}}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["envelopes"],
                                    "properties": {"envelopes": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "byte"}}}}}}}}


def create_app(node: Node | PeerNode) -> FastAPI:
    app = FastAPI(title="Consortia node API", version=__version__,
                  description="Submit notary transactions, read blocks, receipts, records and "
                              "offline-verifiable proofs.",
                  default_response_class=ORJSONResponse)
    max_body = node.settings.api.max_body_bytes
    max_batch = node.settings.api.max_batch
    max_json = node.settings.api.max_json_bytes
    json_slots = asyncio.Semaphore(2)

    @app.exception_handler(ConsortiaError)
    async def _on_error(_: Request, exc: ConsortiaError) -> ORJSONResponse:
        return _error(exc)

    @app.exception_handler(Exception)
    async def _on_bug(_: Request, exc: Exception) -> ORJSONResponse:
        log.exception("unexpected error while serving a request")
        return _error(ConsortiaError(f"internal error ({exc.__class__.__name__})"))

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                          for e in exc.errors())
        return _error(Malformed(f"invalid request: {where}"))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return ORJSONResponse({"error": {"code": codes.get(exc.status_code, "http_error"),
                                         "message": str(exc.detail)}},
                              status_code=exc.status_code)

    @app.post("/v1/transactions", tags=["transactions"], openapi_extra=_SINGLE_BODY,
              status_code=202, summary="Submit one signed transaction")
    async def submit(request: Request,
                     wait: bool = Query(False, description="Return once committed"),
                     timeout: float = Query(30.0, gt=0, le=_MAX_WAIT_S)) -> ORJSONResponse:
        body = await _read_body(request, max_body)
        if _content_type(request) == "application/json":
            _check_json_size(body, max_json)
            async with json_slots:
                raw = await asyncio.to_thread(_parse_single, request, body)
        else:
            raw = _parse_single(request, body)
        (result,) = await node.submit([raw])
        if isinstance(result, ConsortiaError):
            return _error(result)
        if not wait:
            return ORJSONResponse({"tx_id": result.id.hex(), "status": "pending"},
                                  status_code=202)
        (receipt,) = await node.wait_for([result.id], timeout)
        return ORJSONResponse(receipt.to_dict(),
                              status_code=202 if receipt.status == "pending" else 200)

    @app.post("/v1/transactions/batch", tags=["transactions"], openapi_extra=_BATCH_BODY,
              summary="Submit many signed transactions; one result per transaction")
    async def submit_batch(request: Request, wait: bool = Query(False),
                           timeout: float = Query(30.0, gt=0, le=_MAX_WAIT_S)) -> ORJSONResponse:
        body = await _read_body(request, max_body)
        if _content_type(request) == "application/json":
            _check_json_size(body, max_json)
            async with json_slots:
                raws = await asyncio.to_thread(_parse_batch, request, body, max_batch)
        else:
            raws = _parse_batch(request, body, max_batch)
        results = await node.submit(raws)
        accepted = [r.id for r in results if isinstance(r, Tx)]
        receipts = {}
        if wait and accepted:
            receipts = {r.tx_id: r for r in await node.wait_for(accepted, timeout)}
        out: list[dict[str, Any]] = []
        for r in results:
            if isinstance(r, ConsortiaError):
                out.append({"status": "rejected", "http_status": r.status, "error": r.to_dict()})
            elif r.id in receipts:
                out.append(receipts[r.id].to_dict())
            else:
                out.append({"tx_id": r.id.hex(), "status": "pending"})
        return ORJSONResponse({"accepted": len(accepted), "rejected": len(results) - len(accepted),
                               "results": out})

    @app.get("/v1/transactions/{tx_id}", tags=["transactions"],
             summary="A committed transaction, decoded, with its receipt")
    async def get_tx(tx_id: str) -> dict[str, Any]:
        row = node.store.tx(_hex_id(tx_id))
        if row is None:
            raise NotFound(f"transaction {tx_id} is not committed")
        return tx_view(row, node.chain.membership)

    @app.get("/v1/receipts/{tx_id}", tags=["transactions"], summary="Status of a transaction")
    async def get_receipt(tx_id: str) -> dict[str, Any]:
        return node.receipt(_hex_id(tx_id)).to_dict()

    @app.get("/v1/proofs/{tx_id}", tags=["proofs"],
             summary="Self-contained proof of a committed transaction (verify offline)")
    async def get_proof(tx_id: str) -> Response:
        return Response(node.proof(_hex_id(tx_id)), media_type="application/json")

    @app.get("/v1/blocks", tags=["blocks"], summary="Latest blocks, newest first")
    async def latest_blocks(limit: int = Query(10, ge=1, le=100),
                            before: int | None = Query(None, ge=1, le=_MAX_INT)
                            ) -> dict[str, Any]:
        return {"height": node.store.height,
                "blocks": [block_view(b) for b in node.store.blocks_desc(limit, before)]}

    @app.get("/v1/blocks/{block_id}", tags=["blocks"],
             summary="A block by height or by hash (64 hex digits)")
    async def get_block(block_id: str,
                        raw: bool = Query(False, description="canonical block bytes")) -> Any:
        if len(block_id) == 64:
            blk = node.store.block_by_hash(_hex_id(block_id, "block hash"))
        elif _HEIGHT.fullmatch(block_id):
            blk = node.store.block(int(block_id))
        else:
            raise Malformed("block id is a height or a 64-digit hex hash")
        if blk is None:
            raise NotFound(f"no block {block_id}")
        txs = node.store.block_txs(blk.height)
        if raw:
            block, _, _ = load_block(node.store, blk.height)
            return Response(block.encode(), media_type="application/msgpack")
        return block_view(blk, txs)

    @app.get(SYNC_PATH, tags=["blocks"],
             summary="Canonical bytes of consecutive blocks, for peers that follow the chain",
             responses={200: {"content": {"application/msgpack": {}},
                              "description": "msgpack array of block bytes; the "
                                             "X-Consortia-Height header is this node's "
                                             "height"}})
    async def sync_blocks(from_: int = Query(alias="from", ge=1, le=_MAX_INT),
                          limit: int = Query(64, ge=1, le=_SYNC_MAX_BLOCKS),
                          wait_ms: int = Query(0, ge=0, le=int(_MAX_WAIT_S * 1000),
                                               description="hold the request open up to "
                                                           "this long for block `from`"),
                          ) -> Response:
        if wait_ms and node.store.height < from_:
            await node.heights.wait_above(node.store, from_ - 1, wait_ms / 1000)
        top = node.store.height
        body = await asyncio.to_thread(_raw_blocks, node.store, from_, min(top, from_ + limit - 1))
        return Response(body, media_type="application/msgpack",
                        headers={HEIGHT_HEADER: str(top)})

    @app.get("/v1/chain", tags=["chain"], summary="Chain and node information")
    async def chain_info() -> dict[str, Any]:
        return node.info()

    @app.get("/v1/genesis", tags=["chain"], summary="The genesis file this node runs")
    async def genesis() -> Response:
        return Response(node.genesis.to_file_bytes(), media_type="application/json")

    @app.get("/v1/records", tags=["notary"],
             summary="Notary records by business id, or by category and business time")
    async def records(business_id: str | None = Query(None, max_length=128),
                      category: str | None = Query(None, max_length=64),
                      from_ms: int = Query(0, ge=0, le=_MAX_INT),
                      to_ms: int = Query(_MAX_INT, ge=0, le=_MAX_INT),
                      limit: int = Query(100, ge=1, le=1000),
                      after: str | None = Query(None, max_length=64,
                                                description="cursor from the previous page"),
                      ) -> dict[str, Any]:
        if (business_id is None) == (category is None):
            raise Malformed("give exactly one of business_id or category")
        try:
            cursor = [int(x) for x in after.split(":")] if after else None
        except ValueError:
            raise Malformed("after: invalid cursor") from None
        if cursor is not None and not all(0 <= x <= _MAX_INT for x in cursor):
            raise Malformed("after: invalid cursor")
        if business_id is not None:
            rows = node.store.records_by_business_id(business_id, limit,
                                                     cursor[0] if cursor else 0)
            nxt = str(rows[-1].seq) if len(rows) == limit else None
        else:
            assert category is not None
            if cursor is not None and len(cursor) != 2:
                raise Malformed("after: invalid cursor")
            rows = node.store.records_by_category(
                category, from_ms, to_ms, limit,
                (cursor[0], cursor[1]) if cursor else None)
            nxt = (f"{rows[-1].business_time_ms}:{rows[-1].seq}"
                   if len(rows) == limit else None)
        return {"records": [record_view(r) for r in rows], "next": nxt}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> ORJSONResponse:
        status, doc = node.health()
        return ORJSONResponse(doc, status_code=status)

    mount_rpc(app, node)  # quorum chains: Ethereum JSON-RPC (closed before the node stops)

    @app.on_event("startup")
    async def _startup() -> None:
        await node.start()

    @app.on_event("shutdown")
    async def _shutdown() -> None:
        await node.stop()

    return app
