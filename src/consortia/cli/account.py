"""``consortia account new|import|list``: Ethereum key files for ``consortia contract``.

Encrypted keystore JSON files (``consortia.sdk.evm.keys``) in the accounts directory
(``--accounts``, ``$CONSORTIA_ACCOUNTS``, default ``.consortia/accounts``). These are
Ethereum accounts that sign contract transactions; the X.509 identities of organizations
are ``consortia identity`` and ``consortia ca``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consortia.cli.context import console, guard, print_json
from consortia.sdk import evm

app = typer.Typer(help="Ethereum accounts: encrypted key files that sign contract "
                       "transactions.", no_args_is_help=True)

AccountsOpt = Annotated[Path | None, typer.Option(
    "--accounts", help="accounts directory (default $CONSORTIA_ACCOUNTS or "
                       ".consortia/accounts)")]
PasswordFileOpt = Annotated[Path | None, typer.Option(
    "--password-file", help="file whose first line is the password (else "
                            "$CONSORTIA_KEY_PASSWORD, else a prompt)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _new_password(password_file: Path | None) -> str:
    given = evm.read_password(password_file)
    if given is not None:
        return given
    return str(typer.prompt("password for the new key file", hide_input=True,
                            confirmation_prompt=True, err=True))


@app.command("new")
def new(accounts: AccountsOpt = None, password_file: PasswordFileOpt = None,
        json_out: JsonOpt = False) -> None:
    """Create an account: a new key encrypted into a key file."""
    try:
        made = evm.new_key(evm.accounts_dir(accounts), _new_password(password_file))
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json({"address": made.address, "path": str(made.path)})
    else:
        console.print(f"new account [bold cyan]{made.address}[/]\nkey file {made.path}")


@app.command("import")
def import_(accounts: AccountsOpt = None, password_file: PasswordFileOpt = None,
            json_out: JsonOpt = False) -> None:
    """Encrypt an existing private key (hex, read from standard input) into a key file."""
    secret = sys.stdin.readline()
    try:
        made = evm.import_key(evm.accounts_dir(accounts), secret,
                              _new_password(password_file))
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json({"address": made.address, "path": str(made.path)})
    else:
        console.print(f"imported account [bold cyan]{made.address}[/]\nkey file {made.path}")


@app.command("list")
def list_(accounts: AccountsOpt = None, json_out: JsonOpt = False) -> None:
    """The key files of the accounts directory."""
    found = evm.list_keys(evm.accounts_dir(accounts))
    if json_out:
        print_json([{"address": k.address, "path": str(k.path)} for k in found])
        return
    t = Table("address", "key file", title=f"accounts in {evm.accounts_dir(accounts)}")
    for k in found:
        t.add_row(k.address, str(k.path))
    console.print(t)
