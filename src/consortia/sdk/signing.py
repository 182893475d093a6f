"""Signed API requests: the algorithm shared by the client and the server.

``CONSORTIA-HMAC-SHA256`` (normative text: ``docs/spec/api-signing.md``) signs an HTTP
request with an access key's secret::

    canonical request = METHOD \\n canonical path \\n canonical query \\n
                        canonical headers (one "name:value\\n" each) \\n
                        signed header names ("a;b;c") \\n body SHA-256 (hex)
    string to sign    = CONSORTIA-HMAC-SHA256 \\n timestamp \\n SHA-256(canonical request)
    signature         = hex HMAC-SHA256(secret, string to sign)
    Authorization: CONSORTIA-HMAC-SHA256 Credential=<id>, SignedHeaders=<a;b>, Signature=<hex>

Everything here is pure: no clock, no randomness, no I/O. The client
(``consortia.sdk.auth.SigningAuth``) supplies the time and the nonce; the server
(``consortia.control.auth``) supplies the secret, the nonce store and the time.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias
from urllib.parse import quote_from_bytes, unquote_to_bytes

ALGORITHM = "CONSORTIA-HMAC-SHA256"
"""The scheme of the Authorization header and the first line of the string to sign."""

HEADER_AUTHORIZATION = "authorization"
HEADER_DATE = "x-consortia-date"
HEADER_NONCE = "x-consortia-nonce"
HEADER_CONTENT_SHA256 = "x-consortia-content-sha256"

REQUIRED_SIGNED_HEADERS: tuple[str, ...] = (
    "host", HEADER_CONTENT_SHA256, HEADER_DATE, HEADER_NONCE,
)
"""Headers every signature must cover, in canonical (sorted) order."""

DEFAULT_SIGNED_HEADERS: tuple[str, ...] = ("content-type",)
"""Signed in addition to the required ones whenever the request carries them."""

WINDOW_SECONDS = 15 * 60
"""A request is accepted while ``|server time - its timestamp| <= WINDOW_SECONDS``."""

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z\Z")
_NONCE_RE = re.compile(r"[A-Za-z0-9._~-]{16,64}\Z")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
_ACCESS_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_HEADER_NAME_RE = re.compile(r"[a-z0-9-]+\Z")
_INNER_WS_RE = re.compile(r"[ \t]+")

HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]
"""Headers as a mapping (``httpx.Headers``, Starlette ``Headers``, a dict) or as pairs."""

QueryInput: TypeAlias = str | bytes | Iterable[tuple[str, str]]
"""The raw (still percent-encoded) query string, or already decoded ``(name, value)`` pairs."""


class SignatureFailure(StrEnum):
    """Why a signed request was refused: the stable codes of the 401 answers."""

    MISSING_HEADER = "missing_header"
    MALFORMED_AUTHORIZATION = "malformed_authorization"
    MALFORMED_HEADER = "malformed_header"
    UNSIGNED_HEADER = "unsigned_header"
    EXPIRED_TIMESTAMP = "expired_timestamp"
    UNKNOWN_ACCESS_KEY = "unknown_access_key"
    BAD_SIGNATURE = "bad_signature"
    DISABLED_ACCESS_KEY = "disabled_access_key"
    BODY_MISMATCH = "body_mismatch"
    REUSED_NONCE = "reused_nonce"


class SigningFormatError(ValueError):
    """Input that has no canonical form (a malformed header, timestamp or Authorization)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key: its public id and its secret (the HMAC key, never sent)."""

    access_key_id: str
    """Public identifier, sent in the ``Credential=`` field."""
    secret: str = field(repr=False)
    """The shared secret; its UTF-8 bytes are the HMAC key. Shown to its owner once."""

    def __post_init__(self) -> None:
        if not _ACCESS_KEY_ID_RE.match(self.access_key_id):
            raise SigningFormatError("an access key id is 1-128 characters of [A-Za-z0-9_-]")
        if not self.secret:
            raise SigningFormatError("an access key secret must not be empty")


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parsed ``Authorization`` header."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    """Lower-case, sorted, unique header names."""
    signature: str
    """64 lower-case hex digits."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What signing produced: the headers to send and the intermediate texts (for debugging)."""

    headers: dict[str, str]
    """Header names (lower-case) and values to set on the request, Authorization included."""
    canonical_request: str
    string_to_sign: str
    signature: str


