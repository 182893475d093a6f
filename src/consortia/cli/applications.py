"""``consortia join-code|application``: how a tenant applies to join a network it cannot see.

An admin of a member creates a join code (``join-code create``) and shares it; the other
tenant applies with it (``application submit``); the network's admins accept it (which
opens an INVITE_TENANT proposal the members vote on) or reject it; once APPROVED, the
applicant creates its member (``application join``). ADR 0018.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from consortia.cli.context import console, fail
from consortia.cli.remote import JsonOpt, LimitOpt, api, show_list, show_one, take
from consortia.sdk.control import JoinApplication, Resource

join_code_app = typer.Typer(help="Join codes: shareable codes to apply to join a network.",
                            no_args_is_help=True)
application_app = typer.Typer(help="Applications to join networks, yours or your "
                                   "networks'.", no_args_is_help=True)

CODE_COLUMNS = ("id", "member_id", "status", "usable", "uses", "max_uses", "expires_at",
                "description")
APPLICATION_COLUMNS = ("id", "network", "tenant_id", "member_name", "status", "proposal_id",
                       "member_id", "created_at")

NetworkArg = Annotated[str, typer.Argument(help="network id (net-…)")]
ApplicationArg = Annotated[str, typer.Argument(help="join application id (app-…)")]
MemberOpt = Annotated[str, typer.Option("--member", help="your member (mem-…) that acts")]


def _application_cell(item: Resource, column: str) -> Any:
    if column == "network" and isinstance(item, JoinApplication):
        return f"{item.network.get('name')} ({item.network_id})"
    return getattr(item, column, None)


# --- join codes ----------------------------------------------------------------------------


@join_code_app.command("create")
def join_code_create(network_id: NetworkArg, member: MemberOpt,
                     hours: Annotated[int | None, typer.Option(
                         "--expires-in-hours", help="valid for (default 168, at most 720)")
                     ] = None,
                     max_uses: Annotated[int | None, typer.Option(
                         help="applications it takes (default: any number)")] = None,
                     description: Annotated[str | None, typer.Option()] = None,
                     json_out: JsonOpt = False) -> None:
    """A code to share with a tenant that should apply; it is shown this once."""
    with api(json_out) as c:
        code = c.create_join_code(network_id, member, description=description,
                                  expires_in_hours=hours, max_uses=max_uses)
    show_one(code, title=f"join code {code.id}", json_out=json_out)
    if not json_out and code.join_code:
        console.print("share this code (it is not shown again):")
        console.print(code.join_code, markup=False, highlight=False, soft_wrap=True)


@join_code_app.command("list")
def join_code_list(network_id: NetworkArg, limit: LimitOpt = None,
                   json_out: JsonOpt = False) -> None:
    """Your tenant's join codes of a network (without their secrets)."""
    with api(json_out) as c:
        items = take(c.list_join_codes(network_id, limit=limit).items, limit)
    show_list(items, CODE_COLUMNS, title=f"join codes of {network_id}", json_out=json_out)


@join_code_app.command("revoke")
def join_code_revoke(network_id: NetworkArg,
                     join_code_id: Annotated[str, typer.Argument(help="join code id (jc-…)")],
                     json_out: JsonOpt = False) -> None:
    """No application is taken with the code from now on."""
    with api(json_out) as c:
        show_one(c.revoke_join_code(network_id, join_code_id),
                 title=f"join code {join_code_id}", json_out=json_out)


# --- applications --------------------------------------------------------------------------


@application_app.command("submit")
def application_submit(code: Annotated[str, typer.Argument(help="the join code you were given")],
                       name: Annotated[str, typer.Option(help="your member's name to be")],
                       message: Annotated[str | None, typer.Option()] = None,
                       json_out: JsonOpt = False) -> None:
    """Apply to join the network of a join code."""
    with api(json_out) as c:
        a = c.apply_to_join(code, name, message=message)
    show_one(a, title=f"join application {a.id}", json_out=json_out)


@application_app.command("list")
def application_list(network: Annotated[str | None, typer.Option(
                         help="a network of yours: the applications to it (admins)")] = None,
                     status: Annotated[str | None, typer.Option(
                         help="PENDING, APPROVED, REJECTED, WITHDRAWN, EXPIRED")] = None,
                     limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """Your tenant's applications, or (--network) those to one of your networks."""
    with api(json_out) as c:
        items = take(c.iter_join_applications(network_id=network, status=status), limit)
    show_list(items, APPLICATION_COLUMNS, json_out=json_out, cells=_application_cell,
              title="join applications" + (f" to {network}" if network else ""))


@application_app.command("get")
def application_get(application_id: ApplicationArg, json_out: JsonOpt = False) -> None:
    """One application (yours, or one to a network of yours)."""
    with api(json_out) as c:
        show_one(c.get_join_application(application_id),
                 title=f"join application {application_id}", json_out=json_out)


@application_app.command("accept")
def application_accept(network_id: NetworkArg, application_id: ApplicationArg,
                       member: MemberOpt,
                       description: Annotated[str | None, typer.Option(
                           help="the proposal's description (default: the message)")] = None,
                       json_out: JsonOpt = False) -> None:
    """Open the INVITE_TENANT proposal that decides the application (then vote on it)."""
    with api(json_out) as c:
        a = c.accept_join_application(network_id, application_id, member,
                                      description=description)
    show_one(a, title=f"join application {a.id}", json_out=json_out)
    if not json_out:
        console.print(f"vote on proposal {a.proposal_id}: consortia proposal vote "
                      f"{network_id} {a.proposal_id} --member {member} yes")


@application_app.command("reject")
def application_reject(network_id: NetworkArg, application_id: ApplicationArg,
                       json_out: JsonOpt = False) -> None:
    """Turn the application down."""
    with api(json_out) as c:
        show_one(c.reject_join_application(network_id, application_id),
                 title=f"join application {application_id}", json_out=json_out)


@application_app.command("withdraw")
def application_withdraw(application_id: ApplicationArg, json_out: JsonOpt = False) -> None:
    """Withdraw your PENDING application."""
    with api(json_out) as c:
        show_one(c.withdraw_join_application(application_id),
                 title=f"join application {application_id}", json_out=json_out)


@application_app.command("join")
def application_join(application_id: ApplicationArg,
                     name: Annotated[str | None, typer.Option(
                         help="your member's name (default: the one applied with)")] = None,
                     json_out: JsonOpt = False) -> None:
    """Create your member from an APPROVED application's invitation."""
    with api(json_out) as c:
        try:
            m = c.join_from_application(application_id, member_name=name)
        except ValueError as exc:
            fail(str(exc))
    show_one(m, title=f"member {m.name}", json_out=json_out, skip=("ca_certificate_pem",))
