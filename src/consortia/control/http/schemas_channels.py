"""Request and response bodies of channels (``/v1/networks/{network_id}/channels…``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from consortia.control.http.schemas import ClientToken, Description, Name, Node
from consortia.control.store.enums import Consensus, ResourceStatus

MAX_CHANNEL_MEMBERS = 100
"""Members named when a channel is created: more join one by one."""
MemberRef = Annotated[str, Field(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelCreate(_In):
    name: Name
    description: Description = ""
    member_id: str = Field(
        min_length=1, max_length=64,
        description="The creating member: the caller's tenant's, AVAILABLE. Its "
                    "organization runs the channel's validators.")
    member_ids: list[MemberRef] = Field(
        default_factory=list, max_length=MAX_CHANNEL_MEMBERS,
        description="Other AVAILABLE members of the network (any tenant's) whose "
                    "organizations are in the channel from its genesis.")
    consensus: Consensus | None = Field(
        default=None, description="How the channel's chain orders blocks: solo (default, 1 "
                                  "validator), raft (3), pbft (4).")
    client_token: ClientToken | None = None


class ChannelMemberAdd(_In):
    member_id: str = Field(min_length=1, max_length=64,
                           description="An AVAILABLE member of the network (mem-…).")


class ChannelMember(BaseModel):
    member_id: str
    name: str
    org_id: str = Field(description="Its organization id on the channel's chain.")
    tenant_id: str
    joined_at: datetime


class Channel(BaseModel):
    id: str = Field(examples=["chn-7k3q9d0xw2m4c8rt"])
    network_id: str
    tenant_id: str = Field(description="The tenant that created it.")
    name: str
    description: str
    chain_id: str = Field(description="The chain id of the channel's chain (its id): "
                                      "transactions for the channel name it.")
    consensus: Consensus
    creator_member_id: str | None = Field(
        description="The member whose organization runs its validators.")
    status: ResourceStatus
    status_reason: str | None
    genesis_hash: str | None = Field(description="Hash of the channel chain's genesis block "
                                                 "(hex), once written.")
    members: list[ChannelMember]
    nodes: list[Node] | None = Field(
        description="Its validators, with the API endpoints where clients submit "
                    "transactions: shown to the tenants of its members, null for others.")
    created_at: datetime
    updated_at: datetime


class ChannelList(BaseModel):
    items: list[Channel]
    next_page_token: str | None
