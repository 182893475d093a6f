"""The pinned npm tool set: solc-js, Hardhat and ganache, installed once with ``npm ci``.

The package carries ``npm/package.json`` and its ``package-lock.json`` (exact versions and
integrity hashes) plus two small JavaScript files of its own (``compile.js``, the solc-js
front end; ``hardhat.config.js``). :func:`ensure_tools` copies them into a cache directory
named by their hash and runs ``npm ci`` there, once: a later call finds the marker file and
returns at once, a change of the pinned set installs into a new directory. Site-packages
is never written to, and every worktree or virtualenv of a machine shares one install.

Where: ``$CONSORTIA_EVM_TOOLS`` if set, else ``$XDG_CACHE_HOME/consortia/evm-tools/<hash>``
(``~/.cache`` by default). Concurrent callers serialize on a lock file, so parallel tests
install once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from consortia.sdk.evm._errors import ToolError

NPM_TIMEOUT = 900.0
"""Seconds ``npm ci`` may take (about a minute on a warm npm cache, more on a cold one)."""

_FILES = ("package.json", "package-lock.json", "compile.js", "hardhat.config.js")
_MARKER = ".consortia-installed"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Tools:
    """An installed tool set: where it is and how to run its programs."""

    root: Path
    node: str
    """The Node.js executable."""

    @property
    def compile_js(self) -> Path:
        return self.root / "compile.js"

    @property
    def ganache_cli(self) -> Path:
        return self.root / "node_modules" / "ganache" / "dist" / "node" / "cli.js"

    @property
    def hardhat_cli(self) -> Path:
        return self.root / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"

    @property
    def hardhat_config(self) -> Path:
        return self.root / "hardhat.config.js"


def _source() -> resources.abc.Traversable:
    return resources.files("consortia.sdk.evm") / "npm"


def pinned_hash() -> str:
    """The first 16 hex digits of SHA-256 over the pinned files: the install's name."""
    h = hashlib.sha256()
    for name in _FILES:
        h.update(name.encode() + b"\0" + (_source() / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def tools_dir() -> Path:
    """Where the tool set is (or will be) installed."""
    explicit = os.environ.get("CONSORTIA_EVM_TOOLS")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "consortia" / "evm-tools" / pinned_hash()


def find_node() -> str:
    """The ``node`` executable, or :class:`ToolError` ``node_missing`` saying how to get it."""
    node = shutil.which("node")
    if node is None:
        raise ToolError("Node.js is not installed (needed for solc-js, Hardhat and ganache): "
                        "install it, e.g. `apt-get install nodejs npm`", code="node_missing")
    return node


def installed() -> Tools | None:
    """The tool set if it is installed and current, without installing anything."""
    root = tools_dir()
    marker = root / _MARKER
    if marker.is_file() and marker.read_text().strip() == pinned_hash():
        return Tools(root, find_node())
    return None


def ensure_tools(progress: Progress | None = None) -> Tools:
    """The installed tool set, running ``npm ci`` first if it is missing or stale.

    ``progress`` receives one line per step and each line npm prints. Raises
    :class:`ToolError` (``node_missing``, ``npm_failed``) when it cannot install.
    """
    ready = installed()
    if ready is not None:
        return ready
    node = find_node()
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError("npm is not installed (it installs solc-js, Hardhat and ganache): "
                        "install it, e.g. `apt-get install npm`", code="node_missing")
    root = tools_dir()
    root.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing right now
        ready = installed()
        if ready is not None:
            return ready
        for name in _FILES:
            (root / name).write_bytes((_source() / name).read_bytes())
        say(f"installing the pinned npm tool set into {root} (npm ci)")
        _npm_ci(npm, root, say)
        (root / _MARKER).write_text(pinned_hash() + "\n")
    say("npm tool set ready")
    return Tools(root, node)


def _npm_ci(npm: str, root: Path, say: Progress) -> None:
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=http"]
    tail: list[str] = []
    try:
        proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ToolError(f"cannot run npm: {exc}", code="npm_failed") from exc
    assert proc.stdout is not None
    watchdog = threading.Timer(NPM_TIMEOUT, proc.kill)  # reading stdout blocks: kill to end
    watchdog.start()
    try:
        for raw in proc.stdout:  # npm's own progress, as it comes
            line = raw.rstrip()
            if line and "Unknown user config" not in line:
                tail = [*tail[-19:], line]
                say(line)
        rc = proc.wait()
    finally:
        timed_out = not watchdog.is_alive() and proc.returncode is not None and rc_killed(proc)
        watchdog.cancel()
    if timed_out:
        raise ToolError(f"npm ci did not finish in {NPM_TIMEOUT:.0f} s", code="npm_failed")
    if rc != 0:
        raise ToolError(f"npm ci failed (exit {rc}) in {root}:\n" + "\n".join(tail),
                        code="npm_failed")


def rc_killed(proc: subprocess.Popen[str]) -> bool:
    """Whether ``proc`` ended by SIGKILL (the watchdog's doing)."""
    return proc.returncode == -signal.SIGKILL
