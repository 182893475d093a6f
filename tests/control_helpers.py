"""Helpers of the control-plane API tests: a migrated database with two tenants, clients
signed with their keys, a fake clock, and the app served by uvicorn on a loopback port.

``make_world(url)`` builds tenants ``acme`` and ``globex`` (each with an owner who has a
password and an access key) over an empty database at ``url``. ``ControlWorld.client``
gives a Starlette ``TestClient`` (the whole ASGI app in process) signed with a key;
``LiveServer`` runs the same app under uvicorn in a thread for tests over real HTTP.

Chains: the world's control plane has a data directory (a temporary one) and, unless a
test passes real ones, a ``FakeProvisioner`` (the provisioner protocol without processes:
a node it creates reports CREATING, then AVAILABLE at once) and a ``FakeGateway`` (a node
API that commits every configuration change). The real ones run in
``tests/integration/test_control_chains.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consortia.control.auth import new_master_key
from consortia.control.http import create_app
from consortia.control.provision import (
    Health,
    NodeSpec,
    NodeState,
    NodeStatus,
    Provisioner,
    StatusChange,
    StatusObserver,
)
from consortia.control.services import Control, NewTenant
from consortia.control.services.runtime import NodeGateway
from consortia.control.settings import ControlSettings, RateLimit
from consortia.control.store import db
from consortia.sdk import Credentials, SigningAuth
from consortia.sdk.tx import SignedTx
from consortia.types.errors import Conflict, NotFound
from consortia.types.tx import AccountUpdate

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


class FakeProvisioner:
    """The ``Provisioner`` protocol without processes. ``create`` reports CREATING, then
    AVAILABLE (or FAILED with ``fail_reason`` for ids in ``fail``, every id with
    ``fail_all``) at once, from the calling thread; ``delete`` reports DELETING, DELETED."""

    def __init__(self) -> None:
        self.states: dict[str, NodeState] = {}
        self.observers: list[StatusObserver] = []
        self.fail: set[str] = set()
        self.fail_all = False
        self.fail_reason = "crash loop: 5 crashes within 300 s"
        self.opened = 0
        self.created: list[str] = []
        self._lock = threading.Lock()

    def open(self) -> list[NodeState]:
        self.opened += 1
        return [s for s in self.states.values() if s.status is not NodeStatus.DELETED]

    def close(self) -> None:
        pass

    def _set(self, node_id: str, status: NodeStatus, reason: str | None = None,
             spec: NodeSpec | None = None) -> NodeState:
        with self._lock:
            old = self.states.get(node_id)
            assert spec is not None or old is not None
            state = NodeState(spec or old.spec, status, reason, None, 0,  # type: ignore[union-attr]
                              time.time(), Health(status is NodeStatus.AVAILABLE, time.time(),
                                                  "ok", 1))
            self.states[node_id] = state
        change = StatusChange(node_id, None if old is None else old.status, status, reason,
                              state.since, 0)
        for observer in list(self.observers):
            observer(change)
        return state

    def create(self, spec: NodeSpec) -> NodeState:
        old = self.states.get(spec.node_id)
        if old is not None and old.status is not NodeStatus.DELETED:
            if old.spec != spec:
                raise Conflict(f"node {spec.node_id} already exists with another spec")
            return old
        assert spec.config.is_file(), spec.config
        self.created.append(spec.node_id)
        self._set(spec.node_id, NodeStatus.CREATING, spec=spec)
        if self.fail_all or spec.node_id in self.fail:
            return self._set(spec.node_id, NodeStatus.FAILED, self.fail_reason)
        return self._set(spec.node_id, NodeStatus.AVAILABLE)

    def _known(self, node_id: str) -> NodeState:
        state = self.states.get(node_id)
        if state is None:
            raise NotFound(f"no node {node_id!r} in this provisioner")
        if state.status is NodeStatus.DELETED:
            raise Conflict(f"node {node_id} is deleted")
        return state

    def start(self, node_id: str) -> NodeState:
        self._known(node_id)
        return self._set(node_id, NodeStatus.AVAILABLE)

    def stop(self, node_id: str) -> NodeState:
        self._known(node_id)
        return self._set(node_id, NodeStatus.STOPPED)

    def reconfigure(self, node_id: str, config: str) -> NodeState:
        self._known(node_id)
        return self._set(node_id, NodeStatus.AVAILABLE)

    def delete(self, node_id: str, *, remove_data: bool = False) -> NodeState:
        self._known(node_id)
        self._set(node_id, NodeStatus.DELETING)
        return self._set(node_id, NodeStatus.DELETED)

    def status(self, node_id: str) -> NodeState:
        state = self.states.get(node_id)
        if state is None:
            raise NotFound(f"no node {node_id!r} in this provisioner")
        return state

    def nodes(self) -> list[NodeState]:
        return list(self.states.values())

    def subscribe(self, observer: StatusObserver) -> Callable[[], None]:
        self.observers.append(observer)
        return lambda: self.observers.remove(observer)


class FakeGateway:
    """A node API that commits every transaction it is given (``refuse``: answers them
    invalid with that code instead), counting the configuration sequence. It keeps the
    account bindings ``account_update`` transactions make (``accounts``: address hex →
    organization) as a quorum chain's configuration would, refusing an address bound
    already (``account_bound``) or unbinding one the organization does not hold
    (``unknown_account``); the real rule runs in tests/integration/test_control_quorum.py."""

    def __init__(self) -> None:
        self.sequence = 0
        self.committed: list[SignedTx] = []
        self.refuse: str | None = None
        self.accounts: dict[str, str] = {}

    def chain_info(self, api_url: str) -> dict[str, Any]:
        evm = {"accounts": [{"address": a, "org_id": o} for a, o in self.accounts.items()]}
        return {"height": len(self.committed), "config": {"sequence": self.sequence,
                                                          "evm": evm}}

    def commit(self, api_url: str, tx: SignedTx, *, timeout: float) -> dict[str, Any]:
        if self.refuse is not None:
            return {"tx_id": tx.id_hex, "status": "invalid", "error": self.refuse}
        body = tx.payload.body
        if isinstance(body, AccountUpdate):
            keys = ["0x" + a.hex() for a in body.addresses]
            if body.op == "add" and any(k in self.accounts for k in keys):
                return {"tx_id": tx.id_hex, "status": "invalid", "error": "account_bound"}
            if body.op == "remove" and any(self.accounts.get(k) != body.org_id for k in keys):
                return {"tx_id": tx.id_hex, "status": "invalid", "error": "unknown_account"}
            for k in keys:
                if body.op == "add":
                    self.accounts[k] = body.org_id
                else:
                    del self.accounts[k]
        self.committed.append(tx)
        self.sequence += 1
        return {"tx_id": tx.id_hex, "status": "committed", "height": len(self.committed)}


def _fake_provisioner(_p: FakeProvisioner) -> Provisioner:
    return _p  # mypy: the fake meets the protocol


def _fake_gateway(_g: FakeGateway) -> NodeGateway:
    return _g


@dataclass
class ControlWorld:
    settings: ControlSettings
    control: Control
    app: FastAPI
    clock: FakeClock
    tenants: dict[str, NewTenant] = field(default_factory=dict)
    provisioner: Any = None
    """The world's provisioner: a ``FakeProvisioner`` unless a real one was given."""
    gateway: Any = None
    own_dir: Path | None = None
    """A temporary data directory the world made, removed by ``close``."""

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

    def flush(self) -> None:
        """Wait until every node status reported so far is in the database."""
        self.control.runtime.flush()

    def close(self, *, stop_nodes: bool = True) -> None:
        self.control.close(stop_nodes=stop_nodes)
        if self.own_dir is not None:
            shutil.rmtree(self.own_dir, ignore_errors=True)


