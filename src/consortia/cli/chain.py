"""``consortia chain``: chain information, blocks and transactions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from consortia.cli.context import client, console, guard, open_network, print_json
from consortia.cli.notary import _show_tx
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Inspect the chain through a node.", no_args_is_help=True)

Net = Annotated[Path | None, typer.Option("--network", "-N", help="network directory")]
NodeUrl = Annotated[str | None, typer.Option("--node", help="node API URL")]
Json = Annotated[bool, typer.Option("--json")]


def _ts(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _all_nodes(net: Path | None, json_out: bool) -> None:
    """Every validator of a multi-node network: height, consensus role, term/view, leader."""
    from consortia.sdk import NodeClient
    rows = []
    for n in open_network(net).nodes():
        try:
            with NodeClient(n.api, timeout=5) as c:
                doc = c.chain_info()
            cs = doc.get("consensus_status", {})
            rows.append({"id": n.id, "org": n.org, "api": n.api, "up": True,
                         "height": doc["height"], "latest_hash": doc["latest_hash"],
                         "role": cs.get("role"), "round": cs.get("term", cs.get("view")),
                         "leader": cs.get("leader"), "peers": cs.get("peers_connected", [])})
        except (ConsortiaError, httpx.HTTPError) as exc:
            rows.append({"id": n.id, "org": n.org, "api": n.api, "up": False,
                         "error": str(exc)})
    if json_out:
        print_json(rows)
        return
    proto = open_network(net).consensus
    t = Table(title=f"{proto} validators")
    for col in ("node", "org", "height", "latest block", "role", "term/view", "leader",
                "peers"):
        t.add_column(col)
    for r in rows:
        if not r["up"]:
            t.add_row(r["id"], r["org"], "[red]down[/]", "", "", "", "", "")
            continue
        t.add_row(r["id"], r["org"], str(r["height"]), r["latest_hash"][:16] + "…",
                  str(r["role"]), str(r["round"]), str(r["leader"]), str(len(r["peers"])))
    console.print(t)


@app.command("info")
def info(net: Net = None, node: NodeUrl = None, json_out: Json = False) -> None:
    """Height, transactions, validators and the node's identity; with several validators
    and no --node, one row per validator (height, role, term/view, leader)."""
    if node is None:
        try:
            several = len(open_network(net).nodes()) > 1
        except (ConsortiaError, OSError):
            several = False
        if several:
            _all_nodes(net, json_out)
            return
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
