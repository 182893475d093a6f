"""What consensus costs: notary throughput and commit latency of solo, 3-node raft and
4-node pbft in one run, every node a real process on this machine, over mutual TLS.

Transactions are signed before the clock starts and sent as msgpack batches with
``wait=true`` round-robin to every validator (each admits its share and gossips it to
the others; every validator verifies every signature). Saturation: C concurrent senders
per validator until N are committed. Half load: batches of 100 paced at half the
measured throughput; latency = batch send → commit answer. Prints one JSON object.

    .venv/bin/python bench/consensus.py [--txs 20000] [--protocols solo,raft,pbft]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    batches,
    cpu_seconds,
    free_port_block,
    paced,
    peak_rss_mb,
    presign,
    saturate,
    wait_healthy,
)
from consortia.sdk import init_network
from consortia.types.config import BlockLimits, ConsensusKind

SIZES = {"solo": 1, "raft": 3, "pbft": 4}


def run(protocol: str, txs: int, batch: int, clients: int) -> dict[str, Any]:
    n = SIZES[protocol]
    root = Path(tempfile.mkdtemp(prefix=f"consortia-bench-{protocol}-"))
    port = free_port_block(2 * n)
    kw: dict[str, Any] = {} if protocol == "solo" else {
        "consensus": ConsensusKind(protocol), "validators": n, "p2p_port": port + n}
    net = init_network(root, chain_id=f"bench-{protocol}", orgs=["org1", "org2"], port=port,
                       limits=BlockLimits(max_block_txs=2000, batch_timeout_ms=50), **kw)
    print(f"{protocol}: signing {txs + txs // 3} transactions …", file=sys.stderr)
    sat_envs = presign(net, txs, 0, "sat")
    half_envs = presign(net, txs // 3, 0, "half")
    procs = []
    for node in net.nodes():
        log = (root / f"{node.id}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "consortia.node", "--config", str(node.config)],
            stdout=log, stderr=subprocess.STDOUT))
    urls = [node.api for node in net.nodes()]
    try:
        for url in urls:
            wait_healthy(url)
        time.sleep(1.5 if n > 1 else 0)  # links up and a leader elected before the clock
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        print(f"{protocol}: saturation …", file=sys.stderr)
        sat = asyncio.run(saturate(urls, batches(sat_envs, batch), clients))
        node_cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
        print(f"{protocol}: half load …", file=sys.stderr)
        half = asyncio.run(paced(urls, batches(half_envs, 100), 100, sat["tps"] / 2))
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    return {
        "validators": n,
        "saturation": {k: round(v, 1) for k, v in sat.items()},
        "half_load": {k: round(v, 1) for k, v in half.items()},
        "node_cpu_us_per_tx_all_nodes": round(node_cpu / max(1, sat["committed"]) * 1e6, 1),
        "max_node_peak_rss_mb": round(rss, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=2, help="concurrent senders per validator")
    ap.add_argument("--protocols", default="solo,raft,pbft")
    args = ap.parse_args()
    results = {p: run(p, args.txs, args.batch, args.clients)
               for p in args.protocols.split(",")}
    if "solo" in results:
        base = results["solo"]["saturation"]["tps"]
        for r in results.values():
            r["throughput_vs_solo"] = round(r["saturation"]["tps"] / base, 2)
    print(json.dumps({"benchmark": "consensus", "machine_cores": os.cpu_count(),
                      "txs": args.txs, "batch": args.batch, "record": "hash (sha256)",
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
