"""``consortia node``: run a node process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

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
