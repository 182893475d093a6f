"""Prometheus metrics of one node (its own registry, so tests can run several nodes)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.tx_admitted = Counter("consortia_tx_admitted_total",
                                   "Transactions admitted into the pool", registry=r)
        self.tx_rejected = Counter("consortia_tx_rejected_total",
                                   "Transactions refused at admission", ["code"], registry=r)
        self.tx_committed = Counter("consortia_tx_committed_total",
                                    "Transactions committed", ["status"], registry=r)
        self.blocks = Counter("consortia_blocks_committed_total", "Blocks committed", registry=r)
        self.height = Gauge("consortia_chain_height", "Height of the last block", registry=r)
        self.pool_size = Gauge("consortia_pool_transactions", "Transactions in the pool",
                               registry=r)
        self.block_seconds = Histogram(
            "consortia_block_commit_seconds", "Time to prepare, sign and store a block",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r)
        self.block_txs = Histogram(
            "consortia_block_transactions", "Transactions per block",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r)