def make_settings(url: str, clock: FakeClock, **overrides: Any) -> ControlSettings:
    options: dict[str, Any] = {"rate_limit": FAST_LIMIT, "login_rate_limit": FAST_LIMIT}
    options.update(overrides)
    return ControlSettings(database_url=url, master_key=new_master_key(), clock=clock,
                           **options)


def make_world(url: str, *, clock: FakeClock | None = None,
               provisioner: Provisioner | None = None, gateway: NodeGateway | None = None,
               **overrides: Any) -> ControlWorld:
    """Migrate ``url`` and create tenants acme (the platform's) and globex, each with owner
    and key. The
    control plane runs chains in ``data_dir`` (default: a new temporary directory) with
    ``provisioner`` and ``gateway`` (default: the fakes)."""
    clock = clock or FakeClock()
    db.upgrade(url)
    own_dir = None
    if "data_dir" not in overrides:
        own_dir = Path(tempfile.mkdtemp(prefix="consortia-control-"))
        overrides["data_dir"] = own_dir
    settings = make_settings(url, clock, **overrides)
    provisioner = provisioner if provisioner is not None else FakeProvisioner()
    gateway = gateway if gateway is not None else FakeGateway()
    control = Control(settings, provisioner=provisioner, gateway=gateway)
    world = ControlWorld(settings, control, create_app(settings, control=control), clock,
                         provisioner=provisioner, gateway=gateway, own_dir=own_dir)
    for name in ("acme", "globex"):
        world.tenants[name] = control.tenants.create(name, f"{name}-owner",
                                                     owner_password=PASSWORD,
                                                     platform=name == "acme")
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


def require_node() -> str:
    """Node.js, for the explorer's JavaScript: a failure in CI (CONSORTIA_REQUIRE_NODE, set
    by .ci/run, which installs it), a skip with the reason on a machine without it."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CONSORTIA_REQUIRE_NODE"):
            pytest.fail("node is required (CONSORTIA_REQUIRE_NODE) but not installed")
        pytest.skip("Node.js is not installed (CI installs it)")
    return node
