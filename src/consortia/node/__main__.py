"""``python -m consortia.node --config node.toml``: run one node in this process.

``--verify-chain`` checks the whole stored chain from genesis and exits
(0: intact, 2: damaged, with the reason) without serving anything.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from consortia.ledger.genesis import load_genesis
from consortia.ledger.store import LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.node.api import create_app
from consortia.node.peer import PeerNode
from consortia.node.service import Node
from consortia.node.settings import NodeSettings
from consortia.types.errors import ConsortiaError


def _verify_only(settings: NodeSettings) -> int:
    genesis = load_genesis(settings.resolve(settings.node.genesis))
    store = LedgerStore(settings.resolve(settings.node.data_dir) / "ledger.sqlite3")
    try:
        n = verify_chain(store, genesis, tail=None)
    finally:
        store.close()
    print(f"chain {genesis.config.chain_id}: {n} blocks after genesis verified, "
          f"height {store.height}, {store.tx_total} transactions")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consortia-node")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--verify-chain", action="store_true",
                        help="verify the whole stored chain and exit")
    args = parser.parse_args(argv)
    try:
        settings = NodeSettings.load(args.config)
        logging.basicConfig(
            level=settings.log.level.upper(),
            format=f"%(asctime)s %(levelname)s node={settings.node.id} %(name)s: %(message)s")
        if args.verify_chain:
            return _verify_only(settings)
        node: Node | PeerNode = PeerNode(settings) if settings.is_peer else Node(settings)
    except ConsortiaError as exc:
        print(f"consortia node: refusing to start: {exc.message}", file=sys.stderr)
        return 2
    app = create_app(node)
    # The standard asyncio loop, not uvloop: the p2p transport hands accepted sockets to
    # loop.start_tls, whose server side stalls under uvloop (handshakes time out).
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, loop="asyncio",
                log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
