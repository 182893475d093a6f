"""``consortia``: the command-line entry point and its top-level commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.panel import Panel

from consortia import __version__
from consortia.cli import chain, identity, network, node, notary
from consortia.cli.context import console, fail, guard, network_dir, print_json
from consortia.sdk import InvalidProof, LocalNetwork, init_network, load_genesis, verify_proof
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


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with console.status(f"starting node at {url} …"):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                fail(f"the node exited with status {proc.returncode}; see its log above")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    proc.terminate()
    fail(f"the node did not answer at {url} within {timeout:.0f} s")


@app.command()
def up(net: NetworkOpt = None,
       port: Annotated[int, typer.Option(help="API port when creating the network")] = 7050,
       chain_id: Annotated[str, typer.Option(help="chain id when creating the network")] = "dev",
       reset: Annotated[bool, typer.Option(help="delete the network and start afresh")] = False,
       ) -> None:
    """Start a local development chain (creating it on first run) and keep it running."""
    root = network_dir(net)
    if reset and root.exists():
        import shutil
        shutil.rmtree(root)
    try:
        if not (root / "network.json").exists():
            with console.status("creating organizations, identities and genesis …"):
                netw = init_network(root, chain_id=chain_id, orgs=["org1", "org2"], port=port)
            console.print(f"created network [cyan]{netw.chain_id}[/] in {root}")
        else:
            netw = LocalNetwork.open(root)
    except ConsortiaError as exc:
        guard(exc)
    url = netw.node_url()
    proc = subprocess.Popen([sys.executable, "-m", "consortia.node", "--config",
                             str(netw.node_config())])
    _wait_healthy(url, proc, 60)
    env_hint = f"export CONSORTIA_NETWORK={root}" if root != Path(".consortia/dev") else ""
    console.print(Panel.fit(
        f"[bold green]Consortia is up[/]  chain [cyan]{netw.chain_id}[/] · solo validator\n\n"
        f"node API      {url}   (OpenAPI: {url}/docs, {url}/openapi.json)\n"
        f"metrics       {url}/metrics\n"
        f"network dir   {root}  (identities org1/alice, org1/admin, org2/alice, org2/admin)\n"
        f"genesis       {netw.genesis_path}\n\n"
        "[bold]Try it[/] (in another terminal):\n"
        + (f"  {env_hint}\n" if env_hint else "")
        + "  consortia notary file README.md --proof-out proof.json\n"
        f"  consortia verify proof.json --genesis {netw.genesis_path}\n"
        "  consortia chain info\n\n"
        "Ctrl-C stops the node; `consortia up` again resumes the same chain.",
        title="consortia up"))
    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # A supervisor's SIGTERM or a closed terminal's SIGHUP stops the node too, never orphans it.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        console.print("node stopped")


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
