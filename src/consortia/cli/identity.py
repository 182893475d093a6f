"""``consortia identity``: issue and revoke identities of a local network's organizations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from consortia.cli.context import client, console, guard, open_network
from consortia.types.config import Role
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="Issue, list and revoke identities.", no_args_is_help=True)

Net = Annotated[Path | None, typer.Option("--network", "-N", help="network directory")]
NodeUrl = Annotated[str | None, typer.Option("--node", help="node API URL")]


@app.command("new")
def new(ref: Annotated[str, typer.Argument(help="org/name")],
        role: Annotated[Role, typer.Option()] = Role.CLIENT, net: Net = None) -> None:
    """Issue a new identity from its organization's CA into the org keystore."""
    org_id, _, name = ref.partition("/")
    try:
        ident = open_network(net).new_identity(org_id, name, role)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    console.print(f"issued [cyan]{org_id}/{name}[/] ({role}), fingerprint "
                  f"{ident.fingerprint.hex()[:16]}…")


@app.command("list")
def list_(net: Net = None) -> None:
    """Identities of every organization of the network."""
    try:
        n = open_network(net)
        t = Table(title=f"identities of {n.chain_id}")
        for col in ("identity", "role"):
            t.add_column(col)
        for org_id in n.doc["orgs"]:
            for p in sorted((n.org_dir(org_id) / "keystore").iterdir()):
                from cryptography import x509
                from cryptography.x509.oid import NameOID
                cert = x509.load_pem_x509_certificate((p / "cert.pem").read_bytes())
                ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
                t.add_row(f"{org_id}/{p.name}", str(ou[0].value) if ou else "")
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    console.print(t)


@app.command("revoke")
def revoke(ref: Annotated[str, typer.Argument(help="org/name")], net: Net = None,
           node: NodeUrl = None) -> None:
    """Revoke at the CA and publish the new CRL on chain (signed by the org admin)."""
    org_id, _, name = ref.partition("/")
    try:
        tx = open_network(net).revoke(org_id, name)
        with client(net, node) as c:
            r = c.submit(tx, wait=True)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    if r["status"] != "committed":
        guard(ConsortiaError(f"CRL update not committed: {r}"))
    console.print(f"revoked [cyan]{ref}[/]; CRL in force from block {r['height']}")
