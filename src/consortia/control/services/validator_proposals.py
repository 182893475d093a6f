"""ADD_VALIDATOR proposals: a validator for a member whose tenant alone cannot approve it.

A validator change needs the approvals of the admins of a majority of the chain's
organizations (the chain checks it, ``identity/config_update.py``). When the caller's
tenant holds fewer, ``POST …/nodes`` answers 409 ``not_enough_approvals``; the member then
proposes ``ADD_VALIDATOR`` (``target_member_id``: one of its own members, ``node_name``,
``resource_class``) and the other members vote under the network's voting policy.

Rules (docs/spec/control-api.md, "Proposals and votes"; ADR 0018):

- the proposal is refused as a node create would be: a solo chain (409
  ``config_not_allowed``), a full validator set (409 ``config_not_allowed``), a node name
  the network uses (409 ``conflict``), an open proposal for the same name (409
  ``duplicate_proposal``), a target member that is not the caller tenant's (404) or not
  AVAILABLE (409 ``member_not_available``);
- when approved, in the request of the deciding vote, the node row is written for the
  target member's tenant (CREATING, its ports) and joins the chain exactly as
  ``NodeService`` joins a validator, but its ``validator_update`` is signed by an admin of
  the target member and approved by admins of every member that voted YES; the node's id is
  recorded on the proposal;
- the chain's refusal (a YES count under the chain's majority, for one) leaves the
  proposal ACTION_FAILED with the chain's reason and the node FAILED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.chains import rpc_endpoints, validators_of
from consortia.control.services.context import Actor
from consortia.control.services.scope import own_member
from consortia.control.services.voting import tally
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    Consensus,
    NodeStatus,
    NodeType,
    ProposalAction,
    ProposalStatus,
    Provisioner,
    ResourceClass,
    ResourceStatus,
)
from consortia.control.store.models import Member, Network, Node, Proposal
from consortia.types.config import MAX_VALIDATORS
from consortia.types.errors import Conflict, InvalidRequest

if TYPE_CHECKING:
    from consortia.control.services.control import Control


def check_addition(db: Session, actor: Actor, network: Network, target_tenant_id: str | None,
                   target_member_id: str | None, node_name: str | None) -> None:
    """An ADD_VALIDATOR proposal names one of the caller's AVAILABLE members and a node name
    the network does not use, on a chain whose validator set can grow."""
    if target_member_id is None or target_tenant_id is not None or node_name is None:
        raise InvalidRequest("ADD_VALIDATOR names target_member_id and node_name (and no "
                             "target_tenant_id)", code="invalid_target")
    target = own_member(db, actor.tenant_id, network.id, target_member_id)
    if target.status is not ResourceStatus.AVAILABLE:
        raise Conflict(f"member {target.id} is {target.status.value}",
                       code="member_not_available")
    if network.consensus is Consensus.SOLO:
        raise Conflict("a solo chain has exactly one validator; create a raft or pbft "
                       "network for more", code="config_not_allowed")
    if len(validators_of(db, network.id)) >= MAX_VALIDATORS:
        raise Conflict(f"a chain has at most {MAX_VALIDATORS} validators",
                       code="config_not_allowed")
    if db.scalar(select(Node.id).where(Node.network_id == network.id,
                                       Node.name == node_name)) is not None:
        raise Conflict(f"network {network.id} already has a node named {node_name!r}")
    if db.scalar(select(Proposal.id).where(
            Proposal.network_id == network.id, Proposal.status == ProposalStatus.IN_PROGRESS,
            Proposal.action == ProposalAction.ADD_VALIDATOR,
            Proposal.node_name == node_name)) is not None:
        raise Conflict(f"an open proposal adds a validator named {node_name!r} already",
                       code="duplicate_proposal")


def execute_addition(control: Control, proposal_id: str) -> None:
    """Carry out an approved ADD_VALIDATOR proposal: write the node, make it a validator
    signed for the target member and the YES voters, start it; ACTION_FAILED with the
    reason when that cannot be done. A proposal that made its node already is left alone."""
    runtime = control.runtime
    runtime.start()
    with control.transaction() as db:
        proposal = db.get(Proposal, proposal_id)
        if proposal is None or proposal.status is not ProposalStatus.APPROVED \
                or proposal.action is not ProposalAction.ADD_VALIDATOR \
                or proposal.node_id is not None:
            return
        member = db.get(Member, proposal.target_member_id)
        network = db.get(Network, proposal.network_id)
        assert member is not None and network is not None and proposal.node_name
        reason = _unready(network, member)
        if reason is None:
            approvers = [member.id] + [m for m in tally(db, proposal).voters if m != member.id]
            ports = runtime.allocate_ports(db, 2)
            host = control.settings.node_host
            node = Node(id=new_id("nd"), network_id=network.id, member_id=member.id,
                        tenant_id=member.tenant_id, name=proposal.node_name,
                        node_type=NodeType.VALIDATOR,
                        resource_class=proposal.node_resource_class or ResourceClass.SMALL,
                        status=NodeStatus.CREATING, provisioner=Provisioner.LOCAL,
                        api_endpoint=f"http://{host}:{ports[0]}",
                        p2p_endpoint=f"{host}:{ports[1]}")
            node.rpc_endpoint, node.ws_endpoint = rpc_endpoints(network, node.api_endpoint)
            try:
                with db.begin_nested():
                    db.add(node)
            except IntegrityError:
                reason = f"conflict: network {network.id} has a node named {node.name!r} now"
            else:
                proposal.node_id = node.id
        if reason is not None:
            _fail(proposal, reason)
            return
    failure = control.nodes.join_approved(node.id, approvers)
    if failure is not None:
        with control.transaction() as db:
            proposal = db.get(Proposal, proposal_id)
            assert proposal is not None
            _fail(proposal, failure)


def _unready(network: Network, member: Member) -> str | None:
    if network.status is not ResourceStatus.AVAILABLE:
        return f"network_not_available: network {network.id} is {network.status.value}"
    if member.status is not ResourceStatus.AVAILABLE:
        return f"member_not_available: member {member.id} is {member.status.value}"
    return None


def _fail(proposal: Proposal, reason: str) -> None:
    proposal.status = ProposalStatus.ACTION_FAILED
    proposal.failure_reason = reason[:1024]

