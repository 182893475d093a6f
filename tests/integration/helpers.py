"""Helpers of the integration suite: real node processes on 127.0.0.1, real HTTP.

Every node is ``python -m consortia.node --config node.toml`` in its own process,
on a free port, with its stderr in a file under the test's temporary directory.
``NodeFarm`` creates networks (``consortia.sdk.init_network``) and starts, kills
and restarts their nodes; the fixtures of conftest.py close every farm (SIGTERM,
then SIGKILL) at teardown and attach the output of every node a failing test used
to its report.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from consortia.sdk import LocalNetwork, init_network
from consortia.types.config import BlockLimits

HTTP_TIMEOUT = 10.0
START_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0

# Nodes whose logs a failing test report shows (the nodes held by fixtures right now).
ACTIVE: list[NodeProcess] = []


# Below Linux's ephemeral range (32768-60999): a port picked there can be taken at any
# moment by some process's outgoing connection, which made restarted nodes fail to bind.
_PORTS = (20_000, 32_000)
_rng = random.Random()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1 that are free now and outside
    the ephemeral range (networks number their nodes' ports base + i)."""
    for _ in range(1000):
        base = _rng.randrange(_PORTS[0], _PORTS[1] - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free block of ports on 127.0.0.1")


def free_port() -> int:
    """A free port on 127.0.0.1 outside the ephemeral range."""
    return free_port_block(1)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env.pop("CONSORTIA_NODE", None)
    env.pop("CONSORTIA_NETWORK", None)
    env.update(extra)
    return env


def cli_command() -> list[str]:
    """The ``consortia`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("consortia")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "consortia.cli.main"]


def run_cli(*args: str | Path, network: Path | None = None, cwd: Path | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``consortia ARGS`` (with ``CONSORTIA_NETWORK`` set to ``network``) to completion."""
    extra = {"CONSORTIA_NETWORK": str(network)} if network is not None else {}
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True,
                          env=subprocess_env(**extra), cwd=cwd, timeout=timeout, check=False)


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n"
            f"--- stderr ---\n{proc.stderr}")


def error_of(resp: httpx.Response) -> dict[str, Any]:
    """The ``{"code", "message"}`` of a refusal, checking the documented envelope."""
    try:
        doc = resp.json()
    except ValueError:
        pytest.fail(f"HTTP {resp.status_code}: body is not JSON: {resp.text[:300]!r}")
    assert isinstance(doc, dict) and set(doc) == {"error"}, (
        f"HTTP {resp.status_code}: refusal is not {{'error': {{code, message}}}}: {doc!r}")
    err = doc["error"]
    assert isinstance(err, dict) and set(err) == {"code", "message"}, err
    assert isinstance(err["code"], str) and err["code"], err
    assert isinstance(err["message"], str) and err["message"], err
    return err


