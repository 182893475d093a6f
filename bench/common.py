"""Shared pieces of the benchmarks: pre-signing, batch bodies, load generators, process stats."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import time
from pathlib import Path

import httpx
import msgpack

from consortia.sdk import LocalNetwork, notary, sign


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1 below the ephemeral range
    (20000-32000): a port the kernel hands out to an outgoing connection meanwhile cannot
    take a node's listening port (networks number their nodes' ports base + i)."""
    rng = random.Random()
    for _ in range(1000):
        base = rng.randrange(20_000, 32_000 - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free block of ports on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    return free_port_block(1)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def presign(net: LocalNetwork, n: int, size: int, tag: str = "bench") -> list[bytes]:
    """``n`` signed notary transactions: hash records, or content records of ``size`` bytes."""
    ident = net.identity("org1/alice")
    now = time.time_ns() // 1_000_000
    out = []
    for i in range(n):
        body = notary.content(f"{tag}-{i}", os.urandom(size), category="bench",
                              business_time_ms=now) if size else \
            notary.known_digest(f"{tag}-{i}", os.urandom(32), category="bench",
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
    ok = sum(1 for x in r.json()["results"] if x.get("status") == "committed")
    return ok, time.perf_counter() - t0


async def saturate(urls: list[str], bodies: list[bytes], clients: int) -> dict[str, float]:
    """``clients`` concurrent senders per URL share the batches; wait for every commit."""
    queue = list(reversed(bodies))
    lat: list[float] = []
    committed = 0
    conns = [httpx.AsyncClient(base_url=u, timeout=120) for u in urls]
    try:
        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal committed
            while queue:
                ok, dt = await send(client, queue.pop())
                committed += ok
                lat.extend([dt] * ok)
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(c) for c in conns for _ in range(clients)])
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.aclose()
    return {"committed": committed, "seconds": elapsed, "tps": committed / elapsed,
            "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000}


async def paced(urls: list[str], bodies: list[bytes], per_batch: int,
                rate_tps: float) -> dict[str, float]:
    """Batches paced at ``rate_tps`` (round-robin over ``urls``); latency per transaction."""
    interval = per_batch / rate_tps
    lat: list[float] = []
    committed = 0
    conns = [httpx.AsyncClient(base_url=u, timeout=120) for u in urls]
    try:
        async def one(client: httpx.AsyncClient, body: bytes) -> None:
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
            tasks.append(asyncio.create_task(one(conns[i % len(conns)], body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.aclose()
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


def wait_healthy(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"node at {url} did not start")
