"""``consortia dev validator``: change the validator set of a running raft or pbft network.

Each change is one ``validator_update`` configuration transaction, signed by an admin of
the validator's organization and approved by the admins of a majority of organizations
(``LocalNetwork.add_validator`` / ``remove_validator``), bound to the configuration
sequence in force, which the command reads from the validators themselves.

``add`` starts the new node in the background (``cli/background.py``) once the change is
committed and follows it until its ledger holds the others' height; ``remove`` stops the
node when it is such a background process, and says so when it is not.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from consortia.cli import background
from consortia.cli.context import console, err_console, fail, guard, network_dir, print_json
from consortia.sdk import LocalNetwork, NodeClient
from consortia.sdk.network import NetworkNode
from consortia.sdk.tx import SignedTx
from consortia.types.config import ConsensusKind
from consortia.types.errors import ConfigError, ConsortiaError

app = typer.Typer(help="Add, remove and list the validators of a raft or pbft network.",
                  no_args_is_help=True)

Net = Annotated[Path | None, typer.Option("--network", "-N", help="network directory")]
Json = Annotated[bool, typer.Option("--json")]
Timeout = Annotated[float, typer.Option(min=1, help="seconds to wait for the change to commit "
                                                    "(and, for add, for the node to catch up)")]
Sequence = Annotated[int | None, typer.Option(
    min=0, help="configuration sequence the change is approved against (default: the one "
    "in force)")]

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PROBE_TIMEOUT = 3.0
"""Seconds one node gets to answer ``GET /v1/chain`` while the command looks around."""
POLL = 0.3


@dataclass(frozen=True)
class _View:
    """What the network's nodes say now: the configuration in force and every height."""

    config: dict[str, Any]
    """``config`` of the most advanced answer (highest sequence, then height)."""
    heights: dict[str, int]
    """Height of every node that answered."""
    answered: list[NetworkNode]

    @property
    def sequence(self) -> int:
        return int(self.config["sequence"])

    @property
    def validators(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.config["validators"]
        return out

    def is_validator(self, node_id: str) -> bool:
        return any(v["id"] == node_id for v in self.validators)

    def ids(self) -> str:
        return ", ".join(v["id"] for v in self.validators)


def _info(url: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any] | None:
    try:
        with NodeClient(url, timeout=timeout) as c:
            return c.chain_info()
    except (ConsortiaError, httpx.HTTPError):
        return None


def _survey(netw: LocalNetwork) -> _View:
    infos = {n.id: (n, _info(n.api)) for n in netw.nodes()}
    answers = [(n, i) for n, i in infos.values() if i is not None]
    if not answers:
        fail(f"no node of the network in {netw.root} answers ("
             + ", ".join(n.api for n in netw.nodes())
             + f"); start it first, e.g. `consortia dev up -N {netw.root}`")
    best = max((i for _, i in answers), key=lambda i: (i["config"]["sequence"], i["height"]))
    return _View(best["config"], {n.id: int(i["height"]) for n, i in answers},
                 [n for n, _ in answers])


def _open(net: Path | None, *, change: bool = True) -> LocalNetwork:
    try:
        netw = LocalNetwork.open(network_dir(net))
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    if change and netw.consensus is ConsensusKind.SOLO:
        guard(ConfigError(f"the network in {netw.root} is solo: a solo chain has exactly one "
                          "validator and its set cannot change (create a raft or pbft "
                          "network: consortia dev init --consensus raft)",
                          code="config_not_allowed"))
    return netw


def _commit(view: _View, tx: SignedTx, timeout: float, *, avoid: str = "",
            retry_hint: str = "") -> dict[str, Any]:
    """Submit ``tx`` to a validator in force (not ``avoid``) and wait until it commits."""
    target = next((n for n in view.answered if view.is_validator(n.id) and n.id != avoid),
                  None)
    if target is None:
        fail(f"no validator in force answers (validators: {view.ids()})")
    deadline = time.monotonic() + timeout
    try:
        with NodeClient(target.api, timeout=30) as c, \
                console.status(f"submitting the change to {target.id} …"):
            r = c.submit(tx, wait=True, timeout=min(timeout, 20.0))
            while r["status"] == "pending" and time.monotonic() < deadline:
                r = c.wait(tx.id, timeout=min(10.0, max(0.1, deadline - time.monotonic())))
    except ConsortiaError as exc:
        _hint(retry_hint)
        guard(exc)
    except httpx.HTTPError as exc:
        _hint(retry_hint)
        fail(f"lost {target.id} at {target.api} while submitting: {exc.__class__.__name__} "
             f"({exc}); transaction {tx.id_hex} may still commit (consortia chain tx)")
    if r["status"] == "pending":
        fail(f"the change (transaction {tx.id_hex}) did not commit within {timeout:.0f} s; "
             "are a majority of the validators running? (consortia chain info)")
    if r["status"] != "committed":
        _hint(retry_hint)
        guard(ConsortiaError(f"the change (transaction {tx.id_hex}) was refused when its "
                             f"block {r.get('height')} was executed",
                             code=str(r.get("error") or r["status"])))
    return r


def _hint(text: str) -> None:
    if text:
        err_console.print(text)


# -- add ---------------------------------------------------------------------------------


def _port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def _host(netw: LocalNetwork) -> str:
    return urlsplit(netw.nodes()[0].api).hostname or "127.0.0.1"


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _ports(netw: LocalNetwork, host: str, api_port: int | None,
           p2p_port: int | None) -> tuple[int, int]:
    """The requested ports, checked; by default the next free ones after the nodes' (also
    retired nodes': one may still run outside the CLI's control)."""
    nodes = netw.nodes(retired=True)
    api = [_port_of(n.api) for n in nodes]
    p2p = [_port_of(n.p2p) for n in nodes if n.p2p]
    taken = set(api) | set(p2p)

    def pick(start: int, avoid: set[int]) -> int:
        port = start
        while port in avoid or not _bindable(host, port):
            port += 1
            if port > 65535:
                fail("no free port above the network's; pass --api-port and --p2p-port")
        return port

    chosen: list[int] = []
    wanted = {p for p in (api_port, p2p_port) if p is not None}
    for what, asked, base in (("API", api_port, max(api) + 1), ("p2p", p2p_port, max(p2p) + 1)):
        if asked is None:
            chosen.append(pick(base, taken | wanted | set(chosen)))
            continue
        owner = next((n.id for n in nodes if asked in (_port_of(n.api),
                                                       _port_of(n.p2p or ":0"))), None)
        if owner is not None or asked in chosen:
            fail(f"{what} port {asked} is already {owner or 'the API port'}'s")
        if not _bindable(host, asked):
            fail(f"{what} port {asked} on {host} is in use")
        chosen.append(asked)
    return chosen[0], chosen[1]


@app.command("add")
def add(node_id: Annotated[str, typer.Argument(help="id of the new validator, e.g. validator4")],
        org: Annotated[str | None, typer.Option(
            help="its organization (default: the next one round robin, as network init "
            "spreads validators)")] = None,
        api_port: Annotated[int | None, typer.Option(
            min=1, max=65535, help="its API port (default: the next free one after the "
            "nodes')")] = None,
        p2p_port: Annotated[int | None, typer.Option(
            min=1, max=65535, help="its p2p port (default: the next free one after the "
            "nodes')")] = None,
        start: Annotated[bool, typer.Option(
            help="start the node in the background and wait until it has caught up; "
            "--no-start prints the command to run instead")] = True,
        timeout: Timeout = 60.0, sequence: Sequence = None, net: Net = None) -> None:
    """Add a validator: issue its identity, write its node directory, commit the change
    approved by a majority of organizations, start the node and follow it until it has
    caught up with the others."""
    netw = _open(net)
    if not NODE_ID.fullmatch(node_id):
        fail(f"invalid validator id {node_id!r}: 1 to 64 letters, digits, '_', '.', '-', "
             "starting with a letter or digit")
    view = _survey(netw)
    known = {n.id: n for n in netw.nodes(retired=True)}  # retired ids are spent
    if view.is_validator(node_id):
        idle = node_id in known and node_id not in view.heights
        guard(ConfigError(f"{node_id} is a validator already (validators in force: "
                          f"{view.ids()})" + (f"; its node does not answer: start it with "
                                              f"`consortia node start --config "
                                              f"{known[node_id].config}`" if idle else ""),
                          code="duplicate_validator"))
    seq = view.sequence if sequence is None else sequence
    retry = (f"[yellow]note:[/] {node_id}'s identity and node directory are kept; run the "
             "same command again to retry")
    try:
        if node_id in known:
            node = known[node_id]
            if org is not None and org != node.org:
                fail(f"{node_id} already exists in {netw.root} as a node of {node.org}")
            if (api_port is not None and api_port != _port_of(node.api)) or (
                    p2p_port is not None and p2p_port != _port_of(node.p2p or ":0")):
                fail(f"{node_id} already exists in {netw.root} with API {node.api} and p2p "
                     f"{node.p2p}")
            tx = netw.add_validator(node_id, node.org, sequence=seq, api_port=0, p2p_port=0)
        else:
            orgs = list(netw.doc["orgs"])
            org = org or orgs[len(known) % len(orgs)]
            if org not in netw.doc["orgs"]:
                fail(f"no organization {org!r} in this network (organizations: "
                     f"{', '.join(orgs)})")
            host = _host(netw)
            api, p2p = _ports(netw, host, api_port, p2p_port)
            tx = netw.add_validator(node_id, org, sequence=seq, api_port=api, p2p_port=p2p,
                                    host=host)
            node = netw.node(node_id)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    r = _commit(view, tx, timeout, retry_hint=retry)
    console.print(f"[green]{node_id}[/] ({node.org}) is a validator from block {r['height']} "
                  f"(transaction {tx.id_hex[:16]}…); API {node.api}, p2p {node.p2p}")
    if not start:
        console.print("start its node to let it catch up and vote:\n"
                      f"  consortia node start --config {node.config}\n"
                      "until it has caught up, the network tolerates one fault fewer")
        return
    pid = background.running(node)
    proc = None
    if pid is None and _info(node.api, timeout=1.0) is None:
        proc = background.start(node)
        pid = proc.pid
        console.print(f"started its node in the background: pid {pid}, log "
                      f"{background.log_file(node)}")
    else:
        console.print(f"its node already runs at {node.api}" + (f" (pid {pid})" if pid else ""))
    try:
        height = _wait_caught_up(netw, node, proc, timeout)
    except KeyboardInterrupt:
        fail(f"stopped waiting; {node_id} is a validator and its node keeps running"
             + (f" (pid {pid})" if pid else "") + "; see `consortia chain info`", code=130)
    console.print(f"[green]{node_id} has caught up[/] at height {height}. "
                  + (f"Stop it with `consortia dev validator remove {node_id}` or "
                     f"`kill {pid}`; Ctrl-C of `consortia dev up` stops it too."
                     if pid else ""))


def _wait_caught_up(netw: LocalNetwork, node: NetworkNode,
                    proc: subprocess.Popen[bytes] | None, timeout: float) -> int:
    """Follow ``node`` until its ledger holds the other validators' height and it counts
    itself a validator; its height. Fails on timeout or if its process exits."""
    others = [n for n in netw.nodes() if n.id != node.id]
    deadline = time.monotonic() + timeout
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} blocks"),
                        TimeElapsedColumn(), console=console, transient=True)
    height = target = 0
    with progress:
        task = progress.add_task(f"{node.id}: starting", total=None)
        while True:
            if proc is not None and proc.poll() is not None:
                fail(f"{node.id}'s node exited with status {proc.returncode}; its log is "
                     f"{background.log_file(node)}" + _tail(background.log_file(node)))
            infos = [i for i in (_info(n.api, timeout=2.0) for n in others) if i is not None]
            target = max([target, *(int(i["height"]) for i in infos
                                    if any(v["id"] == i["node"]["id"]
                                           for v in i["validators"]))])
            mine = _info(node.api, timeout=2.0)
            if mine is not None:
                height = int(mine["height"])
                joined = any(v["id"] == node.id for v in mine["validators"])
                progress.update(task, total=max(target, 1), completed=min(height, target),
                                description=f"{node.id}: "
                                + ("voting" if joined else "catching up"))
                if joined and height >= target:
                    return height
            if time.monotonic() >= deadline:
                where = (f"height {height} of {target}" if mine is not None
                         else f"its API {node.api} does not answer")
                fail(f"{node.id} did not catch up within {timeout:.0f} s ({where}); it is a "
                     "validator of the chain and its node keeps running: see `consortia "
                     f"chain info` and its log {background.log_file(node)}")
            time.sleep(POLL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in text)


