"""``consortia ca``: a member's CA through the control plane — identities, enrollment,
certificates, revocation, CRL, CSR requests (``docs/spec/control-api.md`` "Member CAs").

``ca enroll`` makes the key here (P-256), sends only its CSR, and writes the key
encrypted with its certificate into a client directory (default
``.consortia/clients/<network id>``) laid out as ``consortia dev init``'s, with the
network's genesis and the API endpoints of the nodes you see — or, with ``--channel``, the
channel's chain id, genesis and validators — so the node commands use it:
``consortia notary put -N DIR --as <org>/<name> …``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consortia.cli.context import console, fail, print_json
from consortia.cli.remote import JsonOpt, LimitOpt, api, show_list, show_one, take
from consortia.cli.watch import network_nodes
from consortia.crypto import SigningKey
from consortia.sdk.control import (
    Certificate,
    Channel,
    ControlClient,
    Network,
    common_name,
    new_csr,
    save_enrollment,
)
from consortia.types.errors import ConsortiaError

app = typer.Typer(help="A member's CA: identities, enrollment, certificates, CSR requests.",
                  no_args_is_help=True)
identity_app = typer.Typer(help="Identities registered with a member's CA.",
                           no_args_is_help=True)
cert_app = typer.Typer(help="Certificates a member's CA issued.", no_args_is_help=True)
csr_app = typer.Typer(help="Requests for certificates (CSR) to a member's CA.",
                      no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(cert_app, name="cert")
app.add_typer(csr_app, name="csr")

NetworkArg = Annotated[str, typer.Argument(help="network id (net-…)")]
MemberArg = Annotated[str, typer.Argument(help="member id (mem-…) whose CA it is")]
ReasonOpt = Annotated[str | None, typer.Option(
    help="RFC 5280 reason: unspecified, keyCompromise, superseded, … (default unspecified)")]
DirOpt = Annotated[Path | None, typer.Option(
    "--dir", help="client directory for the key and certificate (default "
                  ".consortia/clients/<network id>)")]

IDENTITY_COLUMNS = ("id", "enrollment_id", "identity_type", "status", "enrollment_count",
                    "max_enrollments", "created_at")
CERT_COLUMNS = ("id", "subject", "identity_type", "status", "serial_number", "not_after",
                "revocation_reason")
CSR_COLUMNS = ("id", "subject", "identity_type", "status", "tenant_id", "reason",
               "certificate_id")


def _attributes(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"an attribute is NAME=VALUE, not {item!r}")
        out[key] = value
    return out


def _client_dir(given: Path | None, chain_id: str) -> Path:
    return given or Path(".consortia/clients") / chain_id


def _save(c: ControlClient, network_id: str, member_id: str, directory: Path,
          key: SigningKey, cert: Certificate, json_out: bool,
          channel: Channel | None = None) -> None:
    """Write the enrolled key and certificate into ``directory`` and say how to use it:
    for the network's chain, or for ``channel``'s (its genesis and validators)."""
    member = c.get_member(network_id, member_id)
    try:
        if channel is None:
            chain: Network | Channel = c.get_network(network_id)
            genesis, nodes = c.genesis(network_id), network_nodes(c, network_id)
        else:
            chain = channel
            genesis = c.channel_genesis(network_id, channel.id)
            nodes = channel.nodes or []
        ref = save_enrollment(directory, network=chain, member=member, genesis=genesis,
                              key=key, certificate_pem=cert.certificate_pem, nodes=nodes)
    except (ConsortiaError, OSError, ValueError) as exc:
        fail(f"the certificate {cert.id} was issued but could not be saved in {directory}: "
             f"{exc}")
    if json_out:
        print_json({**cert.raw, "identity": ref, "directory": str(directory),
                    "chain_id": chain.chain_id})
        return
    console.print(f"enrolled [cyan]{ref}[/]: certificate {cert.id} (serial "
                  f"{cert.serial_number}, until {cert.not_after})\n"
                  f"key (encrypted) and certificate in {directory}, for chain "
                  f"{chain.chain_id}; use it with\n"
                  f"  consortia notary put -N {directory} --as {ref} -b my-record "
                  "--text hello")


# --- identities ----------------------------------------------------------------------------


@identity_app.command("register")
def identity_register(
        network_id: NetworkArg, member_id: MemberArg,
        enrollment_id: Annotated[str, typer.Argument(help="the identity's name (its CN)")],
        identity_type: Annotated[str, typer.Option(
            "--type", help="client, peer, admin or validator")] = "client",
        attr: Annotated[list[str] | None, typer.Option(
            "--attr", help="NAME=VALUE written into its certificates (repeat)")] = None,
        max_enrollments: Annotated[int | None, typer.Option(
            help="enrollments its secret allows (0: no limit; default 1)")] = None,
        json_out: JsonOpt = False) -> None:
    """Register an identity; its enrollment secret is printed once."""
    with api(json_out) as c:
        made = c.register_identity(network_id, member_id, enrollment_id,
                                   identity_type=identity_type,
                                   attributes=_attributes(attr) or None,
                                   max_enrollments=max_enrollments)
    if json_out:
        print_json(made.raw)
        return
    show_one(made, title=f"identity {made.enrollment_id}", json_out=False,
             skip=("enrollment_secret",))
    console.print(f"enrollment secret (shown once): [bold]{made.enrollment_secret}[/]\n"
                  f"enroll with: consortia ca enroll {network_id} {member_id} "
                  f"{made.enrollment_id} --secret …")


@identity_app.command("list")
def identity_list(network_id: NetworkArg, member_id: MemberArg,
                  status: Annotated[str | None, typer.Option(
                      help="REGISTERED, ENROLLED or REVOKED")] = None,
                  limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """The identities of a member's CA."""
    with api(json_out) as c:
        show_list(take(c.iter_identities(network_id, member_id, status=status), limit),
                  IDENTITY_COLUMNS, title=f"identities of {member_id}", json_out=json_out)


