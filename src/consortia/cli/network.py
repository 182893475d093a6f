"""``consortia network``: create a local network; change its validators (``validator``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consortia.cli import peer, validator
from consortia.cli.context import console, fail, guard, network_dir
from consortia.sdk import LocalNetwork, init_network
from consortia.types.config import BlockLimits, ConsensusKind, Profile
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Create and inspect local networks.", no_args_is_help=True)
app.add_typer(validator.app, name="validator")
app.add_typer(peer.app, name="peer")

AVAILABLE_PROFILES = (Profile.ANT,)


def resolve_consensus(consensus: ConsensusKind | None, validators: int | None,
                      orderers: int | None = None,
                      profile: Profile = Profile.ANT) -> tuple[ConsensusKind, int | None]:
    """The consensus and validator count the options mean.

    ``--orderers`` is Fabric's word for raft's validators: alone it means raft. Without
    ``--consensus``, the ``ant`` profile with more than one validator means pbft (Ant
    Blockchain's BFT ordering), and one or none means solo.
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
            consensus = ConsensusKind.PBFT
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
             case_sensitive=False, help="network profile (only ant is available yet)")
         ] = Profile.ANT,
         p2p_port: Annotated[int | None, typer.Option(
             help="p2p port of the first validator (raft, pbft; default: port + 100)")
         ] = None,
         ) -> None:
    """Create organizations with their CAs and identities, the validators and the genesis
    block."""
    root = network_dir(net)
    kind, count = resolve_consensus(consensus, validators, orderers, profile)
    try:
        n = init_network(root, chain_id=chain_id, orgs=org or ["org1", "org2"], host=host,
                         port=port, force=force, consensus=kind, validators=count,
                         p2p_port=p2p_port,
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
    print_nodes(n)
    console.print(f"genesis  {n.genesis_path}  ({n.doc['genesis_hash'][:16]}…)")
    nodes = n.nodes()
    if len(nodes) == 1:
        console.print(f"start    consortia node start --config {n.node_config()}")
        return
    console.print(f"start    consortia up -N {root}   (all {len(nodes)} nodes, Ctrl-C stops "
                  "them)\n         or one terminal per node:")
    for node in nodes:
        console.print(f"           consortia node start --config {node.config}")
