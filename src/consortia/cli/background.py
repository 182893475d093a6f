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
the control plane's local provisioner; the files and the spawning are
``consortia.sdk.netrun``'s, which ``LocalNetwork.start`` uses too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from consortia.sdk import netrun
from consortia.sdk.network import NetworkNode
from consortia.sdk.processes import STOP_TIMEOUT

PID_FILE = netrun.NODE_PID
LOG_FILE = netrun.NODE_LOG


def pid_file(node: NetworkNode) -> Path:
    return netrun.node_proc(node).pid_file


def log_file(node: NetworkNode) -> Path:
    return netrun.node_proc(node).log_file


def command(node: NetworkNode) -> list[str]:
    """The node's command line (its configuration by absolute path, which names it)."""
    return netrun.node_proc(node).command


def running(node: NetworkNode) -> int | None:
    """The PID of ``node``'s background process, if the CLI started one that still runs."""
    return netrun.node_proc(node).running()


def start(node: NetworkNode) -> subprocess.Popen[bytes]:
    """Start ``node`` in its own session, output appended to its log; record its PID."""
    return netrun.spawn(netrun.node_proc(node))


def stop(node: NetworkNode, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM ``node``'s background process and wait for it to exit (SIGKILL after
    ``timeout``); its PID, or None when the CLI had no process of it running."""
    return netrun.halt(netrun.node_proc(node), timeout)
