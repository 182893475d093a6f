"""Channels: a ledger shared by some members of a network, run as a chain of its own
(ADR 0017; docs/spec/control-api.md, "Channels").

Hyperledger Fabric's channel is a ledger with its own configuration block, its own member
organizations and its own ordering; the engine runs one chain per node process, so a
channel here is exactly that — **a chain of its own**:

- chain id = the channel id; genesis names the channel's member organizations with their
  existing CAs (a client identity issued by a member's CA works on every channel of the
  member) and the network's voting policy as its ``membership`` policy;
- its validators belong to the creating member (solo: 1 by default; raft: 3; pbft: 4),
  issued by its CA and run by the same provisioner, under
  ``networks/<network>/channels/<channel>/`` (``ChainFiles``); the channel is CREATING
  until they are all AVAILABLE (``chains.settle_channel``, from the status writer);
- members are added and removed by ``org_update`` transactions on the channel's chain,
  signed by admins of the caller's tenant's members in the channel; those must meet the
  membership policy on their own (the chain checks the same rule), otherwise 409
  ``not_enough_approvals`` before anything is written. The creating member runs the
  validators and cannot leave (409 ``config_not_allowed``: delete the channel);
- a channel is visible to the tenants of its members and to the network's creator; its
  nodes (the endpoints where clients submit) to the tenants of its members only. Anyone
  else gets 404;
- its creator's tenant deletes it, typing its name back: its validators stop and it is
  DELETED (its files stay on disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.chains import (
    GONE,
    channel_validators,
    open_member_ca,
)
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
    require_confirmation,
)
from consortia.control.services.members import founding_validators
from consortia.control.services.org_changes import change_channel_organization
from consortia.control.services.scope import LIVE, own_member, visible_network
from consortia.control.services.voting import meets
from consortia.control.store.base import new_id, utcnow
from consortia.control.store.enums import (
    Consensus,
    NodeStatus,
    NodeType,
    ResourceClass,
    ResourceStatus,
    UserRole,
)
from consortia.control.store.models import Channel, ChannelMember, Member, Network, Node
from consortia.crypto import CryptoError
from consortia.types.errors import (
    Conflict,
    ConsortiaError,
    Forbidden,
    NotFound,
    Unavailable,
)

if TYPE_CHECKING:
    from consortia.control.services.control import Control

DEFAULT_CONSENSUS = Consensus.SOLO
"""A channel's chain is ordered by one validator unless raft or pbft is asked for."""


