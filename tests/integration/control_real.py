"""What the real-process tests of the control plane share: a control plane whose
``LocalProvisioner`` starts real node processes (``real_control_world``), status waits
that poll (never a measured duration), the nodes' logs for a failure's report, owners as
actors, and clients issued in process by a member's CA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from consortia.control.provision import LocalProvisioner, SupervisionPolicy
from consortia.control.services import Actor
from consortia.control.services.runtime import HttpNodeGateway
from consortia.control.store.enums import UserRole
from consortia.identity.ca import cert_der
from consortia.sdk import Identity
from consortia.types.config import Role
from tests.control_helpers import ControlWorld, make_world

FAST = SupervisionPolicy(poll_interval=0.1, health_timeout=2.0, unhealthy_after=3,
                         start_timeout=45.0, backoff_base=0.05, backoff_cap=0.4,
                         crash_limit=3, crash_window=300.0, stop_grace=10.0)
WAIT = 60.0
"""Longest wait for a status: generous for a loaded machine; never a measured duration."""


@contextmanager
def real_control_world(tmp_path: Path, **overrides: Any) -> Iterator[ControlWorld]:
    """A control plane on SQLite in ``tmp_path`` running real node processes (stopped at
    the end)."""
    data = tmp_path / "data"
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", data_dir=data,
                   provisioner=LocalProvisioner(data / "provisioner", policy=FAST),
                   gateway=HttpNodeGateway(), **overrides)
    try:
        yield w
    finally:
        w.close(stop_nodes=True)


def wait_for(get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
             what: str, logs: Callable[[], str] = lambda: "") -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        doc = get()
        if done(doc):
            return doc
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT:.0f} s: {doc}\n{logs()}")
        time.sleep(0.1)


def ok(r: Any, status: int = 201) -> dict[str, Any]:
    """The JSON of an API answer that must have ``status``."""
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def owner(world: ControlWorld, tenant: str = "acme") -> Actor:
    made = world.tenants[tenant]
    return Actor(tenant_id=made.tenant.id, user_id=made.owner.id, role=UserRole.OWNER,
                 request_id="test")


def member_client(world: ControlWorld, actor: Actor, net_id: str, member_id: str,
                  name: str) -> Identity:
    """A client of the member, issued in process by its CA."""
    ca = world.control.members.certificate_authority(actor, net_id, member_id)
    key, cert = ca.issue_identity(name, Role.CLIENT)
    return Identity(key, cert_der(cert), ca.cert_der)


def client_identity(world: ControlWorld, net: dict[str, Any], name: str) -> Identity:
    """A client of acme's member of ``net`` (as ``POST /v1/networks`` answered it)."""
    return member_client(world, owner(world), net["id"], net["member"]["id"], name)


def node_logs(world: ControlWorld, net_id: str) -> str:
    assert world.settings.data_dir is not None
    out = []
    for log in sorted((world.settings.data_dir / "networks" / net_id).glob("nodes/*/node.log")):
        out.append(f"--- {log.parent.name} ---\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)
