"""Verifying a signed API request (``docs/spec/api-signing.md``).

``verify_request`` takes the request as the web framework hands it over — method, decoded
path, raw query string, headers, raw body bytes — and returns the access key id or raises
``SignatureError`` with one stable code. The checks run in this order::

    parse_request   Authorization present, well formed     missing_header, malformed_authorization
    (no secret)     host, date, nonce, body hash present    missing_header
                    ... and all among SignedHeaders        unsigned_header
                    each signed header present once, valid  missing_header, malformed_header
                    |now - timestamp| <= window             expired_timestamp
    lookup_secret   the access key exists                   unknown_access_key
    authenticate    HMAC matches (hmac.compare_digest)      bad_signature
                    the key is enabled                      disabled_access_key
                    the body hashes to the signed hash      body_mismatch
                    the nonce is claimed for the first time reused_nonce

Nothing is written before the signature verifies: a forged or altered request cannot burn
a client's nonce or fill the nonce store, and only the holder of a secret learns that its
key is disabled. An async caller whose key lookup is async runs the three steps itself::

    parsed = parse_request(method, path, query, headers, body, now=now)
    record = await keys.get(parsed.access_key_id)
    key_id = authenticate(parsed, record, nonce_store, now=now)
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consortia.control.auth.nonces import NonceStore
from consortia.sdk.signing import (
    HEADER_AUTHORIZATION,
    HEADER_CONTENT_SHA256,
    HEADER_DATE,
    HEADER_NONCE,
    REQUIRED_SIGNED_HEADERS,
    WINDOW_SECONDS,
    HeaderInput,
    QueryInput,
    SignatureFailure,
    SigningFormatError,
    body_sha256,
    canonical_request,
    compute_signature,
    format_timestamp,
    header_values,
    is_valid_nonce,
    is_valid_sha256_hex,
    parse_authorization,
    parse_timestamp,
    string_to_sign,
)
from consortia.types.errors import SignatureError


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the server holds about an access key, as ``lookup_secret`` returns it."""

    secret: str = field(repr=False)
    """The plain secret (opened from its sealed form with ``SecretBox.open``)."""
    enabled: bool = True
    """A disabled key's requests are refused with ``disabled_access_key``."""


