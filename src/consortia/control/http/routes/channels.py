"""Channels: ledgers shared by some members of a network, each a chain of its own
(``/v1/networks/{network_id}/channels…``, ADR 0017)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Response

from consortia.control.http import schemas
from consortia.control.http import schemas_channels as ch
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE, UNAVAILABLE_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    ConfirmName,
    Limit,
    MemberId,
    NetworkId,
    PageToken,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.channels import ChannelView, NewChannel
from consortia.control.store.enums import ResourceStatus, UserRole

channels = router("channels")
admin = require(UserRole.ADMIN)
CHANGES = {**CONFLICT_RESPONSE, **UNAVAILABLE_RESPONSE}
ChannelId = Annotated[str, Path(min_length=1, max_length=64,
                                description="A channel id (chn-…).")]


def channel_out(view: ChannelView) -> ch.Channel:
    c = view.channel
    return ch.Channel(
        id=c.id, network_id=c.network_id, tenant_id=c.tenant_id, name=c.name,
        description=c.description, chain_id=c.id, consensus=c.consensus,
        creator_member_id=c.creator_member_id, status=c.status,
        status_reason=c.status_reason, genesis_hash=c.genesis_hash,
        members=[ch.ChannelMember(member_id=m.id, name=m.name, org_id=m.org_id,
                                  tenant_id=m.tenant_id, joined_at=cm.created_at)
                 for m, cm in view.members],
        nodes=None if view.nodes is None else [schemas.Node.model_validate(n)
                                                for n in view.nodes],
        created_at=c.created_at, updated_at=c.updated_at)


@channels.post("/networks/{network_id}/channels", response_model=ch.Channel,
               status_code=201, summary="Create a channel (a chain of its own)",
               operation_id="create_channel", responses=CHANGES,
               openapi_extra=audited("channel.create"))
def create_channel(network_id: NetworkId, body: ch.ChannelCreate,
                   p: Principal = Depends(admin), ctl: Control = Depends(control)
                   ) -> ch.Channel:
    """A ledger shared by the creating member and the members named: its own chain
    (genesis with their organizations and the network's voting policy), ordered by
    validators of the creating member. CREATING, then AVAILABLE when its validators are;
    CREATE_FAILED with the reason otherwise."""
    created = ctl.channels.create(p.actor, network_id, NewChannel(
        name=body.name, member_id=body.member_id, member_ids=tuple(body.member_ids),
        consensus=body.consensus, description=body.description),
        client_token=body.client_token)
    return channel_out(created.item)


@channels.get("/networks/{network_id}/channels", response_model=ch.ChannelList,
              summary="List a network's channels", operation_id="list_channels")
def list_channels(network_id: NetworkId, p: Principal = Depends(principal),
                  ctl: Control = Depends(control), status: ResourceStatus | None = Query(None),
                  limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                  ) -> ch.ChannelList:
    """The channels the tenant has a member in (all of them for the network's creator)."""
    page = ctl.channels.list(p.actor, network_id, status=status, limit=limit,
                             page_token=page_token)
    return ch.ChannelList(items=[channel_out(v) for v in page.items],
                          next_page_token=page.next_page_token)


@channels.get("/networks/{network_id}/channels/{channel_id}", response_model=ch.Channel,
              summary="Get a channel (members; nodes for its members' tenants)",
              operation_id="get_channel")
def get_channel(network_id: NetworkId, channel_id: ChannelId,
                p: Principal = Depends(principal), ctl: Control = Depends(control)
                ) -> ch.Channel:
    return channel_out(ctl.channels.get(p.actor, network_id, channel_id))


@channels.get("/networks/{network_id}/channels/{channel_id}/genesis",
              summary="The channel chain's genesis file", operation_id="get_channel_genesis",
              response_class=Response,
              responses={200: {"content": {"application/json": {"schema": {
                  "type": "object", "description": "consortia-genesis/1 file"}}},
                  "description": "The trust anchor of the channel's proofs "
                                 "(consortia verify --genesis)."}})
def get_channel_genesis(network_id: NetworkId, channel_id: ChannelId,
                        p: Principal = Depends(principal), ctl: Control = Depends(control)
                        ) -> Response:
    return Response(ctl.channels.genesis(p.actor, network_id, channel_id),
                    media_type="application/json")


@channels.post("/networks/{network_id}/channels/{channel_id}/members",
               response_model=ch.Channel, status_code=201,
               summary="Add a member of the network to a channel",
               operation_id="add_channel_member", responses=CHANGES,
               openapi_extra=audited("channel.add_member"))
def add_channel_member(network_id: NetworkId, channel_id: ChannelId,
                       body: ch.ChannelMemberAdd, p: Principal = Depends(admin),
                       ctl: Control = Depends(control)) -> ch.Channel:
    """An org_update adding the member's organization to the channel's chain, signed for
    the caller's tenant's members in the channel — who must meet its membership policy on
    their own (409 not_enough_approvals). Answers once committed."""
    return channel_out(ctl.channels.add_member(p.actor, network_id, channel_id,
                                               body.member_id))


@channels.delete("/networks/{network_id}/channels/{channel_id}/members/{member_id}",
                 status_code=204, response_class=Response,
                 summary="Remove a member from a channel",
                 operation_id="remove_channel_member", responses=CHANGES,
                 openapi_extra=audited("channel.remove_member"))
def remove_channel_member(network_id: NetworkId, channel_id: ChannelId, member_id: MemberId,
                          p: Principal = Depends(admin), ctl: Control = Depends(control)
                          ) -> Response:
    """An org_update removing the organization from the channel's chain (same approval
    rule); the member running the channel's validators cannot leave."""
    ctl.channels.remove_member(p.actor, network_id, channel_id, member_id)
    return Response(status_code=204)


@channels.delete("/networks/{network_id}/channels/{channel_id}", status_code=204,
                 response_class=Response, summary="Delete a channel (type its name back)",
                 operation_id="delete_channel", responses=CHANGES,
                 openapi_extra=audited("channel.delete"))
def delete_channel(network_id: NetworkId, channel_id: ChannelId,
                   confirm_name: ConfirmName = None, p: Principal = Depends(admin),
                   ctl: Control = Depends(control)) -> Response:
    """Stops the channel's validators; it stays listed as DELETED (its creator's tenant)."""
    ctl.channels.delete(p.actor, network_id, channel_id, confirm_name)
    return Response(status_code=204)
