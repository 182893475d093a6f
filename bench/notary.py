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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgpack

from consortia.sdk import init_network, notary, sign
from consortia.types.config import BlockLimits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def presign(net, n: int, size: int) -> list[bytes]:
    ident = net.identity("org1/alice")
    now = time.time_ns() // 1_000_000
    out = []
    for i in range(n):
        body = notary.content(f"bench-{i}", os.urandom(size), category="bench",
                              business_time_ms=now) if size else \
            notary.known_digest(f"bench-{i}", os.urandom(32), category="bench",
                                business_time_ms=now)
        out.append(sign(ident, net.chain_id, body).envelope)
    return out


def batches(envs: list[bytes], size: int) -> list[bytes]:
    return [msgpack.packb(envs[i:i + size], use_bin_type=True)
            for i in range(0, len(envs), size)]


async def send(client: httpx.AsyncClient, body: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = await client.post("/v1/transactions/batch", params={"wait": "true", "timeout": 60},
                          content=body, headers={"content-type": "application/msgpack"})
    r.raise_for_status()
    doc = r.json()
    ok = sum(1 for x in doc["results"] if x.get("status") == "committed")
    return ok, time.perf_counter() - t0


async def saturate(url: str, bodies: list[bytes], clients: int,
                   per_batch: int) -> dict[str, float]:
    queue = list(reversed(bodies))
    lat: list[float] = []
    committed = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        async def worker() -> None:
            nonlocal committed
            while queue:
                ok, dt = await send(client, queue.pop())
                committed += ok
                lat.extend([dt] * ok)
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(clients)])
        elapsed = time.perf_counter() - t0
    return {"committed": committed, "seconds": elapsed, "tps": committed / elapsed,
            "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000}


async def paced(url: str, bodies: list[bytes], per_batch: int,
                rate_tps: float) -> dict[str, float]:
    interval = per_batch / rate_tps
    lat: list[float] = []
    committed = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        async def one(body: bytes) -> None:
            nonlocal committed
            ok, dt = await send(client, body)
            committed += ok
            lat.extend([dt] * ok)
        t0 = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            delay = t0 + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {"offered_tps": rate_tps, "committed": committed, "tps": committed / elapsed,
            "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000,
            "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("node did not start")
        print("saturation …", file=sys.stderr)
        bodies = batches(sat_envs, args.batch)
        node_cpu0, client_cpu0 = cpu_seconds(proc.pid), self_cpu_seconds()
        sat = asyncio.run(saturate(url, bodies, args.clients, args.batch))
        node_cpu = cpu_seconds(proc.pid) - node_cpu0
        client_cpu = self_cpu_seconds() - client_cpu0
        print("half load …", file=sys.stderr)
        half = asyncio.run(paced(url, batches(half_envs, 100), 100, sat["tps"] / 2))
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