@identity_app.command("get")
def identity_get(network_id: NetworkArg, member_id: MemberArg,
                 identity_id: Annotated[str, typer.Argument(help="identity id (cid-…)")],
                 json_out: JsonOpt = False) -> None:
    """One identity."""
    with api(json_out) as c:
        show_one(c.get_identity(network_id, member_id, identity_id),
                 title=f"identity {identity_id}", json_out=json_out)


@identity_app.command("revoke")
def identity_revoke(network_id: NetworkArg, member_id: MemberArg,
                    identity_id: Annotated[str, typer.Argument(help="identity id (cid-…)")],
                    reason: ReasonOpt = None, json_out: JsonOpt = False) -> None:
    """Revoke every certificate of an identity (it enrolls no more); the CRL goes on
    chain."""
    with api(json_out) as c:
        r = c.revoke_identity(network_id, member_id, identity_id, reason=reason)
    if json_out:
        print_json(r.raw)
        return
    console.print(f"revoked {identity_id}: {len(r.certificates)} certificate(s); CRL "
                  f"{r.crl_number} " + ("in force on chain" if r.crl_published
                                        else "[yellow]not published[/]"))


# --- enrollment ----------------------------------------------------------------------------


@app.command("enroll")
def enroll(network_id: NetworkArg, member_id: MemberArg,
           enrollment_id: Annotated[str, typer.Argument(help="the registered identity")],
           secret: Annotated[str, typer.Option(
               "--secret", envvar="CONSORTIA_ENROLLMENT_SECRET", prompt=True,
               hide_input=True, help="its enrollment secret")],
           directory: DirOpt = None,
           channel: Annotated[str | None, typer.Option(
               "--channel", help="write the client directory for this channel's chain "
                                 "(chn-…: its genesis and validators) instead of the "
                                 "network's")] = None,
           json_out: JsonOpt = False) -> None:
    """Make a key here, enroll it (only the CSR is sent) and save key and certificate."""
    key, csr = new_csr(enrollment_id)
    with api(json_out) as c:
        # the channel first: one the tenant cannot see is refused before a certificate
        # (and an enrollment of the secret) is spent
        ch = c.get_channel(network_id, channel) if channel is not None else None
        cert = c.enroll(network_id, member_id, enrollment_id, secret, csr)
        _save(c, network_id, member_id, _client_dir(directory, channel or network_id), key,
              cert, json_out, ch)


@app.command("reenroll")
def reenroll(network_id: NetworkArg, member_id: MemberArg,
             certificate_id: Annotated[str, typer.Argument(help="the certificate to renew")],
             directory: DirOpt = None,
             channel: Annotated[str | None, typer.Option(
                 "--channel", help="for this channel's chain (as ca enroll)")] = None,
             json_out: JsonOpt = False) -> None:
    """A new key and certificate for the same identity (admins); the old certificate stays
    valid until revoked or expired."""
    with api(json_out) as c:
        ch = c.get_channel(network_id, channel) if channel is not None else None
        old = c.get_certificate(network_id, member_id, certificate_id)
        key, csr = new_csr(common_name(old.certificate_pem))
        cert = c.reenroll(network_id, member_id, certificate_id, csr)
        _save(c, network_id, member_id, _client_dir(directory, channel or network_id), key,
              cert, json_out, ch)


# --- certificates --------------------------------------------------------------------------


