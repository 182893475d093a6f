"""Private transactions over JSON-RPC (ADR 0027): GoQuorum's methods, for any client.

A client that wants a private transaction (web3.py, ethers.js — no Quorum-specific
library) makes three ordinary calls:

1. ``consortia_storeRaw(payload)`` — the node stores the payload (contract creation code
   or call data) encrypted in its member's transaction manager; answers the 64-byte
   payload hash (Tessera's ``/storeraw``, reached through the node, whose manager API is
   local to it);
2. signs, with its own key, an ordinary transaction whose ``data`` is that hash, ``to``
   the private contract (none for a creation), ``value`` 0, ``gas`` the private
   execution's limit, ``nonce`` its public one;
3. ``eth_sendRawPrivateTransaction(raw, {"privateFor": [base64 keys]})`` — the node has the
   manager deliver the payload to every recipient (all must acknowledge, else the call
   fails and nothing is on chain), then submits the transaction as a private marker.

``eth_getQuorumPayload(hash)`` answers the payload to a participant, ``0x`` to anyone else.
Receipts, ``eth_call``, ``eth_getCode`` and ``eth_getStorageAt`` of a participant's node
show its private state (the node's adapter does that); other nodes show the public marker
only (status 1, no logs, no gas).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol, runtime_checkable

from consortia.node.ethrpc.codec import data, parse_data
from consortia.node.ethrpc.errors import invalid_params
from consortia.node.ethrpc.methods import Handler
from consortia.node.ethrpc.params import Args

MAX_RECIPIENTS = 64
PAYLOAD_HASH_BYTES = 64


@runtime_checkable
class PrivacyBackend(Protocol):
    """What a node with a transaction manager adds to its ``EthBackend``."""

    async def store_raw(self, payload: bytes) -> bytes:
        """Store ``payload`` in the member's manager; its 64-byte hash."""
        ...

    async def send_raw_private_transaction(self, raw: bytes, private_for: list[bytes]
                                           ) -> bytes:
        """Deliver the payload the raw transaction's data names to ``private_for``, then
        submit the transaction as a private marker; its hash. Raises ``TxRejected``."""
        ...

    async def quorum_payload(self, payload_hash: bytes) -> bytes | None:
        """The payload if this node's member takes part, else ``None``."""
        ...


def _keys(value: Any, param: str) -> list[bytes]:
    if not isinstance(value, dict) or not isinstance(value.get("privateFor"), list):
        raise invalid_params(param, 'expected {"privateFor": ["<base64 public key>", ...]}')
    keys = value["privateFor"]
    if not 1 <= len(keys) <= MAX_RECIPIENTS:
        raise invalid_params(param, f"privateFor holds 1 to {MAX_RECIPIENTS} keys")
    out = []
    for i, key in enumerate(keys):
        try:
            raw = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise invalid_params(param, f"privateFor[{i}] is not a base64 32-byte public key")
        out.append(raw)
    return out


class PrivateMethods:
    def __init__(self, backend: PrivacyBackend, max_payload: int) -> None:
        self.backend = backend
        self.max_payload = max_payload

    def handlers(self) -> dict[str, Handler]:
        return {"consortia_storeRaw": self.store_raw,
                "eth_sendRawPrivateTransaction": self.send_raw_private_transaction,
                "eth_getQuorumPayload": self.get_quorum_payload}

    async def store_raw(self, params: list[Any]) -> str:
        args = Args(params, ("payload",), 1)
        payload = parse_data(args.get(0), args.label(0), max_size=self.max_payload)
        if not payload:
            raise invalid_params(args.label(0), "empty payload")
        return data(await self.backend.store_raw(payload))

    async def send_raw_private_transaction(self, params: list[Any]) -> str:
        args = Args(params, ("transaction", "privateData"), 2)
        raw = parse_data(args.get(0), args.label(0), max_size=self.max_payload)
        if not raw:
            raise invalid_params(args.label(0), "empty transaction")
        keys = _keys(args.get(1), args.label(1))
        return data(await self.backend.send_raw_private_transaction(raw, keys))

    async def get_quorum_payload(self, params: list[Any]) -> str:
        args = Args(params, ("hash",), 1)
        value = args.get(0)
        digest = parse_data(value, args.label(0), max_size=PAYLOAD_HASH_BYTES)
        if len(digest) != PAYLOAD_HASH_BYTES:
            raise invalid_params(args.label(0), "a payload hash is 64 bytes")
        payload = await self.backend.quorum_payload(digest)
        return data(payload or b"")


__all__ = ["PrivacyBackend", "PrivateMethods"]
