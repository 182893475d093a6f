"""``consortia``: the command-line entry point and its top-level commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.panel import Panel

from consortia import __version__
from consortia.cli import background, chain, identity, network, node, notary
from consortia.cli.context import console, err_console, fail, guard, network_dir, print_json
from consortia.sdk import InvalidProof, LocalNetwork, init_network, load_genesis, verify_proof
from consortia.sdk.network import NetworkNode
from consortia.types.config import ConsensusKind
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Consortia: consortium blockchains as a service, self-hosted.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(network.app, name="network")
app.add_typer(node.app, name="node")
app.add_typer(notary.app, name="notary")
app.add_typer(chain.app, name="chain")
app.add_typer(identity.app, name="identity")

NetworkOpt = Annotated[Path | None, typer.Option("--network", "-N", help="network directory "
                       "(default $CONSORTIA_NETWORK or .consortia/dev)")]


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def verify(proof: Annotated[Path, typer.Argument(help="proof file (from GET /v1/proofs/…)")],
           genesis: Annotated[Path, typer.Option(help="the chain's genesis.json")],
           json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Verify a proof offline, with no node: exit 0 if valid, 1 with the reason if not."""
    try:
        g = load_genesis(genesis)
        result = verify_proof(proof.read_bytes(), g)
    except InvalidProof as exc:
        if json_out:
            print_json({"valid": False, "reason": exc.message})
            sys.exit(1)
        fail(f"proof is INVALID: {exc.message}")
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    p = result.payload
    if json_out:
        print_json({"valid": True, "tx_id": result.tx_id.hex(), "chain_id": result.chain_id,
                    "height": result.height, "index": result.index,
                    "block_hash": result.block_hash.hex(), "block_time_ms": result.block_time_ms,
                    "type": p.type.name.lower(), "signer": f"{result.signer_org}/"
                    f"{result.signer_name}", "validators": list(result.validators)})
        return
    console.print(Panel.fit(
        f"[bold green]VALID[/]  transaction [cyan]{result.tx_id.hex()}[/]\n"
        f"type        {p.type.name.lower()}\n"
        f"chain       {result.chain_id} (genesis {g.hash.hex()[:16]}…)\n"
        f"block       {result.height} #{result.index}  {result.block_hash.hex()[:16]}…\n"
        f"committed   {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(result.block_time_ms/1000))}"
        f" UTC\nsigned by   {result.signer_name} ({result.signer_role}) of {result.signer_org}\n"
        f"finalized   by {', '.join(result.validators)}",
        title="consortia proof"))


STOP_TIMEOUT = 15
"""Seconds a node gets to stop after SIGTERM before it is killed."""


@dataclass
class _Child:
    """One node process started by ``up``."""

    node: NetworkNode
    proc: subprocess.Popen[bytes]
    log: Path | None
    """Where its output goes (multi-node networks); None: ``up``'s own terminal."""
    log_start: int = 0
    """Size of ``log`` before this run appended to it."""

    def failure(self, what: str) -> str:
        if self.log is None:
            return f"node {self.node.id} {what}; see its log above"
        try:
            with self.log.open("rb") as f:
                f.seek(self.log_start)
                tail = f.read().decode(errors="replace").splitlines()[-20:]
        except OSError:
            tail = []
        return (f"node {self.node.id} {what}; its log is {self.log}"
                + ("".join(f"\n  {line}" for line in tail) if tail else ""))


def _start(node: NetworkNode, log: Path | None) -> _Child:
    cmd = [sys.executable, "-m", "consortia.node", "--config", str(node.config)]
    if log is None:
        return _Child(node, subprocess.Popen(cmd), None)
    with log.open("ab") as out:
        start = out.tell()
        return _Child(node, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL), log, start)


def _wait_healthy(children: list[_Child], timeout: float) -> str | None:
    """Wait until every node answers /healthz; the reason it failed, or None.

    A raft or pbft node may answer before its validators have elected a leader: the API
    is up, blocks follow once they have.
    """
    deadline = time.monotonic() + timeout
    pending = list(children)
    with console.status("starting " + (f"node at {children[0].node.api}" if len(children) == 1
                                       else f"{len(children)} nodes") + " …") as status:
        while pending:
            child = pending[0]
            if child.proc.poll() is not None:
                return child.failure(f"exited with status {child.proc.returncode}")
            try:
                if httpx.get(f"{child.node.api}/healthz", timeout=1.0).status_code == 200:
                    pending.pop(0)
                    if pending:
                        status.update(f"{len(children) - len(pending)} of {len(children)} "
                                      f"nodes up; waiting for {pending[0].node.id} …")
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                return child.failure(f"did not answer at {child.node.api} within "
                                     f"{timeout:.0f} s")
            time.sleep(0.2)
    return None


def _stop_all(children: list[_Child], root: Path) -> int:
    """SIGTERM every node still running, then wait for them (killing laggards); then stop
    the network's nodes that run in the background (``network validator add`` and
    ``network peer add`` start them so, also while ``up`` runs). The number of background
    nodes stopped."""
    # A second Ctrl-C (or a supervisor's repeated SIGTERM) must not abandon the children.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for c in children:
        if c.proc.poll() is None:
            c.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for c in children:
        try:
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    try:
        again = LocalNetwork.open(root)  # again: validators and peers may have been added
        nodes = [*again.nodes(), *again.peers()]
    except (ConsortiaError, OSError, ValueError):
        return 0
    return sum(background.stop(n) is not None for n in nodes)