@dataclass(frozen=True, slots=True)
class NewChannel:
    """What ``ChannelService.create`` is asked for."""

    name: str
    member_id: str
    """The creating member (the caller's tenant's): its organization runs the validators."""
    member_ids: tuple[str, ...] = ()
    """Other members of the network to include."""
    consensus: Consensus | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A channel as one tenant sees it."""

    channel: Channel
    members: list[tuple[Member, ChannelMember]]
    """Its member organizations, in the order they joined."""
    nodes: list[Node] | None
    """Its validators, for the tenants of its members; None for the network's creator
    when it has no member in the channel."""


class ChannelService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, *, status: ResourceStatus | None = None,
             limit: int, page_token: str | None) -> Page[ChannelView]:
        """The channels of the network the tenant sees, oldest first."""
        with self._c.transaction() as db:
            stmt = _visible_channels(db, actor.tenant_id, network_id)
            if status is not None:
                stmt = stmt.where(Channel.status == status)
            page = paginate(db, stmt, Channel, limit=limit, page_token=page_token)
            return Page([_view(db, actor, c) for c in page.items], page.next_page_token)

    def get(self, actor: Actor, network_id: str, channel_id: str) -> ChannelView:
        with self._c.transaction() as db:
            return _view(db, actor, _visible_channel(db, actor.tenant_id, network_id,
                                                     channel_id))

    def genesis(self, actor: Actor, network_id: str, channel_id: str) -> bytes:
        """The channel chain's genesis file: the trust anchor of its proofs."""
        with self._c.transaction() as db:
            channel = _visible_channel(db, actor.tenant_id, network_id, channel_id)
        files = self._c.files
        path = None if files is None else files.genesis_path(network_id, channel.id)
        if channel.genesis_hash is None or path is None or not path.is_file():
            raise NotFound(f"channel {channel_id} has no chain yet")
        return path.read_bytes()

    # --- changing --------------------------------------------------------------------------

    def create(self, actor: Actor, network_id: str, spec: NewChannel,
               client_token: str | None = None) -> Created[ChannelView]:
        """The channel's rows (CREATING) and its audit record, then its chain written and
        its validators started; a failure there leaves it CREATE_FAILED with the reason."""
        actor.require(UserRole.ADMIN, "creating channels")
        others = [m for m in dict.fromkeys(spec.member_ids) if m != spec.member_id]
        consensus = spec.consensus or DEFAULT_CONSENSUS
        count = founding_validators(consensus, None)
        fp = fingerprint(self._c.fingerprint_key, "channel.create", actor, {
            "network_id": network_id, "name": spec.name, "description": spec.description,
            "member_id": spec.member_id, "member_ids": others, "consensus": consensus.value})
        runtime = self._c.runtime
        runtime.start()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Channel, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            network = visible_network(db, actor.tenant_id, network_id)
            if network.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"network {network.id} is {network.status.value}",
                               code="network_not_available")
            founder = own_member(db, actor.tenant_id, network_id, spec.member_id)
            members = [founder, *(_network_member(db, network_id, m) for m in others)]
            for member in members:
                _require_available(member)
            channel = Channel(
                id=new_id("chn"), network_id=network_id, tenant_id=actor.tenant_id,
                name=spec.name, description=spec.description, consensus=consensus,
                creator_member_id=founder.id, status=ResourceStatus.CREATING,
                status_reason=f"starting its {count} validator(s)",
                client_token=client_token, request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(channel)
                    db.flush()
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Channel, actor.tenant_id, client_token))
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token or "")
                raise Conflict(f"network {network_id} already has a channel named "
                               f"{spec.name!r}") from None
            at = utcnow()
            for i, member in enumerate(members):
                db.add(ChannelMember(channel_id=channel.id, member_id=member.id,
                                     network_id=network_id, tenant_id=member.tenant_id,
                                     created_at=at + timedelta(microseconds=i)))
            self._add_validators(db, channel, founder, count)
            self._c.audit.record(db, actor, "channel.create", channel.id)
            channel_id = channel.id
        self._launch(network_id, channel_id)
        with self._c.transaction() as db:
            row = db.get(Channel, channel_id)
            assert row is not None
            return Created(_view(db, actor, row))

    def add_member(self, actor: Actor, network_id: str, channel_id: str,
                   member_id: str) -> ChannelView:
        """Add a member of the network to the channel: ``org_update`` add on the channel's
        chain, committed before the member is listed."""
        actor.require(UserRole.ADMIN, "changing a channel's members")
        with self._c.transaction() as db:
            channel = _visible_channel(db, actor.tenant_id, network_id, channel_id)
            _require_channel_available(channel)
            target = _network_member(db, network_id, member_id)
            _require_available(target)
            current = _members(db, channel.id)
            if any(m.id == target.id for m, _ in current):
                raise Conflict(f"member {target.id} is in channel {channel.id} already")
            approvers = _approvers(db, actor, channel, [m for m, _ in current])
            api = _submit_to(db, channel.id)
        change_channel_organization(self._c, channel_id, api, approvers, "add", target)
        with self._c.transaction() as db:
            try:
                with db.begin_nested():
                    db.add(ChannelMember(channel_id=channel_id, member_id=target.id,
                                         network_id=network_id, tenant_id=target.tenant_id))
            except IntegrityError:  # a concurrent call added it
                raise Conflict(f"member {target.id} is in channel {channel_id} "
                               "already") from None
            self._c.audit.record(db, actor, "channel.add_member", channel_id)
            row = db.get(Channel, channel_id)
            assert row is not None
            return _view(db, actor, row)

    def remove_member(self, actor: Actor, network_id: str, channel_id: str,
                      member_id: str) -> None:
        """Remove a member from the channel: ``org_update`` remove on the channel's chain;
        from the next block its identities are refused there."""
        actor.require(UserRole.ADMIN, "changing a channel's members")
        with self._c.transaction() as db:
            channel = _visible_channel(db, actor.tenant_id, network_id, channel_id)
            current = _members(db, channel.id)
            target = next((m for m, _ in current if m.id == member_id), None)
            if target is None:
                raise NotFound(f"no member {member_id} in channel {channel_id}")
            _require_channel_available(channel)
            if target.id == channel.creator_member_id:
                raise Conflict(f"member {target.id} runs the validators of channel "
                               f"{channel.id} and cannot leave it: delete the channel",
                               code="config_not_allowed")
            approvers = _approvers(db, actor, channel, [m for m, _ in current])
            approvers.sort(key=lambda m: m.id == target.id)  # the leaving one never signs
            api = _submit_to(db, channel.id)
        change_channel_organization(self._c, channel_id, api, approvers, "remove", target)
        with self._c.transaction() as db:
            row = db.get(ChannelMember, (channel_id, member_id))
            if row is not None:
                db.delete(row)
            self._c.audit.record(db, actor, "channel.remove_member", channel_id)

    def delete(self, actor: Actor, network_id: str, channel_id: str,
               confirm_name: str | None) -> None:
        """Stop the channel's validators; the channel and its nodes stay listed DELETED."""
        actor.require(UserRole.ADMIN, "deleting channels")
        with self._c.transaction() as db:
            channel = _visible_channel(db, actor.tenant_id, network_id, channel_id)
            if channel.tenant_id != actor.tenant_id:
                raise Forbidden("only the tenant that created a channel deletes it",
                                code="not_channel_creator")
            require_confirmation(confirm_name, channel.name, f"channel {channel.id}")
            if channel.status not in LIVE:
                raise Conflict(f"channel {channel.id} is {channel.status.value} already")
            nodes = channel_validators(db, channel.id)
            channel.status = ResourceStatus.DELETING
            channel.status_reason = None
            for node in nodes:
                node.status = NodeStatus.DELETING
            node_ids = [n.id for n in nodes]
            self._c.audit.record(db, actor, "channel.delete", channel.id)
        if node_ids:
            runtime = self._c.runtime
            for node_id in node_ids:
                runtime.unprovision(node_id)
        with self._c.transaction() as db:
            for node in db.scalars(select(Node).where(Node.id.in_(node_ids))):
                node.status = NodeStatus.DELETED
            row = db.get(Channel, channel_id)
            assert row is not None
            row.status = ResourceStatus.DELETED

    # --- helpers ---------------------------------------------------------------------------

    def _add_validators(self, db: Session, channel: Channel, founder: Member,
                        count: int) -> None:
        """Rows of the channel's ``count`` validators (CREATING), with ports of their own."""
        solo = channel.consensus is Consensus.SOLO
        placement = self._c.runtime.placement
        ids = [new_id("nd") for _ in range(count)]
        placed = placement.endpoints(db, ids, p2p=not solo)
        at = utcnow()
        for i, (node_id, ends) in enumerate(zip(ids, placed, strict=True)):
            db.add(Node(id=node_id, network_id=channel.network_id, member_id=founder.id,
                        tenant_id=founder.tenant_id, channel_id=channel.id,
                        name=f"{channel.id}-validator{i}", node_type=NodeType.VALIDATOR,
                        resource_class=ResourceClass.SMALL, status=NodeStatus.CREATING,
                        provisioner=placement.provisioner, api_endpoint=ends.api,
                        p2p_endpoint=ends.p2p, created_at=at + timedelta(microseconds=i)))
        db.flush()

    def _launch(self, network_id: str, channel_id: str) -> None:
        """Write the channel's chain and start its validators; a failure makes the channel
        CREATE_FAILED with the reason."""
        runtime = self._c.runtime
        with self._c.transaction() as db:
            network = db.get(Network, network_id)
            channel = db.get(Channel, channel_id)
            assert network is not None and channel is not None
            founder = db.get(Member, channel.creator_member_id)
            assert founder is not None
            members = [m for m, _ in _members(db, channel_id)]
            nodes = channel_validators(db, channel_id)
        try:
            ca = open_member_ca(self._c.box, founder)
            genesis_hash = runtime.files.write_channel(network, channel, members, founder, ca,
                                                       nodes, runtime.placement.listen_host)
        except (ConsortiaError, CryptoError, OSError, ValueError) as exc:
            self._fail(channel_id, [n.id for n in nodes],
                       f"could not write the channel's files: {exc}")
            return
        with self._c.transaction() as db:
            row = db.get(Channel, channel_id)
            assert row is not None
            row.genesis_hash = genesis_hash
            for node in db.scalars(select(Node).where(Node.channel_id == channel_id)):
                node.provisioner_ref = node.id
        for i, node in enumerate(nodes):
            try:
                runtime.provision(node)
            except (ConsortiaError, OSError, ValueError) as exc:
                self._fail(channel_id, [n.id for n in nodes[i:]],
                           f"could not start validator {node.name}: {exc}")
                return

    def _fail(self, channel_id: str, node_ids: Sequence[str], reason: str) -> None:
        with self._c.transaction() as db:
            for node in db.scalars(select(Node).where(Node.id.in_(node_ids))):
                if node.status not in GONE:
                    node.status = NodeStatus.FAILED
                    node.status_reason = reason[:1024]
            channel = db.get(Channel, channel_id)
            if channel is not None and channel.status is ResourceStatus.CREATING:
                channel.status = ResourceStatus.CREATE_FAILED
                channel.status_reason = reason[:1024]

    def _replay(self, db: Session, actor: Actor, channel: Channel, fp: str,
                client_token: str) -> Created[ChannelView]:
        check_replay(channel.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "channel.create", channel.id)
        return Created(_view(db, actor, channel), replayed=True)


