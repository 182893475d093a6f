"""``consortia contract compile|deploy|call|send``: Ethereum contracts over JSON-RPC.

Through ``consortia.sdk.evm`` only: compile with solc-js (the pinned npm tool set,
installed on first use with its progress shown) or Vyper; deploy, call and send to any
Ethereum JSON-RPC endpoint (``--rpc``, ``$CONSORTIA_RPC``), signing with a key file
(``--key``, ``$CONSORTIA_KEY``) whose password comes from ``--password-file``,
``$CONSORTIA_KEY_PASSWORD`` or a prompt — never from the command line.

``deploy`` and ``send`` with ``--private-for KEY`` (repeatable; the base64 public key of a
transaction manager, as ``consortia dev init`` lists them) make a private transaction on a
quorum node with a transaction manager: only the named organizations and the sender's own
see its code, state and logs (ADR 0027).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from rich.markup import escape
from rich.table import Table

from consortia.cli.context import console, err_console, fail, guard, print_json
from consortia.sdk import evm

app = typer.Typer(help="Compile, deploy, call and send to Ethereum contracts (JSON-RPC).",
                  no_args_is_help=True)

RpcOpt = Annotated[str, typer.Option("--rpc", envvar="CONSORTIA_RPC",
                                     help="Ethereum JSON-RPC URL of a node")]
KeyOpt = Annotated[str, typer.Option(
    "--key", envvar="CONSORTIA_KEY",
    help="key file (path, or address in the accounts directory; see `consortia account`)")]
PasswordFileOpt = Annotated[Path | None, typer.Option(
    "--password-file", help="file whose first line is the key's password (else "
                            "$CONSORTIA_KEY_PASSWORD, else a prompt)")]
AccountsOpt = Annotated[Path | None, typer.Option(
    "--accounts", help="accounts directory (default $CONSORTIA_ACCOUNTS or "
                       ".consortia/accounts)")]
ArgsArg = Annotated[list[str] | None, typer.Argument(
    help="arguments, converted by the ABI (integers, 0x addresses and bytes, true/false, "
         "JSON for arrays and tuples); put -- before a negative number")]
AbiOpt = Annotated[Path, typer.Option("--abi", help="artifact or ABI JSON of the contract")]
GasOpt = Annotated[int | None, typer.Option(help="gas limit (default: estimate + 20 %)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PrivateForOpt = Annotated[list[str] | None, typer.Option(
    "--private-for", help="make it private: base64 public key of a recipient's transaction "
                          "manager (repeat for several; `consortia dev init` lists them)")]


def unlock(key: str, password_file: Path | None, accounts: Path | None) -> LocalAccount:
    """Open a key file, asking for its password when no file or environment gives it."""
    path = evm.resolve_key(key, accounts)
    password = evm.read_password(password_file)
    if password is None:
        password = typer.prompt(f"password of {path.name}", hide_input=True,
                                err=True)
    return evm.load_key(path, password)


def _progress(json_out: bool) -> evm.tools.Progress:
    out = err_console if json_out else console

    def show(line: str) -> None:
        out.print(f"[dim]{escape(line)}[/]")
    return show


@app.command("compile")
def compile_(source: Annotated[Path, typer.Argument(help="FILE.sol or FILE.vy")],
             out: Annotated[Path, typer.Option("--out", help="artifact directory")] =
             Path("artifacts"),
             evm_version: Annotated[str, typer.Option(help="target EVM version")] =
             evm.DEFAULT_EVM_VERSION,
             optimize: Annotated[bool, typer.Option(help="optimizer on (200 runs)")] = True,
             include: Annotated[list[Path] | None, typer.Option(
                 help="more directories Solidity imports resolve in")] = None,
             json_out: JsonOpt = False) -> None:
    """Compile a Solidity or Vyper file: one artifact per contract in --out."""
    status = (err_console if json_out else console).status(f"compiling {source.name}")
    try:
        with status:
            result = evm.compile_file(source, evm_version=evm_version, optimize=optimize,
                                      include=tuple(include or ()),
                                      progress=_progress(json_out))
            paths = [a.save(out) for a in result.artifacts]
    except evm.CompileError as exc:
        for d in exc.diagnostics:
            err_console.print(f"[red]{escape(str(d))}[/]")
        fail(f"{exc.message.splitlines()[0]} [{exc.code}]")
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    if json_out:
        print_json({"artifacts": [str(p) for p in paths],
                    "warnings": [str(w) for w in result.warnings]})
        return
    for w in result.warnings:
        console.print(f"[yellow]{escape(str(w))}[/]")
    for a, p in zip(result.artifacts, paths, strict=True):
        size = (len(a.deployed_bytecode) - 2) // 2
        console.print(f"[green]compiled[/] [cyan]{a.contract_name}[/] ({a.compiler}, "
                      f"{a.evm_version}, {size} bytes deployed) → {p}")


def _show_outcome(title: str, o: evm.Outcome, json_out: bool) -> None:
    if json_out:
        print_json(o.to_json())
    else:
        ok = "[green]success[/]" if o.status == 1 else "[red]reverted[/]"
        console.print(f"{title} {ok}  tx [cyan]{o.tx_hash}[/]  block {o.block_number}  "
                      f"gas used {o.gas_used:,}")
        if o.contract_address:
            console.print(f"contract address [bold cyan]{o.contract_address}[/]")
        if o.logs:
            t = Table("event", "address", "arguments", title="logs")
            for lg in o.logs:
                args = ", ".join(f"{k}={v}" for k, v in evm.abi.jsonable(lg.args).items())
                t.add_row(lg.event or "(unknown)", lg.address, escape(args))
            console.print(t)
    if o.status != 1:
        fail(f"transaction reverted: {o.revert_reason} [reverted]")


def _reverted(exc: evm.TransactionReverted) -> None:
    fail(f"would revert, nothing sent: {exc.reason or '(no reason)'} [reverted]")


@app.command()
def deploy(artifact: Annotated[Path, typer.Argument(help="artifact JSON (from compile)")],
           args: ArgsArg = None, rpc: RpcOpt = "http://127.0.0.1:8545", key: KeyOpt = "",
           password_file: PasswordFileOpt = None, accounts: AccountsOpt = None,
           gas: GasOpt = None, private_for: PrivateForOpt = None,
           json_out: JsonOpt = False) -> None:
    """Deploy a compiled contract with its constructor arguments; prints its address.
    With --private-for, privately for those organizations (and the sender's)."""
    try:
        art = evm.Artifact.load(artifact)
        keys = _private_for(private_for)
        account = unlock(_need_key(key), password_file, accounts)
        with evm.EvmClient(rpc) as chain:
            outcome = chain.deploy(art, list(args or []), account, gas=gas,
                                   private_for=keys)
    except evm.TransactionReverted as exc:
        _reverted(exc)
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    _show_outcome(f"deployed {art.contract_name}" + (" privately" if keys else ""), outcome,
                  json_out)


@app.command()
def call(address: Annotated[str, typer.Argument(help="contract address")],
         function: Annotated[str, typer.Argument(help="function name or signature")],
         args: ArgsArg = None, abi: AbiOpt = Path("abi.json"), rpc: RpcOpt =
         "http://127.0.0.1:8545",
         sender: Annotated[str | None, typer.Option("--from", help="msg.sender")] = None,
         json_out: JsonOpt = False) -> None:
    """Call a function with eth_call (read-only, no transaction); prints the result."""
    try:
        entries = evm.load_abi(abi)
        with evm.EvmClient(rpc) as chain:
            result: Any = chain.call(address, entries, function, list(args or []),
                                     sender=sender)
    except evm.TransactionReverted as exc:
        fail(f"call reverted: {exc.reason or '(no reason)'} [reverted]")
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    value = evm.abi.jsonable(result)
    if json_out:
        print_json({"result": value})
    else:
        console.print(escape(str(value)))


@app.command()
def send(address: Annotated[str, typer.Argument(help="contract address")],
         function: Annotated[str, typer.Argument(help="function name or signature")],
         args: ArgsArg = None, abi: AbiOpt = Path("abi.json"),
         rpc: RpcOpt = "http://127.0.0.1:8545", key: KeyOpt = "",
         password_file: PasswordFileOpt = None, accounts: AccountsOpt = None,
         value: Annotated[int, typer.Option(help="wei sent with the call")] = 0,
         gas: GasOpt = None, private_for: PrivateForOpt = None,
         json_out: JsonOpt = False) -> None:
    """Send a transaction calling a function; waits for the receipt and shows status, gas
    and the logs decoded by the ABI. A call that would revert is not sent. With
    --private-for, a private transaction (to a contract deployed privately)."""
    try:
        entries = evm.load_abi(abi)
        keys = _private_for(private_for)
        if keys is not None and value:
            fail("a private transaction carries no value (--value) [bad_argument]")
        account = unlock(_need_key(key), password_file, accounts)
        with evm.EvmClient(rpc) as chain:
            outcome = chain.send(address, entries, function, list(args or []), account,
                                 value=value, gas=gas, private_for=keys)
    except evm.TransactionReverted as exc:
        _reverted(exc)
    except (evm.EvmError, OSError) as exc:
        guard(exc)
    _show_outcome(f"{function}", outcome, json_out)


def _private_for(keys: list[str] | None) -> list[str] | None:
    """The --private-for keys checked before any password prompt; None: a public tx."""
    return None if not keys else evm.private_keys(keys)


def _need_key(key: str) -> str:
    if not key:
        fail("give the signing key file: --key FILE (or $CONSORTIA_KEY) [bad_key_file]")
    return key


@app.command("tools")
def tools(json_out: JsonOpt = False) -> None:
    """Install (once) and show the pinned npm tool set: solc-js, Hardhat, ganache."""
    try:
        with (err_console if json_out else console).status("npm tool set"):
            t = evm.ensure_tools(_progress(json_out))
    except evm.EvmError as exc:
        guard(exc)
    if json_out:
        print_json({"root": str(t.root), "node": t.node})
    else:
        console.print(f"npm tool set ready in [cyan]{t.root}[/] (node {t.node})")
