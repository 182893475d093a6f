"""``consortia up`` for real: the control plane as a process, its demo network's nodes as
processes — three organizations, the guests joined by invitation and votes, each with a
running node — the SDK client over HTTP with the credentials ``up`` printed and the guests'
profiles it wrote, an identity enrolled through ``consortia ca`` notarizing through a
guest's peer, SIGTERM that leaves no process behind, and ``up`` again that finds the same
platform and demo network and creates nothing.

The development chain (``consortia dev up``) has its own test: ``test_dev_up.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consortia.sdk.control import ControlClient, load_profile
from consortia.sdk.signing import Credentials
from tests.integration.helpers import (
    HTTP_TIMEOUT,
    cli_command,
    free_port,
    free_port_block,
    healthy,
    run_cli,
    subprocess_env,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_TIMEOUT = 240.0
STOP_TIMEOUT = 120.0


def processes_using(path: Path) -> list[int]:
    """Live processes whose command line names ``path`` (the control plane: its data dir;
    its nodes: their configuration files under it)."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


class Up:
    """One ``consortia up`` process (its own process group, like a terminal job)."""

    def __init__(self, data_dir: Path, port: int, node_ports: str, logs: Path, n: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.out = logs / f"up.{n}.stdout"
        self.err = logs / f"up.{n}.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*cli_command(), "up", "--data-dir", str(data_dir), "--port", str(port),
                 "--node-ports", node_ports, "--demo-validators", "1"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=subprocess_env(),
                start_new_session=True)

    def output(self) -> str:
        log = ""
        with contextlib.suppress(OSError):
            log = (self.out.parent / "cp" / "control.log").read_text()[-4000:]
        return (f"exit {self.proc.poll()}\n--- stdout ---\n{self.out.read_text()}\n"
                f"--- stderr ---\n{self.err.read_text()[-4000:]}\n--- control.log ---\n{log}")

    def wait_ready(self) -> str:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"consortia up exited early:\n{self.output()}")
            return "demo network id" in self.out.read_text()
        wait_until(ready, READY_TIMEOUT, "consortia up to serve its demo network", 0.2)
        return self.out.read_text()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"consortia up did not exit after {sig.name}:\n{self.output()}")
        assert self.proc.returncode == 0, self.output()
        assert "control plane stopped" in self.out.read_text(), self.output()

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[list[Up]]:
    started: list[Up] = []
    try:
        yield started
    finally:
        for up in started:
            up.cleanup()
        for pid in processes_using(tmp_path / "cp"):  # nothing may outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def printed(text: str, label: str) -> str:
    m = re.search(rf"{label}\s+(\S+)", text)
    assert m, f"no {label!r} in:\n{text}"
    return m.group(1)


ORGS = (("org1", "default", "validator"), ("org2", "demo-org2", "peer"),
        ("org3", "demo-org3", "peer"))


def organizations(url: str, data_dir: Path, demo_id: str) -> dict[str, tuple[str, list[str]]]:
    """Each demo organization's member id and node ids, read as its own tenant (a member's
    nodes are its tenant's only), after checking all are AVAILABLE and of the right type."""
    out = {}
    for name, profile, node_type in ORGS:
        p = load_profile(profile, data_dir / "credentials", env={})
        with ControlClient(url, p.credentials) as c:
            (member,) = [m for m in c.iter_members(demo_id) if m.name == name]
            assert member.status == "AVAILABLE"
            nodes = list(c.iter_nodes(demo_id, member.id))
            assert nodes and {(n.node_type, n.status) for n in nodes} == {
                (node_type, "AVAILABLE")}, nodes
            out[name] = (member.id, [n.id for n in nodes])
    return out


def test_up_serves_the_api_and_a_demo_network_and_stops_cleanly(tmp_path: Path,
                                                                 ups: list[Up]) -> None:
    data_dir = tmp_path / "cp"
    port, base = free_port(), free_port_block(16)
    up = Up(data_dir, port, f"{base}-{base + 16}", tmp_path, 0)
    ups.append(up)
    out = up.wait_ready()
    creds = Credentials(printed(out, "access key id"), printed(out, "secret"))
    demo_id = printed(out, "demo network id")
    assert f"{up.url}/explorer" in out
    assert (data_dir / "credentials").stat().st_mode & 0o077 == 0

    with ControlClient(up.url, creds) as c:
        assert c.me().user.role == "owner"
        net = c.get_network(demo_id)
        assert (net.name, net.status) == ("demo", "AVAILABLE")
        member = next(c.iter_members(demo_id))
        nodes = list(c.iter_nodes(demo_id, member.id))
        assert [n.status for n in nodes] == ["AVAILABLE"]
        assert nodes[0].api_endpoint is not None
        info = httpx.get(f"{nodes[0].api_endpoint}/v1/chain", timeout=HTTP_TIMEOUT).json()
        assert info["chain_id"] == demo_id
    orgs = organizations(up.url, data_dir, demo_id)
    assert "org2-peer0" in out and "org3-peer0" in out  # the final table
    running = processes_using(data_dir)
    assert len(running) >= 4, running  # the control plane, the validator, two peers

    # org2 registers and enrolls an identity of its own CA (the key made by the CLI),
    # which notarizes through org2's peer
    org2, client_dir = orgs["org2"][0], tmp_path / "org2-client"
    as_org2 = ["--credentials", str(data_dir / "credentials"), "--profile", "demo-org2"]
    reg = run_cli(*as_org2, "ca", "identity", "register", demo_id, org2, "erin", "--json")
    assert reg.returncode == 0, reg.stdout + reg.stderr
    secret = json.loads(reg.stdout)["enrollment_secret"]
    enrolled = run_cli(*as_org2, "ca", "enroll", demo_id, org2, "erin", "--secret", secret,
                       "--dir", client_dir)
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    put = run_cli("notary", "put", "-N", client_dir, "--as", f"{org2}/erin", "-b", "inv-1",
                  "--text", "hello from org2", "--json")
    assert put.returncode == 0, put.stdout + put.stderr
    assert json.loads(put.stdout)["status"] == "committed"

    up.stop(signal.SIGTERM)
    wait_until(lambda: not processes_using(data_dir), STOP_TIMEOUT,
               "the control plane and its nodes to exit")
    assert not healthy(up.url)

    # `consortia up` again: the same platform key, the same demo network, running again
    again = Up(data_dir, port, f"{base}-{base + 16}", tmp_path, 1)
    ups.append(again)
    out = again.wait_ready()
    assert printed(out, "access key id") == creds.access_key_id
    assert printed(out, "demo network id") == demo_id
    with ControlClient(again.url, creds) as c:
        assert [n.id for n in c.iter_networks()] == [demo_id]
        assert len(list(c.iter_tenants())) == 3  # admin and the two guests: none new
        assert len(list(c.iter_proposals(demo_id))) == 2
        node = c.wait_for_node(demo_id, member.id, nodes[0].id, timeout=60)
        assert node.status == "AVAILABLE"
        assert healthy(str(node.api_endpoint))
    assert organizations(again.url, data_dir, demo_id) == orgs  # the same, running again
    again.stop(signal.SIGINT)
    wait_until(lambda: not processes_using(data_dir), STOP_TIMEOUT,
               "the control plane and its nodes to exit")
