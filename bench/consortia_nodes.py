"""Consortia quorum networks as ``bench/evm.py`` targets: ``consortia-1`` and ``consortia-4``.

A launcher has the shape of ``consortia.sdk.evm.devnodes.LAUNCHERS``' — ``(port, workdir)``
to an object with ``url``, ``fund(addresses)``, ``pid()`` and ``stop()`` — so the bench
drives a Consortia network exactly as it drives Hardhat or ganache: over Ethereum JSON-RPC.

The network is what a user gets from ``consortia dev init --profile quorum``
(``init_network``, started with ``LocalNetwork.start``): one solo validator, or four pbft
validators of two organizations, each a ``python -m consortia.node`` process. *Funding*
differs by design: quorum chains charge no gas, so accounts need no ether, but only
accounts bound to an organization may send (ADR 0025). ``fund`` therefore binds the
addresses to ``org1`` with one ``account_update`` signed by its admin and waits until it
commits. The JSON-RPC URL is the first validator's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consortia.sdk.client import NodeClient
from consortia.sdk.network import LocalNetwork, init_network

START_TIMEOUT_S = 90.0


@dataclass
class ConsortiaNetwork:
    """A running local quorum network and its first validator's JSON-RPC URL."""

    name: str
    net: LocalNetwork

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
        first = self.net.nodes()[0].id
        pid = next(s.pid for s in self.net.status() if s.id == first)
        assert pid is not None
        return pid

    def stop(self) -> None:
        self.net.stop()


def _launch(name: str, port: int, workdir: Path, *, validators: int) -> ConsortiaNetwork:
    """``init_network`` as ``consortia dev init --profile quorum --no-privacy`` would (the
    bench sends public transfers: no transaction managers), started in the background."""
    kwargs: dict[str, object] = {"orgs": ["org1"], "consensus": "solo"}
    if validators > 1:
        kwargs = {"orgs": ["org1", "org2"], "consensus": "pbft", "validators": validators,
                  "p2p_port": port + 100}
    net = init_network(workdir / name, chain_id=name, port=port, profile="quorum",
                       accounts_per_org=1, privacy=False, **kwargs)  # type: ignore[arg-type]
    net.start(timeout=START_TIMEOUT_S)
    return ConsortiaNetwork(name, net)


LAUNCHERS: dict[str, Callable[[int, Path], ConsortiaNetwork]] = {
    "consortia-1": lambda port, workdir: _launch("consortia-1", port, workdir, validators=1),
    "consortia-4": lambda port, workdir: _launch("consortia-4", port, workdir, validators=4),
}
"""Bench targets: a one-validator (solo) and a four-validator (pbft, two orgs) network."""
