"""Request and response bodies of a member's Ethereum accounts on a quorum chain
(``/v1/networks/{network_id}/members/{member_id}/accounts…``, ADR 0029)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

ADDRESS_FIELD = Field(
    min_length=1, max_length=64, examples=["0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"],
    description="0x and 40 hex digits, any case (the EIP-55 checksum is not required); "
                "otherwise 422 invalid_address.")


class AccountBind(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = ADDRESS_FIELD


class Account(BaseModel):
    address: str = Field(description="EIP-55 checksummed address.")
    network_id: str
    member_id: str
    org_id: str = Field(description="The organization on chain it transacts for.")


class AccountList(BaseModel):
    items: list[Account] = Field(description="Read from the chain's configuration in force, "
                                             "in the order the addresses were bound.")
    next_page_token: str | None = Field(default=None, description="Always null: every "
                                                                  "binding is on one page.")
