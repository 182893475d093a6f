"""Ethereum development nodes started as child processes: Hardhat's node and ganache.

Tests start ganache to exercise ``consortia contract`` against a real Ethereum node;
``bench/evm.py`` starts both as baselines. A launcher is a function
``(port, workdir) -> DevNode``; :data:`LAUNCHERS` maps the names the bench accepts to them,
so a new target (a Consortia quorum network, when its node exists) is one more function and
one more entry. Accounts are funded after start over JSON-RPC (``hardhat_setBalance`` /
``evm_setAccountBalance``): no private key passes through a command line or environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from consortia.sdk.evm._errors import RpcError, ToolError
from consortia.sdk.evm.tools import Tools, ensure_tools

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0


@dataclass
class DevNode:
    """A running development node (a child process) and how to reach and fund it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    set_balance_method: str
    """JSON-RPC method that sets an account's balance (hardhat_ / evm_setAccountBalance)."""
    _log: IO[bytes]

    def fund(self, addresses: list[str], wei: int = 10**24) -> None:
        """Give each address ``wei``."""
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            for i, addr in enumerate(addresses):
                reply = http.post(self.url, json={"jsonrpc": "2.0", "id": i,
                                                  "method": self.set_balance_method,
                                                  "params": [addr, hex(wei)]}).json()
                if "error" in reply:
                    raise RpcError(f"{self.set_balance_method} failed: {reply['error']}")

    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; closes the log."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        self._log.close()

    def __enter__(self) -> DevNode:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _spawn(name: str, cmd: list[str], cwd: Path, port: int, workdir: Path,
           method: str, env: dict[str, str] | None = None) -> DevNode:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - DevNode owns and closes it
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, **(env or {})})
    node = DevNode(name, f"http://127.0.0.1:{port}", proc, log_path, method, log)
    try:
        _wait_ready(node)
    except BaseException:
        node.stop()
        raise
    return node


def _wait_ready(node: DevNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as http:
        while True:
            if node.process.poll() is not None:
                raise ToolError(f"{node.name} exited ({node.process.returncode}) at start: "
                                f"{node.log_path.read_text(errors='replace')[-1500:]}")
            try:
                r = http.post(node.url, json={"jsonrpc": "2.0", "id": 0,
                                              "method": "eth_chainId", "params": []})
                if r.status_code == 200 and "result" in r.json():
                    return
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise ToolError(f"{node.name} did not answer on {node.url} within "
                                f"{START_TIMEOUT:.0f} s (log: {node.log_path})")
            time.sleep(0.2)


def start_ganache(port: int, workdir: Path, *, block_time: float = 0,
                  tools: Tools | None = None, chain_id: int = 1337) -> DevNode:
    """ganache (instamine: a block per transaction, its default), or one block every
    ``block_time`` seconds."""
    t = tools or ensure_tools()
    cmd = [t.node, str(t.ganache_cli), "--server.host", "127.0.0.1", "--server.port",
           str(port), "--chain.chainId", str(chain_id), "--chain.hardfork", "shanghai",
           "--wallet.totalAccounts", "1", "--logging.quiet", "true"]
    if block_time:
        cmd += ["--miner.blockTime", str(block_time)]
    return _spawn("ganache", cmd, t.root, port, workdir, "evm_setAccountBalance")


def start_hardhat(port: int, workdir: Path, *, interval_ms: int = 1000,
                  tools: Tools | None = None, chain_id: int = 31337) -> DevNode:
    """Hardhat's node (``hardhat node``) with interval mining every ``interval_ms``
    (0: automine)."""
    t = tools or ensure_tools()
    cmd = [t.node, str(t.hardhat_cli), "node", "--hostname", "127.0.0.1", "--port",
           str(port), "--config", str(t.hardhat_config)]
    env = {"CONSORTIA_HARDHAT_INTERVAL_MS": str(interval_ms),
           "CONSORTIA_HARDHAT_CHAIN_ID": str(chain_id),
           "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
    return _spawn("hardhat", cmd, t.root, port, workdir, "hardhat_setBalance", env)


Launcher = Callable[[int, Path], DevNode]
LAUNCHERS: dict[str, Launcher] = {
    "hardhat": start_hardhat,
    "ganache": start_ganache,
    "ganache-1s": lambda port, workdir: start_ganache(port, workdir, block_time=1),
}
"""Built-in targets of ``bench/evm.py --launch NAME``."""


def rpc(url: str, method: str, params: list[Any], timeout: float = HTTP_TIMEOUT) -> Any:
    """One JSON-RPC call; :class:`RpcError` on an error answer."""
    with httpx.Client(timeout=timeout) as http:
        reply = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": params}).json()
    if "error" in reply:
        raise RpcError(f"{method} failed: {reply['error']}")
    return reply["result"]
