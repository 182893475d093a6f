"""What the control-plane commands share: the client, output (tables or ``--json``),
refusals, typed-back names.

The client comes from ``consortia.sdk.control.load_profile`` — ``$CONSORTIA_ACCESS_KEY_ID``
/ ``$CONSORTIA_SECRET`` / ``$CONSORTIA_ENDPOINT``, else the profile file (``--credentials``,
``$CONSORTIA_CREDENTIALS``, ``.consortia/control/credentials`` written by ``consortia up``,
``~/.consortia/credentials``), profile ``--profile`` (``$CONSORTIA_PROFILE``, default
``default``). A refusal prints the API's message and error code and exits 1 (with
``--json``, also ``{"error": {…}}`` on stdout).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from consortia.cli.context import console, fail, print_json
from consortia.sdk.control import (
    ENV_CREDENTIALS_FILE,
    ControlClient,
    ControlError,
    Resource,
    default_files,
    load_profile,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ConfirmOpt = Annotated[str | None, typer.Option(
    "--confirm", help="the resource's name, typed back (else you are asked for it)")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="show at most this many (default: all)")]


@dataclass
class Target:
    """Which control plane and key: set by the root command's options."""

    profile: str | None = None
    credentials: Path | None = None


target = Target()


def client() -> ControlClient:
    """A client for the configured profile; a missing or bad profile exits 1."""
    profile = target.profile or os.environ.get("CONSORTIA_PROFILE") or "default"
    try:
        p = load_profile(profile, target.credentials)
    except ControlError as exc:
        refuse(exc, json_out=False)
    return ControlClient(p.endpoint, p.credentials)


def profile_file() -> Path:
    """The credentials file new profiles go to, the one profiles are read from:
    ``--credentials`` or ``$CONSORTIA_CREDENTIALS``, else ``.consortia/control/credentials``
    when it exists (``consortia up``'s), else ``~/.consortia/credentials``."""
    if target.credentials is not None:
        return target.credentials
    if os.environ.get(ENV_CREDENTIALS_FILE):
        return Path(os.environ[ENV_CREDENTIALS_FILE])
    files = default_files()
    return next((f for f in files if f.exists()), files[-1])


def refuse(exc: ControlError, *, json_out: bool) -> NoReturn:
    if json_out:
        print_json({"error": exc.to_dict()})
    fail(str(exc))


@contextmanager
def api(json_out: bool = False) -> Iterator[ControlClient]:
    """``with api(json_out) as c: …``: the client; a ``ControlError`` exits 1."""
    c = client()
    try:
        yield c
    except ControlError as exc:
        refuse(exc, json_out=json_out)
    finally:
        c.close()


def confirm_name(kind: str, name: str, given: str | None) -> str:
    """The name the user typed back (``--confirm`` or a prompt); the API compares it."""
    if given is not None:
        return given
    typed: str = typer.prompt(f"This deletes {kind} {name!r}. Type its name to confirm")
    if typed != name:
        fail(f"the name typed back ({typed!r}) is not {name!r}; nothing was deleted")
    return typed


def take(items: Iterable[Any], limit: int | None) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if limit is not None and len(out) >= limit:
            break
        out.append(item)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


STATUS_STYLE = {"AVAILABLE": "green", "ACTIVE": "green", "CREATING": "yellow",
                "IN_PROGRESS": "yellow", "PENDING": "yellow", "APPROVED": "green",
                "FAILED": "red", "CREATE_FAILED": "red", "UNHEALTHY": "red",
                "DISABLED": "red", "REJECTED": "red", "DELETED": "dim", "DELETING": "dim"}


def styled(value: Any) -> str:
    text = _cell(value)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def show_list(items: Sequence[Resource], columns: Sequence[str], *, title: str,
              json_out: bool, cells: Callable[[Resource, str], Any] | None = None) -> None:
    """A table of ``columns`` (attribute names) or, with ``--json``, the API's objects."""
    if json_out:
        print_json([i.raw for i in items])
        return
    t = Table(title=f"{title} ({len(items)})")
    for col in columns:
        t.add_column(col)
    for item in items:
        t.add_row(*(styled(cells(item, c) if cells else getattr(item, c, None))
                    for c in columns))
    console.print(t)


def show_one(item: Resource, *, title: str, json_out: bool,
             skip: Sequence[str] = ()) -> None:
    """One resource: its fields as a two-column table, or its JSON."""
    if json_out:
        print_json(item.raw)
        return
    t = Table(title=title, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for key, value in item.raw.items():
        if key not in skip and not isinstance(value, dict | list):
            t.add_row(key, styled(value))
        elif key not in skip and isinstance(value, dict) and "id" not in value:
            t.add_row(key, _cell(value))
    console.print(t)
