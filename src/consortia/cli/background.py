"""Node processes the CLI starts in the background, outside any supervisor.

``consortia dev validator add`` starts the new validator's node this way, whether the
other nodes run under ``consortia dev up``, a service manager or terminals: its own session
(a Ctrl-C in the terminal that started it does not reach it), output appended to
``nodes/<id>/node.log`` and its PID in ``nodes/<id>/node.pid``. ``validator remove`` and
``consortia dev up`` (when it stops its nodes) stop it through that file; ``consortia dev up``
does not start a second process for a node the file shows running.

A PID file is trusted only while the process it names is still this node's
(``python -m consortia.node --config <its node.toml>``), so a PID reused by another
program is never signalled. That rule lives in ``consortia.sdk.processes``, shared with
the control plane's local provisioner.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from consortia.sdk import processes
from consortia.sdk.network import NetworkNode
from consortia.sdk.processes import STOP_TIMEOUT

PID_FILE = "node.pid"
LOG_FILE = "node.log"


def pid_file(node: NetworkNode) -> Path:
    return node.config.parent / PID_FILE


def log_file(node: NetworkNode) -> Path:
    return node.config.parent / LOG_FILE


def command(node: NetworkNode) -> list[str]:
    """The node's command line (its configuration by absolute path, which names it)."""
    return processes.node_command(node.config)


def running(node: NetworkNode) -> int | None:
    """The PID of ``node``'s background process, if the CLI started one that still runs."""
    return processes.read_pid_file(pid_file(node), node.config)


def start(node: NetworkNode) -> subprocess.Popen[bytes]:
    """Start ``node`` in its own session, output appended to its log; record its PID."""
    log = log_file(node)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(command(node), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    processes.write_pid_file(pid_file(node), proc.pid)
    return proc


def stop(node: NetworkNode, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM ``node``'s background process and wait for it to exit (SIGKILL after
    ``timeout``); its PID, or None when the CLI had no process of it running."""
    pid = running(node)
    if pid is not None:
        processes.terminate(pid, node.config, timeout)
    processes.remove_pid_file(pid_file(node))
    return pid
