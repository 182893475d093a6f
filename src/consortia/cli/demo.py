"""``consortia up``'s demo: a network of three organizations, each with running nodes.

The platform tenant (the credentials file's ``default`` profile) founds the network with
its member ``org1`` and its validators. Two more organizations join **as any organization
would**: each is a tenant of its own (``demo-org2``, ``demo-org3``, made with
``POST /v1/tenants`` by the platform owner, their owners' keys written to the same
credentials file as profiles of those names, so ``consortia --profile demo-org2 …`` acts
as that organization); ``org1`` proposes INVITE_TENANT, every member votes YES, the
invited tenant accepts its invitation (its member is created, its organization added to
the running chain) and adds a **peer** node (``org2-peer0``).

Every step looks first for what an earlier ``up`` made — the network by name, the tenants
by their profiles, members by name, a pending invitation, a proposal in progress, the
nodes — so ``up`` again creates nothing new. A tenant that exists without its profile
(the credentials file was replaced) cannot be acted for: that organization is reported as
an error, and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consortia.cli.watch import Reporter, wait_until_ready
from consortia.sdk.control import (
    ControlClient,
    ControlError,
    Member,
    Network,
    Node,
    Proposal,
    read_profiles,
    write_profile,
)
from consortia.sdk.signing import Credentials

GONE = frozenset({"DELETED", "DELETING"})
PEER_NAME = "{member}-peer0"
"""A network's node names are distinct across its members."""


class DemoError(ControlError):
    """The demo cannot go on as planned (a tenant without its key, a rejected proposal)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="demo")


@dataclass(frozen=True)
class DemoSpec:
    """The demo network ``up`` makes."""

    name: str = "demo"
    consensus: str = "raft"
    validators: int = 3
    member: str = "org1"
    """The platform tenant's member, which founds the chain with the validators."""
    guests: tuple[str, ...] = ("org2", "org3")
    """Members that join by invitation, each with a peer, each its own tenant."""
    tenant_prefix: str = "demo-"
    """A guest's tenant (and profile) is this prefix + its member name."""

    def tenant_of(self, guest: str) -> str:
        return f"{self.tenant_prefix}{guest}"


@dataclass(frozen=True)
class DemoOrg:
    """One organization of the demo: its member, whose tenant it is, its nodes."""

    member: Member
    tenant: str
    """The tenant's name (``admin``'s platform tenant for org1)."""
    profile: str
    """The credentials file's profile that acts for it."""
    nodes: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class Demo:
    network: Network
    orgs: list[DemoOrg]
    errors: list[str] = field(default_factory=list)
    """Organizations that could not be brought up, and why."""


def create_demo(client: ControlClient, progress: Reporter, spec: DemoSpec = DemoSpec(), *,
                credentials_file: Path | None = None, timeout: float = 300.0) -> Demo:
    """The demo network with its organizations, each AVAILABLE with its nodes AVAILABLE.

    ``client`` acts for the platform tenant. ``credentials_file`` is where the guests'
    profiles are kept (None: the network with ``org1`` only)."""
    net = _founder_network(client, progress, spec, timeout)
    founder = next(m for m in client.iter_members(net.id)
                   if m.tenant_id == net.tenant_id and m.status not in GONE)
    net, own_nodes = wait_until_ready(client, net.id, progress, timeout=timeout)
    orgs = [DemoOrg(founder, client.me().tenant.name, "default",
                    [n for n in own_nodes if n.member_id == founder.id])]
    errors: list[str] = []
    if credentials_file is None:
        return Demo(net, orgs, errors)
    voters: list[tuple[ControlClient, Member]] = [(client, founder)]
    guests: list[ControlClient] = []
    try:
        for guest in spec.guests:
            try:
                c = _tenant_client(client, progress, spec.tenant_of(guest), credentials_file)
            except ControlError as exc:
                errors.append(f"{guest}: {exc}")
                continue
            guests.append(c)
            try:
                member = _join(client, c, net, guest, voters, progress, spec, timeout)
            except ControlError as exc:
                errors.append(f"{guest}: {exc}")
                continue
            voters.append((c, member))  # a member votes on the next invitations
            try:
                nodes = _peer(c, net, member, progress, orgs, timeout)
            except ControlError as exc:
                errors.append(f"{guest}: {exc}")
                continue
            orgs.append(DemoOrg(member, spec.tenant_of(guest), spec.tenant_of(guest), nodes))
    finally:
        for c in guests:
            c.close()
    return Demo(client.get_network(net.id), orgs, errors)


def _founder_network(client: ControlClient, progress: Reporter, spec: DemoSpec,
                     timeout: float) -> Network:
    net = next((n for n in client.iter_networks()
                if n.name == spec.name and n.status not in GONE), None)
    if net is None:
        progress.step(f"creating network {spec.name} ({spec.consensus}, {spec.validators} "
                      f"validator(s)) with member {spec.member} …")
        return client.create_network(spec.name, consensus=spec.consensus,
                                     validators=spec.validators, member_name=spec.member,
                                     description="the demo network of consortia up")
    progress.step(f"found network {spec.name} ({net.id}); waiting for its nodes …")
    return net


