"""``PrivacyClient``: what a node calls on its own transaction manager (local API).

::

    tm = PrivacyClient("http://127.0.0.1:9080", token, timeout=15.0)
    h = tm.send(data, private_for=[b_key])      # 64-byte hash for the public tx
    tm.receive(h)                               # plaintext, or None: not a participant
    h = tm.store_raw(data); tm.send_signed(h, [b_key])   # the signed-tx flow

Every call has a timeout (``timeout`` must exceed the manager's ``send_timeout_s`` for
``send``). Refusals raise ``PrivacyClientError`` with the manager's stable code;
``RecipientUnreachable`` (code ``recipient_unreachable``) carries ``failures``.
"""

from __future__ import annotations

import base64
from types import TracebackType
from typing import Any

import httpx


class PrivacyClientError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or {}

    @property
    def failures(self) -> dict[str, str]:
        """organization → reason, for ``recipient_unreachable``."""
        f = self.detail.get("failures", {})
        return dict(f) if isinstance(f, dict) else {}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class PrivacyClient:
    def __init__(self, base_url: str, token: str | bytes, *, timeout: float = 15.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        tok = token.decode() if isinstance(token, bytes) else token
        self._http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout),
                                  headers={"authorization": f"Bearer {tok}"},
                                  transport=transport)

    def __enter__(self) -> PrivacyClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        r = self._http.request(method, path, json=body)
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.status_code != 200 or not isinstance(doc, dict):
            err = doc.get("error", {}) if isinstance(doc, dict) else {}
            raise PrivacyClientError(r.status_code, str(err.get("code", "unknown")),
                                     str(err.get("message", r.text[:200])), err)
        return doc

    def public_keys(self) -> list[bytes]:
        """This manager's public keys (the node's ``privateFrom`` candidates)."""
        return [base64.b64decode(k) for k in self._call("GET", "/v1/keys")["public_keys"]]

    def send(self, payload: bytes, private_for: list[bytes],
             sender: bytes | None = None) -> bytes:
        """Encrypt and deliver; the SHA3-512 hash the public transaction carries."""
        body: dict[str, Any] = {"payload": _b64(payload),
                                "privateFor": [_b64(k) for k in private_for]}
        if sender is not None:
            body["from"] = _b64(sender)
        return bytes.fromhex(self._call("POST", "/v1/send", body)["hash"])

    def store_raw(self, payload: bytes, sender: bytes | None = None) -> bytes:
        body: dict[str, Any] = {"payload": _b64(payload)}
        if sender is not None:
            body["from"] = _b64(sender)
        return bytes.fromhex(self._call("POST", "/v1/storeraw", body)["hash"])

    def send_signed(self, payload_hash: bytes, private_for: list[bytes]) -> bytes:
        body = {"hash": payload_hash.hex(), "privateFor": [_b64(k) for k in private_for]}
        return bytes.fromhex(self._call("POST", "/v1/sendsignedtx", body)["hash"])

    def receive(self, payload_hash: bytes, to: bytes | None = None) -> bytes | None:
        """The plaintext, or ``None`` when this member is not a participant (the node
        then skips the private transaction, as quorum does)."""
        path = f"/v1/transactions/{payload_hash.hex()}"
        if to is not None:
            path += "?to=" + base64.urlsafe_b64encode(to).decode().replace("=", "%3D")
        try:
            doc = self._call("GET", path)
        except PrivacyClientError as exc:
            if exc.code == "not_a_participant":
                return None
            raise
        return base64.b64decode(doc["payload"])

    def deliveries(self, payload_hash: bytes) -> list[dict[str, Any]]:
        d = self._call("GET", f"/v1/transactions/{payload_hash.hex()}/deliveries")
        return list(d["deliveries"])
