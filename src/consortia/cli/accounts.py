"""``consortia tenant|user|access-key|audit``: who may use the control plane, and the trail.

Through ``consortia.sdk.control``. Secrets (a new access key's, a new tenant owner's) are
printed once, as the API shows them once.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel

from consortia.cli.context import console, fail, print_json
from consortia.cli.remote import (
    JsonOpt,
    LimitOpt,
    api,
    profile_file,
    show_list,
    show_one,
    take,
)
from consortia.sdk.control import ControlError, write_profile
from consortia.sdk.signing import Credentials

tenant_app = typer.Typer(help="Tenants of the platform (platform owners).",
                         no_args_is_help=True)
user_app = typer.Typer(help="Users of your tenant and their roles.", no_args_is_help=True)
key_app = typer.Typer(help="API access keys (the secret is shown once).", no_args_is_help=True)

USER_COLUMNS = ("id", "username", "role", "status", "email", "has_password", "created_at")
KEY_COLUMNS = ("access_key_id", "user_id", "status", "description", "last_used_at")
AUDIT_COLUMNS = ("created_at", "action", "result", "error_code", "resource_id", "user_id",
                 "request_id")
TENANT_COLUMNS = ("id", "name", "status", "created_at")

UserArg = Annotated[str, typer.Argument(help="user id (usr-…)")]
KeyArg = Annotated[str, typer.Argument(help="access key id (CK…)")]
TokenOpt = Annotated[str | None, typer.Option(
    "--client-token", help="idempotency token (default: a new one per call)")]


def _secret_panel(title: str, key_id: str, secret: str | None, extra: str = "") -> Panel:
    return Panel.fit(f"{extra}access key id  [cyan]{key_id}[/]\n"
                     f"secret         [bold]{secret or '(not shown again)'}[/]\n\n"
                     "The secret is shown once: store it now.", title=title)


# --- tenants -------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(name: Annotated[str, typer.Argument(help="the tenant's name")],
                  owner: Annotated[str, typer.Option(help="its owner's username")],
                  owner_email: Annotated[str | None, typer.Option()] = None,
                  save_profile: Annotated[str | None, typer.Option(
                      "--save-profile", help="write the owner's key to your credentials "
                                             "file as this profile (as up's demo does), "
                                             "for consortia --profile NAME …")] = None,
                  json_out: JsonOpt = False) -> None:
    """Create a tenant with its owner and the owner's first access key."""
    with api(json_out) as c:
        made = c.create_tenant(name, owner, owner_email=owner_email)
        endpoint = c.base_url
    saved = None
    if save_profile is not None and made.access_key.secret:
        saved = profile_file()
        try:
            write_profile(saved, endpoint, Credentials(made.access_key.access_key_id,
                                                       made.access_key.secret),
                          profile=save_profile)
        except (ControlError, OSError) as exc:
            fail(f"tenant {made.tenant.id} was created but its key could not be saved in "
                 f"{saved}: {exc}; store the secret now: {made.access_key.secret}")
    if json_out:
        print_json({**made.raw, "profile": save_profile if saved else None,
                    "credentials_file": str(saved) if saved else None})
        return
    console.print(_secret_panel(f"tenant {made.tenant.name}", made.access_key.access_key_id,
                                made.access_key.secret,
                                f"tenant         {made.tenant.id}\n"
                                f"owner          {made.owner.username} ({made.owner.id})\n"))
    if saved is not None:
        console.print(f"saved as profile [cyan]{save_profile}[/] in {saved}: "
                      f"consortia --profile {save_profile} …")


