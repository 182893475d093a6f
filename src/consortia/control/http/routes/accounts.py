"""A member's Ethereum accounts on a quorum chain
(``/v1/networks/{network_id}/members/{member_id}/accounts…``, ADR 0029)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Response

from consortia.control.http import schemas_accounts as schemas
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE, UNAVAILABLE_RESPONSE
from consortia.control.http.routes.common import MemberId, NetworkId, router
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.accounts import BoundAccount
from consortia.control.store.enums import UserRole

accounts = router("accounts")
admin = require(UserRole.ADMIN)
CHANGES = {**CONFLICT_RESPONSE, **UNAVAILABLE_RESPONSE}
Address = Annotated[str, Path(min_length=1, max_length=64,
                              description="An Ethereum address (0x and 40 hex digits).")]
PATH = "/networks/{network_id}/members/{member_id}/accounts"


def account_out(a: BoundAccount) -> schemas.Account:
    return schemas.Account(address=a.address, network_id=a.network_id,
                           member_id=a.member_id, org_id=a.org_id)


@accounts.post(PATH, response_model=schemas.Account, status_code=201,
               summary="Bind an Ethereum account to a member (quorum)",
               operation_id="bind_account", responses=CHANGES,
               openapi_extra=audited("account.bind"))
def bind_account(network_id: NetworkId, member_id: MemberId, body: schemas.AccountBind,
                 p: Principal = Depends(admin), ctl: Control = Depends(control)
                 ) -> schemas.Account:
    """Lets ``address`` send Ethereum transactions for the member's organization: an
    account_update configuration transaction signed by the member's admin (the control
    plane holds its CA), answered once committed. Your tenant's members only."""
    return account_out(ctl.accounts.bind(p.actor, network_id, member_id, body.address))


@accounts.get(PATH, response_model=schemas.AccountList,
              summary="List a member's Ethereum accounts (quorum)",
              operation_id="list_accounts", responses=UNAVAILABLE_RESPONSE)
def list_accounts(network_id: NetworkId, member_id: MemberId,
                  p: Principal = Depends(principal), ctl: Control = Depends(control)
                  ) -> schemas.AccountList:
    """The addresses the chain's configuration in force binds to the member's organization
    (read from a validator: the chain is the record)."""
    return schemas.AccountList(
        items=[account_out(a) for a in ctl.accounts.list(p.actor, network_id, member_id)])


@accounts.delete(PATH + "/{address}", status_code=204, response_class=Response,
                 summary="Unbind an Ethereum account from a member (quorum)",
                 operation_id="unbind_account", responses=CHANGES,
                 openapi_extra=audited("account.unbind"))
def unbind_account(network_id: NetworkId, member_id: MemberId, address: Address,
                   p: Principal = Depends(admin), ctl: Control = Depends(control)
                   ) -> Response:
    """Its transactions are refused once the change commits (404 account_not_bound if it
    is not bound to this member)."""
    ctl.accounts.unbind(p.actor, network_id, member_id, address)
    return Response(status_code=204)