# -- small pieces ----------------------------------------------------------------------------


def format_timestamp(epoch_seconds: float) -> str:
    """``X-Consortia-Date`` value: UTC, ISO 8601 basic format, whole seconds."""
    return time.strftime(TIMESTAMP_FORMAT, time.gmtime(int(epoch_seconds)))


def parse_timestamp(value: str) -> int:
    """Seconds since the epoch of an ``X-Consortia-Date`` value; exactly that format."""
    if not _TIMESTAMP_RE.match(value):
        raise SigningFormatError(f"{HEADER_DATE} must look like 20250131T235959Z")
    try:
        return calendar.timegm(time.strptime(value, TIMESTAMP_FORMAT))
    except ValueError as exc:
        raise SigningFormatError(f"{HEADER_DATE} is not a valid date: {value}") from exc


def is_valid_nonce(value: str) -> bool:
    """16 to 64 characters, RFC 3986 unreserved (``A-Z a-z 0-9 - . _ ~``)."""
    return _NONCE_RE.match(value) is not None


def is_valid_sha256_hex(value: str) -> bool:
    return _SHA256_RE.match(value) is not None


def body_sha256(body: bytes) -> str:
    """``X-Consortia-Content-SHA256`` value: lower-case hex SHA-256 of the body bytes."""
    return hashlib.sha256(body).hexdigest()


def _encode(raw: bytes) -> str:
    """RFC 3986 percent-encoding: unreserved bytes stay, every other byte is ``%XX``."""
    return quote_from_bytes(raw, safe="")


def canonical_path(path: str) -> str:
    """Each ``/``-separated segment of the decoded path, UTF-8 and percent-encoded.

    The path is not normalized (``.``/``..`` and empty segments are kept); an empty path
    is ``/``.
    """
    if not path:
        return "/"
    return "/".join(_encode(seg.encode("utf-8", "surrogatepass")) for seg in path.split("/"))


def _query_pairs(query: QueryInput) -> list[tuple[bytes, bytes]]:
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    if isinstance(query, str):
        pairs = []
        for part in query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            pairs.append((unquote_to_bytes(name.replace("+", " ")),
                          unquote_to_bytes(value.replace("+", " "))))
        return pairs
    return [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
            for k, v in query]


def canonical_query(query: QueryInput) -> str:
    """``name=value`` pairs, each side decoded then percent-encoded, sorted, joined by ``&``.

    A raw query string is split on ``&``; ``+`` means a space (form encoding), so a literal
    plus travels as ``%2B``. A name without ``=`` has an empty value. Pairs are sorted by
    encoded name, then encoded value; repeated names keep every value.
    """
    encoded = sorted((_encode(k), _encode(v)) for k, v in _query_pairs(query))
    return "&".join(f"{k}={v}" for k, v in encoded)


def normalize_header_value(value: str) -> str:
    """Trim the value and collapse each inner run of spaces and tabs to one space."""
    if "\r" in value or "\n" in value:
        raise SigningFormatError("a header value must not contain CR or LF")
    return _INNER_WS_RE.sub(" ", value.strip(" \t"))


def header_values(headers: HeaderInput) -> dict[str, list[str]]:
    """Every header, its name lower-cased, with all its values in order of appearance."""
    multi = getattr(headers, "multi_items", None)
    items: Iterable[tuple[str, str]]
    if callable(multi):  # httpx.Headers joins repeated headers in items(); this does not
        items = multi()
    elif isinstance(headers, Mapping):
        items = headers.items()
    else:
        items = headers
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name.lower(), []).append(value)
    return out


def canonical_headers(headers: Mapping[str, list[str]], signed_headers: Iterable[str]) -> str:
    """``name:value\\n`` for each signed header, in order; ``headers`` from ``header_values``.

    A signed header must appear exactly once: repeated signed headers are refused rather
    than joined, so that no proxy folding of repeated headers can change what was signed.
    """
    lines = []
    for name in signed_headers:
        values = headers.get(name)
        if not values:
            raise SigningFormatError(f"signed header {name!r} is missing")
        if len(values) > 1:
            raise SigningFormatError(f"signed header {name!r} appears more than once")
        lines.append(f"{name}:{normalize_header_value(values[0])}\n")
    return "".join(lines)


