"""The private transaction manager of the quorum profile (Tessera's model, ADR 0022).

Owns: the X25519 key pairs of a member's manager (``keys.py``), the envelope — one
ciphertext, one sealed key per recipient, SHA3-512 hash (``box.py``), the key directory
from an authority, never from peers (``directory.py``), the SQLite store (``store.py``),
the rules of send/receive/push/announce (``manager.py``), outbound mutual-TLS calls
(``peers.py``), the local and peer HTTP APIs (``api.py``), the process (``server.py``,
``__main__.py``, ``settings.py``) and the node's client (``client.py``).

Does not: execute transactions, hold private state, or know the chain; the node calls
``PrivacyClient`` and puts the hash on chain (docs/spec/privacy.md).
"""

from consortia.privacy.client import PrivacyClient, PrivacyClientError

__all__ = ["PrivacyClient", "PrivacyClientError"]
