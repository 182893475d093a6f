"""A network's channels through the control API (``docs/spec/control-api.md`` "Channels",
ADR 0017): create, list, get, genesis, add and remove a member organization, delete.

``ControlClient`` inherits these methods (this module keeps ``_client`` a readable size).
Every path is under ``/v1/networks/{network_id}/channels``. A channel is a chain of its
own: its ``chain_id`` is what a transaction for it names, its ``nodes`` (shown to its
members' tenants) are where it is submitted, and its genesis (``channel_genesis``) is the
trust anchor of its proofs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from consortia.sdk.control._models import Channel, Page, R

if TYPE_CHECKING:
    import httpx


class ChannelCalls:
    """The channel calls of ``ControlClient``."""

    if TYPE_CHECKING:  # provided by ControlClient
        def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    json: dict[str, Any] | None = None) -> httpx.Response: ...

        def _get(self, model: type[R], path: str, **params: Any) -> R: ...

        def _post(self, model: type[R], path: str, body: dict[str, Any]) -> R: ...

        def _delete(self, path: str, **params: Any) -> None: ...

        def _page(self, model: type[R], path: str, **params: Any) -> Page[R]: ...

        def _iterate(self, model: type[R], path: str, **params: Any) -> Iterator[R]: ...

        @staticmethod
        def _create(body: dict[str, Any], client_token: str | None) -> dict[str, Any]: ...

    @staticmethod
    def _channels(network_id: str) -> str:
        return f"/v1/networks/{network_id}/channels"

    def create_channel(self, network_id: str, name: str, member_id: str, *,
                       member_ids: Sequence[str] = (), consensus: str | None = None,
                       description: str | None = None,
                       client_token: str | None = None) -> Channel:
        """A channel (CREATING) of the caller's member ``member_id``, whose organization
        runs its validators, with the organizations of ``member_ids`` from its genesis;
        ``wait_for_channel`` waits until it is AVAILABLE."""
        return self._post(Channel, self._channels(network_id), self._create(
            {"name": name, "member_id": member_id, "member_ids": list(member_ids),
             "consensus": consensus, "description": description}, client_token))

    def list_channels(self, network_id: str, *, status: str | None = None,
                      limit: int | None = None,
                      page_token: str | None = None) -> Page[Channel]:
        """The channels the caller's tenant has a member in (all, for the network's
        creator)."""
        return self._page(Channel, self._channels(network_id), status=status, limit=limit,
                          page_token=page_token)

    def iter_channels(self, network_id: str, *, status: str | None = None) -> Iterator[Channel]:
        return self._iterate(Channel, self._channels(network_id), status=status)

    def get_channel(self, network_id: str, channel_id: str) -> Channel:
        return self._get(Channel, f"{self._channels(network_id)}/{channel_id}")

    def channel_genesis(self, network_id: str, channel_id: str) -> bytes:
        """The channel chain's genesis file (``consortia verify --genesis`` of its proofs)."""
        return self.request("GET", f"{self._channels(network_id)}/{channel_id}/genesis").content

    def add_channel_member(self, network_id: str, channel_id: str, member_id: str) -> Channel:
        """Add a member of the network to the channel: an ``org_update`` on its chain signed
        for the caller's tenant's members in it (409 ``not_enough_approvals`` when they do
        not meet its membership policy alone); answers once committed."""
        return self._post(Channel, f"{self._channels(network_id)}/{channel_id}/members",
                          {"member_id": member_id})

    def remove_channel_member(self, network_id: str, channel_id: str, member_id: str) -> None:
        """Remove a member's organization from the channel's chain (same approval rule;
        the creating member cannot leave: 409 ``config_not_allowed``)."""
        self._delete(f"{self._channels(network_id)}/{channel_id}/members/{member_id}")

    def delete_channel(self, network_id: str, channel_id: str, *, confirm_name: str) -> None:
        """Stops the channel's validators (its creator's tenant only); ``confirm_name``
        must be the channel's name."""
        self._delete(f"{self._channels(network_id)}/{channel_id}", confirm_name=confirm_name)
