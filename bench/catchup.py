"""How fast a validator that was down catches up from its peers' ledgers.

A 3-node raft and a 4-node pbft network of real node processes (mutual TLS, this machine);
validators keep only ``--retain`` committed blocks for peers that lag, so the last
validator, SIGKILLed, misses more than they keep and must fetch certified blocks from the
others' ledgers (raft snapshot + block batches; pbft ledger reads), verifying every
certificate and re-executing every block. While it is down the others commit ``--blocks``
blocks of ``--per-block`` signed notary transactions. Then it restarts; measured from its
process start: until its first new block (connections made, first batch fetched) and until
it holds every block the others hold. Prints one JSON object.

    .venv/bin/python bench/catchup.py [--blocks 400] [--per-block 50] [--protocols raft,pbft]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import batches, free_port_block, presign, saturate, wait_healthy
from consortia.sdk import LocalNetwork, init_network
from consortia.types.config import BlockLimits, ConsensusKind

SIZES = {"raft": 3, "pbft": 4}


def _height(url: str) -> int | None:
    try:
        return int(httpx.get(f"{url}/v1/chain", timeout=2).json()["height"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _start(net: LocalNetwork, node_id: str, root: Path) -> subprocess.Popen[bytes]:
    node = net.node(node_id)
    log = (root / f"{node_id}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "consortia.node", "--config",
                             str(node.config)], stdout=log, stderr=subprocess.STDOUT)


def run(protocol: str, blocks: int, per_block: int, retain: int) -> dict[str, Any]:
    n = SIZES[protocol]
    root = Path(tempfile.mkdtemp(prefix=f"consortia-catchup-{protocol}-"))
    port = free_port_block(2 * n)
    net = init_network(root, chain_id=f"catchup-{protocol}", orgs=["org1", "org2"],
                       port=port, p2p_port=port + n, consensus=ConsensusKind(protocol),
                       validators=n,
                       limits=BlockLimits(max_block_txs=per_block, batch_timeout_ms=50))
    for node in net.nodes():
        with node.config.open("a") as f:
            f.write(f"\n[consensus]\nretain_blocks = {retain}\n")
    txs = blocks * per_block
    print(f"{protocol}: signing {txs} transactions …", file=sys.stderr)
    envs = presign(net, txs, 0, "catchup")
    ids = [node.id for node in net.nodes()]
    victim, others = ids[-1], ids[:-1]
    procs = {i: _start(net, i, root) for i in ids}
    try:
        for i in ids:
            wait_healthy(net.node(i).api)
        time.sleep(1.5)
        procs.pop(victim).send_signal(signal.SIGKILL)
        stale = _height(net.node(others[0]).api) or 0
        print(f"{protocol}: {victim} down; committing {txs} transactions …", file=sys.stderr)
        asyncio.run(saturate([net.node(i).api for i in others], batches(envs, per_block), 2))
        target = min(h for h in (_height(net.node(i).api) for i in others) if h is not None)
        print(f"{protocol}: restarting {victim} at height {stale}, others at {target} …",
              file=sys.stderr)
        t0 = time.perf_counter()
        procs[victim] = _start(net, victim, root)
        url = net.node(victim).api
        first = done = None
        deadline = t0 + 600
        while time.perf_counter() < deadline:
            h = _height(url)
            now = time.perf_counter()
            if h is not None and h > stale and first is None:
                first = now - t0
            if h is not None and h >= target:
                done = now - t0
                break
            time.sleep(0.05)
        if done is None or first is None:
            raise SystemExit(f"{protocol}: {victim} did not catch up in 600 s (logs in {root})")
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=30)
    behind = target - stale
    fetch = done - first
    return {
        "validators": n, "retain_blocks": retain, "blocks_behind": behind,
        "txs_behind": txs, "seconds_to_first_block": round(first, 2),
        "seconds_to_caught_up": round(done, 2),
        "blocks_per_s_after_first": round(behind / fetch, 1) if fetch > 0 else None,
        "txs_per_s_after_first": round(txs / fetch, 1) if fetch > 0 else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=400)
    ap.add_argument("--per-block", type=int, default=50)
    ap.add_argument("--retain", type=int, default=16)
    ap.add_argument("--protocols", default="raft,pbft")
    args = ap.parse_args()
    results = {p: run(p, args.blocks, args.per_block, args.retain)
               for p in args.protocols.split(",")}
    print(json.dumps({"benchmark": "catchup", "machine_cores": os.cpu_count(),
                      "record": "hash (sha256)", "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
