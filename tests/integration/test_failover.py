"""Failover under load, real processes: while clients submit a steady stream, SIGKILL a
follower, then the leader; restart both. The network keeps committing, every validator
ends with byte-identical blocks below the newest (certificates included: each block carries
the agreed certificate of the one before it), proofs verify offline on every validator, and
no transaction acknowledged as committed is lost."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import pytest

from consortia.sdk import NodeClient, NodeError, load_genesis, notary, sign, verify_proof
from consortia.types.config import ConsensusKind
from tests.integration.helpers import wait_until
from tests.integration.test_multinode import Cluster, identical_ledgers

# The waits below add up to more than the suite's default 300 s on a loaded machine; each
# still fails on its own with what it was waiting for.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


class Stream:
    """Clients submitting one transaction at a time with wait=true, round-robin over the
    validators that are up; every committed receipt is an acknowledgement."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.up = set(cluster.ids())
        self.acked: dict[str, tuple[int, int]] = {}
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(3)]

    def _run(self, k: int) -> None:
        try:
            self._submit_loop(k)
        except BaseException as exc:  # a dead client must fail the test, not look like a stall
            self.errors.append(exc)
            raise

    def _submit_loop(self, k: int) -> None:
        net = self.cluster.net
        alice = net.identity("org1/alice")
        i = 0
        while not self.stop.is_set():
            with self.lock:
                targets = sorted(self.up)
            node_id = targets[(k + i) % len(targets)]
            i += 1
            tx = sign(alice, net.chain_id, notary.content(f"s{k}-{i}-{os.urandom(3).hex()}",
                                                          b"stream"))
            try:
                with NodeClient(self.cluster.url(node_id), timeout=10) as c:
                    r = c.submit(tx, wait=True, timeout=5)
            except (NodeError, httpx.HTTPError):
                continue
            if r["status"] == "committed":
                with self.lock:
                    self.acked[r["tx_id"]] = (r["height"], r["index"])

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def set_up(self, node_id: str, up: bool) -> None:
        with self.lock:
            (self.up.add if up else self.up.discard)(node_id)


def _leader(cluster: Cluster, among: list[str]) -> str:
    """The leader a majority of ``among`` names. Raft reports no leader during an election
    and validators disagree while one (or a pbft view change) is under way: wait for it."""
    found: list[str] = []

    def agreed() -> bool:
        try:
            names = [cluster.info(n)["consensus_status"].get("leader") for n in among]
        except httpx.HTTPError:  # a node too busy to answer in time: ask again
            return False
        top = max(set(names), key=names.count)
        if top in among and names.count(top) > len(among) // 2:
            found[:] = [top]
            return True
        return False
    wait_until(agreed, 60, f"a majority of {among} to name the same leader")
    return found[0]


def _progress(stream: Stream, more: int, what: str) -> None:
    target = stream.count() + more

    def done() -> bool:
        if stream.errors:
            raise AssertionError(f"a submitting client died: {stream.errors[0]!r}")
        exited = {i: p.returncode for i, p in stream.cluster.procs.items()
                  if p.poll() is not None}
        if exited:  # a node that stopped on its own (an invariant broke): fail now, say who
            raise AssertionError(f"node(s) exited while waiting for {more} more commits "
                                 f"{what}: {exited}")
        return stream.count() >= target
    wait_until(done, 60, f"{more} more commits {what}")


@pytest.mark.parametrize("consensus, n", [(ConsensusKind.RAFT, 3), (ConsensusKind.PBFT, 4)],
                         ids=["raft-3", "pbft-4"])
def test_kill_follower_then_leader_under_load(tmp_path: Path, consensus: ConsensusKind,
                                              n: int) -> None:
    c = Cluster(tmp_path / "net", consensus, n)
    try:
        _run_scenario(c)
    except BaseException:
        print(c.logs())  # every node's log tail, in the failure report, whatever failed
        raise
    finally:
        c.close()  # whatever failed, no node process outlives the test


def _run_scenario(c: Cluster) -> None:
    stream = Stream(c)
    try:
        for node_id in c.ids():
            c.start(node_id)
        for t in stream.threads:
            t.start()
        _progress(stream, 20, "at start")

        leader = _leader(c, c.ids())
        follower = next(i for i in reversed(c.ids()) if i != leader)
        c.kill(follower)
        stream.set_up(follower, False)
        _progress(stream, 20, f"with {follower} killed")
        c.start(follower)
        stream.set_up(follower, True)
        _progress(stream, 10, f"after {follower} restarted")

        alive = c.ids()
        leader = _leader(c, alive)
        c.kill(leader)
        stream.set_up(leader, False)
        _progress(stream, 20, f"with the leader {leader} killed")
        c.start(leader)
        stream.set_up(leader, True)
        _progress(stream, 10, f"after {leader} restarted")
    finally:
        stream.stop.set()
        for t in stream.threads:
            if t.is_alive():
                t.join(timeout=30)
    ids = c.ids()
    heights: list[int] = []

    def same_height() -> bool:
        try:
            heights[:] = [c.info(i)["height"] for i in ids]
        except httpx.HTTPError:  # a node too busy to answer in time: ask again
            return False
        return len(set(heights)) == 1
    wait_until(same_height, 60, "every validator at the same height")
    # Every validator holds heights 0..top now (one reading of all of them). Not a fresh
    # read of one node: a block committed since (a transaction left in a pool) would be
    # asked of validators that have not stored it yet.
    top = heights[0]
    # Every validator holds the same bytes at every height below the newest, commit
    # certificates included; the newest block's hash and transactions agree.
    identical_ledgers(c, ids, top)
    for tx_id, (height, index) in stream.acked.items():
        r = httpx.get(f"{c.url(ids[0])}/v1/receipts/{tx_id}", timeout=10).json()
        assert (r["status"], r["height"], r["index"]) == ("committed", height, index), r
    assert len(stream.acked) >= 80
    genesis = load_genesis(c.net.genesis_path)
    sample = list(stream.acked)[:: max(1, len(stream.acked) // 20)]
    for node_id in ids:
        with NodeClient(c.url(node_id)) as client:
            for tx_id in sample:
                assert verify_proof(client.proof(tx_id), genesis).height == \
                    stream.acked[tx_id][0]
