"""``consortia network|member|node …``: the control plane's networks, members and nodes.

Through ``consortia.sdk.control`` (HTTP, signed): ``network create`` waits, with the
nodes' statuses drawn live, until the chain is AVAILABLE (``--no-wait`` returns at once);
``node create`` waits for the node (an ``--external`` one is registered, and ``node
bundle`` downloads its join bundle for ``node join``); deletes ask for the name to be typed back
(``--confirm NAME`` for scripts). ``node start`` / ``node verify`` (``cli/node.py``) run
and check a node process from its files; they share the ``node`` group. ``member account
bind|list|unbind`` manage the Ethereum accounts of a member of a quorum network (ADR 0029;
``consortia account`` is the local key files that sign with them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consortia.cli import node as node_cli
from consortia.cli.context import console, err_console, fail, guard, print_json
from consortia.cli.remote import (
    ConfirmOpt,
    JsonOpt,
    LimitOpt,
    api,
    confirm_name,
    show_list,
    show_one,
    take,
)
from consortia.cli.watch import LiveReporter, QuietReporter, wait_until_ready
from consortia.sdk.bundle import PASSPHRASE_ENV, check_passphrase
from consortia.types.errors import ConsortiaError

network_app = typer.Typer(help="Networks of the control plane: create, list, get, delete.",
                          no_args_is_help=True)
member_app = typer.Typer(help="Members (organizations) of a network.", no_args_is_help=True)
member_account_app = typer.Typer(help="Ethereum accounts bound to a member on a quorum "
                                      "network (who may send transactions).",
                                 no_args_is_help=True)
member_app.add_typer(member_account_app, name="account")
node_app = node_cli.app

NETWORK_COLUMNS = ("id", "name", "profile", "consensus", "usage_mode", "status", "created_at")
MEMBER_COLUMNS = ("id", "name", "tenant_id", "status", "status_reason", "created_at")
NODE_COLUMNS = ("id", "name", "node_type", "status", "health", "api_endpoint", "p2p_endpoint",
                "rpc_url")
ACCOUNT_COLUMNS = ("address", "org_id")

NetworkArg = Annotated[str, typer.Argument(help="network id (net-…)")]
MemberArg = Annotated[str, typer.Argument(help="member id (mem-…)")]
NodeArg = Annotated[str, typer.Argument(help="node id (nd-…)")]
StatusOpt = Annotated[str | None, typer.Option("--status", help="only those in this status")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait",
                                       help="wait (with progress) until AVAILABLE")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="seconds to wait")]
TokenOpt = Annotated[str | None, typer.Option(
    "--client-token", help="idempotency token (default: a new one per call)")]


def reporter(json_out: bool) -> LiveReporter | QuietReporter:
    return QuietReporter() if json_out else LiveReporter()


# --- networks ------------------------------------------------------------------------------


@network_app.command("create")
def network_create(
        name: Annotated[str, typer.Argument(help="the network's name")],
        profile: Annotated[str, typer.Option(
            help="ant (notary) or quorum (EVM, Ethereum JSON-RPC); fabric: later")] = "ant",
        consensus: Annotated[str | None, typer.Option(
            help="solo, raft or pbft (default: the profile's, ant: pbft, quorum: raft)")
        ] = None,
        evm_chain_id: Annotated[int | None, typer.Option(
            min=1, help="quorum: the EIP-155 chain id (default: lowest unused from 1337)")
        ] = None,
        evm_gas_limit: Annotated[int | None, typer.Option(
            min=1, help="quorum: the block gas limit (default 30000000)")] = None,
        validators: Annotated[int | None, typer.Option(
            min=1, help="founding validators (solo 1, raft 3, pbft ≥ 4)")] = None,
        member: Annotated[str | None, typer.Option(
            help="quick mode: the first member's name (default: the tenant's)")] = None,
        standard: Annotated[bool, typer.Option(
            "--standard", help="standard mode: the network only, its first member later")
        ] = False,
        threshold: Annotated[int | None, typer.Option(
            min=0, max=100, help="voting policy: % of YES votes a proposal needs")] = None,
        description: Annotated[str | None, typer.Option()] = None,
        client_token: TokenOpt = None, wait: WaitOpt = True, timeout: TimeoutOpt = 300.0,
        json_out: JsonOpt = False) -> None:
    """Create a network; in quick mode its chain starts at once (with your member)."""
    with api(json_out) as c:
        policy = None if threshold is None else {"threshold_percentage": threshold}
        net = c.create_network(name, profile=profile, consensus=consensus,
                               validators=validators, member_name=member,
                               usage_mode="standard" if standard else None,
                               voting_policy=policy, description=description,
                               evm_chain_id=evm_chain_id, evm_gas_limit=evm_gas_limit,
                               client_token=client_token)
        created = net
        if wait and not standard:
            with reporter(json_out) as r:
                r.step(f"network {name} created ({net.id}); starting its validators …")
                net, _ = wait_until_ready(c, net.id, r, timeout=timeout)
        if json_out:
            print_json({**net.raw, "member": created.raw.get("member")})
            return
        show_one(net, title=f"network {net.name}", json_out=False)
        if created.member is not None:
            console.print(f"member [cyan]{created.member.name}[/] {created.member.id}")


@network_app.command("list")
def network_list(status: StatusOpt = None, limit: LimitOpt = None,
                 json_out: JsonOpt = False) -> None:
    """The networks your tenant operates or is a member of."""
    with api(json_out) as c:
        show_list(take(c.iter_networks(status=status), limit), NETWORK_COLUMNS,
                  title="networks", json_out=json_out)


@network_app.command("get")
def network_get(network_id: NetworkArg, json_out: JsonOpt = False) -> None:
    """One network: status, consensus, voting policy, genesis hash."""
    with api(json_out) as c:
        show_one(c.get_network(network_id), title=f"network {network_id}", json_out=json_out)


@network_app.command("genesis")
def network_genesis(network_id: NetworkArg) -> None:
    """Print the chain's genesis file (for ``consortia verify --genesis``)."""
    with api() as c:
        console.out(c.genesis(network_id).decode(), end="")


