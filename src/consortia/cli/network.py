"""``consortia network``: create a local network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consortia.cli.context import console, guard, network_dir
from consortia.sdk import init_network
from consortia.types.config import BlockLimits
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Create and inspect local networks.", no_args_is_help=True)


@app.command("init")
def init(net: Annotated[Path | None, typer.Option("--network", "-N", help="directory")] = None,
         chain_id: Annotated[str, typer.Option()] = "dev",
         org: Annotated[list[str] | None, typer.Option(help="organization id (repeat)")] = None,
         host: Annotated[str, typer.Option()] = "127.0.0.1",
         port: Annotated[int, typer.Option()] = 7050,
         max_block_txs: Annotated[int, typer.Option()] = 2000,
         batch_timeout_ms: Annotated[int, typer.Option()] = 200,
         force: Annotated[bool, typer.Option(help="overwrite an existing network")] = False,
         ) -> None:
    """Create organizations with their CAs and identities, a validator and the genesis block."""
    root = network_dir(net)
    try:
        n = init_network(root, chain_id=chain_id, orgs=org or ["org1", "org2"], host=host,
                         port=port, force=force,
                         limits=BlockLimits(max_block_txs=max_block_txs,
                                            batch_timeout_ms=batch_timeout_ms))
    except ConsortiaError as exc:
        guard(exc)
    t = Table(title=f"network {n.chain_id} in {root}")
    t.add_column("organization")
    t.add_column("identities")
    for org_id, o in n.doc["orgs"].items():
        t.add_row(org_id, ", ".join(o["identities"]))
    console.print(t)
    console.print(f"genesis  {n.genesis_path}  ({n.doc['genesis_hash'][:16]}…)")
    console.print(f"start    consortia node start --config {n.node_config()}")
