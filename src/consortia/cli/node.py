"""``consortia node``: run a node process (``start``, ``verify``; ``join`` an external peer
from its join bundle, ADR 0019). The control plane's node commands (``create``, ``bundle``,
…) are in ``networks.py``; both share the passphrase rules here."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from consortia.cli.context import err_console, fail, guard
from consortia.sdk.bundle import PASSPHRASE_ENV, open_join_bundle, unpack_join_bundle
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Run node processes.", no_args_is_help=True)


@app.command("start")
def start(config: Annotated[Path, typer.Option(help="node.toml")]) -> None:
    """Run a node in the foreground (this process becomes the node)."""
    os.execv(sys.executable, [sys.executable, "-m", "consortia.node", "--config", str(config)])


@app.command("verify")
def verify(config: Annotated[Path, typer.Option(help="node.toml")]) -> None:
    """Verify the node's whole stored chain from genesis, offline, and exit."""
    os.execv(sys.executable, [sys.executable, "-m", "consortia.node", "--config", str(config),
                              "--verify-chain"])


@app.command("join")
def join(
        bundle: Annotated[Path, typer.Argument(help="the join bundle downloaded from the "
                                                     "control plane (…/join-bundle)")],
        directory: Annotated[Path | None, typer.Option(
            "--dir", help="node directory to write (default: ./<node name>); kept for "
                          "restarts: join the same bundle again to run it again")] = None,
        passphrase_file: Annotated[Path | None, typer.Option(
            help=f"file holding the bundle's passphrase (else ${PASSPHRASE_ENV}, else a "
                 "prompt)")] = None,
        genesis_hash: Annotated[str | None, typer.Option(
            help="the genesis hash you expect (the network's genesis_hash), checked "
                 "against the bundle's")] = None,
        unpack_only: Annotated[bool, typer.Option(
            help="write the node directory and exit without running the node")] = False,
) -> None:
    """Run an external peer from its join bundle, in the foreground.

    The bundle is checked (passphrase, integrity, genesis), its node directory written
    (mode 0700; the key stays encrypted under the passphrase, which is stored nowhere), and
    this process becomes the node, reading the passphrase from ${PASSPHRASE_ENV}.
    """
    passphrase = read_passphrase(passphrase_file)
    try:
        data = bundle.read_bytes()
        opened = open_join_bundle(data, passphrase, expected_genesis_hash=genesis_hash)
        target = directory or Path(opened.header["node_name"])
        config = unpack_join_bundle(opened, target, passphrase)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    err_console.print(f"node {opened.node_id} of network {opened.header['network_id']} in "
                      f"{target} (genesis {opened.header['genesis_hash'][:16]}…)")
    if unpack_only:
        return
    env = {**os.environ, PASSPHRASE_ENV: passphrase}
    os.execve(sys.executable, [sys.executable, "-m", "consortia.node", "--config",
                               str(config)], env)


def read_passphrase(path: Path | None, *, confirm: bool = False) -> str:
    """A join bundle's passphrase: from ``path``, else ${PASSPHRASE_ENV}, else a hidden
    prompt (typed twice when ``confirm``: it seals a key no one can recover). Never a
    command-line argument, which other users of the machine can read in ``ps``."""
    if path is not None:
        try:
            value = path.read_text().strip()
        except OSError as exc:
            fail(f"cannot read the passphrase file {path}: {exc.strerror}")
        if not value:
            fail(f"the passphrase file {path} is empty")
        return value
    value = os.environ.get(PASSPHRASE_ENV, "")
    if value:
        return value
    typed: str = typer.prompt("bundle passphrase", hide_input=True,
                              confirmation_prompt=confirm)
    return typed


def write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path``, mode 0600 whatever the file had before (a join bundle: its
    key is sealed, but its holder alone should read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
