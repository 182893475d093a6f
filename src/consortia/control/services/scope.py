"""Who sees which network, member and node: lookups scoped by the caller's tenant.

- A **network** is visible to the tenant that created it and to every tenant with a
  live member in it (not one that was removed or left).
- Its **members** are visible to everyone who sees the network (names, organization ids
  and CA certificates are what the other organizations of a chain must know); each is
  changed only by its own tenant.
- A member's **nodes** are visible to, and changed by, the member's tenant only.

Anything else is "not found" (404), exactly as an id that does not exist: another
tenant's ids give nothing away.
"""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from consortia.control.store.enums import ResourceStatus
from consortia.control.store.models import Member, Network, Node
from consortia.types.errors import NotFound

LIVE = (ResourceStatus.CREATING, ResourceStatus.AVAILABLE, ResourceStatus.CREATE_FAILED)
"""Member and network statuses that still count: not being deleted, not deleted."""


def visible_networks(tenant_id: str) -> Select[Network]:
    """The networks ``tenant_id`` created or has a member in (a member that was removed or
    left, DELETING or DELETED, no longer counts)."""
    member_of = select(Member.network_id).where(Member.tenant_id == tenant_id,
                                                Member.status.in_(LIVE))
    return select(Network).where(or_(Network.tenant_id == tenant_id,
                                     Network.id.in_(member_of)))


def visible_network(db: Session, tenant_id: str, network_id: str) -> Network:
    network = db.scalar(visible_networks(tenant_id).where(Network.id == network_id))
    if network is None:
        raise NotFound(f"no network {network_id}")
    return network


def visible_member(db: Session, tenant_id: str, network_id: str, member_id: str) -> Member:
    """A member of a network the tenant sees (whoever owns the member)."""
    visible_network(db, tenant_id, network_id)
    member = db.scalar(select(Member).where(Member.id == member_id,
                                            Member.network_id == network_id))
    if member is None:
        raise NotFound(f"no member {member_id} in network {network_id}")
    return member


def own_member(db: Session, tenant_id: str, network_id: str, member_id: str) -> Member:
    """A member of the tenant's own (another tenant's member is "not found" here)."""
    member = db.scalar(select(Member).where(Member.id == member_id,
                                            Member.network_id == network_id,
                                            Member.tenant_id == tenant_id))
    if member is None:
        raise NotFound(f"no member {member_id} of yours in network {network_id}")
    return member


def own_node(db: Session, tenant_id: str, network_id: str, member_id: str,
             node_id: str) -> Node:
    own_member(db, tenant_id, network_id, member_id)
    node = db.scalar(select(Node).where(Node.id == node_id, Node.member_id == member_id,
                                        Node.network_id == network_id,
                                        Node.tenant_id == tenant_id))
    if node is None:
        raise NotFound(f"no node {node_id} of member {member_id}")
    return node


def live_members(db: Session, network_id: str) -> list[Member]:
    """The network's members that are not being deleted nor deleted, oldest first."""
    return list(db.scalars(select(Member).where(
        Member.network_id == network_id, Member.status.in_(LIVE))
        .order_by(Member.created_at, Member.id)))