# --- scope and rules -----------------------------------------------------------------------


def _visible_channels(db: Session, tenant_id: str, network_id: str) -> Select[Channel]:
    """The network's channels ``tenant_id`` sees: all of them for the network's creator,
    those with a member of the tenant for the others (404 if the network is not seen)."""
    network = visible_network(db, tenant_id, network_id)
    stmt = select(Channel).where(Channel.network_id == network.id)
    if network.tenant_id != tenant_id:
        mine = select(ChannelMember.channel_id).where(ChannelMember.tenant_id == tenant_id)
        stmt = stmt.where(Channel.id.in_(mine))
    return stmt


def _visible_channel(db: Session, tenant_id: str, network_id: str, channel_id: str) -> Channel:
    channel = db.scalar(_visible_channels(db, tenant_id, network_id)
                        .where(Channel.id == channel_id))
    if channel is None:
        raise NotFound(f"no channel {channel_id} in network {network_id}")
    return channel


def _view(db: Session, actor: Actor, channel: Channel) -> ChannelView:
    members = _members(db, channel.id)
    nodes = None
    if any(m.tenant_id == actor.tenant_id for m, _ in members):
        nodes = list(db.scalars(select(Node).where(Node.channel_id == channel.id)
                                .order_by(Node.created_at, Node.id)))
    return ChannelView(channel, members, nodes)


