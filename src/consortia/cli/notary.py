"""``consortia notary``: put records, notarize files, read records back."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from consortia.cli.context import client, console, fail, guard, open_network, print_json
from consortia.sdk import Identity, NodeError, Recipient, notary, sign
from consortia.types.errors import ConsortiaError
from consortia.types.tx import CiphertextRecord, Envelope, Payload, PrivacyRecord

app = typer.Typer(help="Notarize data and read notary records.", no_args_is_help=True)

Net = Annotated[Path | None, typer.Option("--network", "-N", help="network directory")]
NodeUrl = Annotated[str | None, typer.Option("--node", help="node API URL")]
As = Annotated[str | None, typer.Option("--as", help="identity org/name")]
ChainId = Annotated[str | None, typer.Option(
    "--chain-id", help="sign for this chain instead of the directory's (e.g. a channel's "
                       "id, chn-…, with --node one of its validators)")]


class Kind(StrEnum):
    content = "content"
    hash = "hash"
    link = "link"
    ciphertext = "ciphertext"
    privacy = "privacy"


def _data(text: str | None, file: Path | None) -> bytes:
    if (text is None) == (file is None):
        fail("give exactly one of --text or --file")
    return text.encode() if text is not None else file.read_bytes()  # type: ignore[union-attr]


def _show_receipt(r: dict[str, Any]) -> None:
    status = r["status"]
    colour = {"committed": "green", "pending": "yellow"}.get(status, "red")
    where = f" in block {r['height']} #{r['index']}" if r.get("height") is not None else ""
    err = f" ({r['error']})" if r.get("error") else ""
    console.print(f"[{colour}]{status}[/]{where}{err}  tx [cyan]{r['tx_id']}[/]")


@app.command("put")
def put(business_id: Annotated[str, typer.Option("--business-id", "-b")],
        kind: Annotated[Kind, typer.Option("--type", "-t")] = Kind.content,
        text: Annotated[str | None, typer.Option(help="data as text")] = None,
        file: Annotated[Path | None, typer.Option(help="data from a file")] = None,
        category: Annotated[str, typer.Option("--category", "-c")] = "",
        digest: Annotated[str | None, typer.Option(help="hex digest (hash, link)")] = None,
        uri: Annotated[str | None, typer.Option(help="external URI (link)")] = None,
        recipient: Annotated[list[str] | None, typer.Option(
            help="org/name allowed to read a privacy record (repeat)")] = None,
        key_out: Annotated[Path | None, typer.Option(help="where to keep a ciphertext key")] = None,
        wait: Annotated[bool, typer.Option(help="wait for the commit")] = True,
        proof_out: Annotated[Path | None, typer.Option(
            help="once committed, save its proof here (consortia verify)")] = None,
        net: Net = None, node: NodeUrl = None, as_: As = None, chain_id: ChainId = None,
        json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Notarize one record: content, hash, link, ciphertext or privacy (digital envelope)."""
    if proof_out is not None and not wait:
        fail("--proof-out needs the commit: drop --no-wait")
    try:
        network = open_network(net)
        ident = network.identity(as_)
        record: Any
        if kind is Kind.content:
            record = notary.content(business_id, _data(text, file), category=category)
        elif kind in (Kind.hash, Kind.link):
            if digest is not None:
                dg = bytes.fromhex(digest)
            else:
                dg = hashlib.sha256(_data(text, file)).digest()
            if kind is Kind.hash:
                record = notary.known_digest(business_id, dg, category=category)
            else:
                if not uri:
                    fail("a link record needs --uri")
                record = notary.link(business_id, uri, dg, category=category)
        elif kind is Kind.ciphertext:
            record, key = notary.ciphertext(business_id, _data(text, file), category=category)
            out = key_out or Path(f"{business_id}.key")
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key.hex() + "\n")
            console.print(f"data key kept in [bold]{out}[/] (mode 0600); it never left "
                          "this machine")
        else:
            if not recipient:
                fail("a privacy record needs at least one --recipient org/name")
            recips = []
            for ref in recipient:
                org_id, _, name = ref.partition("/")
                cert = (network.org_dir(org_id) / "keystore" / name / "cert.pem").read_bytes()
                recips.append(Recipient.from_cert(cert))
            record = notary.privacy(business_id, _data(text, file), recips, category=category)
        tx = sign(ident, chain_id or network.chain_id, record)
        with client(net, node) as c:
            r = c.submit(tx, wait=wait, timeout=30)
            if proof_out is not None and r["status"] == "committed":
                proof_out.write_bytes(c.proof(tx.id))
    except (ConsortiaError, OSError, ValueError) as exc:
        guard(exc)
    if json_out:
        print_json(r if proof_out is None else {**r, "proof": str(proof_out)})
    else:
        _show_receipt(r)
        if proof_out is not None and r["status"] == "committed":
            console.print(f"proof saved to [bold]{proof_out}[/]; verify it offline with\n"
                          f"  consortia verify {proof_out} --genesis {network.genesis_path}")
    if proof_out is not None and r["status"] != "committed":
        fail("the transaction was not committed: no proof")


