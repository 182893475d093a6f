"""``consortia dev up`` smoke test: create a dev chain, serve it, notarize, stop on SIGINT, resume.

``up`` runs the node as a child process. Ctrl-C in a terminal sends SIGINT to the
whole foreground process group (``up`` and its node); ``kill -INT`` reaches ``up``
alone, which must then stop its node itself. Both must leave no node behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import (
    HTTP_TIMEOUT,
    START_TIMEOUT,
    cli_command,
    describe,
    free_port,
    healthy,
    run_cli,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.integration

STOP_TIMEOUT = 30


class Up:
    """One ``consortia dev up`` process with its output in files."""

    def __init__(self, root: Path, port: int, logs: Path, n: int) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}"
        self.out = logs / f"up.{n}.stdout"
        self.err = logs / f"up.{n}.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*cli_command(), "dev", "up", "-N", str(root), "--port", str(port)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=subprocess_env(),
                start_new_session=True)      # its own process group, like a terminal job

    def output(self) -> str:
        return (f"exit {self.proc.poll()}\n--- stdout ---\n{self.out.read_text()}\n"
                f"--- stderr ---\n{self.err.read_text()}")

    def wait_up(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"consortia dev up exited early:\n{self.output()}")
            return healthy(self.url) and "Consortia is up" in self.out.read_text()
        wait_until(ready, START_TIMEOUT, f"consortia dev up to serve {self.url}")

    def node_pids(self) -> list[int]:
        """Processes of ``up``'s process group other than ``up`` itself (its node)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.proc.pid:
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            state, pgrp = fields[0], int(fields[2])
            if pgrp == self.proc.pid and state != "Z":
                pids.append(int(entry.name))
        return pids

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
        for pid in self.node_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ups(tmp_path) -> Iterator[list[Up]]:
    started: list[Up] = []
    try:
        yield started
    finally:
        for up in started:
            up.cleanup()


def _stopped(up: Up, how: str) -> None:
    try:
        up.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"consortia dev up did not exit after {how}:\n{up.output()}")
    wait_until(lambda: not up.node_pids(), STOP_TIMEOUT, "the node process to exit")
    assert not healthy(up.url)
    assert up.proc.returncode == 0, up.output()
    assert "node stopped" in up.out.read_text(), up.output()


def test_up_notarize_stop_and_resume(tmp_path, ups):
    root = tmp_path / "dev"
    port = free_port()
    up = Up(root, port, tmp_path, 0)
    ups.append(up)
    up.wait_up()
    assert up.node_pids(), "up runs its node as a child process"
    assert (root / "network.json").exists() and (root / "genesis.json").exists()

    doc = tmp_path / "README.txt"
    doc.write_text("notarize me\n")
    proof = tmp_path / "readme.proof.json"
    r = run_cli("notary", "file", doc, "--proof-out", proof, "-N", root, cwd=tmp_path)
    assert r.returncode == 0, describe(r)
    v = run_cli("verify", proof, "--genesis", root / "genesis.json", cwd=tmp_path)
    assert v.returncode == 0 and "VALID" in v.stdout, describe(v)
    height = httpx.get(f"{up.url}/v1/chain", timeout=HTTP_TIMEOUT).json()["height"]
    assert height >= 1

    # Ctrl-C in a terminal: SIGINT to the whole process group.
    os.killpg(up.proc.pid, signal.SIGINT)
    _stopped(up, "SIGINT to its process group")

    # `consortia dev up` again resumes the same chain (same network directory and port).
    again = Up(root, port, tmp_path, 1)
    ups.append(again)
    again.wait_up()
    assert "created network" not in again.out.read_text()
    info = httpx.get(f"{again.url}/v1/chain", timeout=HTTP_TIMEOUT).json()
    assert info["height"] == height
    assert info["genesis_hash"] == json.loads((root / "network.json").read_text())[
        "genesis_hash"]
    tx_id = json.loads(proof.read_text())["tx_id"]
    receipt = httpx.get(f"{again.url}/v1/receipts/{tx_id}", timeout=HTTP_TIMEOUT).json()
    assert receipt["status"] == "committed"

    # `kill -INT <pid of up>`: only up gets the signal and must stop its node.
    again.proc.send_signal(signal.SIGINT)
    _stopped(again, "SIGINT to its pid")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_up_stops_its_node_on_termination_signals(tmp_path, ups, sig):
    """A supervisor's SIGTERM or a closed terminal's SIGHUP reaches `up` alone; it must not
    leave its node orphaned."""
    up = Up(tmp_path / "dev", free_port(), tmp_path, 0)
    ups.append(up)
    up.wait_up()
    assert up.node_pids()
    up.proc.send_signal(sig)
    _stopped(up, sig.name)
