"""Transport counters: a plain dict for tests and APIs, mirrored into Prometheus when asked.

Every count has a dotted key ``<group>.<label>``; the group picks a Prometheus family
(``consortia_p2p_<group>_total``) and the label its label value. Groups and labels:

=========  ===========  =================================================================
group      label name   labels the transports use
=========  ===========  =================================================================
frames     direction    ``in``, ``out``
bytes      direction    ``in``, ``out`` (payload bytes, headers excluded)
dropped    reason       ``oversize``, ``malformed``, ``bad_signature``, ``queue_full``,
                        ``unknown_peer``
refused    reason       ``unknown``, ``revoked``, ``expired``, ``wrong_role``, ``self``,
                        ``direction``, ``unexpected_peer``, ``wrong_chain``, ``protocol``,
                        ``tls``, ``busy``
conn       event        ``connects``, ``disconnects``, ``reconnects``, ``dial_failures``,
                        ``evicted``
errors     kind         ``handler``, ``internal``
=========  ===========  =================================================================
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter

GROUPS: dict[str, tuple[str, str]] = {
    "frames": ("direction", "Frames carried by the node-to-node transport"),
    "bytes": ("direction", "Payload bytes carried by the node-to-node transport"),
    "dropped": ("reason", "Frames dropped by the node-to-node transport"),
    "refused": ("reason", "Peer connections refused at the handshake"),
    "conn": ("event", "Peer connection events"),
    "errors": ("kind", "Errors contained by the node-to-node transport"),
}


class Counters:
    """Monotonic counts by dotted key; ``registry`` also exports them to Prometheus."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 prefix: str = "consortia_p2p") -> None:
        self._values: defaultdict[str, int] = defaultdict(int)
        self._families: dict[str, Counter] = {}
        if registry is not None:
            for group, (label, doc) in GROUPS.items():
                self._families[group] = Counter(f"{prefix}_{group}", doc, [label],
                                                registry=registry)

    def inc(self, key: str, n: int = 1) -> None:
        group, _, label = key.partition(".")
        if group not in GROUPS or not label:
            raise ValueError(f"unknown transport counter {key!r}")
        self._values[key] += n
        family = self._families.get(group)
        if family is not None:
            family.labels(label).inc(n)

    def __getitem__(self, key: str) -> int:
        return self._values.get(key, 0)

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._values.items()))

    def __repr__(self) -> str:
        return f"Counters({self.snapshot()})"
