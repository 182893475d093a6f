"""``consortia``: the command-line entry point and its top-level commands.

Two families share it. The control plane's, through ``consortia.sdk.control`` and HTTP:
``up`` (run it here), ``network``, ``member``, ``channel``, ``node``, ``tenant``, ``user``,
``access-key``, ``audit``, ``proposal``, ``invitation``, ``ca``. A node's and a local network's,
through the node API and files: ``dev`` (development chains: ``init``, ``up``,
``validator``), ``node start|verify|join``, ``notary``, ``chain``, ``identity``, ``verify``.
Ethereum contracts over JSON-RPC, through ``consortia.sdk.evm``: ``contract``, ``account``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.panel import Panel

from consortia import __version__
from consortia.cli import (
    account,
    accounts,
    applications,
    ca,
    chain,
    channels,
    contract,
    dev,
    governance,
    identity,
    networks,
    notary,
    remote,
)
from consortia.cli import up as up_cli
from consortia.cli.context import console, fail, guard, print_json
from consortia.sdk import InvalidProof, load_genesis, verify_proof
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Consortia: consortium blockchains as a service, self-hosted.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("up")(up_cli.up)
app.add_typer(networks.network_app, name="network")
app.add_typer(networks.member_app, name="member")
app.add_typer(channels.channel_app, name="channel")
app.add_typer(networks.node_app, name="node",
              help="Nodes of the control plane (create, list, get, delete, bundle); a node "
                   "process from its files (start, verify) or a join bundle (join).")
app.add_typer(accounts.tenant_app, name="tenant")
app.add_typer(accounts.user_app, name="user")
app.add_typer(accounts.key_app, name="access-key")
app.command("audit")(accounts.audit)
app.add_typer(governance.proposal_app, name="proposal")
app.add_typer(governance.invitation_app, name="invitation")
app.add_typer(applications.join_code_app, name="join-code")
app.add_typer(applications.application_app, name="application")
app.add_typer(ca.app, name="ca")
app.add_typer(dev.app, name="dev")
app.add_typer(notary.app, name="notary")
app.add_typer(chain.app, name="chain")
app.add_typer(identity.app, name="identity")
app.add_typer(contract.app, name="contract")
app.add_typer(account.app, name="account")


@app.callback()
def _options(
        profile: Annotated[str | None, typer.Option(
            "--profile", envvar="CONSORTIA_PROFILE",
            help="control-plane profile in the credentials file (default: default)")] = None,
        credentials: Annotated[Path | None, typer.Option(
            "--credentials", envvar="CONSORTIA_CREDENTIALS",
            help="control-plane credentials file (default: .consortia/control/credentials, "
                 "then ~/.consortia/credentials)")] = None) -> None:
    """Consortia: consortium blockchains as a service, self-hosted."""
    remote.target.profile = profile
    remote.target.credentials = credentials


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