@cert_app.command("list")
def cert_list(network_id: NetworkArg, member_id: MemberArg,
              status: Annotated[str | None, typer.Option(
                  help="ACTIVE, REVOKED or EXPIRED")] = None,
              identity_type: Annotated[str | None, typer.Option("--type")] = None,
              expiring_within_days: Annotated[int | None, typer.Option(
                  min=0, help="only ACTIVE ones ending within N days")] = None,
              limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """Certificates of a member's CA."""
    with api(json_out) as c:
        show_list(take(c.iter_certificates(network_id, member_id, status=status,
                                           identity_type=identity_type,
                                           expiring_within_days=expiring_within_days),
                       limit), CERT_COLUMNS, title=f"certificates of {member_id}",
                  json_out=json_out)


@cert_app.command("get")
def cert_get(network_id: NetworkArg, member_id: MemberArg,
             certificate_id: Annotated[str, typer.Argument(help="certificate id (crt-…)")],
             pem: Annotated[bool, typer.Option("--pem", help="print the PEM only")] = False,
             json_out: JsonOpt = False) -> None:
    """One certificate (``--pem``: the certificate itself)."""
    with api(json_out) as c:
        cert = c.get_certificate(network_id, member_id, certificate_id)
    if pem:
        typer.echo(cert.certificate_pem, nl=False)
        return
    show_one(cert, title=f"certificate {certificate_id}", json_out=json_out,
             skip=("certificate_pem",))


@cert_app.command("revoke")
def cert_revoke(network_id: NetworkArg, member_id: MemberArg,
                certificate_id: Annotated[str, typer.Argument(help="certificate id (crt-…)")],
                reason: ReasonOpt = None, json_out: JsonOpt = False) -> None:
    """Revoke a certificate; once the CRL commits, the nodes refuse its transactions."""
    with api(json_out) as c:
        r = c.revoke_certificate(network_id, member_id, certificate_id, reason=reason)
    if json_out:
        print_json(r.raw)
        return
    console.print(f"revoked {certificate_id}; CRL {r.crl_number} "
                  + ("in force on chain" if r.crl_published else "[yellow]not published[/]"))


@app.command("crl")
def crl(network_id: NetworkArg, member_id: MemberArg,
        out: Annotated[Path | None, typer.Option(help="write the CRL (PEM) here")] = None,
        json_out: JsonOpt = False) -> None:
    """The member CA's newest CRL and the one in force on chain."""
    with api(json_out) as c:
        info = c.get_crl(network_id, member_id)
    if out is not None and info.crl_pem:
        out.write_text(info.crl_pem)
    if json_out:
        print_json(info.raw)
        return
    console.print(f"CRL {info.crl_number} (in force on chain: {info.crl_published_number})"
                  + (f"; written to {out}" if out is not None and info.crl_pem else ""))


# --- CSR requests --------------------------------------------------------------------------


@csr_app.command("submit")
def csr_submit(network_id: NetworkArg, member_id: MemberArg,
               csr: Annotated[Path, typer.Option("--csr", help="PEM PKCS#10 request file "
                                                 "(your own P-256 key's)")],
               identity_type: Annotated[str, typer.Option(
                   "--type", help="the role asked for")] = "client",
               json_out: JsonOpt = False) -> None:
    """Ask a member's CA for a certificate (any tenant of the network)."""
    try:
        pem = csr.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {csr}: {exc}")
    with api(json_out) as c:
        show_one(c.submit_csr(network_id, member_id, pem, identity_type=identity_type),
                 title="CSR request", json_out=json_out, skip=("certificate_pem",))


@csr_app.command("list")
def csr_list(network_id: NetworkArg, member_id: MemberArg,
             status: Annotated[str | None, typer.Option(
                 help="PENDING, APPROVED or REJECTED")] = None,
             limit: LimitOpt = None, json_out: JsonOpt = False) -> None:
    """CSR requests to a member's CA (all of them for its tenant; your own otherwise)."""
    with api(json_out) as c:
        show_list(take(c.iter_csrs(network_id, member_id, status=status), limit),
                  CSR_COLUMNS, title=f"CSR requests to {member_id}", json_out=json_out)


@csr_app.command("get")
def csr_get(network_id: NetworkArg, member_id: MemberArg,
            csr_id: Annotated[str, typer.Argument(help="CSR request id (csr-…)")],
            out: Annotated[Path | None, typer.Option(
                help="write the issued certificate (PEM) here")] = None,
            json_out: JsonOpt = False) -> None:
    """One CSR request; once APPROVED, its certificate (``--out``)."""
    with api(json_out) as c:
        req = c.get_csr(network_id, member_id, csr_id)
    if out is not None:
        if not req.certificate_pem:
            fail(f"{csr_id} is {req.status}: no certificate to write")
        out.write_text(req.certificate_pem)
    show_one(req, title=f"CSR request {csr_id}", json_out=json_out, skip=("certificate_pem",))


@csr_app.command("approve")
def csr_approve(network_id: NetworkArg, member_id: MemberArg,
                csr_id: Annotated[str, typer.Argument(help="CSR request id (csr-…)")],
                json_out: JsonOpt = False) -> None:
    """Approve: the certificate is issued (admins of the member's tenant)."""
    with api(json_out) as c:
        show_one(c.approve_csr(network_id, member_id, csr_id), title=f"CSR request {csr_id}",
                 json_out=json_out, skip=("certificate_pem",))


@csr_app.command("reject")
def csr_reject(network_id: NetworkArg, member_id: MemberArg,
               csr_id: Annotated[str, typer.Argument(help="CSR request id (csr-…)")],
               reason: Annotated[str, typer.Option(help="why (the requester sees it)")],
               json_out: JsonOpt = False) -> None:
    """Reject, with the reason."""
    with api(json_out) as c:
        show_one(c.reject_csr(network_id, member_id, csr_id, reason),
                 title=f"CSR request {csr_id}", json_out=json_out, skip=("certificate_pem",))