@app.command("file")
def file_cmd(path: Annotated[Path, typer.Argument(help="file to hash-notarize")],
             business_id: Annotated[str | None, typer.Option("--business-id", "-b")] = None,
             category: Annotated[str, typer.Option("--category", "-c")] = "file",
             proof_out: Annotated[Path | None, typer.Option(help="save the proof here")] = None,
             net: Net = None, node: NodeUrl = None, as_: As = None,
             chain_id: ChainId = None) -> None:
    """Hash-notarize a file (only its SHA-256 goes on chain), wait, and fetch its proof."""
    try:
        network = open_network(net)
        ident = network.identity(as_)
        h = hashlib.sha256()
        size = path.stat().st_size
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as prog, \
                path.open("rb") as f:
            task = prog.add_task(f"hashing {path.name}", total=size)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                prog.advance(task, len(chunk))
        record = notary.known_digest(business_id or path.name, h.digest(), category=category)
        tx = sign(ident, chain_id or network.chain_id, record)
        with client(net, node) as c:
            r = c.submit(tx, wait=True, timeout=30)
            _show_receipt(r)
            if r["status"] != "committed":
                fail("the transaction was not committed")
            proof = c.proof(tx.id)
    except (ConsortiaError, OSError) as exc:
        guard(exc)
    console.print(f"sha256 {h.hexdigest()}  {path}")
    out = proof_out or Path(f"{path.name}.proof.json")
    out.write_bytes(proof)
    console.print(f"proof saved to [bold]{out}[/]; verify it offline with\n"
                  f"  consortia verify {out} --genesis {network.genesis_path}")


def _decoded(tx: dict[str, Any]) -> Payload:
    return Payload.decode(Envelope.decode(base64.b64decode(tx["envelope_base64"])).payload)


@app.command("get")
def get(tx_id: Annotated[str | None, typer.Argument(help="transaction id")] = None,
        business_id: Annotated[str | None, typer.Option("--business-id", "-b")] = None,
        category: Annotated[str | None, typer.Option("--category", "-c")] = None,
        from_ms: Annotated[int, typer.Option()] = 0,
        to_ms: Annotated[int, typer.Option()] = 2**62,
        limit: Annotated[int, typer.Option()] = 100,
        key: Annotated[Path | None, typer.Option(help="key file to decrypt a ciphertext")] = None,
        decrypt: Annotated[bool, typer.Option(help="open a privacy record as --as")] = False,
        net: Net = None, node: NodeUrl = None, as_: As = None,
        json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a record by transaction id, or list records by business id or category."""
    try:
        with client(net, node) as c:
            if tx_id is not None:
                tx = c.transaction(tx_id)
                if json_out:
                    print_json(tx)
                else:
                    _show_tx(tx)
                payload = _decoded(tx)
                if key is not None and isinstance(payload.body, CiphertextRecord):
                    plain = notary.decrypt_ciphertext(payload.body,
                                                      bytes.fromhex(key.read_text().strip()))
                    console.print(f"[green]decrypted[/] {plain!r}")
                if decrypt and isinstance(payload.body, PrivacyRecord):
                    ident: Identity = open_network(net).identity(as_)
                    console.print(f"[green]decrypted as {ident.org_id}/{ident.name}[/] "
                                  f"{notary.open_privacy(payload.body, ident)!r}")
                return
            if (business_id is None) == (category is None):
                fail("give a transaction id, --business-id or --category")
            page = c.records(business_id=business_id, category=category, from_ms=from_ms,
                             to_ms=to_ms, limit=limit)
    except (ConsortiaError, OSError, ValueError) as exc:
        if isinstance(exc, NodeError) and exc.status == 404:
            fail(f"not found: {exc.message}")
        guard(exc)
    if json_out:
        print_json(page)
        return
    t = Table(title=f"records ({len(page['records'])})")
    for col in ("business id", "category", "business time (UTC)", "type", "block", "tx id"):
        t.add_column(col)
    for r in page["records"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["business_time_ms"] / 1000))
        t.add_row(r["business_id"], r["category"], when, r["type"].removeprefix("notary_"),
                  f"{r['height']}#{r['index']}", r["tx_id"][:16] + "…")
    console.print(t)


def _show_tx(tx: dict[str, Any]) -> None:
    t = Table(show_header=False, title=f"transaction {tx['tx_id']}")
    t.add_column(style="bold")
    t.add_column()
    s = tx["signer"]
    rc = tx["receipt"]
    t.add_row("type", tx["type"])
    t.add_row("signer", f"{s['org_id']}/{s['name']} ({s['role']})")
    t.add_row("receipt", f"{rc['status']} in block {rc['height']} #{rc['index']}"
              + (f" ({rc['error']})" if rc["error"] else ""))
    for k, v in tx["body"].items():
        text = str(v)
        t.add_row(k, text[:96] + "…" if k.endswith("_base64") and len(text) > 96 else text)
    console.print(t)
