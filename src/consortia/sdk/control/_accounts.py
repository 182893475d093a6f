"""A member's Ethereum accounts on a quorum network through the control API
(``docs/spec/control-api.md`` "Accounts", ADR 0029): bind, list, unbind.

``ControlClient`` inherits these methods. The control plane signs the chain's
``account_update`` with the member's admin and answers once it committed; the list is read
from the chain's configuration in force, so it is what the validators enforce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consortia.sdk.control._models import Account, R

if TYPE_CHECKING:
    import httpx


class AccountCalls:
    """The account calls of ``ControlClient``."""

    if TYPE_CHECKING:  # provided by ControlClient
        def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    json: dict[str, Any] | None = None) -> httpx.Response: ...

        def _post(self, model: type[R], path: str, body: dict[str, Any]) -> R: ...

        def _delete(self, path: str, **params: Any) -> None: ...

    @staticmethod
    def _accounts(network_id: str, member_id: str) -> str:
        return f"/v1/networks/{network_id}/members/{member_id}/accounts"

    def bind_account(self, network_id: str, member_id: str, address: str) -> Account:
        """Let ``address`` (``0x`` + 40 hex digits) send Ethereum transactions for your
        member's organization; answered once the chain committed the binding (409
        ``account_already_bound`` / ``account_bound_elsewhere`` if it is bound)."""
        return self._post(Account, self._accounts(network_id, member_id),
                          {"address": address})

    def list_accounts(self, network_id: str, member_id: str) -> list[Account]:
        """The addresses the chain binds to the member's organization, oldest first."""
        doc = self.request("GET", self._accounts(network_id, member_id)).json()
        return [Account.from_json(item) for item in doc["items"]]

    def unbind_account(self, network_id: str, member_id: str, address: str) -> None:
        """Stop ``address`` transacting for your member (404 ``account_not_bound`` if it is
        not bound to it)."""
        self._delete(f"{self._accounts(network_id, member_id)}/{address}")