SecretLookup = Callable[[str], KeyRecord | None]
"""Access key id → its record, or None when no such key exists."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A request that passed every check that needs no secret."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: int
    """Seconds since the epoch, from ``X-Consortia-Date``."""
    nonce: str
    content_sha256: str
    """The body hash the client signed (``X-Consortia-Content-SHA256``)."""
    body_sha256: str
    """The hash of the body actually received."""
    canonical_request: str
    string_to_sign: str
    expires_at: int
    """Until when (inclusive) the request could be replayed: timestamp + window."""


def _fail(code: SignatureFailure, message: str) -> SignatureError:
    return SignatureError(message, code=code.value)


def parse_request(method: str, path: str, query: QueryInput, headers: HeaderInput,
                  body: bytes, *, now: float, window: int = WINDOW_SECONDS) -> ParsedRequest:
    """Every check that needs no secret and writes nothing; raises ``SignatureError``."""
    values = header_values(headers)
    auth_values = values.get(HEADER_AUTHORIZATION, [])
    if not auth_values:
        raise _fail(SignatureFailure.MISSING_HEADER, "the Authorization header is missing")
    if len(auth_values) > 1:
        raise _fail(SignatureFailure.MALFORMED_AUTHORIZATION,
                    "the Authorization header appears more than once")
    try:
        auth = parse_authorization(auth_values[0])
    except SigningFormatError as exc:
        raise _fail(SignatureFailure.MALFORMED_AUTHORIZATION, str(exc)) from None

    for name in REQUIRED_SIGNED_HEADERS:
        if name not in values:
            raise _fail(SignatureFailure.MISSING_HEADER, f"the {name} header is missing")
    for name in REQUIRED_SIGNED_HEADERS:
        if name not in auth.signed_headers:
            raise _fail(SignatureFailure.UNSIGNED_HEADER,
                        f"SignedHeaders must include {name}")
    for name in auth.signed_headers:
        if name not in values:
            raise _fail(SignatureFailure.MISSING_HEADER, f"signed header {name} is missing")
        if len(values[name]) > 1:
            raise _fail(SignatureFailure.MALFORMED_HEADER,
                        f"signed header {name} appears more than once")

    date, nonce = values[HEADER_DATE][0].strip(), values[HEADER_NONCE][0].strip()
    content_sha256 = values[HEADER_CONTENT_SHA256][0].strip()
    try:
        timestamp = parse_timestamp(date)
    except SigningFormatError as exc:
        raise _fail(SignatureFailure.MALFORMED_HEADER, str(exc)) from None
    if not is_valid_nonce(nonce):
        raise _fail(SignatureFailure.MALFORMED_HEADER,
                    f"{HEADER_NONCE} must be 16-64 characters of [A-Za-z0-9._~-]")
    if not is_valid_sha256_hex(content_sha256):
        raise _fail(SignatureFailure.MALFORMED_HEADER,
                    f"{HEADER_CONTENT_SHA256} must be 64 lower-case hex digits")

    if abs(now - timestamp) > window:
        raise _fail(SignatureFailure.EXPIRED_TIMESTAMP,
                    f"{HEADER_DATE} {date} is {now - timestamp:+.0f} s from the server's "
                    f"clock ({format_timestamp(now)}); the window is ±{window} s")

    try:
        canonical = canonical_request(method, path, query, values, auth.signed_headers,
                                      content_sha256)
    except SigningFormatError as exc:
        raise _fail(SignatureFailure.MALFORMED_HEADER, str(exc)) from None
    return ParsedRequest(
        access_key_id=auth.access_key_id, signed_headers=auth.signed_headers,
        signature=auth.signature, timestamp=timestamp, nonce=nonce,
        content_sha256=content_sha256, body_sha256=body_sha256(body),
        canonical_request=canonical, string_to_sign=string_to_sign(date, canonical),
        expires_at=timestamp + window,
    )


def authenticate(parsed: ParsedRequest, record: KeyRecord | None, nonce_store: NonceStore,
                 *, now: float) -> str:
    """The checks that need the secret, then the nonce claim; returns the access key id."""
    if record is None:
        raise _fail(SignatureFailure.UNKNOWN_ACCESS_KEY,
                    f"no access key {parsed.access_key_id}")
    expected = compute_signature(record.secret, parsed.string_to_sign)
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("ascii")):
        hashed = parsed.string_to_sign.rsplit("\n", 1)[-1]
        raise _fail(SignatureFailure.BAD_SIGNATURE,
                    "the signature does not match; the server's canonical request has "
                    f"SHA-256 {hashed} (docs/spec/api-signing.md)")
    if not record.enabled:
        raise _fail(SignatureFailure.DISABLED_ACCESS_KEY,
                    f"access key {parsed.access_key_id} is disabled")
    if parsed.content_sha256 != parsed.body_sha256:
        raise _fail(SignatureFailure.BODY_MISMATCH,
                    f"the body received hashes to {parsed.body_sha256}, not to the signed "
                    f"{HEADER_CONTENT_SHA256} {parsed.content_sha256}")
    if not nonce_store.claim(parsed.access_key_id, parsed.nonce,
                             expires_at=parsed.expires_at, now=now):
        raise _fail(SignatureFailure.REUSED_NONCE,
                    f"nonce {parsed.nonce} was already used with this access key")
    return parsed.access_key_id


def verify_request(method: str, path: str, query: QueryInput, headers: HeaderInput,
                   body: bytes, lookup_secret: SecretLookup, nonce_store: NonceStore,
                   now: float | None = None, *, window: int = WINDOW_SECONDS) -> str:
    """Verify a signed request; returns its access key id or raises ``SignatureError``.

    ``path`` is the decoded path the application routes on (ASGI ``scope["path"]``),
    ``query`` the raw query string (``scope["query_string"]``) or decoded pairs, ``body``
    the raw body bytes (``await request.body()``). ``now`` defaults to ``time.time()``.
    """
    at = time.time() if now is None else now
    parsed = parse_request(method, path, query, headers, body, now=at, window=window)
    return authenticate(parsed, lookup_secret(parsed.access_key_id), nonce_store, now=at)