def assert_refused(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    err = error_of(resp)
    assert (resp.status_code, err["code"]) == (status, code), (
        f"expected {status} {code}, got {resp.status_code} {err}")
    return err


class NodeProcess:
    """One node process of a network; restartable on the same configuration and data."""

    def __init__(self, net: LocalNetwork, log_dir: Path, label: str) -> None:
        self.net = net
        self.config = net.node_config()
        self.url = net.node_url()
        self.log_dir = log_dir
        self.label = label
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        ACTIVE.append(self)

    # -- process control -----------------------------------------------------------------

    def spawn(self, *extra_args: str) -> subprocess.Popen[bytes]:
        """Start the process (not waiting for it); stdout and stderr go to a fresh log file."""
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        log = self.log_dir / f"{self.label}.{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consortia.node", "--config", str(self.config),
                 *extra_args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=subprocess_env())
        return self.proc

    def start(self, timeout: float = START_TIMEOUT) -> NodeProcess:
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if proc.poll() is not None:
                pytest.fail(f"node {self.label} exited with {proc.returncode} before it "
                            f"served /healthz:\n{self.log_text()}")
            if time.monotonic() >= deadline:
                self.kill()
                pytest.fail(f"node {self.label} did not answer /healthz within {timeout:.0f} s:"
                            f"\n{self.log_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or power cut of the process."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> NodeProcess:
        self.stop()
        return self.start()

    def verify_chain(self, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``python -m consortia.node --config X --verify-chain`` to completion."""
        return subprocess.run(
            [sys.executable, "-m", "consortia.node", "--config", str(self.config),
             "--verify-chain"], capture_output=True, text=True, env=subprocess_env(),
            timeout=timeout, check=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- access --------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT)

    @property
    def data_dir(self) -> Path:
        return self.config.parent / "data"

    @property
    def ledger(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    def log_text(self, limit: int = 20_000) -> str:
        parts = []
        for p in self.logs:
            try:
                text = p.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"--- {p.name} ---\n{text[-limit:]}")
        return "\n".join(parts) or "(no output)"

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self in ACTIVE:
                ACTIVE.remove(self)


class ClusterProcesses:
    """The node processes of a multi-node network, by node id: started from their
    node.toml in the foreground of the test (logs ``<root>/<id>.log``), SIGKILLed one by
    one (``kill``) or all at the end (``close``) — crashes, not clean stops."""

    def __init__(self, net: LocalNetwork, root: Path, *, start_timeout: float = 60) -> None:
        self.net = net
        self.root = root
        self.start_timeout = start_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, node_id: str) -> None:
        node = self.net.node(node_id)
        with (self.root / f"{node_id}.log").open("ab") as log:
            self.procs[node_id] = subprocess.Popen(
                [sys.executable, "-m", "consortia.node", "--config", str(node.config)],
                stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        wait_until(lambda: healthy(node.api), self.start_timeout, f"{node_id} to answer")

    def kill(self, node_id: str) -> None:
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=15)

    def close(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=15)


def configure_node(net: LocalNetwork, **sections: dict[str, Any]) -> None:
    """Merge settings into the node's node.toml, e.g. ``api={"max_body_bytes": 2**21}``."""
    path = net.node_config()
    doc = tomllib.loads(path.read_text())
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    path.write_text(tomli_w.dumps(doc))


class NodeFarm:
    """Creates networks in a temporary directory and owns the node processes it starts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[NodeProcess] = []

    def network(self, name: str, *, chain_id: str = "itest", orgs: list[str] | None = None,
                limits: BlockLimits | None = None, **node_settings: dict[str, Any]
                ) -> LocalNetwork:
        net = init_network(self.root / name, chain_id=chain_id, orgs=orgs or ["org1", "org2"],
                           port=free_port(), limits=limits)
        if node_settings:
            configure_node(net, **node_settings)
        return net

    def node(self, net: LocalNetwork, *, start: bool = True) -> NodeProcess:
        node = NodeProcess(net, self.root, f"node-{net.root.name}")
        self.nodes.append(node)
        return node.start() if start else node

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def chain_state(http: httpx.Client) -> tuple[int, int]:
    """(height, tx_count) from GET /v1/chain."""
    r = http.get("/v1/chain")
    assert r.status_code == 200, r.text
    doc = r.json()
    return int(doc["height"]), int(doc["tx_count"])


def assert_not_stored(http: httpx.Client, before: tuple[int, int],
                      tx_ids: list[str] | tuple[str, ...] = ()) -> None:
    """Nothing was added: chain height and tx_count as ``before``, no receipt, no transaction."""
    assert chain_state(http) == before, "a refused request changed the chain"
    for tx_id in tx_ids:
        assert_refused(http.get(f"/v1/receipts/{tx_id}"), 404, "not_found")
        assert_refused(http.get(f"/v1/transactions/{tx_id}"), 404, "not_found")


def post_envelope(http: httpx.Client, raw: bytes, **params: Any) -> httpx.Response:
    """POST raw canonical envelope bytes to /v1/transactions."""
    return http.post("/v1/transactions", content=raw, params=params,
                     headers={"content-type": "application/octet-stream"})
