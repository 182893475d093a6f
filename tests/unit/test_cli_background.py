"""``cli/background.py`` and the port choice of ``network validator add``: which process a
PID file may name, and which ports a new validator gets. Stand-in processes, no node."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.cli import background, dev, validator
from consortia.sdk import init_network
from consortia.sdk.network import NetworkNode
from consortia.types.config import ConsensusKind
from tests.integration.helpers import free_port_block


@pytest.fixture
def node(tmp_path: Path) -> NetworkNode:
    net = init_network(tmp_path / "net", consensus=ConsensusKind.RAFT, port=40_000)
    return net.nodes()[0]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def _sleeper(procs: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    """A process that sleeps; ``argv`` is appended to its command line."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])
    procs.append(p)
    cmdline = Path(f"/proc/{p.pid}/cmdline")
    deadline = time.monotonic() + 10
    while not cmdline.read_bytes() and time.monotonic() < deadline:  # still exec-ing
        time.sleep(0.01)
    return p


def test_no_pid_file_or_a_garbled_one_is_no_process(node: NetworkNode) -> None:
    assert background.running(node) is None
    background.pid_file(node).write_text("not a pid\n")
    assert background.running(node) is None
    assert background.stop(node) is None
    assert not background.pid_file(node).exists()


def test_a_pid_reused_by_another_program_is_never_signalled(
        node: NetworkNode, procs: list[subprocess.Popen[bytes]]) -> None:
    other = _sleeper(procs)
    background.pid_file(node).write_text(f"{other.pid}\n")
    assert background.running(node) is None
    assert background.stop(node) is None
    assert other.poll() is None                      # still sleeping
    assert not background.pid_file(node).exists()    # the stale file is gone


def test_the_nodes_own_process_is_stopped(node: NetworkNode,
                                          procs: list[subprocess.Popen[bytes]]) -> None:
    mine = _sleeper(procs, "-m", "consortia.node", "--config", str(node.config.resolve()))
    background.pid_file(node).write_text(f"{mine.pid}\n")
    assert background.running(node) == mine.pid
    assert background.stop(node, timeout=5) == mine.pid
    assert mine.wait(timeout=5) == -signal.SIGTERM
    assert background.running(node) is None and not background.pid_file(node).exists()


def test_up_stops_background_nodes_with_its_own(node: NetworkNode,
                                                procs: list[subprocess.Popen[bytes]]) -> None:
    mine = _sleeper(procs, "-m", "consortia.node", "--config", str(node.config.resolve()))
    background.pid_file(node).write_text(f"{mine.pid}\n")
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        root = node.config.parent.parent.parent
        assert dev._stop_all([], root) == 1
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    assert mine.wait(timeout=5) == -signal.SIGTERM


def test_ports_of_a_new_validator(tmp_path: Path) -> None:
    # Ports below the ephemeral range, free now (a fixed port can be taken by a connection
    # in TIME-WAIT). API ports b..b+2, p2p b+3..b+5: the next API port is a p2p port, skipped.
    b = free_port_block(10)
    net = init_network(tmp_path / "net", consensus=ConsensusKind.RAFT, port=b, p2p_port=b + 3)
    host = "127.0.0.1"
    assert validator._ports(net, host, None, None) == (b + 6, b + 7)
    assert validator._ports(net, host, b + 8, b + 9) == (b + 8, b + 9)
    assert validator._ports(net, host, None, b + 6) == (b + 7, b + 6)
    for api, p2p in ((b + 1, None), (None, b), (b + 9, b + 9)):
        with pytest.raises(SystemExit):
            validator._ports(net, host, api, p2p)
