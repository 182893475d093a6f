"""``consortia dev peer``: peer nodes of a local network (ADR 0015).

A peer holds the ledger, serves reads and forwards its clients' transactions to the
validators, but orders nothing, so adding one changes no configuration and needs no
approval: ``add`` issues its ``peer`` identity from the organization's CA, writes its node
directory (``LocalNetwork.add_peer``), starts it in the background (``cli/background.py``)
and waits until it has caught up (its ``/healthz`` answers 200).
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.table import Table

from consortia.cli import background
from consortia.cli.context import console, fail, guard, print_json
from consortia.cli.validator import NODE_ID, PROBE_TIMEOUT, Json, Net, _bindable, _open
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Add and list the peer nodes of a network (they follow the chain and "
                       "order nothing).", no_args_is_help=True)


def _health(url: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{url}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return None
    doc: dict[str, Any] = r.json() if r.headers.get("content-type", "").startswith(
        "application/json") else {}
    doc["_ok"] = r.status_code == 200
    return doc


@app.command("add")
def add(node_id: Annotated[str, typer.Argument(help="id of the new peer, e.g. peer0")],
        org: Annotated[str | None, typer.Option(
            help="its organization (default: the first one)")] = None,
        api_port: Annotated[int | None, typer.Option(
            min=1, max=65535, help="its API port (default: the next free one after the "
            "nodes')")] = None,
        start: Annotated[bool, typer.Option(
            help="start it in the background and wait until it has caught up")] = True,
        timeout: Annotated[float, typer.Option(min=1, help="seconds to wait for it to "
                                                           "catch up")] = 60.0,
        net: Net = None) -> None:
    """Add a peer: its identity, its node directory following every validator, then (by
    default) start it and wait until it has caught up with the chain."""
    netw = _open(net, change=False)
    if not NODE_ID.fullmatch(node_id):
        fail(f"invalid peer id {node_id!r}: 1 to 64 letters, digits, '_', '.', '-', "
             "starting with a letter or digit")
    org = org or next(iter(netw.doc["orgs"]))
    every = [*netw.nodes(retired=True), *netw.peers()]
    host = urlsplit(every[0].api).hostname or "127.0.0.1"
    if api_port is None:
        used = {urlsplit(n.api).port for n in every} | {
            int(n.p2p.rpartition(":")[2]) for n in every if n.p2p}
        port = max(urlsplit(n.api).port or 0 for n in every) + 1
        while port < 65535 and (port in used or not _bindable(host, port)):
            port += 1
        api_port = port
    try:
        node = netw.add_peer(node_id, org, api_port=api_port, host=host)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    console.print(f"[green]{node_id}[/] ({org}) is a peer; API {node.api}, following "
                  f"{', '.join(n.api for n in netw.nodes())}")
    if not start:
        console.print(f"start it with:\n  consortia node start --config {node.config}")
        return
    proc = background.start(node)
    console.print(f"started it in the background: pid {proc.pid}, log "
                  f"{background.log_file(node)}")
    deadline = time.monotonic() + timeout
    while True:
        h = _health(node.api, timeout=1.0)
        if h is not None and h["_ok"]:
            console.print(f"[green]{node_id} has caught up[/] at height {h['height']}")
            return
        if proc.poll() is not None:
            fail(f"{node_id} exited with {proc.returncode}; see {background.log_file(node)}")
        if time.monotonic() > deadline:
            fail(f"{node_id} has not caught up within {timeout:.0f} s (it keeps running, "
                 f"pid {proc.pid}); see {background.log_file(node)}")
        time.sleep(0.3)


@app.command("list")
def list_(net: Net = None, json_out: Json = False) -> None:
    """The network's peers: organization, API, height, and whether each has caught up."""
    netw = _open(net, change=False)
    rows: list[dict[str, Any]] = []
    for p in netw.peers():
        h = _health(p.api)
        rows.append({"id": p.id, "org": p.org, "api": p.api,
                     "height": None if h is None else h.get("height"),
                     "status": "down" if h is None else h.get("status"),
                     "background_pid": background.running(p)})
    if json_out:
        print_json({"peers": rows})
        return
    t = Table(title=f"peers of {netw.chain_id}")
    for col in ("id", "org", "API", "height", "status"):
        t.add_column(col)
    for row in rows:
        t.add_row(str(row["id"]), str(row["org"]), str(row["api"]),
                  "-" if row["height"] is None else str(row["height"]),
                  "[red]down[/]" if row["status"] == "down" else str(row["status"]))
    console.print(t)
