"""``consortia dev``: local development chains, made from files, without the control plane.

``dev init`` creates a network directory (organizations, CAs, identities, genesis),
``dev up`` runs its nodes in the foreground (creating it on the first run), ``dev validator``
changes the validators of a running raft or pbft network. The control plane's networks are
``consortia network …`` (``cli/networks.py``); ``consortia dev up`` runs the control plane.
"""

from __future__ import annotations

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
from rich.table import Table

from consortia.cli import background, peer, validator
from consortia.cli.context import console, err_console, fail, guard, network_dir, print_json
from consortia.sdk import LocalNetwork, NodeClient, init_network, netrun
from consortia.sdk.network import NetworkNode
from consortia.types.config import BlockLimits, ConsensusKind, Profile
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Local development chains from files (no control plane): init, up, "
                  "validator.", no_args_is_help=True)
app.add_typer(validator.app, name="validator")
app.add_typer(peer.app, name="peer")

NetworkOpt = Annotated[Path | None, typer.Option("--network", "-N", help="network directory "
                       "(default $CONSORTIA_NETWORK or .consortia/dev)")]

AVAILABLE_PROFILES = (Profile.ANT, Profile.QUORUM)


def resolve_consensus(consensus: ConsensusKind | None, validators: int | None,
                      orderers: int | None = None,
                      profile: Profile = Profile.ANT) -> tuple[ConsensusKind, int | None]:
    """The consensus and validator count the options mean.

    ``--orderers`` is Fabric's word for raft's validators: alone it means raft. Without
    ``--consensus``, more than one validator means pbft for the ``ant`` profile (Ant
    Blockchain's BFT ordering) and raft for ``quorum`` (GoQuorum's default), and one or
    none means solo.
    """
    if profile not in AVAILABLE_PROFILES:
        fail(f"profile {profile.value} is not available yet; available: "
             f"{', '.join(p.value for p in AVAILABLE_PROFILES)}")
    if validators is not None and orderers is not None and validators != orderers:
        fail(f"--validators {validators} and --orderers {orderers} disagree; "
             "--orderers is another name for --validators")
    n = validators if validators is not None else orderers
    if consensus is None:
        if orderers is not None:
            consensus = ConsensusKind.RAFT
        elif n is not None and n > 1:
            consensus = ConsensusKind.RAFT if profile is Profile.QUORUM else ConsensusKind.PBFT
        else:
            consensus = ConsensusKind.SOLO
    return consensus, n


def print_nodes(n: LocalNetwork) -> None:
    """A table of the network's validators and their addresses."""
    t = Table(title=f"validators ({n.consensus.value})")
    for col in ("id", "organization", "API", "p2p"):
        t.add_column(col)
    for node in n.nodes():
        t.add_row(node.id, node.org, node.api, node.p2p or "-")
    console.print(t)


def print_accounts(n: LocalNetwork) -> None:
    """The Ethereum side of a quorum network: its accounts, where their keys are, the
    JSON-RPC URL."""
    evm = n.doc["evm"]
    t = Table(title=f"Ethereum accounts (chain id {evm['chain_id']}, gas limit "
                    f"{evm['gas_limit']:,})")
    t.add_column("address", no_wrap=True)
    t.add_column("organization")
    for a in n.accounts():
        t.add_row(a.address, a.org)
    console.print(t)
    console.print(f"JSON-RPC {n.rpc_url()}   (WebSocket {n.rpc_url(websocket=True)})")
    console.print(f"keys     consortia account list --accounts {n.root}/orgs/<org>/accounts")
    console.print(f"password {n.root}/orgs/<org>/account-password")
    print_managers(n)


def print_managers(n: LocalNetwork) -> None:
    """Each organization's transaction manager: the public key ``privateFor`` (and
    ``consortia contract deploy|send --private-for``) takes, and where it listens."""
    managers = n.managers()
    if not managers:
        return
    console.print("transaction managers (--private-for / privateFor takes the key):")
    for m in managers:  # whole lines, never a table cell a narrow terminal truncates
        console.print(f"  {m.org:<10} {m.public_key}   local {m.url}   peer {m.peer}",
                      soft_wrap=True, markup=False, highlight=False)