def _supervise(children: list[_Child]) -> int:
    """Block until every node has exited; their worst exit status."""
    if len(children) == 1:
        return children[0].proc.wait()
    reported: set[str] = set()
    while True:
        for c in children:
            code = c.proc.poll()
            if code is not None and c.node.id not in reported:
                reported.add(c.node.id)
                err_console.print(f"[yellow]node {c.node.id} exited with status {code}[/]"
                                  + (f"; its log is {c.log}" if c.log else ""))
        if len(reported) == len(children):
            return next((c.proc.returncode for c in children if c.proc.returncode), 0)
        time.sleep(0.5)


def _panel(netw: LocalNetwork, root: Path) -> Panel:
    nodes = netw.nodes()
    url = nodes[0].api
    env_hint = f"export CONSORTIA_NETWORK={root}" if root != Path(".consortia/dev") else ""
    if len(nodes) == 1:
        what = "solo validator"
        where = (f"node API      {url}   (OpenAPI: {url}/docs, {url}/openapi.json)\n"
                 f"metrics       {url}/metrics\n")
    else:
        what = f"{len(nodes)} {netw.consensus.value} validators"
        where = "".join(f"{n.id:<13} {n.api}   p2p {n.p2p}   {n.org}\n" for n in nodes)
        where += (f"node logs     {root / 'nodes'}/<id>/node.log\n"
                  f"OpenAPI       {url}/docs (and so on for each node)\n"
                  "blocks commit once the validators have elected a leader\n")
    stop = ("Ctrl-C stops the node" if len(nodes) == 1 else f"Ctrl-C stops all {len(nodes)} "
            "nodes")
    orgs = ", ".join(f"{o}/alice, {o}/admin" for o in netw.doc["orgs"])
    return Panel.fit(
        f"[bold green]Consortia is up[/]  chain [cyan]{netw.chain_id}[/] · {what}\n\n"
        + where
        + f"network dir   {root}  (identities {orgs})\n"
        f"genesis       {netw.genesis_path}\n\n"
        "[bold]Try it[/] (in another terminal):\n"
        + (f"  {env_hint}\n" if env_hint else "")
        + "  consortia notary file README.md --proof-out proof.json\n"
        f"  consortia verify proof.json --genesis {netw.genesis_path}\n"
        "  consortia chain info\n\n"
        f"{stop}; `consortia up` again resumes the same chain.",
        title="consortia up")


@app.command()
def up(net: NetworkOpt = None,
       port: Annotated[int, typer.Option(help="API port when creating the network")] = 7050,
       chain_id: Annotated[str, typer.Option(help="chain id when creating the network")] = "dev",
       reset: Annotated[bool, typer.Option(help="delete the network and start afresh")] = False,
       consensus: Annotated[ConsensusKind | None, typer.Option(
           case_sensitive=False, help="solo, raft or pbft when creating the network (default "
           "solo; pbft with several --validators)")] = None,
       validators: Annotated[int | None, typer.Option(
           min=1, help="number of validators when creating the network")] = None,
       ) -> None:
    """Start a local development chain (creating it on first run) and keep it running.

    A network of several validators runs one node process each; Ctrl-C stops them all.
    """
    root = network_dir(net)
    if reset and root.exists():
        import shutil
        shutil.rmtree(root)
    try:
        if not (root / "network.json").exists():
            kind, count = network.resolve_consensus(consensus, validators)
            with console.status("creating organizations, identities and genesis …"):
                netw = init_network(root, chain_id=chain_id, orgs=["org1", "org2"], port=port,
                                    consensus=kind, validators=count)
            console.print(f"created network [cyan]{netw.chain_id}[/] in {root}")
        else:
            netw = LocalNetwork.open(root)
            if consensus is not None or validators is not None:
                err_console.print(f"[yellow]note:[/] {root} already holds a "
                                  f"{netw.consensus.value} network of {len(netw.nodes())} "
                                  "node(s); --consensus and --validators apply when creating "
                                  "one (see --reset)")
        nodes = netw.nodes()
    except ConsortiaError as exc:
        guard(exc)

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # A supervisor's SIGTERM or a closed terminal's SIGHUP stops the nodes too, never orphans
    # them; installed before the first node starts so no window leaves one behind.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    children: list[_Child] = []
    try:
        for node in nodes:
            pid = background.running(node)
            if pid is not None:
                err_console.print(f"[yellow]note:[/] node {node.id} already runs in the "
                                  f"background (pid {pid}, started by `consortia network "
                                  "validator add`); it stops with the others")
                continue
            log = None if len(nodes) == 1 else node.config.parent / "node.log"
            children.append(_start(node, log))
        if not children:
            fail("every node of the network already runs in the background; stop them "
                 "first (kill the pid in nodes/<id>/node.pid)")
        problem = _wait_healthy(children, 60 + 5 * (len(children) - 1))
        if problem is not None:
            _stop_all(children, root)
            fail(problem)
        console.print(_panel(netw, root))
        code = _supervise(children)
        _stop_all(children, root)
    except KeyboardInterrupt:
        stopped = len(children) + _stop_all(children, root)
        console.print("node stopped" if stopped == 1 else f"all {stopped} nodes stopped")
        return
    sys.exit(code)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except httpx.TransportError as exc:
        try:
            where = str(exc.request.url)
        except RuntimeError:  # raised by httpx when the error carries no request
            where = "the node"
        fail(f"cannot reach {where}: {exc.__class__.__name__} ({exc}); is the node running?")


if __name__ == "__main__":
    main()
