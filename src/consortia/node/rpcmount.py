"""Ethereum JSON-RPC on a quorum node's API port (ADR 0021, ADR 0026).

A quorum validator or peer serves the JSON-RPC over HTTP and WebSocket at ``/rpc`` and, as
geth does, at ``/`` (``POST /`` and the WebSocket upgrade on ``/``; the node API's own
routes are all under ``/v1`` and ``/healthz``, ``/metrics``), so an Ethereum client can be
given the node's plain URL. The backend reads the node's committed data through
``EvmView``, submits raw transactions through the node's own admission (a peer forwards
them to a validator), and follows the node's commits through a ``HeadFeed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from consortia.node.ethbackend import NodeEthBackend
from consortia.node.ethprivate import PrivateNodeEthBackend
from consortia.node.ethrpc import RpcServer
from consortia.node.ethrpc.types import SyncStatus
from consortia.node.evmview import EvmView
from consortia.node.heads import HeadFeed
from consortia.node.quorum import QuorumChain
from consortia.txpool.ethadmission import EthEntry
from consortia.txpool.quorum_pool import QuorumPool
from consortia.types.errors import ConsortiaError

if TYPE_CHECKING:
    from consortia.execution.evm import EthTx
    from consortia.node.peer import PeerNode
    from consortia.node.service import Node

RPC_PATH = "/rpc"


def mount_rpc(app: FastAPI, node: Node | PeerNode) -> RpcServer | None:
    """Add the JSON-RPC routes to ``app`` when ``node`` runs a quorum chain; the server,
    to be closed (``aclose``) when the node stops."""
    chain = node.chain
    if not isinstance(chain, QuorumChain):
        return None
    pool = getattr(node, "pool", None)
    lanes = pool if isinstance(pool, QuorumPool) else None
    view = EvmView(node.store, chain.engine, lambda: chain.evm,
                   pending_nonce=lanes.next_nonce if lanes is not None else None)
    feed = HeadFeed(node.store.height)

    def publish(height: int) -> None:
        if height > feed.latest:
            feed.publish(height)

    node.commit_listeners.append(publish)

    async def submit(raw: bytes) -> bytes:
        (result,) = await node.submit([raw])
        if isinstance(result, ConsortiaError):
            raise result
        return result.id

    def pending(tx_hash: bytes) -> EthTx | None:
        entry = lanes.eth(tx_hash) if lanes is not None else None
        return entry.eth if isinstance(entry, EthEntry) else None

    def syncing() -> SyncStatus | None:
        remote = getattr(node, "remote_height", -1)
        if getattr(node, "caught_up", True) or remote <= node.store.height:
            return None
        return SyncStatus(0, node.store.height, remote)

    backend = (NodeEthBackend(view, submit=submit, heads=feed, pending=pending,
                              syncing=syncing) if node.privacy is None else
               PrivateNodeEthBackend(view, submit=submit, heads=feed, pending=pending,
                                     syncing=syncing, privacy=node.privacy,
                                     config=lambda: chain.config))
    server = RpcServer(backend)
    app.router.routes.extend(server.routes(RPC_PATH))
    app.router.routes.extend(server.routes("/"))

    @app.on_event("shutdown")
    async def _close_rpc() -> None:
        feed.close()
        await server.aclose()

    return server