@app.command("init")
def init(net: Annotated[Path | None, typer.Option("--network", "-N", help="directory")] = None,
         chain_id: Annotated[str, typer.Option()] = "dev",
         org: Annotated[list[str] | None, typer.Option(help="organization id (repeat)")] = None,
         host: Annotated[str, typer.Option()] = "127.0.0.1",
         port: Annotated[int, typer.Option(help="API port of the first node (node i: "
                                                "port + i)")] = 7050,
         max_block_txs: Annotated[int, typer.Option()] = 2000,
         batch_timeout_ms: Annotated[int, typer.Option()] = 200,
         force: Annotated[bool, typer.Option(help="overwrite an existing network")] = False,
         consensus: Annotated[ConsensusKind | None, typer.Option(
             case_sensitive=False, help="solo, raft or pbft (default: solo; pbft for the ant "
             "profile with several --validators; raft with --orderers)")] = None,
         validators: Annotated[int | None, typer.Option(
             min=1, help="number of validators (default: 1 solo, 3 raft, 4 pbft)")] = None,
         orderers: Annotated[int | None, typer.Option(
             min=1, help="Fabric's name for --validators; alone it means raft")] = None,
         profile: Annotated[Profile, typer.Option(
             case_sensitive=False, help="network profile: ant (notary) or quorum (Ethereum)")
         ] = Profile.ANT,
         p2p_port: Annotated[int | None, typer.Option(
             help="p2p port of the first validator (raft, pbft; default: port + 100)")
         ] = None,
         evm_chain_id: Annotated[int | None, typer.Option(
             help="quorum: the EIP-155 chain id (default 1337)")] = None,
         evm_gas_limit: Annotated[int | None, typer.Option(
             help="quorum: the block gas limit (default 30,000,000)")] = None,
         accounts_per_org: Annotated[int | None, typer.Option(
             help="quorum: Ethereum accounts made, bound and funded per organization "
                  "(default 1)")] = None,
         balance: Annotated[int | None, typer.Option(
             help="quorum: wei each of those accounts holds at genesis (default 10**24)")
         ] = None,
         privacy: Annotated[bool, typer.Option(
             "--privacy/--no-privacy", help="quorum: a transaction manager per organization "
             "for private transactions (privateFor)")] = True,
         tm_port: Annotated[int | None, typer.Option(
             help="quorum: local API port of the first organization's transaction manager "
                  "(org i: tm-port + 2i, its peer API the port after; default port + 200)")
         ] = None,
         ) -> None:
    """Create organizations with their CAs and identities, the validators and the genesis
    block (for a quorum network also its Ethereum accounts)."""
    root = network_dir(net)
    kind, count = resolve_consensus(consensus, validators, orderers, profile)
    try:
        with console.status("creating organizations, identities and genesis …"):
            n = init_network(root, chain_id=chain_id, orgs=org or ["org1", "org2"],
                             host=host, port=port, force=force, consensus=kind,
                             validators=count, p2p_port=p2p_port,
                             limits=BlockLimits(max_block_txs=max_block_txs,
                                                batch_timeout_ms=batch_timeout_ms),
                             profile=profile, evm_chain_id=evm_chain_id,
                             evm_gas_limit=evm_gas_limit, accounts_per_org=accounts_per_org,
                             balance=balance,
                             privacy=None if profile is Profile.ANT and privacy else privacy,
                             tm_port=tm_port)
    except ConsortiaError as exc:
        guard(exc)
    t = Table(title=f"network {n.chain_id} in {root}")
    t.add_column("organization")
    t.add_column("identities")
    for org_id, o in n.doc["orgs"].items():
        t.add_row(org_id, ", ".join(o["identities"]))
    console.print(t)
    print_nodes(n)
    if n.profile is Profile.QUORUM:
        print_accounts(n)
    console.print(f"genesis  {n.genesis_path}  ({n.doc['genesis_hash'][:16]}…)")
    nodes = n.nodes()
    if len(nodes) == 1:
        console.print(f"start    consortia node start --config {n.node_config()}")
        return
    console.print(f"start    consortia dev up -N {root}   (all {len(nodes)} nodes, Ctrl-C stops "
                  "them)\n         or one terminal per node:")
    for node in nodes:
        console.print(f"           consortia node start --config {node.config}")


