"""Running a local network's processes in the background: its transaction managers, then
its nodes (``LocalNetwork.start``, ``stop``, ``status``).

Each process runs in its own session (a Ctrl-C in the terminal that started it does not
reach it), its output appended to a log beside its configuration and its PID in a file
there::

    orgs/<org>/tm/tm.log, tm.pid        the organization's transaction manager
    nodes/<id>/node.log, node.pid       a node (the files ``consortia dev`` uses too)

A PID file is trusted only while its process still runs that configuration
(``consortia.sdk.processes``), so ``start`` skips what already runs and ``stop`` never
signals a PID the kernel has given to another program.

Order matters: a quorum node with a ``[privacy]`` section asks its manager for the payload
of every private transaction it commits, and stops rather than commit without it, so the
managers start before the nodes and stop after them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from consortia.sdk import processes
from consortia.sdk.nettm import NetworkManager
from consortia.types.errors import ConsortiaError

if TYPE_CHECKING:
    from consortia.sdk.network import LocalNetwork, NetworkNode

START_TIMEOUT = 60.0
"""Seconds ``start`` waits for each group (managers, then nodes) to answer."""
STOP_TIMEOUT = processes.STOP_TIMEOUT
HEALTH_TIMEOUT = 1.0
"""Timeout of one ``/healthz`` probe."""
NODE_PID, NODE_LOG = "node.pid", "node.log"
TM_PID, TM_LOG = "tm.pid", "tm.log"


class StartFailed(ConsortiaError):
    """A manager or node exited or did not answer in time; the processes this ``start``
    had started are stopped again."""

    status = 500
    code = "start_failed"


@dataclass(frozen=True)
class ProcessStatus:
    """One process of a local network, as ``LocalNetwork.status`` reports it."""

    kind: str
    """``manager``, ``validator`` or ``peer``."""
    id: str
    """The node's id; for a manager, ``tm-<org>``."""
    org: str
    url: str
    """Where it answers ``/healthz``: a node's API, a manager's local API."""
    pid: int | None
    """Its PID when it runs in the background (a PID file names it), else None."""
    healthy: bool
    """Whether it answered ``/healthz`` just now (a node run by a terminal answers too)."""


@dataclass(frozen=True)
class _Proc:
    """A program of the network: how to run it and where its files are."""

    kind: str
    id: str
    org: str
    url: str
    config: Path
    module: str
    pid_file: Path
    log_file: Path

    @property
    def command(self) -> list[str]:
        extra = ["serve"] if self.module == processes.MANAGER_MODULE else []
        return [sys.executable, "-m", self.module, *extra, "--config",
                str(self.config.resolve())]

    def running(self) -> int | None:
        return processes.read_pid_file(self.pid_file, self.config, self.module)


def manager_proc(m: NetworkManager) -> _Proc:
    return _Proc("manager", f"tm-{m.org}", m.org, m.url, m.config,
                 processes.MANAGER_MODULE, m.dir / TM_PID, m.dir / TM_LOG)


def node_proc(node: NetworkNode) -> _Proc:
    return _Proc(node.role, node.id, node.org, node.api, node.config,
                 processes.NODE_MODULE, node.config.parent / NODE_PID,
                 node.config.parent / NODE_LOG)


def spawn(proc: _Proc) -> subprocess.Popen[bytes]:
    """Start ``proc`` in its own session, output appended to its log; record its PID."""
    proc.log_file.parent.mkdir(parents=True, exist_ok=True)
    with proc.log_file.open("ab") as out:
        child = subprocess.Popen(proc.command, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    processes.write_pid_file(proc.pid_file, child.pid)
    return child


def halt(proc: _Proc, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM ``proc``'s background process and wait (SIGKILL after ``timeout``); its
    PID, or None when none ran."""
    pid = proc.running()
    if pid is not None:
        processes.terminate(pid, proc.config, timeout, proc.module)
    processes.remove_pid_file(proc.pid_file)
    return pid


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/healthz",
                         timeout=HEALTH_TIMEOUT).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, since: int, lines: int = 20) -> str:
    try:
        with path.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in text)


def wait_answering(started: list[tuple[_Proc, subprocess.Popen[bytes], int]],
                   timeout: float) -> None:
    """Wait until every started process answers; ``StartFailed`` (with the tail of its
    log) for the first that exits or stays silent past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for proc, child, log_start in started:
        while not answers(proc.url):
            if child.poll() is not None:
                raise StartFailed(f"{proc.kind} {proc.id} exited with status "
                                  f"{child.returncode}; its log is {proc.log_file}"
                                  + _tail(proc.log_file, log_start))
            if time.monotonic() >= deadline:
                raise StartFailed(f"{proc.kind} {proc.id} did not answer at {proc.url} "
                                  f"within {timeout:.0f} s; its log is {proc.log_file}"
                                  + _tail(proc.log_file, log_start))
            time.sleep(0.1)


def _start_group(procs: list[_Proc], timeout: float,
                 started: list[tuple[_Proc, subprocess.Popen[bytes], int]]) -> None:
    group = []
    for proc in procs:
        if proc.running() is not None:
            continue
        log_start = proc.log_file.stat().st_size if proc.log_file.exists() else 0
        group.append((proc, spawn(proc), log_start))
    started.extend(group)
    wait_answering(group, timeout)


def start(net: LocalNetwork, *, timeout: float = START_TIMEOUT) -> None:
    """Start what of ``net`` is not running: its managers (waiting until they answer),
    then its validators and peers (waiting again). On a failure the processes started
    here are stopped again and ``StartFailed`` tells which and why."""
    started: list[tuple[_Proc, subprocess.Popen[bytes], int]] = []
    try:
        _start_group([manager_proc(m) for m in net.managers()], timeout, started)
        _start_group([node_proc(n) for n in [*net.nodes(), *net.peers()]], timeout, started)
    except BaseException:
        for proc, child, _ in reversed(started):
            halt(proc)
            if child.poll() is None:
                child.kill()
            child.wait()
        raise


def stop(net: LocalNetwork, *, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop the network's background nodes, then its managers; the ids of those that ran."""
    nodes = [node_proc(n) for n in [*net.nodes(), *net.peers()]]
    return [p.id for p in [*nodes, *(manager_proc(m) for m in net.managers())]
            if halt(p, timeout) is not None]


def stop_managers(net: LocalNetwork, *, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop the network's background managers only (after its nodes have stopped)."""
    return [p.id for p in (manager_proc(m) for m in net.managers())
            if halt(p, timeout) is not None]


def start_managers(net: LocalNetwork, *, timeout: float = START_TIMEOUT) -> list[str]:
    """Start the network's managers not running yet and wait until they answer; the ids
    of those started (``StartFailed`` as for ``start``)."""
    started: list[tuple[_Proc, subprocess.Popen[bytes], int]] = []
    try:
        _start_group([manager_proc(m) for m in net.managers()], timeout, started)
    except BaseException:
        for proc, _, _ in started:
            halt(proc)
        raise
    return [p.id for p, _, _ in started]


def status(net: LocalNetwork) -> list[ProcessStatus]:
    """Managers first, then validators and peers."""
    procs = [*(manager_proc(m) for m in net.managers()),
             *(node_proc(n) for n in [*net.nodes(), *net.peers()])]
    return [ProcessStatus(p.kind, p.id, p.org, p.url, p.running(), answers(p.url))
            for p in procs]
