"""Multi-validator networks of real node processes over mutual TLS on 127.0.0.1.

3-node raft and 4-node pbft: transactions submitted through any validator commit on
all of them with byte-identical chains (certificates included, below the newest block);
with one validator SIGKILLed the others keep committing; restarted, it catches up to the
same chain; proofs verify offline with the genesis file alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consortia.sdk import (
    LocalNetwork,
    NodeClient,
    NodeError,
    init_network,
    load_genesis,
    notary,
    sign,
    verify_proof,
)
from consortia.types.config import BlockLimits, ConsensusKind
from tests.integration.helpers import (
    ClusterProcesses,
    describe,
    free_port_block,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.integration


class Cluster(ClusterProcesses):
    def __init__(self, root: Path, consensus: ConsensusKind, n: int) -> None:
        # One block of 2n free ports: the API ports first, then the p2p ports.
        base = free_port_block(2 * n)
        super().__init__(init_network(root, chain_id=f"multi-{consensus}",
                                      orgs=["org1", "org2"], port=base, p2p_port=base + n,
                                      consensus=consensus, validators=n,
                                      limits=BlockLimits(batch_timeout_ms=50)),
                         root, start_timeout=45)
        # Validators keep only 4 committed blocks for peers that lag: one that was down
        # longer catches up from its peers' ledgers (raft snapshot, pbft ledger reads).
        for node in self.net.nodes():
            with node.config.open("a") as f:
                f.write("\n[consensus]\nretain_blocks = 4\n")

    def ids(self) -> list[str]:
        return [n.id for n in self.net.nodes()]

    def url(self, node_id: str) -> str:
        return self.net.node(node_id).api

    def info(self, node_id: str) -> dict:
        return httpx.get(f"{self.url(node_id)}/v1/chain", timeout=10).json()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.root.glob("*.log")))


@pytest.fixture(params=[(ConsensusKind.RAFT, 3), (ConsensusKind.PBFT, 4)],
                ids=["raft-3", "pbft-4"])
def cluster(request, tmp_path: Path) -> Iterator[Cluster]:
    consensus, n = request.param
    c = Cluster(tmp_path / "net", consensus, n)
    try:
        for node_id in c.ids():
            c.start(node_id)
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()


def _commit_via(c: Cluster, node_id: str, tag: str) -> dict:
    net: LocalNetwork = c.net
    tx = sign(net.identity("org1/alice"), net.chain_id,
              notary.content(f"{tag}-{os.urandom(4).hex()}", tag.encode()))
    deadline = time.monotonic() + 60
    with NodeClient(c.url(node_id), timeout=30) as client:
        r = client.submit(tx, wait=True, timeout=20)
        while r["status"] == "pending" and time.monotonic() < deadline:
            r = client.wait(tx.id, timeout=10)
    assert r["status"] == "committed", f"{tag} via {node_id}: {r}\n{c.logs()}"
    return r


def _same_chain(c: Cluster, ids: list[str]) -> int:
    def agreed() -> bool:
        infos = [c.info(i) for i in ids]
        return len({(x["height"], x["latest_hash"]) for x in infos}) == 1
    wait_until(agreed, 60, f"{ids} to hold the same chain")
    return int(c.info(ids[0])["height"])


def identical_ledgers(c: Cluster, ids: list[str], top: int) -> None:
    """Every validator stores the same bytes for blocks 0..top-1: header, transactions and
    commit certificate (the one the next block's header carries replaced each validator's
    own quorum). The newest block's certificate stays each validator's own until a block
    follows it, so ``top`` is compared without it."""
    for h in range(top):
        raws = {httpx.get(f"{c.url(i)}/v1/blocks/{h}", params={"raw": "true"},
                          timeout=10).content for i in ids}
        assert len(raws) == 1, f"block {h} is stored differently across {ids}"
    views = [httpx.get(f"{c.url(i)}/v1/blocks/{top}", timeout=10).json() for i in ids]
    assert len({(v["hash"], tuple(t["tx_id"] for t in v["transactions"]))
                for v in views}) == 1, f"block {top} differs: {views}"


def test_validators_agree_survive_a_crash_and_catch_up(cluster: Cluster) -> None:
    ids = cluster.ids()
    receipts = [_commit_via(cluster, node_id, "round1") for node_id in ids]
    height = _same_chain(cluster, ids)
    assert height >= 1

    victim = ids[-1]
    cluster.kill(victim)
    alive = ids[:-1]
    for i in range(12):  # three times what the others keep for it
        receipts.append(_commit_via(cluster, alive[i % len(alive)], "one-down"))
    _same_chain(cluster, alive)

    cluster.start(victim)
    receipts.append(_commit_via(cluster, victim, "rejoined"))
    final = _same_chain(cluster, ids)
    assert final > height
    identical_ledgers(cluster, ids, final)

    # `consortia chain info` shows every validator: height, role, term/view, leader.
    r = run_cli("chain", "info", "--json", network=cluster.net.root)
    assert r.returncode == 0, describe(r)
    rows = json.loads(r.stdout)
    assert [row["id"] for row in rows] == ids and all(row["up"] for row in rows)
    assert {row["height"] for row in rows} == {final}
    # A validator that just rejoined may still name the previous leader (or a pbft view it
    # has not moved on from, while it keeps up through certificates); a majority agrees.
    named = [row["leader"] for row in rows]
    leader = max(set(named), key=named.count)
    assert leader in ids and named.count(leader) >= len(ids) // 2 + 1, rows

    genesis = load_genesis(cluster.net.genesis_path)
    with NodeClient(cluster.url(victim)) as client:
        for r in receipts:
            proof = verify_proof(client.proof(r["tx_id"]), genesis)
            assert proof.height == r["height"]
            assert len(proof.validators) >= len(ids) // 2 + 1


def _submit_config(c: Cluster, via: str, tx: object) -> dict:
    with NodeClient(c.url(via), timeout=30) as client:
        r = client.submit(tx, wait=True, timeout=20)  # type: ignore[arg-type]
    assert r["status"] == "committed", f"configuration change via {via}: {r}\n{c.logs()}"
    return r


def test_a_validator_joins_and_another_leaves_by_configuration(cluster: Cluster) -> None:
    """A new validator of org2 is added by a configuration transaction approved by a
    majority of the organizations' admins; started afterwards, it catches up from its
    peers, joins consensus and takes transactions. Then validator0 is removed the same
    way and the others keep committing without it. Proofs of transactions committed
    after both changes verify offline against the genesis file alone."""
    ids = cluster.ids()
    _commit_via(cluster, ids[0], "before")
    seq = cluster.info(ids[0])["config"]["sequence"]
    api = free_port_block(2)
    p2p = api + 1
    new_id = f"validator{len(ids)}"
    tx = cluster.net.add_validator(new_id, "org2", sequence=seq, api_port=api, p2p_port=p2p)
    added = _submit_config(cluster, ids[0], tx)
    cluster.start(new_id)
    members = [*ids, new_id]
    _same_chain(cluster, members)
    info = cluster.info(new_id)
    assert new_id in [v["id"] for v in info["validators"]]
    receipts = [_commit_via(cluster, new_id, "via-new")]
    receipts += [_commit_via(cluster, ids[1], "after-add")]
    _same_chain(cluster, members)

    tx = cluster.net.remove_validator(ids[0], sequence=seq + 1)
    _submit_config(cluster, ids[1], tx)
    rest = members[1:]
    for i in range(3):
        receipts.append(_commit_via(cluster, rest[i % len(rest)], "after-remove"))
    identical_ledgers(cluster, rest, _same_chain(cluster, rest))
    assert ids[0] not in [v["id"] for v in cluster.info(ids[1])["validators"]]

    # A stale approval (made against the sequence before the removal) is refused.
    with NodeClient(cluster.url(ids[1])) as client:
        stale = cluster.net.remove_validator(ids[1], sequence=seq + 1)
        with pytest.raises(NodeError) as err:
            client.submit(stale)
        assert "stale_config" in str(err.value) or "approved against" in str(err.value)

    genesis = load_genesis(cluster.net.genesis_path)
    with NodeClient(cluster.url(new_id)) as client:
        for r in receipts:
            proof = verify_proof(client.proof(r["tx_id"]), genesis)
            assert proof.height == r["height"] > added["height"]
