"""The manager as a process: both APIs under uvicorn on one event loop.

The peer API's TLS context is ``p2p.tls.server_context`` (TLS 1.3, client certificate
required, the consortium's organization CAs as roots, the key handed to OpenSSL only
encrypted). uvicorn does not pass the client certificate to the application, so
``_PeerCertH11`` — uvicorn's h11 protocol, one instance per connection, created after
the handshake — puts the DER certificate in each request's ASGI scope
(``api.PEER_CERT_SCOPE_KEY``). SIGTERM/SIGINT stop both servers gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Generator
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from uvicorn.protocols.http.h11_impl import H11Protocol

from consortia.identity.membership import load_crl
from consortia.p2p.tls import NodeCredentials, server_context
from consortia.privacy import keys as keyfiles
from consortia.privacy.api import PEER_CERT_SCOPE_KEY, local_app, peer_app
from consortia.privacy.directory import OrgTrust, SignedDirectoryFile
from consortia.privacy.manager import Limits, Manager
from consortia.privacy.peers import PeerClient
from consortia.privacy.settings import PrivacySettings, read_secret
from consortia.privacy.store import PrivacyStore
from consortia.types.config import OrgConfig
from consortia.types.errors import ConfigError

log = logging.getLogger("consortia.privacy")


class _PeerCertH11(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope[PEER_CERT_SCOPE_KEY] = der
            await inner(scope, receive, send)

        self.app = app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # run() installs one handler that stops both servers


def _trust(settings: PrivacySettings) -> OrgTrust:
    orgs = []
    for t in settings.trust:
        try:
            cert = x509.load_pem_x509_certificate(t.ca_cert.read_bytes())
            crl = t.crl.read_bytes() if t.crl else b""
        except (OSError, ValueError) as exc:
            raise ConfigError(f"trust {t.org_id}: {exc}") from exc
        if crl:
            load_crl(cert, crl)
        orgs.append(OrgConfig(t.org_id, cert.public_bytes(serialization.Encoding.DER), crl))
    return OrgTrust(orgs)


def build(settings: PrivacySettings) -> tuple[Manager, NodeCredentials, bytes, PrivacyStore]:
    """Everything the process needs, checked; ``ConfigError`` on any fault."""
    now_ms = int(time.time() * 1000)
    trust = _trust(settings)
    directory = SignedDirectoryFile(settings.directory.file).load(trust, now_ms)
    passphrase = read_secret(settings.keys.passphrase_file, "key passphrase")
    tm_keys = [keyfiles.load_key(f, passphrase) for f in settings.keys.files]
    token = read_secret(settings.local.token_file, "local API token", min_len=32)
    creds = NodeCredentials.from_keystore(settings.tls.keystore, settings.tls.name,
                                          read_secret(settings.tls.passphrase_file,
                                                      "TLS key passphrase"))
    lim = settings.limits
    limits = Limits(max_payload_bytes=lim.max_payload_bytes,
                    max_recipients=lim.max_recipients, send_timeout_s=lim.send_timeout_s)
    store = PrivacyStore(settings.manager.data_dir / "privacy.sqlite3",
                         max_payload_bytes=limits.max_envelope_bytes)
    own_org = trust.identify_manager(creds.cert_der, now_ms)
    if own_org != settings.manager.org_id:
        raise ConfigError(f"the TLS certificate is a manager of {own_org}, "
                          f"not of {settings.manager.org_id}")
    peers = PeerClient(creds, trust, timeout_s=lim.peer_timeout_s)
    manager = Manager(settings.manager.org_id, tm_keys, store, directory, trust, peers, limits)
    return manager, creds, token, store


def run(settings: PrivacySettings) -> None:
    manager, creds, token, store = build(settings)
    trust_roots = [o.ca_cert for o in manager.trust.organizations]
    tls: ssl.SSLContext = server_context(creds, trust_roots)
    local_cfg = uvicorn.Config(local_app(manager, token), host=settings.local.host,
                               port=settings.local.port, log_level="warning",
                               loop="asyncio", lifespan="off")
    peer_cfg = uvicorn.Config(peer_app(manager), host=settings.peer.host,
                              port=settings.peer.port, log_level="warning", loop="asyncio",
                              lifespan="off", http=_PeerCertH11,
                              ssl_context_factory=lambda _cfg, _default: tls)
    servers = [_Server(local_cfg), _Server(peer_cfg)]

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        await asyncio.gather(*(s.serve() for s in servers))

    log.info("transaction manager of %s: local %s:%d, peer %s:%d", manager.org_id,
             settings.local.host, settings.local.port, settings.peer.host, settings.peer.port)
    try:
        asyncio.run(main())
    finally:
        store.close()
