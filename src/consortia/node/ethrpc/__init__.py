"""Ethereum JSON-RPC (HTTP and WebSocket) for the nodes of a ``quorum`` network.

Layers, each its own module (ADR 0021, docs/spec/json-rpc.md):

- ``types``      the blocks, transactions, receipts and logs crossing the backend boundary
- ``backend``    :class:`EthBackend`, the protocol a node adapter implements, and its errors
- ``codec``      strict hex quantities / data, block selectors, filter parameters
- ``encode``     the spec's JSON objects
- ``errors``     JSON-RPC error codes and the backend-error mapping
- ``methods``    the stateless eth_/net_/web3_ methods
- ``filters``    eth_getLogs and polled filters
- ``dispatch``   JSON-RPC framing, batches, notifications
- ``subscriptions``  WebSocket connections, eth_subscribe, the new-heads fan-out
- ``app``        :class:`RpcServer`: routes for the node's app, or a server of its own
"""

from consortia.node.ethrpc.app import RpcServer, serve
from consortia.node.ethrpc.backend import (
    EthBackend,
    EthBackendError,
    ExecutionFailed,
    ExecutionReverted,
    TxRejected,
    TxRejection,
    UnknownBlock,
)
from consortia.node.ethrpc.limits import RpcLimits

__all__ = [
    "EthBackend",
    "EthBackendError",
    "ExecutionFailed",
    "ExecutionReverted",
    "RpcLimits",
    "RpcServer",
    "TxRejected",
    "TxRejection",
    "UnknownBlock",
    "serve",
]
