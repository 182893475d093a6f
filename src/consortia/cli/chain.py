"""``consortia chain``: chain information, blocks and transactions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consortia.cli.context import client, console, guard, print_json
from consortia.cli.notary import _show_tx
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Inspect the chain through a node.", no_args_is_help=True)

Net = Annotated[Path | None, typer.Option("--network", "-N", help="network directory")]
NodeUrl = Annotated[str | None, typer.Option("--node", help="node API URL")]
Json = Annotated[bool, typer.Option("--json")]


def _ts(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


@app.command("info")
def info(net: Net = None, node: NodeUrl = None, json_out: Json = False) -> None:
    """Height, transactions, validators and the node's identity."""
    try:
        with client(net, node) as c:
            doc = c.chain_info()
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json(doc)
        return
    t = Table(show_header=False, title=f"chain {doc['chain_id']}")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("profile / consensus", f"{doc['profile']} / {doc['consensus']}")
    t.add_row("height", str(doc["height"]))
    t.add_row("transactions", str(doc["tx_count"]))
    t.add_row("latest block", doc["latest_hash"])
    t.add_row("genesis", doc["genesis_hash"])
    t.add_row("validators", ", ".join(f"{v['id']} ({v['org_id']})" for v in doc["validators"]))
    n = doc["node"]
    t.add_row("this node", f"{n['id']} of {n['org_id']}, version {n['version']}")
    t.add_row("pool", f"{doc['pool']['transactions']} pending, {doc['pool']['in_flight']} "
              "in flight")
    console.print(t)


@app.command("block")
def block(block_id: Annotated[str | None, typer.Argument(help="height or hash")] = None,
          limit: Annotated[int, typer.Option(help="latest N blocks")] = 10,
          net: Net = None, node: NodeUrl = None, json_out: Json = False) -> None:
    """One block (by height or hash), or the latest blocks."""
    try:
        with client(net, node) as c:
            doc = c.block(block_id) if block_id is not None else c.blocks(limit)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json(doc)
        return
    blocks = [doc] if block_id is not None else doc["blocks"]
    t = Table(title="blocks")
    for col in ("height", "hash", "txs", "time (UTC)", "proposer", "votes"):
        t.add_column(col)
    for b in blocks:
        t.add_row(str(b["height"]), b["hash"][:16] + "…", str(b["tx_count"]),
                  _ts(b["timestamp_ms"]), b["proposer"] or "(genesis)",
                  ", ".join(b["certificate"]["votes"]))
    console.print(t)
    if block_id is not None:
        for tx in doc["transactions"][:50]:
            console.print(f"  {tx['tx_id']}  {tx['type']}  {tx['status']}"
                          + (f" ({tx['error']})" if tx["error"] else ""))


@app.command("tx")
def tx(tx_id: Annotated[str, typer.Argument()], net: Net = None, node: NodeUrl = None,
       json_out: Json = False) -> None:
    """A committed transaction, decoded, with its receipt."""
    try:
        with client(net, node) as c:
            doc = c.transaction(tx_id)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json(doc)
    else:
        _show_tx(doc)
