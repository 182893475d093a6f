"""Signed API requests (docs/spec/api-signing.md): vectors, client round trips, every
refusal code, replay window and nonces, canonicalization, and the property that any change
to what was signed is refused. The nonce store and sealed secrets on their own:
test_access_keys.py.

The test vectors live in the spec only: ``read_vectors`` parses its ``<!-- vector N name -->``
blocks and ``render_vector`` recomputes them with the real httpx client and the server's
parser, so the page and the code cannot drift apart. After a deliberate change to the
algorithm, ``python tests/unit/test_api_signing.py --write`` rewrites the blocks from
their inputs (then review the diff).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from hypothesis import assume, given
from hypothesis import strategies as st
from starlette.datastructures import Headers as StarletteHeaders

from consortia.control.auth import (
    KeyRecord,
    MemoryNonceStore,
    SecretBox,
    SignatureError,
    SignatureFailure,
    generate_access_key,
    new_master_key,
    parse_request,
    verify_request,
)
from consortia.control.auth import verify as verify_module
from consortia.sdk import Credentials, SigningAuth
from consortia.sdk import signing as s

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec" / "api-signing.md"
KEY = Credentials("CKJBSWY3DPEHPK3PXP", "test-vector-secret-do-not-use-in-production")
T0 = 1_740_830_400  # 20250301T120000Z
NONCE = "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99"
W = s.WINDOW_SECONDS


def lookup(records: dict[str, KeyRecord] | None = None) -> Callable[[str], KeyRecord | None]:
    table = records if records is not None else {KEY.access_key_id: KeyRecord(KEY.secret)}
    return table.get


# -- a request as the server receives it ---------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def with_header(self, name: str, value: str | None) -> Req:
        """Replace (or, with None, remove) every header called ``name``."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=kept if value is None else (*kept, (name, value)))

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers if k.lower() == name.lower())


def signed(method: str = "POST", path: str = "/v1/consortia/acme/members",
           query: str = "role=member&invite=org1", body: bytes = b'{"org":"org3"}',
           headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
           *, ts: int = T0, nonce: str = NONCE, creds: Credentials = KEY,
           extra: tuple[str, ...] = ()) -> Req:
    base = (("Host", "baas.example.com"), *headers)
    out = s.sign_request(creds, method, path, query, base, body,
                         timestamp=s.format_timestamp(ts), nonce=nonce, signed_headers=extra)
    return Req(method, path, query, (*base, *out.headers.items()), body)


def verify(req: Req, *, now: float = T0, store: Any = None,
           records: dict[str, KeyRecord] | None = None) -> str:
    return verify_request(req.method, req.path, req.query, req.headers, req.body,
                          lookup(records), store if store is not None else MemoryNonceStore(),
                          now)


def refused(req: Req, **kw: Any) -> str:
    with pytest.raises(SignatureError) as info:
        verify(req, **kw)
    assert info.value.status == 401
    return info.value.code


# -- test vectors, read from the spec ------------------------------------------------------

_BLOCK = re.compile(r"<!-- vector (\d+) ([a-z-]+) -->\n```[a-z]*\n(.*?)\n```", re.S)


def read_vectors(text: str) -> dict[str, dict[str, str]]:
    vectors: dict[str, dict[str, str]] = {}
    for number, name, body in _BLOCK.findall(text):
        vectors.setdefault(number, {})[name] = body
    return vectors


def send_vector(inp: dict[str, Any]) -> httpx.Request:
    """Sign the vector's request with the real client; return the request httpx built."""
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(204)

    ts = s.parse_timestamp(inp["timestamp"])
    auth = SigningAuth(Credentials(inp["access_key_id"], inp["secret"]),
                       signed_headers=inp["signed_headers"], clock=lambda: ts,
                       nonce=lambda: inp["nonce"])
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.request(inp["method"], inp["url"], headers=inp["headers"],
                       content=inp["body"].encode())
    return captured[0]


