"""The local provisioner with real node processes on 127.0.0.1: create → AVAILABLE, a
SIGKILL → restarted, a broken configuration → crash loop → FAILED with the node's own
message, stop, reconfigure, adoption by a new provisioner (and a PID file naming another
program, never signalled), delete.

Timings are shrunk through ``SupervisionPolicy`` so the file runs in seconds; waits are
on statuses (``wait_for``), never on wall-clock durations.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import tomli_w

from consortia.control.provision import (
    LocalProvisioner,
    NodeSpec,
    NodeState,
    NodeStatus,
    StatusChange,
    SupervisionPolicy,
)
from consortia.sdk import LocalNetwork, NodeClient, init_network, notary, sign
from consortia.sdk.processes import is_node_process
from consortia.types.errors import Conflict, NotFound
from tests.integration.helpers import HTTP_TIMEOUT, free_port

pytestmark = pytest.mark.integration

FAST = SupervisionPolicy(poll_interval=0.1, health_timeout=2.0, unhealthy_after=3,
                         start_timeout=45.0, backoff_base=0.05, backoff_cap=0.4,
                         crash_limit=3, crash_window=300.0, stop_grace=10.0)
WAIT = 45.0
"""Longest wait for a status: generous for a loaded machine; never a measured duration."""

S = NodeStatus


class Events:
    """Every status change the provisioners report, in order.

    Observers run on the node's supervising thread, so a state seen through ``wait_for``
    may be a moment ahead of them: ``transitions`` waits (on a condition, not a clock)
    until the observer has caught up with what the test expects, then returns what it
    has."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.changes: list[StatusChange] = []

    def __call__(self, change: StatusChange) -> None:
        with self._changed:
            self.changes.append(change)
            self._changed.notify_all()

    def transitions(self, expect_last: list[tuple[S | None, S]] | None = None,
                    node_id: str = "validator0") -> list[tuple[S | None, S]]:
        with self._changed:
            def seen() -> list[tuple[S | None, S]]:
                return [(c.previous, c.status) for c in self.changes if c.node_id == node_id]
            if expect_last:
                self._changed.wait_for(lambda: seen()[-len(expect_last):] == expect_last,
                                       timeout=WAIT)
            return seen()

    def last(self, status: S) -> StatusChange:
        with self._changed:
            return next(c for c in reversed(self.changes) if c.status is status)


class World:
    """A solo network in a temporary directory, its node's spec, the provisioners made."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.net: LocalNetwork = init_network(root / "net", chain_id="prov", port=free_port())
        node = self.net.node()
        self.spec = NodeSpec(node.id, node.config, node.config.parent / "data",
                             node.config.parent / "node.log", node.api)
        self.events = Events()
        self.made: list[LocalProvisioner] = []

    def provisioner(self) -> LocalProvisioner:
        """A new provisioner on the same state directory, opened (adopting what runs)."""
        prov = LocalProvisioner(self.root / "state", policy=FAST, observers=[self.events])
        self.made.append(prov)
        prov.open()
        return prov

    def wait(self, prov: LocalProvisioner, *statuses: S,
             where: Callable[[NodeState], bool] | None = None) -> NodeState:
        try:
            return prov.wait_for(self.spec.node_id, *statuses, timeout=WAIT, where=where)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n--- node log ---\n{self.log()[-6000:]}")

    def log(self) -> str:
        try:
            return self.spec.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.spec.api_url, timeout=HTTP_TIMEOUT)

    def config_doc(self) -> dict[str, object]:
        return tomllib.loads(self.spec.config.read_text())

    def close(self) -> None:
        for prov in reversed(self.made):
            prov.close(stop_nodes=True)
        for pid in node_pids(self.root):  # a node no provisioner holds any more
            os.kill(pid, signal.SIGKILL)


def node_pids(root: Path) -> list[int]:
    """Node processes whose configuration lies under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"consortia.node" in argv and any(a.startswith(str(root).encode()) for a in argv):
            found.append(int(entry.name))
    return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def test_a_created_node_becomes_available(world: World) -> None:
    prov = world.provisioner()
    st = prov.create(world.spec)
    assert st.status is S.CREATING and st.pid is not None
    assert is_node_process(st.pid, world.spec.config)
    assert os.getsid(st.pid) == st.pid               # its own session and process group

    st = world.wait(prov, S.AVAILABLE)
    assert st.health is not None and st.health.ok and st.health.height == 0
    assert st.restarts == 0 and st.reason is None
    with world.http() as http:
        assert http.get("/v1/chain").json()["chain_id"] == "prov"
    seen = [(None, S.CREATING), (S.CREATING, S.AVAILABLE)]
    assert world.events.transitions(seen) == seen
    assert "consortia provisioner: starting validator0 (created)" in world.log()
    assert "serving chain prov" in world.log()
    assert [n.spec.node_id for n in prov.nodes()] == ["validator0"]

    assert prov.create(world.spec).pid == st.pid     # the same spec again: nothing new
    other = NodeSpec(world.spec.node_id, world.spec.config, world.spec.data_dir,
                     world.root / "other.log", world.spec.api_url)
    with pytest.raises(Conflict):
        prov.create(other)
    with pytest.raises(NotFound):
        prov.status("nobody")