@network_app.command("delete")
def network_delete(network_id: NetworkArg, confirm: ConfirmOpt = None,
                   json_out: JsonOpt = False) -> None:
    """Delete a network: its nodes stop (type its name back)."""
    with api(json_out) as c:
        net = c.get_network(network_id)
        typed = confirm_name("network", net.name, confirm)
        with err_console.status(f"deleting network {net.name}: stopping its nodes …"):
            c.delete_network(network_id, confirm_name=typed)
        if json_out:
            print_json({"deleted": network_id})
        else:
            console.print(f"network [cyan]{net.name}[/] ({network_id}) deleted")


# --- members -------------------------------------------------------------------------------


@member_app.command("create")
def member_create(network_id: NetworkArg,
                  name: Annotated[str, typer.Argument(help="the member's name")],
                  validators: Annotated[int | None, typer.Option(min=1)] = None,
                  invitation: Annotated[str | None, typer.Option(
                      help="the invitation this member accepts (inv-…)")] = None,
                  description: Annotated[str | None, typer.Option()] = None,
                  client_token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Create your tenant's member of a network (with its own CA)."""
    with api(json_out) as c:
        m = c.create_member(network_id, name, validators=validators, invitation_id=invitation,
                            description=description, client_token=client_token)
        show_one(m, title=f"member {m.name}", json_out=json_out,
                 skip=("ca_certificate_pem",))


@member_app.command("list")
def member_list(network_id: NetworkArg, status: StatusOpt = None, limit: LimitOpt = None,
                json_out: JsonOpt = False) -> None:
    """The members of a network."""
    with api(json_out) as c:
        show_list(take(c.iter_members(network_id, status=status), limit), MEMBER_COLUMNS,
                  title=f"members of {network_id}", json_out=json_out)


@member_app.command("get")
def member_get(network_id: NetworkArg, member_id: MemberArg,
               json_out: JsonOpt = False) -> None:
    """One member (``--json`` includes its CA certificate)."""
    with api(json_out) as c:
        show_one(c.get_member(network_id, member_id), title=f"member {member_id}",
                 json_out=json_out, skip=("ca_certificate_pem",))


@member_app.command("delete")
def member_delete(network_id: NetworkArg, member_id: MemberArg, confirm: ConfirmOpt = None,
                  json_out: JsonOpt = False) -> None:
    """Your member leaves the network (type its name back)."""
    with api(json_out) as c:
        m = c.get_member(network_id, member_id)
        typed = confirm_name("member", m.name, confirm)
        with err_console.status(f"deleting member {m.name} …"):
            c.delete_member(network_id, member_id, confirm_name=typed)
        if json_out:
            print_json({"deleted": member_id})
        else:
            console.print(f"member [cyan]{m.name}[/] ({member_id}) deleted")


# --- a member's Ethereum accounts (quorum) -------------------------------------------------

AddressArg = Annotated[str, typer.Argument(help="Ethereum address (0x and 40 hex digits)")]


@member_account_app.command("bind")
def account_bind(network_id: NetworkArg, member_id: MemberArg, address: AddressArg,
                 json_out: JsonOpt = False) -> None:
    """Let ADDRESS send Ethereum transactions for your member (a configuration change the
    control plane signs with the member's admin; waits until it committed)."""
    with api(json_out) as c, err_console.status(f"binding {address} …"):
        a = c.bind_account(network_id, member_id, address)
    show_one(a, title=f"account of {member_id}", json_out=json_out)


@member_account_app.command("list")
def account_list(network_id: NetworkArg, member_id: MemberArg,
                 json_out: JsonOpt = False) -> None:
    """The accounts the chain binds to a member (read from its configuration)."""
    with api(json_out) as c:
        show_list(c.list_accounts(network_id, member_id), ACCOUNT_COLUMNS,
                  title=f"accounts of {member_id}", json_out=json_out)


@member_account_app.command("unbind")
def account_unbind(network_id: NetworkArg, member_id: MemberArg, address: AddressArg,
                   json_out: JsonOpt = False) -> None:
    """Stop ADDRESS transacting for your member (waits until the change committed)."""
    with api(json_out) as c, err_console.status(f"unbinding {address} …"):
        c.unbind_account(network_id, member_id, address)
    if json_out:
        print_json({"unbound": address, "member_id": member_id})
    else:
        console.print(f"account [cyan]{address}[/] unbound from {member_id}")


# --- nodes ---------------------------------------------------------------------------------


@node_app.command("create")
def node_create(network_id: NetworkArg, member_id: MemberArg,
                name: Annotated[str, typer.Argument(help="the node's name")],
                node_type: Annotated[str | None, typer.Option(
                    "--type", help="validator (default) or peer")] = None,
                resource_class: Annotated[str | None, typer.Option(
                    help="small, medium or large")] = None,
                external: Annotated[bool, typer.Option(
                    "--external", help="a peer you run yourself from its join bundle "
                                       "(consortia node bundle, then node join)")] = False,
                endpoint: Annotated[str | None, typer.Option(
                    "--endpoint", help="--external: http(s)://host:port where you will run "
                                       "it (the control plane polls its health there)")
                ] = None,
                client_token: TokenOpt = None, wait: WaitOpt = True,
                timeout: TimeoutOpt = 300.0, json_out: JsonOpt = False) -> None:
    """Add a node: a validator joins a running raft or pbft chain, a peer follows it, or an
    external peer is registered for you to run (no wait: it runs once you join it)."""
    if external != (endpoint is not None):
        fail("--external and --endpoint URL go together")
    with api(json_out) as c:
        what = "registering external peer" if external else "adding node"
        status = err_console.status(f"{what} {name} …")
        with status:
            n = c.create_node(network_id, member_id, name, resource_class=resource_class,
                              node_type="peer" if external and node_type is None
                              else node_type, external=external, api_endpoint=endpoint,
                              client_token=client_token)
            if wait and not external:
                n = c.wait_for_node(network_id, member_id, n.id, timeout=timeout,
                                    on_poll=lambda s: status.update(
                                        f"node {s.name} is {s.status} …"))
        show_one(n, title=f"node {n.name}", json_out=json_out)
        if external and not json_out:
            console.print(f"next: consortia node bundle {network_id} {member_id} {n.id} "
                          f"--out {n.name}.join.json, then consortia node join "
                          f"{n.name}.join.json on the machine at {endpoint}")


@node_app.command("bundle")
def node_bundle(network_id: NetworkArg, member_id: MemberArg, node_id: NodeArg,
                out: Annotated[Path, typer.Option(
                    "--out", help="where to write the join bundle (mode 0600)")],
                passphrase_file: Annotated[Path | None, typer.Option(
                    help=f"file holding the passphrase that seals the node's key (else "
                         f"${PASSPHRASE_ENV}, else a prompt, asked twice)")] = None,
                force: Annotated[bool, typer.Option(
                    "--force", help="overwrite --out if it exists")] = False,
                json_out: JsonOpt = False) -> None:
    """Download an external node's join bundle: a new identity for it (an earlier
    bundle's is revoked), its key sealed under your passphrase (never sent back, never
    stored). Run it with ``consortia node join FILE``."""
    if out.exists() and not force:
        fail(f"{out} exists: give another --out, or --force to replace it")
    passphrase = node_cli.read_passphrase(passphrase_file, confirm=True)
    try:
        check_passphrase(passphrase)  # refused here: nothing is issued for a weak one
    except ConsortiaError as exc:
        guard(exc)
    with api(json_out) as c, err_console.status(f"issuing node {node_id}'s identity and "
                                                "sealing its bundle …"):
        data = c.download_join_bundle(network_id, member_id, node_id, passphrase)
    try:
        node_cli.write_private(out, data)
    except OSError as exc:
        fail(f"the bundle was issued but could not be written to {out}: {exc.strerror}")
    if json_out:
        print_json({"node_id": node_id, "bundle": str(out), "bytes": len(data)})
    else:
        console.print(f"join bundle of {node_id} written to [bold]{out}[/] (0600); run the "
                      f"node with\n  consortia node join {out}")


@node_app.command("list")
def node_list(network_id: NetworkArg, member_id: MemberArg, status: StatusOpt = None,
              limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """A member's nodes (your tenant's members only)."""
    with api(json_out) as c:
        show_list(take(c.iter_nodes(network_id, member_id, status=status), limit),
                  NODE_COLUMNS, title=f"nodes of {member_id}", json_out=json_out)


@node_app.command("get")
def node_get(network_id: NetworkArg, member_id: MemberArg, node_id: NodeArg,
             json_out: JsonOpt = False) -> None:
    """One node: status, health, endpoints."""
    with api(json_out) as c:
        show_one(c.get_node(network_id, member_id, node_id), title=f"node {node_id}",
                 json_out=json_out)


@node_app.command("delete")
def node_delete(network_id: NetworkArg, member_id: MemberArg, node_id: NodeArg,
                confirm: ConfirmOpt = None, json_out: JsonOpt = False) -> None:
    """Remove a validator from its chain and stop it (type its name back)."""
    with api(json_out) as c:
        n = c.get_node(network_id, member_id, node_id)
        typed = confirm_name("node", n.name, confirm)
        with err_console.status(f"deleting node {n.name}: configuration change, then "
                                "stopping it …"):
            c.delete_node(network_id, member_id, node_id, confirm_name=typed)
        if json_out:
            print_json({"deleted": node_id})
        else:
            console.print(f"node [cyan]{n.name}[/] ({node_id}) deleted")