# -- remove ------------------------------------------------------------------------------


@app.command("remove")
def remove(node_id: Annotated[str, typer.Argument(help="id of the validator to remove")],
           timeout: Timeout = 60.0, sequence: Sequence = None, net: Net = None) -> None:
    """Remove a validator: commit the change approved by a majority of organizations, then
    stop its node if `validator add` started it (otherwise say it can be stopped)."""
    netw = _open(net)
    try:
        node = netw.node(node_id)
    except ConsortiaError as exc:
        guard(exc)
    view = _survey(netw)
    if not view.is_validator(node_id):
        guard(ConfigError(f"{node_id} is not a validator (validators in force: {view.ids()})",
                          code="unknown_validator"))
    seq = view.sequence if sequence is None else sequence
    try:
        tx = netw.remove_validator(node_id, sequence=seq)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    r = _commit(view, tx, timeout, avoid=node_id)
    netw.retire(node_id)
    console.print(f"[green]{node_id}[/] is no longer a validator from block {r['height']} "
                  f"(transaction {tx.id_hex[:16]}…); network.json marks it retired")
    pid = background.stop(node)
    if pid is not None:
        console.print(f"stopped its node (pid {pid})")
    elif _info(node.api, timeout=1.0) is not None:
        console.print(f"its node at {node.api} still runs (not started by `validator add`, "
                      "e.g. under `consortia dev up`): it takes no part in consensus any more "
                      "and can be stopped")


