"""Consortia quorum networks as ``bench/evm.py`` targets: ``consortia-1`` and ``consortia-4``.

A launcher has the shape of ``consortia.sdk.evm.devnodes.LAUNCHERS``' — ``(port, workdir)``
to an object with ``url``, ``fund(addresses)``, ``pid()`` and ``stop()`` — so the bench
drives a Consortia network exactly as it drives Hardhat or ganache: over Ethereum JSON-RPC.

The network is what a user gets from ``consortia dev init --profile quorum``
(``init_network``): one solo validator, or four pbft validators of two organizations, each
a ``python -m consortia.node`` process. *Funding* differs by design: quorum chains charge
no gas, so accounts need no ether, but only accounts bound to an organization may send
(ADR 0025). ``fund`` therefore binds the addresses to ``org1`` with one ``account_update``
signed by its admin and waits until it commits. The JSON-RPC URL is the first validator's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from consortia.sdk.client import NodeClient
from consortia.sdk.network import LocalNetwork, init_network

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


@dataclass
class ConsortiaNetwork:
    """A running local quorum network: its node processes and first validator's RPC URL."""

    name: str
    net: LocalNetwork
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.net.rpc_url()

    def fund(self, addresses: list[str], wei: int = 0) -> None:
        """Bind ``addresses`` to org1 (gas is free: ``wei`` is not needed and ignored)."""
        del wei
        tx = self.net.bind_accounts("org1", addresses)
        with NodeClient(self.net.node_url(), timeout=70) as client:
            reply = client.submit(tx, wait=True, timeout=60)
        if reply["status"] != "committed":
            raise RuntimeError(f"binding the bench accounts: {reply}")

    def pid(self) -> int:
        return self.processes[0].pid

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=STOP_TIMEOUT_S)


def _launch(name: str, port: int, workdir: Path, *, validators: int) -> ConsortiaNetwork:
    root = workdir / name
    kwargs: dict[str, object] = {"orgs": ["org1"], "consensus": "solo"}
    if validators > 1:
        kwargs = {"orgs": ["org1", "org2"], "consensus": "pbft", "validators": validators,
                  "p2p_port": port + 100}
    net = init_network(root, chain_id=name, port=port, profile="quorum",
                       accounts_per_org=1, **kwargs)  # type: ignore[arg-type]
    running = ConsortiaNetwork(name, net)
    try:
        for node in net.nodes():
            log = (node.config.parent / "node.log").open("ab")
            running.processes.append(subprocess.Popen(
                [sys.executable, "-m", "consortia.node", "--config", str(node.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))
            log.close()
        _wait_ready(running)
    except BaseException:
        running.stop()
        raise
    return running


def _wait_ready(running: ConsortiaNetwork) -> None:
    """Every node answers /healthz and the first one's JSON-RPC answers eth_chainId."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as http:
        for node, proc in zip(running.net.nodes(), running.processes, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{node.id} exited ({proc.returncode}); see "
                                       f"{node.config.parent / 'node.log'}")
                try:
                    if http.get(f"{node.api}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.id} did not start in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
        while True:
            try:
                reply = http.post(running.url, json={"jsonrpc": "2.0", "id": 1, "method":
                                                     "eth_blockNumber", "params": []}).json()
                if "result" in reply:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("JSON-RPC did not answer")
            time.sleep(0.2)


LAUNCHERS: dict[str, Callable[[int, Path], ConsortiaNetwork]] = {
    "consortia-1": lambda port, workdir: _launch("consortia-1", port, workdir, validators=1),
    "consortia-4": lambda port, workdir: _launch("consortia-4", port, workdir, validators=4),
}
"""Bench targets: a one-validator (solo) and a four-validator (pbft, two orgs) network."""
