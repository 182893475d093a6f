"""Node processes on this machine: the command line that names a node, PID files trusted
only while they name that node's process, and stopping such a process.

A node process is ``python -m consortia.node --config <node.toml by absolute path>``; that
command line names it. A PID file is honoured only while ``/proc/<pid>/cmdline`` still
names the same node, so a PID the kernel has given to another program since is never
signalled. Where the kernel offers ``pidfd_open`` (Linux 5.3+), the process is pinned
before its command line is checked and signalled through that handle, which closes the
window in which the PID could be reused between the check and the signal.

Two supervisors share this: the CLI's background nodes (``consortia.cli.background``) and
the control plane's local provisioner (``consortia.control.provision.local``). Both may
import the SDK, neither may import the other, hence its place here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

STOP_TIMEOUT = 15.0
"""Seconds a node gets to stop after SIGTERM before it is killed."""
_POLL = 0.05
_EXEC_WAIT = 0.5
"""Longest wait for the command line of a process that is still exec-ing."""


def node_command(config: Path) -> list[str]:
    """The node's command line: this interpreter, its configuration by absolute path."""
    return [sys.executable, "-m", "consortia.node", "--config", str(config.resolve())]


NODE_MODULE = "consortia.node"
MANAGER_MODULE = "consortia.privacy"
"""The transaction manager (``python -m consortia.privacy serve --config <tm.toml>``): a
local network supervises it with the same PID-file rule as its nodes."""


def is_node_process(pid: int, config: Path, module: str = NODE_MODULE) -> bool:
    """Whether ``pid`` is, right now, the node process of ``config`` (not a zombie); with
    ``module``, the process of another ``python -m`` program its configuration names."""
    if pid <= 0:
        return False
    if not Path("/proc/self").exists():  # no procfs: trust the PID while it lives
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    argv = _cmdline(pid)
    return (argv is not None and module.encode() in argv
            and str(config.resolve()).encode() in argv)


def _cmdline(pid: int) -> list[bytes] | None:
    """``pid``'s command line; None once it is gone or a zombie (whose command line is
    empty: it is no longer the node either). A process caught in the middle of ``exec``
    shows an empty command line for a moment too: that one is read again."""
    deadline = time.monotonic() + _EXEC_WAIT
    while True:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return None                  # gone
        if raw:
            return raw.split(b"\0")
        state = stat[stat.rfind(b")") + 2:][:1]   # "pid (comm) S …": comm may hold ")"
        if state in (b"Z", b"X") or time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def read_pid_file(path: Path, config: Path, module: str = NODE_MODULE) -> int | None:
    """The PID ``path`` records, if it is still the node process of ``config``."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_node_process(pid, config, module) else None


def write_pid_file(path: Path, pid: int) -> None:
    """Record ``pid`` in ``path`` (written aside and renamed: never seen half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def remove_pid_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def signal_node(pid: int, config: Path, sig: int, module: str = NODE_MODULE) -> bool:
    """Send ``sig`` to ``pid`` only if it is the node process of ``config``; whether sent."""
    fd: int | None = None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):    # no pidfd here: check, then signal by PID
        fd = None
    try:
        if not is_node_process(pid, config, module):
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


def wait_gone(pid: int, config: Path, timeout: float, module: str = NODE_MODULE) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to stop being ``config``'s node; whether
    it has."""
    deadline = time.monotonic() + timeout
    while is_node_process(pid, config, module):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def terminate(pid: int, config: Path, timeout: float = STOP_TIMEOUT,
              module: str = NODE_MODULE) -> bool:
    """SIGTERM the node process ``pid`` of ``config`` and wait for it to exit, SIGKILL after
    ``timeout`` seconds. A PID that is not that node's is left alone. Whether the node is
    gone afterwards."""
    if not signal_node(pid, config, signal.SIGTERM, module):
        return not is_node_process(pid, config, module)
    if wait_gone(pid, config, timeout, module):
        return True
    signal_node(pid, config, signal.SIGKILL, module)
    return wait_gone(pid, config, timeout, module)
