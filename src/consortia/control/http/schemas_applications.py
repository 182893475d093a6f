"""Request and response bodies of join codes and join applications (``/v1/…``, ADR 0018)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from consortia.control.http.schemas import ClientToken, Description, Name
from consortia.control.services.join_codes import DEFAULT_HOURS, MAX_HOURS, MAX_USES
from consortia.control.store.enums import (
    ApplicationStatus,
    Consensus,
    JoinCodeStatus,
    Profile,
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinCodeCreate(_In):
    member_id: str = Field(min_length=1, max_length=64,
                           description="The member (of the caller's tenant) in whose name "
                                       "applications are invited.")
    description: Description = ""
    expires_in_hours: int = Field(default=DEFAULT_HOURS, ge=1, le=MAX_HOURS)
    max_uses: int | None = Field(default=None, ge=1, le=MAX_USES,
                                 description="Applications it takes; none: any number.")
    client_token: ClientToken | None = None


class JoinCode(BaseModel):
    id: str = Field(examples=["jc-7k3q9d0xw2m4c8rt"])
    network_id: str
    tenant_id: str
    member_id: str
    description: str
    status: JoinCodeStatus
    usable: bool = Field(description="ACTIVE, not expired and not used up: it takes an "
                                     "application now.")
    expires_at: datetime
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    created_at: datetime


class JoinCodeCreated(JoinCode):
    join_code: str | None = Field(
        description="The code to share (<id>.<secret>), shown this once: only a hash of it "
                    "is kept. None when a create is replayed with its client_token.")


class JoinCodeList(BaseModel):
    items: list[JoinCode]
    next_page_token: str | None


class JoinApplicationCreate(_In):
    join_code: str = Field(min_length=1, max_length=128,
                           description="The code a member of the network shared.")
    member_name: Name = Field(description="The name the member would take.")
    message: Description = ""
    client_token: ClientToken | None = None


class JoinApplicationAccept(_In):
    member_id: str = Field(min_length=1, max_length=64,
                           description="The proposing member: one of the caller's tenant.")
    description: Description | None = Field(
        default=None, description="The INVITE_TENANT proposal's description (default: the "
                                  "application's message).")


class AppliedNetwork(BaseModel):
    id: str
    name: str
    profile: Profile
    consensus: Consensus


class JoinApplication(BaseModel):
    id: str = Field(examples=["app-7k3q9d0xw2m4c8rt"])
    network: AppliedNetwork
    tenant_id: str = Field(description="The applying tenant.")
    member_name: str
    message: str
    status: ApplicationStatus
    expires_at: datetime | None = Field(description="Until when it waits for a review.")
    proposal_id: str | None = Field(description="The INVITE_TENANT proposal that decides it.")
    invitation_id: str | None = Field(description="APPROVED: the invitation to create the "
                                                  "member with.")
    member_id: str | None = Field(description="The member created from that invitation.")
    decided_at: datetime | None
    created_at: datetime


class JoinApplicationList(BaseModel):
    items: list[JoinApplication]
    next_page_token: str | None