# -- list --------------------------------------------------------------------------------


@app.command("list")
def list_(net: Net = None, json_out: Json = False) -> None:
    """The validators in force (from the validators' own configuration), their
    organization, endpoint, API and height."""
    netw = _open(net, change=False)
    view = _survey(netw)
    known = {n.id: n for n in netw.nodes()}
    rows = []
    for v in view.validators:
        n = known.get(v["id"])
        rows.append({"id": v["id"], "org": v["org_id"], "endpoint": v["endpoint"],
                     "api": n.api if n else None, "height": view.heights.get(v["id"]),
                     "background_pid": background.running(n) if n else None})
    if json_out:
        print_json({"sequence": view.sequence, "validators": rows})
        return
    t = Table(title=f"validators in force (configuration {view.sequence}, "
                    f"{netw.consensus.value})")
    for col in ("id", "org", "p2p endpoint", "API", "height"):
        t.add_column(col)
    for row in rows:
        t.add_row(row["id"], row["org"], row["endpoint"] or "-", row["api"] or "-",
                  "[red]down[/]" if row["height"] is None else str(row["height"]))
    console.print(t)
    extra = [n.id for n in netw.nodes() if not view.is_validator(n.id)]
    if extra:
        console.print(f"nodes in {netw.root} that are not validators: {', '.join(extra)}")