@tenant_app.command("list")
def tenant_list(limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """Every tenant of the platform."""
    with api(json_out) as c:
        show_list(take(c.iter_tenants(), limit), TENANT_COLUMNS, title="tenants",
                  json_out=json_out)


@tenant_app.command("me")
def tenant_me(json_out: JsonOpt = False) -> None:
    """Your tenant, user and how you are authenticated."""
    with api(json_out) as c:
        me = c.me()
    if json_out:
        print_json(me.raw)
        return
    console.print(f"tenant [cyan]{me.tenant.name}[/] ({me.tenant.id}) · user "
                  f"[cyan]{me.user.username}[/] ({me.user.id}, {me.user.role}) · key "
                  f"{me.access_key_id}")


# --- users ---------------------------------------------------------------------------------


@user_app.command("create")
def user_create(username: Annotated[str, typer.Argument()],
                role: Annotated[str, typer.Option(help="owner, admin, operator or viewer")],
                email: Annotated[str | None, typer.Option()] = None,
                password: Annotated[bool, typer.Option(
                    "--password", help="ask for a console password")] = False,
                client_token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Create a user of your tenant (access keys only, unless --password)."""
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) \
        if password else None
    with api(json_out) as c:
        u = c.create_user(username, role, email=email, password=secret,
                          client_token=client_token)
        show_one(u, title=f"user {u.username}", json_out=json_out)


@user_app.command("list")
def user_list(role: Annotated[str | None, typer.Option()] = None,
              status: Annotated[str | None, typer.Option()] = None,
              limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """The users of your tenant."""
    with api(json_out) as c:
        show_list(take(c.iter_users(role=role, status=status), limit), USER_COLUMNS,
                  title="users", json_out=json_out)


@user_app.command("get")
def user_get(user_id: UserArg, json_out: JsonOpt = False) -> None:
    with api(json_out) as c:
        show_one(c.get_user(user_id), title=f"user {user_id}", json_out=json_out)


@user_app.command("update")
def user_update(user_id: UserArg,
                role: Annotated[str | None, typer.Option()] = None,
                status: Annotated[str | None, typer.Option(help="ACTIVE or DISABLED")] = None,
                email: Annotated[str | None, typer.Option()] = None,
                password: Annotated[bool, typer.Option(
                    "--password", help="ask for a new console password")] = False,
                json_out: JsonOpt = False) -> None:
    """Change a user's role, status, email or password."""
    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True) \
        if password else None
    with api(json_out) as c:
        u = c.update_user(user_id, role=role, status=status, email=email, password=secret)
        show_one(u, title=f"user {u.username}", json_out=json_out)


@user_app.command("delete")
def user_delete(user_id: UserArg,
                yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
                json_out: JsonOpt = False) -> None:
    """Delete a user with their access keys and sessions."""
    with api(json_out) as c:
        u = c.get_user(user_id)
        if not yes:
            typer.confirm(f"Delete user {u.username!r} and their access keys?", abort=True)
        c.delete_user(user_id)
    if json_out:
        print_json({"deleted": user_id})
    else:
        console.print(f"user [cyan]{u.username}[/] ({user_id}) deleted")


# --- access keys ---------------------------------------------------------------------------


@key_app.command("create")
def key_create(description: Annotated[str | None, typer.Option()] = None,
               user: Annotated[str | None, typer.Option(
                   help="whose key (usr-…; default: yours)")] = None,
               client_token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Create an access key; its secret is printed once."""
    with api(json_out) as c:
        k = c.create_access_key(description=description, user_id=user,
                                client_token=client_token)
    if json_out:
        print_json(k.raw)
        return
    console.print(_secret_panel("new access key", k.access_key_id, k.secret))


@key_app.command("list")
def key_list(user: Annotated[str | None, typer.Option(help="only this user's")] = None,
             status: Annotated[str | None, typer.Option()] = None,
             limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """Access keys you may see (never their secrets)."""
    with api(json_out) as c:
        show_list(take(c.iter_access_keys(user_id=user, status=status), limit), KEY_COLUMNS,
                  title="access keys", json_out=json_out)


@key_app.command("get")
def key_get(access_key_id: KeyArg, json_out: JsonOpt = False) -> None:
    with api(json_out) as c:
        show_one(c.get_access_key(access_key_id), title=f"access key {access_key_id}",
                 json_out=json_out)


@key_app.command("disable")
def key_disable(access_key_id: KeyArg, json_out: JsonOpt = False) -> None:
    """Disable a key: it signs nothing until enabled again."""
    with api(json_out) as c:
        show_one(c.disable_access_key(access_key_id), title=f"access key {access_key_id}",
                 json_out=json_out)


@key_app.command("enable")
def key_enable(access_key_id: KeyArg, json_out: JsonOpt = False) -> None:
    with api(json_out) as c:
        show_one(c.enable_access_key(access_key_id), title=f"access key {access_key_id}",
                 json_out=json_out)


@key_app.command("delete")
def key_delete(access_key_id: KeyArg,
               yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
               json_out: JsonOpt = False) -> None:
    """Delete an access key for good."""
    if not yes:
        typer.confirm(f"Delete access key {access_key_id}?", abort=True)
    with api(json_out) as c:
        c.delete_access_key(access_key_id)
    if json_out:
        print_json({"deleted": access_key_id})
    else:
        console.print(f"access key {access_key_id} deleted")


# --- audit ---------------------------------------------------------------------------------


def audit(action: Annotated[str | None, typer.Option(help="e.g. network.create")] = None,
          resource_id: Annotated[str | None, typer.Option("--resource")] = None,
          user: Annotated[str | None, typer.Option(help="usr-…")] = None,
          request_id: Annotated[str | None, typer.Option("--request")] = None,
          result: Annotated[str | None, typer.Option(help="SUCCESS or FAILURE")] = None,
          since: Annotated[str | None, typer.Option(help="RFC 3339, with a zone")] = None,
          until: Annotated[str | None, typer.Option(help="RFC 3339, with a zone")] = None,
          limit: Annotated[int, typer.Option(min=1, help="records to show")] = 50,
          json_out: JsonOpt = False) -> None:
    """The audit trail of your tenant, newest first (owners and admins)."""
    with api(json_out) as c:
        records = take(c.iter_audit(action=action, resource_id=resource_id, user_id=user,
                                    request_id=request_id, result=result, since=since,
                                    until=until), limit)
        show_list(records, AUDIT_COLUMNS, title="audit trail", json_out=json_out)
