"""``consortia proposal|invitation``: how a network's members decide who joins and leaves.

A member proposes (INVITE_TENANT a tenant, REMOVE_MEMBER a member, ADD_VALIDATOR a
validator for one of its own members), the members vote per
the network's voting policy; an approved invitation reaches the invited tenant, who
accepts it by creating its member (``invitation accept``) or rejects it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from consortia.cli.context import console, fail, print_json
from consortia.cli.remote import JsonOpt, LimitOpt, api, show_list, show_one, take
from consortia.sdk.control import Proposal, Resource

proposal_app = typer.Typer(help="Proposals of a network's members and their votes.",
                           no_args_is_help=True)
invitation_app = typer.Typer(help="Invitations of your tenant to join networks.",
                             no_args_is_help=True)

PROPOSAL_COLUMNS = ("id", "action", "status", "tally", "proposer_member_id", "target",
                    "expires_at")
INVITATION_COLUMNS = ("id", "network_id", "status", "message", "expires_at")

NetworkArg = Annotated[str, typer.Argument(help="network id (net-…)")]
ProposalArg = Annotated[str, typer.Argument(help="proposal id")]
InvitationArg = Annotated[str, typer.Argument(help="invitation id")]
MemberOpt = Annotated[str, typer.Option("--member", help="your member (mem-…) that acts")]


def _proposal_cell(item: Resource, column: str) -> Any:
    if column == "target" and isinstance(item, Proposal):
        if item.node_name:
            return f"{item.node_name} of {item.target_member_id}"
        return item.target_tenant_id or item.target_member_id
    if column == "tally" and isinstance(item, Proposal) and item.tally:
        t = item.tally
        return f"yes {t.get('yes', 0)} · no {t.get('no', 0)} of {t.get('eligible', '?')}"
    return getattr(item, column, None)


@proposal_app.command("create")
def proposal_create(network_id: NetworkArg, member: MemberOpt,
                    invite: Annotated[str | None, typer.Option(
                        help="INVITE_TENANT: the tenant id to invite")] = None,
                    remove: Annotated[str | None, typer.Option(
                        help="REMOVE_MEMBER: the member id to remove")] = None,
                    add_validator: Annotated[str | None, typer.Option(
                        help="ADD_VALIDATOR: the new validator's name")] = None,
                    target: Annotated[str | None, typer.Option(
                        help="ADD_VALIDATOR: your member that runs it (default --member)")
                    ] = None,
                    resource_class: Annotated[str | None, typer.Option(
                        help="ADD_VALIDATOR: small, medium or large")] = None,
                    description: Annotated[str | None, typer.Option()] = None,
                    json_out: JsonOpt = False) -> None:
    """Propose to invite a tenant (--invite), to remove a member (--remove) or to add a
    validator your tenant alone cannot approve (--add-validator NAME)."""
    if [invite, remove, add_validator].count(None) != 2:
        fail("give exactly one of --invite TENANT_ID, --remove MEMBER_ID and "
             "--add-validator NAME")
    if add_validator is None and (target or resource_class):
        fail("--target and --resource-class go with --add-validator")
    with api(json_out) as c:
        if add_validator is not None:
            p = c.create_proposal(network_id, member, "ADD_VALIDATOR",
                                  target_member_id=target or member, node_name=add_validator,
                                  resource_class=resource_class, description=description)
        else:
            p = c.create_proposal(network_id, member,
                                  "INVITE_TENANT" if invite else "REMOVE_MEMBER",
                                  target_tenant_id=invite, target_member_id=remove,
                                  description=description)
        show_one(p, title=f"proposal {p.id}", json_out=json_out)


@proposal_app.command("list")
def proposal_list(network_id: NetworkArg,
                  status: Annotated[str | None, typer.Option(
                      help="IN_PROGRESS, APPROVED, REJECTED, EXPIRED, ACTION_FAILED")] = None,
                  limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """A network's proposals."""
    with api(json_out) as c:
        show_list(take(c.iter_proposals(network_id, status=status), limit), PROPOSAL_COLUMNS,
                  title=f"proposals of {network_id}", json_out=json_out,
                  cells=_proposal_cell)


@proposal_app.command("get")
def proposal_get(network_id: NetworkArg, proposal_id: ProposalArg,
                 json_out: JsonOpt = False) -> None:
    """One proposal with its tally and votes."""
    with api(json_out) as c:
        p = c.get_proposal(network_id, proposal_id)
        votes = c.list_votes(network_id, proposal_id).items
    if json_out:
        print_json({**p.raw, "votes": [v.raw for v in votes]})
        return
    show_one(p, title=f"proposal {proposal_id}", json_out=False)
    if p.tally:
        console.print(f"tally  {_proposal_cell(p, 'tally')}")
    show_list(votes, ("member_id", "vote", "created_at"), title="votes", json_out=False)


@proposal_app.command("vote")
def proposal_vote(network_id: NetworkArg, proposal_id: ProposalArg, member: MemberOpt,
                  vote: Annotated[str, typer.Argument(help="yes or no")],
                  json_out: JsonOpt = False) -> None:
    """Vote YES or NO on a proposal, as your member."""
    value = vote.upper()
    if value not in ("YES", "NO"):
        fail(f"vote yes or no, not {vote!r}")
    with api(json_out) as c:
        cast = c.vote(network_id, proposal_id, member, value)
    if json_out:
        print_json(cast.raw)
        return
    p = cast.proposal
    if p.failure_reason:
        console.print(f"[red]the approved action failed:[/] {p.failure_reason}")
    console.print(f"voted [bold]{value}[/] on {proposal_id}: it is {p.status} "
                  f"({_proposal_cell(p, 'tally')})")


@invitation_app.command("list")
def invitation_list(status: Annotated[str | None, typer.Option(
                        help="PENDING, ACCEPTED, REJECTED, EXPIRED")] = None,
                    limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """Invitations of your tenant."""
    with api(json_out) as c:
        show_list(take(c.iter_invitations(status=status), limit), INVITATION_COLUMNS,
                  title="invitations", json_out=json_out)


@invitation_app.command("accept")
def invitation_accept(invitation_id: InvitationArg,
                      name: Annotated[str, typer.Option(help="your new member's name")],
                      json_out: JsonOpt = False) -> None:
    """Join the network: create your member from the invitation (its organization is
    added to the chain for the members that voted for it; add its nodes afterwards)."""
    with api(json_out) as c:
        m = c.accept_invitation(invitation_id, name)
        show_one(m, title=f"member {m.name}", json_out=json_out, skip=("ca_certificate_pem",))


@invitation_app.command("reject")
def invitation_reject(invitation_id: InvitationArg, json_out: JsonOpt = False) -> None:
    """Decline the invitation."""
    with api(json_out) as c:
        show_one(c.reject_invitation(invitation_id), title=f"invitation {invitation_id}",
                 json_out=json_out)
