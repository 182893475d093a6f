"""``SigningAuth``: an ``httpx.Auth`` that signs every request with an access key.

::

    auth = SigningAuth(Credentials("CK…", secret))
    with httpx.Client(base_url="https://baas.example.com", auth=auth, timeout=30) as c:
        c.post("/v1/networks", json={...})

Works with ``httpx.Client`` and ``httpx.AsyncClient`` alike: httpx reads the request
body (streamed bodies included) before the flow runs, because the body hash is signed.
Each request gets the current time and a fresh random nonce; a request that httpx sends
again (a redirect, a retry through this flow) is signed again with a new nonce.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator, Iterable

import httpx

from consortia.sdk.signing import Credentials, format_timestamp, sign_request


def new_nonce() -> str:
    """32 hex digits from the operating system's CSPRNG (128 bits)."""
    return secrets.token_hex(16)


class SigningAuth(httpx.Auth):
    """Signs requests per ``docs/spec/api-signing.md``.

    ``signed_headers`` names extra headers to sign when present (``Host``, the
    ``X-Consortia-*`` headers and ``Content-Type`` always are). ``clock`` and ``nonce``
    exist for tests and test vectors; leave them alone otherwise.
    """

    requires_request_body = True

    def __init__(self, credentials: Credentials, *, signed_headers: Iterable[str] = (),
                 clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = new_nonce) -> None:
        self._credentials = credentials
        self._extra = tuple(h.lower() for h in signed_headers)
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return f"SigningAuth(access_key_id={self._credentials.access_key_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        present = [h for h in self._extra if h in request.headers]
        signed = sign_request(
            self._credentials, request.method, request.url.path, request.url.query,
            request.headers, request.content,
            timestamp=format_timestamp(self._clock()), nonce=self._nonce(),
            signed_headers=present,
        )
        for name, value in signed.headers.items():
            request.headers[name] = value
        yield request
