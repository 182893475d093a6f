"""Helpers of the control-plane API tests: a migrated database with two tenants, clients
signed with their keys, a fake clock, and the app served by uvicorn on a loopback port.

``make_world(url)`` builds tenants ``acme`` and ``globex`` (each with an owner who has a
password and an access key) over an empty database at ``url``. ``ControlWorld.client``
gives a Starlette ``TestClient`` (the whole ASGI app in process) signed with a key;
``LiveServer`` runs the same app under uvicorn in a thread for tests over real HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consortia.control.auth import new_master_key
from consortia.control.http import create_app
from consortia.control.services import Control, NewTenant
from consortia.control.settings import ControlSettings, RateLimit
from consortia.control.store import db
from consortia.sdk import Credentials, SigningAuth

PASSWORD = "correct horse battery"
FAST_LIMIT = RateLimit(per_second=10_000.0, burst=10_000)


class FakeClock:
    """Seconds since the epoch, moved by the test (starts at the real time).

    Every read ticks it by a millisecond, so that successive events are ordered in time
    as they are on a real clock; ``advance`` jumps.
    """

    TICK = 0.001

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        self.now += self.TICK
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ControlWorld:
    settings: ControlSettings
    control: Control
    app: FastAPI
    clock: FakeClock
    tenants: dict[str, NewTenant] = field(default_factory=dict)

    def creds(self, tenant: str) -> Credentials:
        return self.tenants[tenant].credentials

    def client(self, creds: Credentials | None = None, *, base_url: str = "http://testserver"
               ) -> TestClient:
        c = TestClient(self.app, base_url=base_url)
        if creds is not None:
            c.auth = SigningAuth(creds, clock=self.clock)
        return c

    def add_user(self, tenant: str, username: str, role: str, *,
                 password: str | None = PASSWORD) -> tuple[str, Credentials]:
        """A user of ``tenant`` with an access key, made through the API by its owner."""
        with self.client(self.creds(tenant)) as c:
            body: dict[str, Any] = {"username": username, "role": role}
            if password is not None:
                body["password"] = password
            r = c.post("/v1/users", json=body)
            assert r.status_code == 201, r.text
            user_id = r.json()["id"]
            r = c.post("/v1/access-keys", json={"user_id": user_id})
            assert r.status_code == 201, r.text
            key = r.json()
        return user_id, Credentials(key["access_key_id"], key["secret"])

    def close(self) -> None:
        self.control.close()


def make_settings(url: str, clock: FakeClock, **overrides: Any) -> ControlSettings:
    options: dict[str, Any] = {"rate_limit": FAST_LIMIT, "login_rate_limit": FAST_LIMIT}
    options.update(overrides)
    return ControlSettings(database_url=url, master_key=new_master_key(), clock=clock,
                           **options)


def make_world(url: str, *, clock: FakeClock | None = None, **overrides: Any) -> ControlWorld:
    """Migrate ``url`` and create tenants acme and globex, each with owner and key."""
    clock = clock or FakeClock()
    db.upgrade(url)
    settings = make_settings(url, clock, **overrides)
    control = Control(settings)
    world = ControlWorld(settings, control, create_app(settings, control=control), clock)
    for name in ("acme", "globex"):
        world.tenants[name] = control.tenants.create(name, f"{name}-owner",
                                                     owner_password=PASSWORD)
    return world


def free_loopback_port() -> int:
    """A free port on 127.0.0.1 below 32000 (outside the ephemeral range)."""
    from tests.integration.helpers import free_port

    return free_port()


class LiveServer:
    """``app`` served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)

    def client(self, creds: Credentials | None = None, **kwargs: Any) -> httpx.Client:
        auth = SigningAuth(creds, **kwargs) if creds is not None else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)


@contextmanager
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()