def signed_header_list(names: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, de-duplicated and sorted header names."""
    out = sorted({n.strip().lower() for n in names})
    for name in out:
        if not _HEADER_NAME_RE.match(name):
            raise SigningFormatError(f"not a header name: {name!r}")
        if name == HEADER_AUTHORIZATION:
            raise SigningFormatError("the Authorization header cannot be signed")
    return tuple(out)


# -- the three steps -------------------------------------------------------------------------


def canonical_request(method: str, path: str, query: QueryInput,
                      headers: Mapping[str, list[str]], signed_headers: tuple[str, ...],
                      content_sha256: str) -> str:
    """Step 1. ``headers`` as returned by ``header_values``; ``signed_headers`` canonical."""
    return "\n".join([
        method.upper(),
        canonical_path(path),
        canonical_query(query),
        canonical_headers(headers, signed_headers),
        ";".join(signed_headers),
        content_sha256,
    ])


def string_to_sign(timestamp: str, canonical_req: str) -> str:
    """Step 2. ``timestamp`` is the ``X-Consortia-Date`` value, exactly as sent."""
    digest = hashlib.sha256(canonical_req.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{digest}"


def compute_signature(secret: str, to_sign: str) -> str:
    """Step 3. Lower-case hex HMAC-SHA256 keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def format_authorization(access_key_id: str, signed_headers: tuple[str, ...],
                         signature: str) -> str:
    return (f"{ALGORITHM} Credential={access_key_id}, "
            f"SignedHeaders={';'.join(signed_headers)}, Signature={signature}")


def parse_authorization(value: str) -> Authorization:
    """Parse ``CONSORTIA-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``.

    The three fields may come in any order, each exactly once; SignedHeaders must already
    be canonical (lower-case, sorted, unique).
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        raise SigningFormatError(f"the Authorization scheme must be {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, field_value = part.strip().partition("=")
        if not eq or name not in ("Credential", "SignedHeaders", "Signature") or name in fields:
            raise SigningFormatError(
                "Authorization takes Credential=, SignedHeaders= and Signature= once each")
        fields[name] = field_value
    if len(fields) != 3:
        raise SigningFormatError(
            "Authorization takes Credential=, SignedHeaders= and Signature= once each")
    if not _ACCESS_KEY_ID_RE.match(fields["Credential"]):
        raise SigningFormatError("Credential is not an access key id")
    if not is_valid_sha256_hex(fields["Signature"]):
        raise SigningFormatError("Signature must be 64 lower-case hex digits")
    names = tuple(fields["SignedHeaders"].split(";"))
    if names != signed_header_list(names):
        raise SigningFormatError("SignedHeaders must be lower-case, sorted and unique")
    return Authorization(fields["Credential"], names, fields["Signature"])


def sign_request(credentials: Credentials, method: str, path: str, query: QueryInput,
                 headers: HeaderInput, body: bytes, *, timestamp: str, nonce: str,
                 signed_headers: Iterable[str] = ()) -> SignedRequest:
    """Sign a request: returns the headers to set (date, nonce, body hash, Authorization).

    ``headers`` must hold ``Host``; any ``X-Consortia-*`` signing headers in it are
    replaced. The signed headers are the required ones, ``Content-Type`` when present, and
    ``signed_headers``.
    """
    parse_timestamp(timestamp)
    if not is_valid_nonce(nonce):
        raise SigningFormatError("a nonce is 16-64 characters of [A-Za-z0-9._~-]")
    added = {HEADER_DATE: timestamp, HEADER_NONCE: nonce,
             HEADER_CONTENT_SHA256: body_sha256(body)}
    values = header_values(headers)
    values.pop(HEADER_AUTHORIZATION, None)
    values.update({name: [v] for name, v in added.items()})
    optional = [n for n in DEFAULT_SIGNED_HEADERS if n in values]
    names = signed_header_list([*REQUIRED_SIGNED_HEADERS, *optional, *signed_headers])
    canonical = canonical_request(method, path, query, values, names,
                                  added[HEADER_CONTENT_SHA256])
    to_sign = string_to_sign(timestamp, canonical)
    signature = compute_signature(credentials.secret, to_sign)
    added[HEADER_AUTHORIZATION] = format_authorization(credentials.access_key_id, names,
                                                       signature)
    return SignedRequest(added, canonical, to_sign, signature)
