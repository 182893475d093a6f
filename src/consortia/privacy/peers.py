"""Outbound calls to other organizations' managers, over mutual TLS.

A push to organization X uses a TLS client context that trusts **only X's CA**, and
before a byte of the request leaves, the server's certificate is checked to be a
manager (role ``peer``) of X under the consortium's CAs and CRLs (httpcore's
``start_tls.complete`` trace event, where the handshake is done and nothing is sent
yet). An endpoint answered by anyone else — another organization's manager, an
attacker with a certificate of some other CA — gets nothing: the directory's endpoint
can be wrong, but it cannot redirect a payload (Tessera issue 649).

Every call has a timeout (connect, read, write, pool).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from consortia.p2p.tls import NodeCredentials, client_context
from consortia.privacy.directory import OrgTrust
from consortia.privacy.errors import PeerRefused
from consortia.types.errors import ConfigError


class DeliveryError(Exception):
    """A push or announcement that did not succeed. ``permanent``: retrying cannot help
    (the peer refused the content or is not who it must be)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class PeerClient:
    def __init__(self, credentials: NodeCredentials, trust: OrgTrust, *, timeout_s: float,
                 now_ms: Callable[[], int] | None = None) -> None:
        self._credentials = credentials
        self._trust = trust
        self._timeout = httpx.Timeout(timeout_s)
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _context(self, org_id: str) -> ssl.SSLContext:
        ctx = self._contexts.get(org_id)
        if ctx is None:
            ctx = client_context(self._credentials, [self._trust.ca_cert(org_id)])
            self._contexts[org_id] = ctx
        return ctx

    def _tracer(self, org_id: str) -> Callable[[str, dict[str, Any]], None]:
        def trace(event: str, info: dict[str, Any]) -> None:
            if event != "connection.start_tls.complete":
                return
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            der = ssl_object.getpeercert(True) if ssl_object is not None else None
            if not der:
                raise DeliveryError("the peer presented no certificate", permanent=True)
            try:
                org = self._trust.identify_manager(der, self._now_ms())
            except PeerRefused as exc:
                raise DeliveryError(f"wrong peer: {exc.message}", permanent=True) from None
            if org != org_id:
                raise DeliveryError(f"wrong peer: the endpoint of {org_id} is served by "
                                    f"{org}'s manager", permanent=True)
        return trace

    def post(self, org_id: str, endpoint: str, path: str, content: bytes,
             content_type: str) -> dict[str, Any]:
        """POST to ``https://endpoint/path`` as described above; the JSON answer."""
        try:
            ctx = self._context(org_id)
        except ConfigError as exc:  # a CA unusable for TLS: retrying cannot help
            raise DeliveryError(f"cannot build TLS for {org_id}: {exc}", permanent=True) \
                from exc
        try:
            with httpx.Client(verify=ctx, timeout=self._timeout) as client:
                r = client.post(f"https://{endpoint}{path}", content=content,
                                headers={"content-type": content_type},
                                extensions={"trace": self._tracer(org_id)})
        except DeliveryError:
            raise
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            reason = f"{r.status_code} {err.get('code', '')}: {err.get('message', '')}"
            raise DeliveryError(reason, permanent=400 <= r.status_code < 500)
        if not isinstance(body, dict):
            raise DeliveryError("the peer's answer is not a JSON object", permanent=False)
        return body
