"""Node processes the CLI starts in the background, outside any supervisor.

``consortia network validator add`` starts the new validator's node this way, whether the
other nodes run under ``consortia up``, a service manager or terminals: its own session
(a Ctrl-C in the terminal that started it does not reach it), output appended to
``nodes/<id>/node.log`` and its PID in ``nodes/<id>/node.pid``. ``validator remove`` and
``consortia up`` (when it stops its nodes) stop it through that file; ``consortia up``
does not start a second process for a node the file shows running.

A PID file is trusted only while the process it names is still this node's
(``python -m consortia.node --config <its node.toml>``), so a PID reused by another
program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from consortia.sdk.network import NetworkNode

PID_FILE = "node.pid"
LOG_FILE = "node.log"
STOP_TIMEOUT = 15.0
"""Seconds a node gets to stop after SIGTERM before it is killed."""


def pid_file(node: NetworkNode) -> Path:
    return node.config.parent / PID_FILE


def log_file(node: NetworkNode) -> Path:
    return node.config.parent / LOG_FILE


def command(node: NetworkNode) -> list[str]:
    """The node's command line (its configuration by absolute path, which names it)."""
    return [sys.executable, "-m", "consortia.node", "--config", str(node.config.resolve())]


def _is_node_process(pid: int, node: NetworkNode) -> bool:
    if not Path("/proc/self").exists():  # no procfs: trust the PID file while the PID lives
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False                     # gone
    # A zombie's command line is empty: it is no longer the node either.
    return b"consortia.node" in argv and str(node.config.resolve()).encode() in argv


def running(node: NetworkNode) -> int | None:
    """The PID of ``node``'s background process, if the CLI started one that still runs."""
    try:
        pid = int(pid_file(node).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _is_node_process(pid, node) else None


def start(node: NetworkNode) -> subprocess.Popen[bytes]:
    """Start ``node`` in its own session, output appended to its log; record its PID."""
    log = log_file(node)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(command(node), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file(node).write_text(f"{proc.pid}\n")
    return proc


def stop(node: NetworkNode, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM ``node``'s background process and wait for it to exit (SIGKILL after
    ``timeout``); its PID, or None when the CLI had no process of it running."""
    pid = running(node)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_node_process(pid, node) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_node_process(pid, node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while _is_node_process(pid, node) and time.monotonic() < deadline:
                time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        pid_file(node).unlink()
    return pid