def render_vector(inp: dict[str, Any]) -> dict[str, str]:
    req = send_vector(inp)
    parsed = parse_request(req.method, req.url.path, req.url.query, req.headers, req.content,
                           now=s.parse_timestamp(inp["timestamp"]))
    added = [s.HEADER_DATE, s.HEADER_NONCE, s.HEADER_CONTENT_SHA256, s.HEADER_AUTHORIZATION]
    return {
        "canonical-request": parsed.canonical_request,
        "string-to-sign": parsed.string_to_sign,
        "headers": "\n".join(f"{name}: {req.headers[name]}" for name in added),
    }


def render_markdown(number: str, inp: dict[str, Any]) -> str:
    out = render_vector(inp)
    block = "<!-- vector {} {} -->\n```{}\n{}\n```"
    return "\n\n".join([
        "Inputs:", block.format(number, "input", "json", json.dumps(inp, indent=2,
                                                                     ensure_ascii=False)),
        "Canonical request:", block.format(number, "canonical-request", "text",
                                           out["canonical-request"]),
        "String to sign:", block.format(number, "string-to-sign", "text", out["string-to-sign"]),
        "Headers the signer adds:", block.format(number, "headers", "http", out["headers"]),
    ])


VECTORS = read_vectors(DOC.read_text(encoding="utf-8"))


def test_the_spec_has_vectors() -> None:
    assert sorted(VECTORS) == ["1", "2"]
    for blocks in VECTORS.values():
        assert set(blocks) == {"input", "canonical-request", "string-to-sign", "headers"}


@pytest.mark.parametrize("number", sorted(VECTORS))
def test_vector_matches_the_spec(number: str) -> None:
    blocks = VECTORS[number]
    inp = json.loads(blocks["input"])
    out = render_vector(inp)
    for name, text in out.items():
        assert blocks[name] == text, f"vector {number} {name} differs; the code gives:\n{text}"
    # ... and the server accepts the very request the client built, once.
    req = send_vector(inp)
    store = MemoryNonceStore()
    records = {inp["access_key_id"]: KeyRecord(inp["secret"])}
    now = s.parse_timestamp(inp["timestamp"])
    args = (req.method, req.url.path, req.url.query, req.headers, req.content, records.get)
    assert verify_request(*args, store, now) == inp["access_key_id"]
    with pytest.raises(SignatureError) as info:
        verify_request(*args, store, now)
    assert info.value.code == "reused_nonce"


@pytest.mark.parametrize("number", sorted(VECTORS))
def test_vector_is_consistent_by_the_spec_alone(number: str) -> None:
    """The spec's steps 2-4 recomputed with hashlib and hmac only, from the spec's blocks."""
    blocks = VECTORS[number]
    inp = json.loads(blocks["input"])
    digest = hashlib.sha256(blocks["canonical-request"].encode()).hexdigest()
    assert blocks["string-to-sign"] == f"CONSORTIA-HMAC-SHA256\n{inp['timestamp']}\n{digest}"
    mac = hmac.new(inp["secret"].encode(), blocks["string-to-sign"].encode(), hashlib.sha256)
    signed_names = blocks["canonical-request"].split("\n")[-2]
    assert blocks["headers"].endswith(
        f"authorization: CONSORTIA-HMAC-SHA256 Credential={inp['access_key_id']}, "
        f"SignedHeaders={signed_names}, Signature={mac.hexdigest()}")
    body_hash = hashlib.sha256(inp["body"].encode()).hexdigest()
    assert blocks["canonical-request"].endswith("\n" + body_hash)


def test_vector_1_is_a_post_with_query_and_json_body() -> None:
    inp = json.loads(VECTORS["1"]["input"])
    assert inp["method"] == "POST" and "?" in inp["url"]
    assert json.loads(inp["body"]) and inp["headers"]["Content-Type"] == "application/json"


def test_spec_lists_every_error_code() -> None:
    table = DOC.read_text(encoding="utf-8").split("## Verification and error codes")[1]
    table = table.split("\n## ")[0]
    codes = set(re.findall(r"^\| \d+ \|.*\| `([a-z_]+)` \|$", table, re.M))
    assert codes == {f.value for f in s.SignatureFailure}


