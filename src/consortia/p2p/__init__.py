"""Node-to-node transports: mutual-TLS TCP (``Transport``) and in-memory (``MemoryTransport``).

Transports carry opaque bytes between the validators of one chain. They decide
*who* may talk (certificates checked against the configuration in force) and
*how much* (frame cap, bounded queues, timeouts); what the bytes mean — message
decoding and signature checks — belongs to the layer above, which may pass a
``decode`` hook so a frame it cannot decode is dropped and counted here.
Specification: docs/spec/transport.md.
"""

from consortia.p2p.auth import PeerRefused, authorize
from consortia.p2p.base import (
    Decode,
    Handler,
    PeerTransport,
    TransportClosed,
    TransportLimits,
)
from consortia.p2p.counters import Counters
from consortia.p2p.memory import MemoryNetwork, MemoryTransport
from consortia.p2p.tls import NodeCredentials
from consortia.p2p.transport import Address, Transport, backoff_delay

__all__ = [
    "Address", "Counters", "Decode", "Handler", "MemoryNetwork", "MemoryTransport",
    "NodeCredentials", "PeerRefused", "PeerTransport", "Transport", "TransportClosed",
    "TransportLimits", "authorize", "backoff_delay",
]
