"""``consortia channel …``: a network's channels — ledgers shared by some of its members,
each a chain of its own (ADR 0017).

Through ``consortia.sdk.control`` (HTTP, signed). ``channel create`` waits, with the
channel's status and its validators drawn as they come up, until it is AVAILABLE
(``--no-wait`` returns at once); membership changes answer once committed on the
channel's chain; ``delete`` asks for the name to be typed back (``--confirm NAME``).
A member's users transact on a channel with a client directory written by ``consortia ca
enroll … --channel CHANNEL`` (its chain id, genesis and validators).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from consortia.cli.context import console, err_console, print_json
from consortia.cli.remote import (
    ConfirmOpt,
    JsonOpt,
    LimitOpt,
    api,
    confirm_name,
    show_list,
    show_one,
    styled,
    take,
)
from consortia.sdk.control import Channel, Resource

channel_app = typer.Typer(help="Channels of a network: ledgers shared by some members, "
                               "each a chain of its own.", no_args_is_help=True)

CHANNEL_COLUMNS = ("id", "name", "consensus", "status", "members", "creator_member_id",
                   "created_at")
MEMBER_COLUMNS = ("member_id", "name", "tenant_id", "joined_at")
NODE_COLUMNS = ("id", "name", "status", "health", "api_endpoint")

NetworkArg = Annotated[str, typer.Argument(help="network id (net-…)")]
ChannelArg = Annotated[str, typer.Argument(help="channel id (chn-…)")]
MemberArg = Annotated[str, typer.Argument(help="member id (mem-…)")]


def _cell(item: Resource, column: str) -> Any:
    if column == "members" and isinstance(item, Channel):
        return ", ".join(m.name for m in item.members)
    return getattr(item, column, None)


def show_channel(ch: Channel, *, json_out: bool) -> None:
    """The channel's fields, then its members and (for its members' tenants) its nodes."""
    if json_out:
        print_json(ch.raw)
        return
    show_one(ch, title=f"channel {ch.name}", json_out=False)
    show_list(ch.members, MEMBER_COLUMNS, title="members", json_out=False)
    if ch.nodes is not None:
        show_list(ch.nodes, NODE_COLUMNS, title="nodes", json_out=False)


@channel_app.command("create")
def channel_create(
        network_id: NetworkArg,
        name: Annotated[str, typer.Argument(help="the channel's name")],
        member: Annotated[str, typer.Option(
            "--member", help="your member (mem-…) that creates it and runs its validators")],
        with_: Annotated[list[str] | None, typer.Option(
            "--with", help="another member (mem-…) in the channel from its genesis "
                           "(repeat)")] = None,
        consensus: Annotated[str | None, typer.Option(
            help="solo (default, 1 validator), raft (3) or pbft (4)")] = None,
        description: Annotated[str | None, typer.Option()] = None,
        client_token: Annotated[str | None, typer.Option(
            "--client-token", help="idempotency token (default: a new one per call)")] = None,
        wait: Annotated[bool, typer.Option(
            "--wait/--no-wait", help="wait (with progress) until AVAILABLE")] = True,
        timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait")] = 300.0,
        json_out: JsonOpt = False) -> None:
    """Create a channel: a chain of its own among your member and the members named."""
    with api(json_out) as c:
        ch = c.create_channel(network_id, name, member, member_ids=with_ or (),
                              consensus=consensus, description=description,
                              client_token=client_token)
        if wait:
            status = err_console.status(f"channel {name} ({ch.id}) created; starting its "
                                        "validators …")

            def show(s: Channel) -> None:
                nodes = ", ".join(f"{n.name} {styled(n.status)}" for n in s.nodes or [])
                status.update(f"channel {s.name} is {styled(s.status)}"
                              + (f" · {nodes}" if nodes else "") + " …")

            with status:
                ch = c.wait_for_channel(network_id, ch.id, timeout=timeout, on_poll=show)
        show_channel(ch, json_out=json_out)


@channel_app.command("list")
def channel_list(network_id: NetworkArg,
                 status: Annotated[str | None, typer.Option(
                     "--status", help="only those in this status")] = None,
                 limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """The channels of a network your tenant has a member in."""
    with api(json_out) as c:
        show_list(take(c.iter_channels(network_id, status=status), limit), CHANNEL_COLUMNS,
                  title=f"channels of {network_id}", json_out=json_out, cells=_cell)


@channel_app.command("get")
def channel_get(network_id: NetworkArg, channel_id: ChannelArg,
                json_out: JsonOpt = False) -> None:
    """One channel: its members and, for its members' tenants, its nodes' endpoints."""
    with api(json_out) as c:
        show_channel(c.get_channel(network_id, channel_id), json_out=json_out)


@channel_app.command("genesis")
def channel_genesis(network_id: NetworkArg, channel_id: ChannelArg) -> None:
    """Print the channel chain's genesis file (``consortia verify --genesis`` of its
    proofs)."""
    with api() as c:
        console.out(c.channel_genesis(network_id, channel_id).decode(), end="")


@channel_app.command("add-member")
def channel_add_member(network_id: NetworkArg, channel_id: ChannelArg, member_id: MemberArg,
                       json_out: JsonOpt = False) -> None:
    """Add a member of the network to the channel (an org_update on its chain, approved by
    your tenant's members in it)."""
    with api(json_out) as c, \
            err_console.status(f"adding {member_id} to {channel_id}: configuration change …"):
        ch = c.add_channel_member(network_id, channel_id, member_id)
    show_channel(ch, json_out=json_out)


@channel_app.command("remove-member")
def channel_remove_member(network_id: NetworkArg, channel_id: ChannelArg,
                          member_id: MemberArg, json_out: JsonOpt = False) -> None:
    """Remove a member's organization from the channel's chain (not its creator's)."""
    with api(json_out) as c:
        with err_console.status(f"removing {member_id} from {channel_id}: configuration "
                                "change …"):
            c.remove_channel_member(network_id, channel_id, member_id)
        if json_out:
            print_json({"removed": member_id, "channel_id": channel_id})
        else:
            console.print(f"member {member_id} removed from channel {channel_id}")


@channel_app.command("delete")
def channel_delete(network_id: NetworkArg, channel_id: ChannelArg, confirm: ConfirmOpt = None,
                   json_out: JsonOpt = False) -> None:
    """Delete a channel: its validators stop (type its name back; its creator's tenant)."""
    with api(json_out) as c:
        ch = c.get_channel(network_id, channel_id)
        typed = confirm_name("channel", ch.name, confirm)
        with err_console.status(f"deleting channel {ch.name}: stopping its validators …"):
            c.delete_channel(network_id, channel_id, confirm_name=typed)
        if json_out:
            print_json({"deleted": channel_id})
        else:
            console.print(f"channel [cyan]{ch.name}[/] ({channel_id}) deleted")
