"""Notary throughput and latency of one solo node, as a client sees them over HTTP.

Every transaction is signed before the clock starts; the node verifies every
signature at admission. Phase 1 (saturation): C concurrent clients send batches
of B transactions with ``wait=true`` until N are committed; throughput is N over
the time from the first send to the last commit. Phase 2 (half load): batches
are paced at half the measured throughput; each transaction's submit-to-commit
latency is the time from sending its batch to the batch's commit answer.
Prints one JSON object. Usage:

    .venv/bin/python bench/notary.py [--txs 60000] [--batch 500] [--clients 4]
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

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    batches,
    cpu_seconds,
    free_port,
    paced,
    peak_rss_mb,
    presign,
    saturate,
    self_cpu_seconds,
    wait_healthy,
)
from consortia.sdk import init_network
from consortia.types.config import BlockLimits


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--content-bytes", type=int, default=0,
                    help="0: hash records (32-byte digest); N: content records of N bytes")
    ap.add_argument("--block-txs", type=int, default=2000)
    ap.add_argument("--verify-threads", type=int, default=2)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="consortia-bench-"))
    port = free_port()
    net = init_network(root, chain_id="bench", orgs=["org1"], port=port,
                       limits=BlockLimits(max_block_txs=args.block_txs, batch_timeout_ms=50))
    cfg = net.node_config()
    cfg.write_text(cfg.read_text() + f"\n[pool]\nverify_threads = {args.verify_threads}\n")
    print(f"signing {args.txs} transactions …", file=sys.stderr)
    t_sign = time.perf_counter()
    sat_envs = presign(net, args.txs, args.content_bytes)
    half_envs = presign(net, args.txs // 3, args.content_bytes)
    sign_s = time.perf_counter() - t_sign
    log = (root / "node.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "consortia.node", "--config", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = net.node_url()
    try:
        wait_healthy(url)
        print("saturation …", file=sys.stderr)
        bodies = batches(sat_envs, args.batch)
        node_cpu0, client_cpu0 = cpu_seconds(proc.pid), self_cpu_seconds()
        sat = asyncio.run(saturate([url], bodies, args.clients))
        node_cpu = cpu_seconds(proc.pid) - node_cpu0
        client_cpu = self_cpu_seconds() - client_cpu0
        print("half load …", file=sys.stderr)
        half = asyncio.run(paced([url], batches(half_envs, 100), 100, sat["tps"] / 2))
        info = httpx.get(f"{url}/v1/chain", timeout=10).json()
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    db = root / "nodes" / "validator0" / "data" / "ledger.sqlite3"
    disk = sum(p.stat().st_size for p in db.parent.iterdir() if p.name.startswith(db.name))
    result = {
        "benchmark": "notary", "machine_cores": os.cpu_count(),
        "record": f"content {args.content_bytes} B" if args.content_bytes else "hash (sha256)",
        "txs": args.txs, "batch": args.batch, "clients": args.clients,
        "block_txs": args.block_txs, "verify_threads": args.verify_threads,
        "presign_tx_per_s": round((args.txs + args.txs // 3) / sign_s),
        "saturation": {k: round(v, 1) for k, v in sat.items()},
        "half_load": {k: round(v, 1) for k, v in half.items()},
        "saturation_cpu_us_per_tx": {
            "node": round(node_cpu / sat["committed"] * 1e6, 1),
            "client": round(client_cpu / sat["committed"] * 1e6, 1),
            "node_cores_busy": round(node_cpu / sat["seconds"], 2),
        },
        "node_peak_rss_mb": round(rss, 1),
        "chain_height": info["height"], "chain_txs": info["tx_count"],
        "disk_bytes_per_tx": round(disk / info["tx_count"]),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