def test_a_killed_node_is_restarted_and_available_again(world: World) -> None:
    prov = world.provisioner()
    prov.create(world.spec)
    first = world.wait(prov, S.AVAILABLE)
    assert first.pid is not None

    os.kill(first.pid, signal.SIGKILL)
    again = world.wait(prov, S.AVAILABLE, where=lambda s: s.pid not in (None, first.pid))
    assert again.restarts == 1
    assert is_node_process(again.pid or 0, world.spec.config)
    last = [(S.AVAILABLE, S.UNHEALTHY), (S.UNHEALTHY, S.AVAILABLE)]
    assert world.events.transitions(last)[-2:] == last
    crash = world.events.last(S.UNHEALTHY)
    assert crash.reason is not None and "killed by SIGKILL" in crash.reason
    assert "restart 1 after a crash" in world.log()


def test_a_broken_configuration_crash_loops_to_failed_with_the_nodes_error(
        world: World) -> None:
    doc = world.config_doc()
    good = tomli_w.dumps(doc)
    doc["api"] = {**doc["api"], "bogus_limit": 7}  # type: ignore[dict-item]
    world.spec.config.write_text(tomli_w.dumps(doc))

    prov = world.provisioner()
    prov.create(world.spec)
    st = world.wait(prov, S.FAILED)
    assert st.pid is None and node_pids(world.root) == []
    assert st.restarts == FAST.crash_limit - 1
    assert st.reason is not None
    assert f"crash loop: {FAST.crash_limit} crashes" in st.reason
    assert "exited with status 2" in st.reason
    assert "refusing to start" in st.reason and "bogus_limit" in st.reason
    seen = [(None, S.CREATING), (S.CREATING, S.FAILED)]
    assert world.events.transitions(seen) == seen

    # A good configuration brings it back, its crash history forgotten.
    assert prov.reconfigure(world.spec.node_id, good).status is S.CREATING
    assert world.wait(prov, S.AVAILABLE).restarts == FAST.crash_limit - 1


def test_stop_ends_the_process_and_start_resumes_the_chain(world: World) -> None:
    prov = world.provisioner()
    prov.create(world.spec)
    st = world.wait(prov, S.AVAILABLE)
    alice = world.net.identity("org1/alice")
    with NodeClient(world.spec.api_url, timeout=HTTP_TIMEOUT) as client:
        client.submit(sign(alice, "prov", notary.content("kept", b"across a stop")), wait=True)
        assert client.chain_info()["height"] == 1

    stopped = prov.stop(world.spec.node_id)
    assert stopped.status is S.STOPPED and stopped.pid is None
    assert st.pid is not None and not is_node_process(st.pid, world.spec.config)
    assert node_pids(world.root) == []
    with world.http() as http, pytest.raises(httpx.ConnectError):
        http.get("/healthz")
    last = [(S.AVAILABLE, S.STOPPED)]
    assert world.events.transitions(last)[-1:] == last

    assert prov.start(world.spec.node_id).status is S.CREATING
    resumed = world.wait(prov, S.AVAILABLE)
    assert resumed.restarts == 0 and resumed.health is not None
    assert resumed.health.height == 1