# -- the httpx client against the verifier ---------------------------------------------------


class Server:
    """A MockTransport handler that verifies every request as the control plane will."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.store = MemoryNonceStore()
        self.nonces: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        try:
            key_id = verify_request(request.method, request.url.path, request.url.query,
                                    request.headers, request.content, lookup(), self.store,
                                    self.now)
        except SignatureError as exc:
            return httpx.Response(exc.status, json={"error": exc.to_dict()})
        self.nonces.append(request.headers[s.HEADER_NONCE])
        return httpx.Response(200, json={"key": key_id})


def _auth(**kw: Any) -> SigningAuth:
    return SigningAuth(KEY, clock=lambda: T0, **kw)


def test_round_trip_sync_client() -> None:
    server = Server()
    with httpx.Client(base_url="https://baas.example.com:8443", auth=_auth(),
                      transport=httpx.MockTransport(server)) as client:
        responses = [
            client.get("/v1/consortia", params={"limit": 10, "q": "a b+c/é"}),
            client.post("/v1/consortia/acme/members?dry_run", json={"org": "org3"}),
            client.put("/v1/keys/CK 1/label", content=b"\x00\xff raw bytes"),
            client.patch("/v1/x", data={"form": "field value"}),
            client.delete("/v1/consortia/acme/members/org3"),
            client.get("/v1/records/Facture n°42"),
        ]
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert len(set(server.nonces)) == 6


def test_round_trip_async_client() -> None:
    server = Server()

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url="https://baas.example.com", auth=_auth(),
                                     transport=httpx.MockTransport(server)) as client:
            a = await client.post("/v1/networks", params={"b": "2", "a": "1"}, json={"n": 1})
            b = await client.get("/v1/networks")
            return [a.status_code, b.status_code]

    assert asyncio.run(main()) == [200, 200]


def test_streamed_bodies_are_read_and_hashed() -> None:
    server = Server()

    def chunks() -> Iterator[bytes]:
        yield b'{"part": 1,'
        yield b' "part2": 2}'

    async def achunks() -> AsyncIterator[bytes]:
        yield b"async "
        yield b"body"

    with httpx.Client(auth=_auth(), transport=httpx.MockTransport(server)) as client:
        assert client.post("https://h.example/v1/up", content=chunks()).status_code == 200

    async def main() -> int:
        async with httpx.AsyncClient(auth=_auth(), transport=httpx.MockTransport(server)) as c:
            return (await c.post("https://h.example/v1/up", content=achunks())).status_code

    assert asyncio.run(main()) == 200


def test_the_same_call_twice_gets_two_nonces_and_is_accepted_twice() -> None:
    server = Server()
    with httpx.Client(auth=_auth(), transport=httpx.MockTransport(server)) as client:
        codes = [client.post("https://h.example/v1/a", json={}).status_code for _ in range(2)]
    assert codes == [200, 200] and len(set(server.nonces)) == 2
    assert all(s.is_valid_nonce(n) and len(n) == 32 for n in server.nonces)


def test_a_request_replayed_through_the_transport_is_refused() -> None:
    server = Server()
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return server(request)

    with httpx.Client(auth=_auth(), transport=httpx.MockTransport(handler)) as client:
        assert client.post("https://h.example/v1/a", json={"x": 1}).status_code == 200
    replay = server(sent[0])
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "reused_nonce"


def test_extra_signed_headers_and_a_wrong_clock() -> None:
    server = Server()
    auth = _auth(signed_headers=["X-Request-Id"])
    with httpx.Client(auth=auth, transport=httpx.MockTransport(server)) as client:
        r = client.get("https://h.example/v1/a", headers={"X-Request-Id": "abc"})
        assert r.status_code == 200
        assert "x-request-id" in r.request.headers["authorization"]
        server.now = T0 + W + 1
        r = client.get("https://h.example/v1/a")
    assert r.status_code == 401 and r.json()["error"]["code"] == "expired_timestamp"
    assert "20250301T121501Z" in r.json()["error"]["message"]  # the server's time, to fix skew


def test_fastapi_dependency_reads_what_it_needs_from_the_request() -> None:
    """The verifier takes what an ASGI app has: decoded path, raw query, headers, body."""
    app = FastAPI()
    store = MemoryNonceStore()

    async def caller(request: Request) -> str:
        return verify_request(request.method, request.scope["path"],
                              request.scope["query_string"], request.headers,
                              await request.body(), lookup(), store, T0)

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST"])
    async def echo(key: str = Depends(caller)) -> dict[str, str]:
        return {"key": key}

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=_auth(),
                                     base_url="http://testserver") as client:
            return [await client.post("/v1/a b/ç", params={"q": "x y", "p": "+"}, json=[1]),
                    await client.get("/v1/records", params=[("c", "2"), ("c", "1")])]

    assert [r.json() for r in asyncio.run(main())] == [{"key": KEY.access_key_id}] * 2


# -- every refusal code ----------------------------------------------------------------------


def test_accepts_a_well_signed_request() -> None:
    assert verify(signed()) == KEY.access_key_id


@pytest.mark.parametrize("name", ["Authorization", *s.REQUIRED_SIGNED_HEADERS])
def test_missing_header(name: str) -> None:
    assert refused(signed().with_header(name, None)) == "missing_header"


def test_a_signed_optional_header_that_is_absent_is_missing() -> None:
    req = signed(extra=("x-request-id",), headers=(("X-Request-Id", "1"),))
    assert verify(req)
    assert refused(req.with_header("x-request-id", None)) == "missing_header"


@pytest.mark.parametrize("mangle", [
    lambda a: a.replace("CONSORTIA-HMAC-SHA256", "AWS4-HMAC-SHA256"),
    lambda a: a.replace("CONSORTIA-HMAC-SHA256 ", "CONSORTIA-HMAC-SHA256  x "),
    lambda a: a.split(", Signature=")[0],
    lambda a: a + ", Signature=" + "0" * 64,
    lambda a: a.replace("Credential=", "Credentials="),
    lambda a: a.replace("Credential=CK", "Credential=C K"),
    lambda a: a[:-1] + "G",
    lambda a: a[:-64] + a[-64:].upper(),
    lambda a: a[:-2],
    lambda a: a.replace("content-type;host", "host;content-type"),
    lambda a: a.replace("content-type;host", "Content-Type;host"),
    lambda a: a.replace("content-type;host", "content-type;host;host"),
    lambda a: a.replace("content-type;", "authorization;content-type;"),
    lambda a: "",
])
def test_malformed_authorization(mangle: Callable[[str], str]) -> None:
    req = signed()
    bad = req.with_header("Authorization", mangle(req.header("Authorization")))
    assert refused(bad) == "malformed_authorization"


def test_authorization_fields_in_any_order_and_spacing() -> None:
    req = signed()
    auth = s.parse_authorization(req.header("Authorization"))
    value = (f"CONSORTIA-HMAC-SHA256 Signature={auth.signature} ,SignedHeaders="
             f"{';'.join(auth.signed_headers)},Credential={auth.access_key_id}")
    assert verify(req.with_header("Authorization", value)) == KEY.access_key_id


def test_two_authorization_headers_are_malformed() -> None:
    req = signed()
    twice = replace(req, headers=(*req.headers, ("authorization", req.header("Authorization"))))
    assert refused(twice) == "malformed_authorization"


@pytest.mark.parametrize(("name", "value"), [
    (s.HEADER_DATE, "2025-03-01T12:00:00Z"),
    (s.HEADER_DATE, "20250301T120000"),
    (s.HEADER_DATE, "20250230T120000Z"),
    (s.HEADER_DATE, "1740830400"),
    (s.HEADER_NONCE, "short"),
    (s.HEADER_NONCE, "x" * 65),
    (s.HEADER_NONCE, "not/a:valid nonce!!"),
    (s.HEADER_CONTENT_SHA256, "E" * 64),
    (s.HEADER_CONTENT_SHA256, "e" * 63),
    (s.HEADER_CONTENT_SHA256, "UNSIGNED-PAYLOAD"),
])
def test_malformed_header(name: str, value: str) -> None:
    assert refused(signed().with_header(name, value)) == "malformed_header"


def test_a_repeated_signed_header_is_malformed_not_joined() -> None:
    req = signed()
    twice = replace(req, headers=(*req.headers, ("content-type", "text/plain")))
    assert refused(twice) == "malformed_header"
    with pytest.raises(s.SigningFormatError):
        signed(headers=(("Content-Type", "a/b"), ("content-type", "c/d")))


def test_a_header_value_with_cr_or_lf_is_malformed() -> None:
    req = signed(extra=("x-a",), headers=(("X-A", "1"),))
    assert refused(req.with_header("X-A", "1\r\nx-b: 2")) == "malformed_header"


@pytest.mark.parametrize("name", s.REQUIRED_SIGNED_HEADERS)
def test_unsigned_header(name: str) -> None:
    req = signed()
    auth = s.parse_authorization(req.header("Authorization"))
    names = tuple(n for n in auth.signed_headers if n != name)
    # A correct signature over the smaller header set is still refused.
    values = s.header_values(req.headers)
    canonical = s.canonical_request(req.method, req.path, req.query, values, names,
                                    req.header(s.HEADER_CONTENT_SHA256))
    sig = s.compute_signature(KEY.secret, s.string_to_sign(s.format_timestamp(T0), canonical))
    bad = req.with_header("Authorization", s.format_authorization(KEY.access_key_id, names, sig))
    assert refused(bad) == "unsigned_header"


@pytest.mark.parametrize(("offset", "ok"), [
    (0, True), (W, True), (-W, True), (W + 1, False), (-W - 1, False),
    (W + 0.5, False), (-W - 0.5, False), (W - 0.5, True), (86_400, False),
])
def test_window_edges(offset: float, ok: bool) -> None:
    """Exactly 15 minutes old or ahead is accepted; beyond, in either direction, is not."""
    req = signed()
    if ok:
        assert verify(req, now=T0 + offset) == KEY.access_key_id
    else:
        assert refused(req, now=T0 + offset) == "expired_timestamp"


def test_unknown_access_key() -> None:
    assert refused(signed(), records={}) == "unknown_access_key"
    other = Credentials("CKOTHERKEY0000000", "another secret")
    assert refused(signed(creds=other)) == "unknown_access_key"


def test_disabled_access_key_is_told_only_to_the_secret_holder() -> None:
    records = {KEY.access_key_id: KeyRecord(KEY.secret, enabled=False)}
    assert refused(signed(), records=records) == "disabled_access_key"
    forged = signed(creds=Credentials(KEY.access_key_id, "guess"))
    assert refused(forged, records=records) == "bad_signature"


def test_bad_signature() -> None:
    assert refused(signed(creds=Credentials(KEY.access_key_id, KEY.secret + "x"))) \
        == "bad_signature"
    req = signed()
    sig = req.header("Authorization")[-64:]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    bad = req.with_header("Authorization", req.header("Authorization")[:-64] + flipped)
    assert refused(bad) == "bad_signature"


def test_bad_signature_message_gives_the_canonical_request_hash() -> None:
    req = signed(creds=Credentials(KEY.access_key_id, "wrong"))
    with pytest.raises(SignatureError) as info:
        verify(req)
    parsed = parse_request(req.method, req.path, req.query, req.headers, req.body, now=T0)
    assert parsed.string_to_sign.split("\n")[2] in info.value.message
    assert KEY.secret not in info.value.message


def test_body_changed_after_signing() -> None:
    req = signed(body=b'{"amount": 10}')
    assert refused(replace(req, body=b'{"amount": 1000}')) == "body_mismatch"
    assert refused(replace(req, body=b"")) == "body_mismatch"
    # Changing the signed body hash as well breaks the signature instead.
    both = replace(req, body=b"{}").with_header(s.HEADER_CONTENT_SHA256, s.body_sha256(b"{}"))
    assert refused(both) == "bad_signature"


def test_reused_nonce() -> None:
    store = MemoryNonceStore()
    assert verify(signed(), store=store) == KEY.access_key_id
    assert refused(signed(), store=store) == "reused_nonce"
    # Another request, freshly signed, with the same nonce: still refused.
    assert refused(signed(method="GET", query="", body=b"", ts=T0 + 60), now=T0 + 60,
                   store=store) == "reused_nonce"


def test_nonces_are_per_access_key() -> None:
    other = Credentials("CKOTHERKEY0000000", "other secret")
    records = {KEY.access_key_id: KeyRecord(KEY.secret), other.access_key_id:
               KeyRecord(other.secret)}
    store = MemoryNonceStore()
    assert verify(signed(), store=store, records=records) == KEY.access_key_id
    assert verify(signed(creds=other), store=store, records=records) == other.access_key_id


def test_a_nonce_is_free_again_once_its_request_expired() -> None:
    store = MemoryNonceStore()
    assert verify(signed(), store=store)
    later = T0 + W + 1  # the first request can no longer be accepted by anyone
    assert verify(signed(ts=later), store=store, now=later) == KEY.access_key_id
    # A request from the future keeps its nonce until its own timestamp + window.
    future = signed(ts=T0 + W, nonce="f" * 32)
    assert verify(future, store=store, now=T0)
    assert refused(signed(ts=T0 + 2 * W, nonce="f" * 32), store=store,
                   now=T0 + 2 * W) == "reused_nonce"


class CountingStore(MemoryNonceStore):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    def claim(self, access_key_id: str, nonce: str, *, expires_at: float, now: float) -> bool:
        self.claims += 1
        return super().claim(access_key_id, nonce, expires_at=expires_at, now=now)


def test_no_refusal_burns_the_nonce() -> None:
    """Only an accepted request records its nonce; the genuine request still goes through."""
    good = signed()
    store = CountingStore()
    attempts: list[tuple[Req, dict[str, Any]]] = [
        (signed(creds=Credentials(KEY.access_key_id, "forged")), {}),
        (replace(good, body=b"tampered"), {}),
        (good.with_header(s.HEADER_NONCE, None), {}),
        (good, {"now": T0 + W + 1}),
        (good, {"records": {KEY.access_key_id: KeyRecord(KEY.secret, enabled=False)}}),
        (good, {"records": {}}),
    ]
    for req, kw in attempts:
        refused(req, store=store, **kw)
    assert store.claims == 0 and len(store) == 0
    assert verify(good, store=store) == KEY.access_key_id
    assert store.claims == 1


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(verify_module.hmac, "compare_digest", spy)
    req = signed()
    assert verify(req)
    assert refused(signed(creds=Credentials(KEY.access_key_id, "x"), nonce="b" * 32)) \
        == "bad_signature"
    assert len(calls) == 2
    assert calls[0][0] == calls[0][1] == req.header("Authorization")[-64:].encode()
    assert calls[1][0] != calls[1][1]


def test_signature_error_maps_to_401() -> None:
    with pytest.raises(SignatureError) as info:
        verify(signed().with_header("Authorization", None))
    assert info.value.status == 401
    assert info.value.to_dict()["code"] == "missing_header"
    assert {f.value for f in SignatureFailure} == {
        "missing_header", "malformed_authorization", "malformed_header", "unsigned_header",
        "expired_timestamp", "unknown_access_key", "bad_signature", "disabled_access_key",
        "body_mismatch", "reused_nonce"}


# -- canonicalization ------------------------------------------------------------------------


def test_query_order_and_encoding_do_not_matter() -> None:
    variants = [
        "b=2&a=x%20y&a=1&c",
        "a=1&c=&a=x+y&b=2",
        "c&b=%32&a=%78%20%79&a=1",
        "&&a=1&&b=2&a=x%20y&c=&",
    ]
    assert len({s.canonical_query(v) for v in variants}) == 1
    assert s.canonical_query(variants[0]) == "a=1&a=x%20y&b=2&c="
    assert s.canonical_query([("b", "2"), ("a", "x y"), ("a", "1"), ("c", "")]) \
        == s.canonical_query(variants[0])
    assert s.canonical_query(b"%c3%a9=%7e") == s.canonical_query("%C3%A9=~") == "%C3%A9=~"
    assert s.canonical_query("p=%2B") != s.canonical_query("p=+")
    req = signed(query=variants[0])
    assert verify(replace(req, query=variants[2])) == KEY.access_key_id


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=6),
       st.randoms(use_true_random=False), st.booleans())
def test_query_canonical_form_is_order_and_encoding_independent(
        pairs: list[tuple[str, str]], rnd: Any, plus: bool) -> None:
    encode = quote_plus if plus else (lambda v: quote(v, safe=""))
    raw = "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert s.canonical_query(raw) == s.canonical_query(shuffled)


def test_canonical_path() -> None:
    assert s.canonical_path("") == "/"
    assert s.canonical_path("/") == "/"
    assert s.canonical_path("/v1/a b/é~-._") == "/v1/a%20b/%C3%A9~-._"
    assert s.canonical_path("/a/./../b//c/") == "/a/./../b//c/"
    assert s.canonical_path("/a+b;c=d") == "/a%2Bb%3Bc%3Dd"


def test_header_case_and_whitespace_do_not_matter() -> None:
    req = signed(extra=("x-trace",), headers=(("Content-Type", "application/json"),
                                               ("X-Trace", "a  b\t c")))
    messy = tuple((k.upper() if i % 2 else k.swapcase(), f" \t{v}  ")
                  for i, (k, v) in enumerate(req.headers) if k.lower() != "x-trace")
    messy = (*messy, ("x-TRACE", "  a b   c\t"))
    assert verify(replace(req, headers=messy)) == KEY.access_key_id


@pytest.mark.parametrize("kind", ["pairs", "dict", "httpx", "starlette"])
def test_headers_in_any_container(kind: str) -> None:
    req = signed()
    containers: dict[str, Any] = {
        "pairs": list(req.headers),
        "dict": dict(req.headers),
        "httpx": httpx.Headers(list(req.headers)),
        "starlette": StarletteHeaders(raw=[(k.lower().encode(), v.encode())
                                           for k, v in req.headers]),
    }
    assert verify_request(req.method, req.path, req.query, containers[kind], req.body,
                          lookup(), MemoryNonceStore(), T0) == KEY.access_key_id


def test_unsigned_headers_may_change() -> None:
    req = signed()
    assert verify(req.with_header("User-Agent", "proxy/1.0").with_header("Accept", "*/*"))


def test_method_is_upper_cased() -> None:
    assert verify(replace(signed(method="post"), method="POST")) == KEY.access_key_id


def test_timestamps() -> None:
    assert s.format_timestamp(T0) == "20250301T120000Z"
    assert s.format_timestamp(T0 + 0.999) == "20250301T120000Z"
    assert s.parse_timestamp("20250301T120000Z") == T0
    assert s.parse_timestamp(s.format_timestamp(0)) == 0
    with pytest.raises(s.SigningFormatError):
        s.parse_timestamp("20250301T246000Z")


def test_sign_request_refuses_what_it_cannot_sign() -> None:
    with pytest.raises(s.SigningFormatError):
        signed(nonce="short")
    with pytest.raises(s.SigningFormatError):
        s.sign_request(KEY, "GET", "/", "", [("Host", "h")], b"", timestamp="now", nonce=NONCE)
    with pytest.raises(s.SigningFormatError):
        s.sign_request(KEY, "GET", "/", "", [], b"", timestamp="20250301T120000Z", nonce=NONCE)
    with pytest.raises(s.SigningFormatError):
        signed(extra=("authorization",))
    with pytest.raises(s.SigningFormatError):
        Credentials("has space", "x")
    with pytest.raises(s.SigningFormatError):
        Credentials("CK1", "")


def test_secrets_do_not_leak_through_repr() -> None:
    creds = generate_access_key()
    assert creds.secret not in repr(creds)
    assert creds.secret not in repr(SigningAuth(creds))
    assert creds.secret not in repr(KeyRecord(creds.secret))


# -- property: any change to what is signed invalidates the signature -------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=10)
_header_value = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                        max_size=12)
_path = st.lists(_text.filter(lambda t: "/" not in t), min_size=1, max_size=4).map(
    lambda segs: "/" + "/".join(segs))
_query = st.lists(st.tuples(_text, _text), max_size=4)


@pytest.mark.parametrize("what", ["method", "path", "query", "host", "content-type", "date",
                                  "nonce", "body", "body+hash"])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), path=_path,
       query=_query, ctype=_header_value, body=st.binary(max_size=64), data=st.data())
def test_any_change_invalidates(what: str, method: str, path: str,
                                query: list[tuple[str, str]], ctype: str, body: bytes,
                                data: st.DataObject) -> None:
    """A request accepted as signed is refused after any change to what was signed."""
    raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    req = signed(method, path, raw_query, body, (("Content-Type", ctype),))
    assert verify(req) == KEY.access_key_id

    expected = "bad_signature"
    if what == "method":
        new = data.draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]))
        assume(new != method)
        changed = replace(req, method=new)
    elif what == "path":
        new_path = data.draw(_path)
        assume(s.canonical_path(new_path) != s.canonical_path(path))
        changed = replace(req, path=new_path)
    elif what == "query":
        new_query = data.draw(_query)
        assume(s.canonical_query(new_query) != s.canonical_query(query))
        changed = replace(req, query="&".join(f"{quote(k)}={quote(v)}" for k, v in new_query))
    elif what in ("host", "content-type"):
        value = data.draw(_header_value)
        assume(value != req.header(what))
        changed = req.with_header(what, value)
    elif what == "date":
        delta = data.draw(st.integers(-W, W).filter(bool))
        changed = req.with_header(s.HEADER_DATE, s.format_timestamp(T0 + delta))
    elif what == "nonce":
        nonce = data.draw(st.text("0123456789abcdef", min_size=32, max_size=32))
        assume(nonce != NONCE)
        changed = req.with_header(s.HEADER_NONCE, nonce)
    else:
        new_body = data.draw(st.binary(max_size=64))
        assume(new_body != body)
        changed = replace(req, body=new_body)
        if what == "body":
            expected = "body_mismatch"
        else:
            changed = changed.with_header(s.HEADER_CONTENT_SHA256, s.body_sha256(new_body))
    assert refused(changed) == expected


# -- sealed secrets in use (the store and the box alone: test_access_keys.py) ----------------


def test_a_sealed_secret_verifies_requests() -> None:
    box = SecretBox(new_master_key())
    creds = generate_access_key()
    rows = {creds.access_key_id: box.seal(creds.access_key_id, creds.secret)}

    def from_db(key_id: str) -> KeyRecord | None:
        sealed = rows.get(key_id)
        return None if sealed is None else KeyRecord(box.open(key_id, sealed))

    req = signed(creds=creds)
    assert verify_request(req.method, req.path, req.query, req.headers, req.body, from_db,
                          MemoryNonceStore(), T0) == creds.access_key_id


if __name__ == "__main__":  # regenerate the vector blocks of the spec from their inputs
    text = DOC.read_text(encoding="utf-8")
    for number, blocks in sorted(read_vectors(text).items()):
        inp = json.loads(blocks["input"])
        start = text.index(f"Inputs:\n\n<!-- vector {number} input -->")
        end = text.index("```", text.index(f"<!-- vector {number} headers -->") + 30) + 3
        text = text[:start] + render_markdown(number, inp) + text[end:]
    if "--write" in sys.argv:
        DOC.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
