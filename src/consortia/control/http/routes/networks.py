"""Networks, their members and the members' nodes (``/v1/networks/…``)."""

from __future__ import annotations

from fastapi import Depends, Query, Response

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE, UNAVAILABLE_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    ConfirmName,
    Limit,
    MemberId,
    NetworkId,
    NodeId,
    PageToken,
    network_out,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.networks import NewNetwork
from consortia.control.store import models
from consortia.control.store.enums import NodeStatus, ResourceStatus, UserRole

networks = router("networks")
members = router("members")
nodes = router("nodes")
admin = require(UserRole.ADMIN)
operator = require(UserRole.OPERATOR)
CHANGES = {**CONFLICT_RESPONSE, **UNAVAILABLE_RESPONSE}


def member_out(row: models.Member) -> schemas.Member:
    return schemas.Member.model_validate(row)


def node_out(row: models.Node) -> schemas.Node:
    return schemas.Node.model_validate(row)


# --- networks ------------------------------------------------------------------------------


@networks.post("/networks", response_model=schemas.NetworkCreated, status_code=201,
               summary="Create a network", operation_id="create_network", responses=CHANGES,
               openapi_extra=audited("network.create"))
def create_network(body: schemas.NetworkCreate, p: Principal = Depends(admin),
                   ctl: Control = Depends(control)) -> schemas.NetworkCreated:
    """A consortium network operated by the caller's tenant. In quick mode the operator's
    member is created with it and its chain starts at once (CREATING, then AVAILABLE when
    its validators are); in standard mode the first member, created later, founds it."""
    vp = body.voting_policy
    created = ctl.networks.create(p.actor, NewNetwork(
        name=body.name, description=body.description, profile=body.profile,
        consensus=body.consensus, usage_mode=body.usage_mode,
        threshold_percentage=vp.threshold_percentage,
        threshold_comparator=vp.threshold_comparator,
        proposal_duration_hours=vp.proposal_duration_hours, validators=body.validators,
        member_name=body.member.name if body.member else None,
        member_description=body.member.description if body.member else "",
        evm_chain_id=body.evm_chain_id, evm_gas_limit=body.evm_gas_limit),
        client_token=body.client_token)
    made = created.item
    return schemas.NetworkCreated(
        **network_out(made.network),
        member=None if made.member is None else member_out(made.member))


@networks.get("/networks", response_model=schemas.NetworkList, summary="List networks",
              operation_id="list_networks")
def list_networks(p: Principal = Depends(principal), ctl: Control = Depends(control),
                  status: ResourceStatus | None = Query(None), limit: Limit = DEFAULT_LIMIT,
                  page_token: PageToken = None) -> schemas.NetworkList:
    """The networks the tenant operates or is a member of, oldest first."""
    page = ctl.networks.list(p.actor, status=status, limit=limit, page_token=page_token)
    return schemas.NetworkList(items=[schemas.Network(**network_out(n)) for n in page.items],
                               next_page_token=page.next_page_token)


@networks.get("/networks/{network_id}", response_model=schemas.Network,
              summary="Get a network", operation_id="get_network")
def get_network(network_id: NetworkId, p: Principal = Depends(principal),
                ctl: Control = Depends(control)) -> schemas.Network:
    return schemas.Network(**network_out(ctl.networks.get(p.actor, network_id)))


@networks.get("/networks/{network_id}/genesis", summary="The chain's genesis file",
              operation_id="get_network_genesis", response_class=Response,
              responses={200: {"content": {"application/json": {"schema": {
                  "type": "object", "description": "consortia-genesis/1 file"}}},
                  "description": "The genesis file: the trust anchor proofs are "
                                 "verified against (consortia verify --genesis)."}})
def get_network_genesis(network_id: NetworkId, p: Principal = Depends(principal),
                        ctl: Control = Depends(control)) -> Response:
    """404 until the chain is built (a standard network before its first member)."""
    return Response(ctl.networks.genesis(p.actor, network_id), media_type="application/json")


@networks.delete("/networks/{network_id}", status_code=204, response_class=Response,
                 summary="Delete a network (type its name back)",
                 operation_id="delete_network", responses=CHANGES,
                 openapi_extra=audited("network.delete"))
def delete_network(network_id: NetworkId, confirm_name: ConfirmName = None,
                   p: Principal = Depends(admin), ctl: Control = Depends(control)) -> Response:
    """Stops every node of the network; the network, its members and nodes stay listed as
    DELETED. Only its operator deletes it, and only while no other tenant is a member."""
    ctl.networks.delete(p.actor, network_id, confirm_name)
    return Response(status_code=204)


# --- members -------------------------------------------------------------------------------


@members.post("/networks/{network_id}/members", response_model=schemas.Member,
              status_code=201, summary="Create a member (with its CA)",
              operation_id="create_member", responses=CHANGES,
              openapi_extra=audited("member.create"))
def create_member(network_id: NetworkId, body: schemas.MemberCreate,
                  p: Principal = Depends(admin), ctl: Control = Depends(control)
                  ) -> schemas.Member:
    """A member with its own CA. The network's creator creates the first member of a
    standard network, which founds its chain; an invited tenant creates its member with
    its invitation_id, and the member's organization is added to the running chain (a
    configuration transaction signed for the members that voted for it): AVAILABLE once
    committed, CREATE_FAILED with the reason otherwise. Without an invitation, a running
    chain takes no new member (409 invitation_required)."""
    if body.invitation_id is not None:
        created = ctl.members.join(p.actor, network_id, body.invitation_id, name=body.name,
                                   description=body.description,
                                   client_token=body.client_token)
    else:
        created = ctl.members.create(p.actor, network_id, name=body.name,
                                     description=body.description, validators=body.validators,
                                     client_token=body.client_token)
    return member_out(created.item)


