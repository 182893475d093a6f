"""Where the CLI finds its network, node and identity (options, then environment, then defaults)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
from rich.console import Console
from rich.markup import escape

from consortia.sdk import Identity, LocalNetwork, NodeClient
from consortia.types.errors import ConsortiaError

console = Console()
err_console = Console(stderr=True)

DEFAULT_NETWORK = Path(".consortia/dev")


def network_dir(value: Path | None) -> Path:
    return value or Path(os.environ.get("CONSORTIA_NETWORK", str(DEFAULT_NETWORK)))


def open_network(value: Path | None) -> LocalNetwork:
    return LocalNetwork.open(network_dir(value))


def node_url(network: Path | None, node: str | None) -> str:
    url = node or os.environ.get("CONSORTIA_NODE")
    if url:
        return url
    return open_network(network).node_url()


def client(network: Path | None, node: str | None) -> NodeClient:
    return NodeClient(node_url(network, node), timeout=30)


def identity(network: Path | None, ref: str | None) -> Identity:
    return open_network(network).identity(ref)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def print_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def guard(exc: Exception) -> NoReturn:
    """Turn an expected failure into a one-line message and a non-zero exit."""
    if isinstance(exc, ConsortiaError):
        fail(f"{exc.message} [{exc.code}]")
    fail(str(exc))