def _members(db: Session, channel_id: str) -> list[tuple[Member, ChannelMember]]:
    rows = db.execute(select(Member, ChannelMember)
                      .join(ChannelMember, ChannelMember.member_id == Member.id)
                      .where(ChannelMember.channel_id == channel_id)
                      .order_by(ChannelMember.created_at, ChannelMember.member_id))
    return [(m, cm) for m, cm in rows]


def _network_member(db: Session, network_id: str, member_id: str) -> Member:
    member = db.scalar(select(Member).where(Member.id == member_id,
                                            Member.network_id == network_id))
    if member is None:
        raise NotFound(f"no member {member_id} in network {network_id}")
    return member


def _require_available(member: Member) -> None:
    if member.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"member {member.id} is {member.status.value}",
                       code="member_not_available")


def _require_channel_available(channel: Channel) -> None:
    if channel.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"channel {channel.id} is {channel.status.value}",
                       code="channel_not_available")


def _approvers(db: Session, actor: Actor, channel: Channel,
               current: list[Member]) -> list[Member]:
    """The caller's tenant's AVAILABLE members in the channel, when their admins alone meet
    the channel's membership policy (the network's voting policy, which its genesis
    carries); 409 ``not_enough_approvals`` otherwise."""
    network = db.get(Network, channel.network_id)
    assert network is not None
    mine = [m for m in current
            if m.tenant_id == actor.tenant_id and m.status is ResourceStatus.AVAILABLE]
    if not meets(len(mine), len(current), network.threshold_percentage,
                 network.threshold_comparator):
        raise Conflict(
            f"your tenant's members approve for {len(mine)} of the {len(current)} "
            f"organizations of channel {channel.id}; its membership policy needs "
            f"{network.threshold_comparator.value} {network.threshold_percentage} %",
            code="not_enough_approvals")
    return mine


def _submit_to(db: Session, channel_id: str) -> str:
    """An AVAILABLE validator of the channel's chain, to take a configuration change."""
    api = next((v.api_endpoint for v in channel_validators(db, channel_id)
                if v.status is NodeStatus.AVAILABLE and v.api_endpoint), None)
    if api is None:
        raise Unavailable(f"no validator of channel {channel_id} is AVAILABLE to take the "
                          "configuration change", code="chain_unavailable")
    return api