@members.get("/networks/{network_id}/members", response_model=schemas.MemberList,
             summary="List a network's members", operation_id="list_members")
def list_members(network_id: NetworkId, p: Principal = Depends(principal),
                 ctl: Control = Depends(control), status: ResourceStatus | None = Query(None),
                 limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                 ) -> schemas.MemberList:
    page = ctl.members.list(p.actor, network_id, status=status, limit=limit,
                            page_token=page_token)
    return schemas.MemberList(items=[member_out(m) for m in page.items],
                              next_page_token=page.next_page_token)


@members.get("/networks/{network_id}/members/{member_id}", response_model=schemas.Member,
             summary="Get a member", operation_id="get_member")
def get_member(network_id: NetworkId, member_id: MemberId, p: Principal = Depends(principal),
               ctl: Control = Depends(control)) -> schemas.Member:
    return member_out(ctl.members.get(p.actor, network_id, member_id))


@members.delete("/networks/{network_id}/members/{member_id}", status_code=204,
                response_class=Response, summary="Delete a member (type its name back)",
                operation_id="delete_member", responses=CHANGES,
                openapi_extra=audited("member.delete"))
def delete_member(network_id: NetworkId, member_id: MemberId,
                  confirm_name: ConfirmName = None, p: Principal = Depends(admin),
                  ctl: Control = Depends(control)) -> Response:
    """The member leaves: its nodes stop. The last member takes the network with it; one
    of several is removed by proposal (409 member_removal_needs_proposal)."""
    ctl.members.delete(p.actor, network_id, member_id, confirm_name)
    return Response(status_code=204)


# --- nodes ---------------------------------------------------------------------------------


@nodes.post("/networks/{network_id}/members/{member_id}/nodes", response_model=schemas.Node,
            status_code=201, summary="Add a node (a validator joins the chain)",
            operation_id="create_node", responses=CHANGES,
            openapi_extra=audited("node.create"))
def create_node(network_id: NetworkId, member_id: MemberId, body: schemas.NodeCreate,
                p: Principal = Depends(operator), ctl: Control = Depends(control)
                ) -> schemas.Node:
    """Adds a validator to an AVAILABLE raft or pbft chain: a configuration change approved
    by a majority of the organizations' admins, then its process. Answers once the change
    committed and the process started (CREATING; AVAILABLE once it has caught up), or with
    the node FAILED and the reason. A peer follows the validators; an external peer
    (``external``, ``api_endpoint``) is run by the member from its join bundle."""
    created = ctl.nodes.create(p.actor, network_id, member_id, name=body.name,
                               node_type=body.node_type, resource_class=body.resource_class,
                               external=body.external, api_endpoint=body.api_endpoint,
                               client_token=body.client_token)
    return node_out(created.item)


@nodes.get("/networks/{network_id}/members/{member_id}/nodes", response_model=schemas.NodeList,
           summary="List a member's nodes", operation_id="list_nodes")
def list_nodes(network_id: NetworkId, member_id: MemberId, p: Principal = Depends(principal),
               ctl: Control = Depends(control), status: NodeStatus | None = Query(None),
               limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None) -> schemas.NodeList:
    page = ctl.nodes.list(p.actor, network_id, member_id, status=status, limit=limit,
                          page_token=page_token)
    return schemas.NodeList(items=[node_out(n) for n in page.items],
                            next_page_token=page.next_page_token)


@nodes.get("/networks/{network_id}/members/{member_id}/nodes/{node_id}",
           response_model=schemas.Node, summary="Get a node (status, health, endpoints)",
           operation_id="get_node")
def get_node(network_id: NetworkId, member_id: MemberId, node_id: NodeId,
             p: Principal = Depends(principal), ctl: Control = Depends(control)
             ) -> schemas.Node:
    return node_out(ctl.nodes.get(p.actor, network_id, member_id, node_id))


@nodes.delete("/networks/{network_id}/members/{member_id}/nodes/{node_id}", status_code=204,
              response_class=Response, summary="Delete a node (type its name back)",
              operation_id="delete_node", responses=CHANGES,
              openapi_extra=audited("node.delete"))
def delete_node(network_id: NetworkId, member_id: MemberId, node_id: NodeId,
                confirm_name: ConfirmName = None, p: Principal = Depends(operator),
                ctl: Control = Depends(control)) -> Response:
    """A validator of the chain is first removed from the validators (a configuration
    change), then its process is stopped; its row stays DELETED."""
    ctl.nodes.delete(p.actor, network_id, member_id, node_id, confirm_name)
    return Response(status_code=204)


@nodes.post("/networks/{network_id}/members/{member_id}/nodes/{node_id}/join-bundle",
            response_class=Response, summary="Download an external node's join bundle",
            operation_id="create_join_bundle", responses={
                **CHANGES, 200: {"content": {"application/json": {}},
                                 "description": "The join bundle (docs/spec/join-bundle.md)."}},
            openapi_extra=audited("node.join_bundle"))
def create_join_bundle(network_id: NetworkId, member_id: MemberId, node_id: NodeId,
                       body: schemas.JoinBundleCreate, p: Principal = Depends(admin),
                       ctl: Control = Depends(control)) -> Response:
    """Issues the external node's identity from the member's CA (revoking the one an
    earlier bundle carried) and answers the bundle, its key sealed under the passphrase
    given: ``consortia node join BUNDLE`` runs it."""
    node, bundle = ctl.external_nodes.join_bundle(p.actor, network_id, member_id, node_id,
                                                  body.passphrase)
    return Response(bundle, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{node.name}.join.json"',
        "Cache-Control": "no-store"})
