"""The JSON-RPC backend of a quorum node that has a transaction manager (ADR 0027).

``PrivateNodeEthBackend`` adds GoQuorum's private-transaction calls
(``node.ethrpc.private.PrivacyBackend``) to the node adapter: the payload is stored and
delivered by the member's manager (``PrivacyClient``), and the signed transaction that
names it goes to the chain as a private marker. A send is checked by admission before the
payload is delivered (a transaction the chain would refuse delivers nothing), and it fails
when a recipient does not acknowledge (nothing then goes on chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from consortia.node.ethbackend import NodeEthBackend, rejection
from consortia.privacy.client import PrivacyClient, PrivacyClientError
from consortia.txpool.ethadmission import admit_eth, private_marker
from consortia.types.config import ChainConfig
from consortia.types.errors import ConsortiaError


class PrivateNodeEthBackend(NodeEthBackend):
    def __init__(self, *args: Any, privacy: PrivacyClient,
                 config: Callable[[], ChainConfig], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._privacy = privacy
        self._config = config

    async def _manager(self, call: Callable[[], Any]) -> Any:
        """One call to the manager off the event loop; its failures as node refusals."""
        try:
            return await asyncio.to_thread(call)
        except PrivacyClientError as exc:
            raise rejection(ConsortiaError(f"transaction manager: {exc.message}",
                                           code=exc.code)) from exc
        except httpx.HTTPError as exc:
            raise rejection(ConsortiaError(f"the transaction manager cannot be reached: "
                                           f"{exc}", code="unavailable")) from exc

    async def store_raw(self, payload: bytes) -> bytes:
        digest: bytes = await self._manager(lambda: self._privacy.store_raw(payload))
        return digest

    async def send_raw_private_transaction(self, raw: bytes, private_for: list[bytes]
                                           ) -> bytes:
        marker = private_marker(raw)
        try:
            entry = admit_eth(marker, self._config())
        except ConsortiaError as exc:
            raise rejection(exc) from exc
        payload_hash = entry.eth.data
        held = await self._manager(lambda: self._privacy.receive(payload_hash))
        if held is None:
            raise rejection(ConsortiaError(
                "the transaction's data names no payload stored in this node's transaction "
                "manager (store it first with consortia_storeRaw)",
                code="unknown_payload"))
        await self._manager(lambda: self._privacy.send_signed(payload_hash, private_for))
        return await self.send_raw_transaction(marker)

    async def quorum_payload(self, payload_hash: bytes) -> bytes | None:
        found: bytes | None = await self._manager(lambda: self._privacy.receive(payload_hash))
        return found