def test_reconfigure_restarts_the_node_on_the_new_configuration(world: World) -> None:
    prov = world.provisioner()
    prov.create(world.spec)
    before = world.wait(prov, S.AVAILABLE)
    two = {"envelopes": [base64.b64encode(b"\x93\x01\x02\x03").decode()] * 2}
    with world.http() as http:
        assert http.post("/v1/transactions/batch", json=two).status_code != 413

    doc = world.config_doc()
    doc["api"] = {**doc["api"], "max_batch": 1}  # type: ignore[dict-item]
    st = prov.reconfigure(world.spec.node_id, tomli_w.dumps(doc))
    assert st.status is S.CREATING and st.pid not in (None, before.pid)
    after = world.wait(prov, S.AVAILABLE)
    assert after.restarts == 0                       # a reconfiguration is not a crash
    assert world.config_doc()["api"] == doc["api"]
    with world.http() as http:
        r = http.post("/v1/transactions/batch", json=two)
    assert r.status_code == 413 and "at most 1" in r.json()["error"]["message"]
    last = [(S.AVAILABLE, S.CREATING), (S.CREATING, S.AVAILABLE)]
    assert world.events.transitions(last)[-2:] == last


def test_a_new_provisioner_adopts_the_running_node(world: World) -> None:
    first = world.provisioner()
    first.create(world.spec)
    pid = world.wait(first, S.AVAILABLE).pid
    assert pid is not None
    first.close()                                    # the control plane goes away …
    assert is_node_process(pid, world.spec.config)   # … the node does not

    second = world.provisioner()
    [adopted] = second.nodes()
    assert (adopted.status, adopted.pid, adopted.restarts) == (S.AVAILABLE, pid, 0)
    world.wait(second, S.AVAILABLE, where=lambda s: s.health is not None and s.health.ok)
    assert node_pids(world.root) == [pid]            # no second process

    os.kill(pid, signal.SIGKILL)                     # the adopted node crashes: restarted
    again = world.wait(second, S.AVAILABLE, where=lambda s: s.pid not in (None, pid))
    assert again.restarts == 1
    crash = world.events.last(S.UNHEALTHY)
    assert crash.reason is not None and "adopted" in crash.reason

    assert second.stop(world.spec.node_id).status is S.STOPPED
    assert node_pids(world.root) == []


def test_a_pid_file_naming_another_program_is_neither_adopted_nor_signalled(
        world: World) -> None:
    first = world.provisioner()
    first.create(world.spec)
    pid = world.wait(first, S.AVAILABLE).pid
    assert pid is not None
    first.close()
    os.kill(pid, signal.SIGKILL)                     # dies while nothing supervises it
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        deadline = time.monotonic() + 10
        while is_node_process(pid, world.spec.config) and time.monotonic() < deadline:
            time.sleep(0.02)
        pid_file = world.root / "state" / "nodes" / world.spec.node_id / "node.pid"
        pid_file.write_text(f"{sleeper.pid}\n")     # as if the PID had been reused

        second = world.provisioner()
        st = world.wait(second, S.AVAILABLE, where=lambda s: s.pid is not None)
        assert st.pid not in (pid, sleeper.pid) and st.restarts == 1
        assert sleeper.poll() is None                # never signalled
        down = world.events.last(S.UNHEALTHY)
        assert down.reason is not None and "while no provisioner supervised it" in down.reason
    finally:
        sleeper.kill()
        sleeper.wait()


def test_delete_stops_and_forgets_the_node_and_removes_data_only_when_asked(
        world: World) -> None:
    prov = world.provisioner()
    prov.create(world.spec)
    pid = world.wait(prov, S.AVAILABLE).pid

    st = prov.delete(world.spec.node_id)
    assert st.status is S.DELETED and st.pid is None
    assert pid is not None and not is_node_process(pid, world.spec.config)
    last = [(S.AVAILABLE, S.DELETING), (S.DELETING, S.DELETED)]
    assert world.events.transitions(last)[-2:] == last
    assert (world.spec.data_dir / "ledger.sqlite3").exists()       # data kept
    assert not (world.root / "state" / "nodes" / world.spec.node_id).exists()
    assert prov.status(world.spec.node_id).status is S.DELETED
    with pytest.raises(Conflict):
        prov.start(world.spec.node_id)

    prov.create(world.spec)                          # the id is free again
    world.wait(prov, S.AVAILABLE)
    st = prov.delete(world.spec.node_id, remove_data=True)
    assert st.status is S.DELETED and not world.spec.data_dir.exists()
    assert node_pids(world.root) == []

    with pytest.raises(Conflict, match="another provisioner"):
        world.provisioner()                          # one instance per state directory
    prov.close()
    later = world.provisioner()                      # nothing left to adopt
    assert later.nodes() == []
    with pytest.raises(NotFound):
        later.status(world.spec.node_id)