def _tenant_client(admin: ControlClient, progress: Reporter, tenant: str,
                   credentials_file: Path) -> ControlClient:
    """A client acting for ``tenant``'s owner: its profile's key, or a new tenant whose
    owner's key is written as the profile ``tenant``."""
    url = admin.base_url
    table = read_profiles(credentials_file).get(tenant, {}) if credentials_file.exists() \
        else {}
    if table.get("access_key_id") and table.get("secret"):
        creds = Credentials(table["access_key_id"], table["secret"])
        if table.get("endpoint") != url:  # up on another port: keep the profile usable
            write_profile(credentials_file, url, creds, profile=tenant)
        progress.step(f"found tenant {tenant} (profile [{tenant}])")
    else:
        if any(t.name == tenant for t in admin.iter_tenants()):
            raise DemoError(f"tenant {tenant} exists but {credentials_file} has no profile "
                            f"[{tenant}] with its key; add one (consortia access-key create "
                            "as its owner) or use another --data-dir")
        progress.step(f"creating tenant {tenant} (profile [{tenant}] in {credentials_file})")
        made = admin.create_tenant(tenant, "admin")
        assert made.access_key.secret is not None  # a new key's answer carries its secret
        creds = Credentials(made.access_key.access_key_id, made.access_key.secret)
        write_profile(credentials_file, url, creds, profile=tenant)
    return ControlClient(url, creds, poll_interval=admin.poll_interval)


def _join(admin: ControlClient, guest: ControlClient, net: Network, name: str,
          voters: Sequence[tuple[ControlClient, Member]], progress: Reporter, spec: DemoSpec,
          timeout: float) -> Member:
    """``name``, the guest tenant's member of ``net``: found, or joined by invitation."""
    tenant = guest.me().tenant
    mine = next((m for m in admin.iter_members(net.id)
                 if m.name == name and m.status not in GONE), None)
    if mine is not None:
        if mine.tenant_id != tenant.id:
            raise DemoError(f"member {name} of {net.name} is not tenant {tenant.name}'s")
        progress.step(f"found member {name} ({mine.id})")
        return guest.wait_for_member(net.id, mine.id, timeout=timeout)
    invitation = next((i for i in guest.iter_invitations(status="PENDING")
                       if i.network_id == net.id), None)
    if invitation is None:
        proposal = _invite(admin, net, tenant.id, voters, progress, tenant.name)
        invitation = next((i for i in guest.iter_invitations(status="PENDING")
                           if i.proposal_id == proposal.id), None)
        if invitation is None:
            raise DemoError(f"proposal {proposal.id} is {proposal.status} but tenant "
                            f"{tenant.name} has no pending invitation from it")
    progress.step(f"{tenant.name} accepts invitation {invitation.id}: member {name} joins "
                  "the chain …")
    member = guest.accept_invitation(invitation.id, name,
                                     description=f"{spec.name}: joined by invitation")
    return guest.wait_for_member(net.id, member.id, timeout=timeout)


def _invite(admin: ControlClient, net: Network, tenant_id: str,
            voters: Sequence[tuple[ControlClient, Member]], progress: Reporter,
            tenant_name: str) -> Proposal:
    """An INVITE_TENANT proposal for ``tenant_id`` (the one in progress, else a new one by
    the founder), voted YES by every member that has not voted yet until it is decided."""
    founder = voters[0][1]
    proposal = next((p for p in admin.iter_proposals(net.id, status="IN_PROGRESS")
                     if p.action == "INVITE_TENANT" and p.target_tenant_id == tenant_id),
                    None)
    if proposal is None:
        progress.step(f"{founder.name} proposes to invite tenant {tenant_name} …")
        proposal = admin.create_proposal(net.id, founder.id, "INVITE_TENANT",
                                         target_tenant_id=tenant_id,
                                         description=f"{tenant_name} joins the demo")
    voted = {v.member_id for v in admin.list_votes(net.id, proposal.id, limit=200).items}
    for client, member in voters:
        if proposal.status != "IN_PROGRESS":
            break
        if member.id in voted:
            continue
        progress.step(f"{member.name} votes YES on inviting {tenant_name} ({proposal.id}) …")
        proposal = client.vote(net.id, proposal.id, member.id, "YES").proposal
    if proposal.status != "APPROVED":
        raise DemoError(f"the proposal to invite {tenant_name} ({proposal.id}) is "
                        f"{proposal.status}" + (f": {proposal.failure_reason}"
                                                if proposal.failure_reason else ""))
    return proposal


def _peer(guest: ControlClient, net: Network, member: Member, progress: Reporter,
          orgs: Sequence[DemoOrg], timeout: float) -> list[Node]:
    """The member's nodes, AVAILABLE: a peer ``peer0`` added when it has none."""
    nodes = [n for n in guest.iter_nodes(net.id, member.id) if n.status not in GONE]
    if not nodes:
        name = PEER_NAME.format(member=member.name)
        progress.step(f"{member.name} adds its peer {name} …")
        nodes = [guest.create_node(net.id, member.id, name, node_type="peer")]
    seen = [n for o in orgs for n in o.nodes]
    ready: list[Node] = []
    for node in nodes:
        progress.step(f"waiting for {member.name}'s {node.node_type} {node.name} to sync "
                      "and answer …")

        def show(n: Node, done: list[Node] = ready) -> None:
            progress.nodes(net, [*seen, *done, n])

        ready.append(guest.wait_for_node(net.id, member.id, node.id, timeout=timeout,
                                         on_poll=show))
    return ready
