"""The limits of one JSON-RPC server, with geth's defaults where geth has one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RpcLimits:
    """Bounds on what one client can make the server hold or compute.

    Every field is validated at construction so that a server never starts unbounded."""

    max_body_bytes: int = 5 * 1024 * 1024
    """HTTP request body / WebSocket message size (geth: 5 MiB)."""
    max_batch: int = 1_000
    """Requests in one batch (geth: 1000)."""
    max_log_range: int = 10_000
    """Blocks one eth_getLogs / eth_getFilterLogs may span; one eth_getFilterChanges poll
    covers at most this many new blocks and the next poll continues."""
    max_logs: int = 10_000
    """Logs one answer may hold."""
    filter_timeout_s: float = 300.0
    """An installed filter not polled for this long is removed (geth: 5 min)."""
    max_filters: int = 10_000
    """Filters installed at once on the server (all clients)."""
    max_subscriptions: int = 128
    """Subscriptions one WebSocket connection may hold."""
    ws_send_queue: int = 1_024
    """Messages waiting to be written to one WebSocket; a connection whose queue is full
    is closed (1008, "subscription backlog exceeded") instead of buffering without bound."""
    max_fee_history_blocks: int = 1_024
    """eth_feeHistory's blockCount (geth: 1024)."""
    max_reward_percentiles: int = 100
    method_timeout_s: float = 30.0
    """Longest a single method may take (eth_call of a runaway loop); then -32000."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"RpcLimits.{name} must be positive, got {value!r}")