def _account_update(remove: bool, org: str, addresses: list[str] | None, new: bool,
                    net: Path | None, node: str | None, timeout: float,
                    json_out: bool) -> None:
    """Sign ``bind_accounts``/``unbind_accounts`` as ``org``'s admin, submit it to the node
    and wait until it commits; exit 1 with the node's code when it is refused or invalid."""
    verb = "unbind" if remove else "bind"
    try:
        n = LocalNetwork.open(network_dir(net))
        targets = list(addresses or [])
        made = None
        if new:
            made = n.new_account(org)
            targets.append(made.address)
        if not targets:
            fail(f"name the addresses to {verb}" + ("" if remove else " (or pass --new)"))
        tx = (n.unbind_accounts if remove else n.bind_accounts)(org, targets)
        with NodeClient(node or n.node_url(), timeout=timeout + 10) as c:
            r = c.submit(tx, wait=True, timeout=timeout)
    except ConsortiaError as exc:
        guard(exc)
    except httpx.HTTPError as exc:
        fail(f"node {node or n.node_url()} did not answer: {exc}")
    if json_out:
        print_json({**r, "org": org, "addresses": targets,
                    "key_file": None if made is None else str(made.key_file)})
    if r["status"] != "committed":
        fail(f"account update {r['status']}: {r.get('error') or 'not committed in time'}")
    if json_out:
        return
    if made is not None:
        console.print(f"new account [bold cyan]{made.address}[/]  key file {made.key_file}")
    console.print(f"{'unbound' if remove else 'bound'} {', '.join(targets)} "
                  f"{'from' if remove else 'to'} [cyan]{org}[/] in block {r['height']}")


NodeOpt = Annotated[str | None, typer.Option("--node", help="node API URL (default: the "
                                             "network's first validator)")]
OrgOpt = Annotated[str, typer.Option("--org", help="the organization (its admin signs)")]
AddressesArg = Annotated[list[str] | None, typer.Argument(help="0x addresses")]
WaitOpt = Annotated[float, typer.Option("--timeout", min=1, help="seconds to wait for the "
                                        "change to commit")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command("bind-account")
def bind_account(org: OrgOpt, addresses: AddressesArg = None,
                 new: Annotated[bool, typer.Option(
                     "--new", help="also make a new key file for the organization and bind "
                     "it")] = False,
                 net: NetworkOpt = None, node: NodeOpt = None, timeout: WaitOpt = 30.0,
                 json_out: JsonOpt = False) -> None:
    """Let Ethereum accounts send transactions for an organization of a quorum network: an
    ``account_update`` signed by its admin, submitted and waited for."""
    _account_update(False, org, addresses, new, net, node, timeout, json_out)


@app.command("unbind-account")
def unbind_account(org: OrgOpt, addresses: AddressesArg = None, net: NetworkOpt = None,
                   node: NodeOpt = None, timeout: WaitOpt = 30.0,
                   json_out: JsonOpt = False) -> None:
    """Stop Ethereum accounts sending transactions for an organization of a quorum network
    (the chain refuses their transactions once this commits)."""
    _account_update(True, org, addresses, False, net, node, timeout, json_out)


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
    the network's nodes that run in the background (``dev validator add`` and ``dev peer
    add`` start them so, also while ``up`` runs), then its transaction managers. The
    number of background nodes stopped."""
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
    stopped = sum(background.stop(n) is not None for n in nodes)
    netrun.stop_managers(again)  # after the nodes: a node commits nothing without its own
    return stopped


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
    if netw.profile is Profile.QUORUM:
        where += f"JSON-RPC      {netw.rpc_url()}   (EVM chain id {netw.doc['evm']['chain_id']})\n"
        where += "".join(f"tm {m.org:<10} {m.url}   privateFor {m.public_key}\n"
                         for m in netw.managers())
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
        f"{stop}; `consortia dev up` again resumes the same chain.",
        title="consortia dev up")


@app.command("up")
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
            kind, count = resolve_consensus(consensus, validators)
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
        if netw.managers():  # before the nodes: a quorum node asks its manager at commit
            with console.status("starting the transaction managers …"):
                try:
                    netrun.start_managers(netw)
                except ConsortiaError as exc:
                    netrun.stop_managers(netw)
                    guard(exc)
        for node in nodes:
            pid = background.running(node)
            if pid is not None:
                err_console.print(f"[yellow]note:[/] node {node.id} already runs in the "
                                  f"background (pid {pid}, started by `consortia dev "
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


@app.command("status")
def status(net: NetworkOpt = None, json_out: JsonOpt = False) -> None:
    """The network's transaction managers and nodes: the PID of those running in the
    background (``dev up`` runs nodes in the foreground: no PID) and whether each answers."""
    try:
        rows = LocalNetwork.open(network_dir(net)).status()
    except ConsortiaError as exc:
        guard(exc)
    if json_out:
        print_json([{"kind": r.kind, "id": r.id, "org": r.org, "url": r.url, "pid": r.pid,
                     "healthy": r.healthy} for r in rows])
        return
    t = Table(title="processes")
    for col in ("kind", "id", "organization", "URL", "pid", "answers"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.kind, r.id, r.org, r.url, "-" if r.pid is None else str(r.pid),
                  "[green]yes[/]" if r.healthy else "[red]no[/]")
    console.print(t)
