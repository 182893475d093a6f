"""Organizations join and leave a running raft-3 chain of real node processes by
``OrgUpdate`` configuration transactions (``LocalNetwork.add_org`` / ``remove_org``).

The chain starts with org1 alone (it runs the three validators). org2 is voted in (org1's
admin alone is 100% of the organizations in force, above the default 50%), its client
commits a notary transaction on every validator, whose proof verifies offline against the
genesis file alone; org2 is then voted out (its admin and org1's: 2 of 2) and its client is
refused at admission with ``unknown_identity``, on every validator.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consortia.sdk import (
    NodeClient,
    NodeError,
    init_network,
    load_genesis,
    notary,
    sign,
    verify_proof,
)
from consortia.sdk.tx import SignedTx
from consortia.types.config import BlockLimits, ConsensusKind
from consortia.types.tx import ContentRecord, OrgUpdate
from tests.integration.helpers import free_port_block, healthy, subprocess_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Raft3:
    """A raft-3 network of org1 only, its three validators as processes."""

    def __init__(self, root: Path) -> None:
        base = free_port_block(6)
        self.root = root
        self.net = init_network(root / "net", chain_id="orgs", orgs=["org1"], port=base,
                                p2p_port=base + 3, consensus=ConsensusKind.RAFT,
                                validators=3, limits=BlockLimits(batch_timeout_ms=50))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for node in self.net.nodes():
            log = (self.root / f"{node.id}.log").open("ab")
            self.procs[node.id] = subprocess.Popen(
                [sys.executable, "-m", "consortia.node", "--config", str(node.config)],
                stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        for node in self.net.nodes():
            wait_until(lambda url=node.api: healthy(url), 45, f"{node.id} to answer")

    def urls(self) -> list[str]:
        return [n.api for n in self.net.nodes()]

    def config(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.urls()[0]}/v1/chain", timeout=10).json()["config"])

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.root.glob("*.log")))

    def close(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture
def raft3(tmp_path: Path) -> Iterator[Raft3]:
    c = Raft3(tmp_path)
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()


def _commit(c: Raft3, tx: SignedTx, via: int = 0) -> dict[str, Any]:
    with NodeClient(c.urls()[via], timeout=30) as client:
        r = client.submit(tx, wait=True, timeout=20)
        if r["status"] == "pending":
            r = client.wait(tx.id, timeout=20)
    assert r["status"] == "committed", f"{r}\n{c.logs()}"
    return r


def _on_every_validator(c: Raft3, height: int) -> None:
    def reached() -> bool:
        return all(httpx.get(f"{u}/v1/chain", timeout=10).json()["height"] >= height
                   for u in c.urls())
    wait_until(reached, 60, f"every validator to reach height {height}")


def _doc(org: str, tag: str) -> ContentRecord:
    return notary.content(f"{org}-{tag}-{os.urandom(4).hex()}", tag.encode())


def test_an_organization_joins_commits_and_leaves(raft3: Raft3) -> None:
    net = raft3.net
    _commit(raft3, sign(net.identity("org1/alice"), net.chain_id, _doc("org1", "before")))

    config = raft3.config()
    assert [o["id"] for o in config["organizations"]] == ["org1"]
    assert config["policies"]["membership"] == {"percentage": 50,
                                                "comparator": "GREATER_THAN"}
    added = _commit(raft3, net.add_org("org2", config=config), via=1)
    _on_every_validator(raft3, added["height"])
    for url in raft3.urls():
        cfg = httpx.get(f"{url}/v1/chain", timeout=10).json()["config"]
        assert [o["id"] for o in cfg["organizations"]] == ["org1", "org2"]
        assert cfg["sequence"] == config["sequence"] + 1

    # org2's client commits; the transaction shows its signer; its proof verifies offline.
    first = sign(net.identity("org2/alice"), net.chain_id, _doc("org2", "first"))
    receipt = _commit(raft3, first, via=2)
    assert receipt["height"] > added["height"]
    with NodeClient(raft3.urls()[0], timeout=30) as client:
        view = client.transaction(first.id)
        assert view["signer"]["org_id"] == "org2" and view["signer"]["name"] == "alice"
        body = client.transaction(bytes.fromhex(added["tx_id"]))["body"]
        assert (body["op"], body["org_id"], body["approvals"]) == ("add", "org2", 0)
        proof = verify_proof(client.proof(first.id), load_genesis(net.genesis_path))
    assert (proof.signer_org, proof.height) == ("org2", receipt["height"])

    # org2 leaves: its admin signs, org1's approves (2 of 2 > 50%).
    removal = net.remove_org("org2", config=raft3.config())
    assert isinstance(removal.payload.body, OrgUpdate)
    assert len(removal.payload.body.approvals) == 1
    removed = _commit(raft3, removal)
    _on_every_validator(raft3, removed["height"])
    for url in raft3.urls():
        with NodeClient(url, timeout=30) as client:
            with pytest.raises(NodeError) as err:
                client.submit(sign(net.identity("org2/alice"), net.chain_id,
                                   _doc("org2", "late")))
            assert (err.value.status, err.value.code) == (403, "unknown_identity"), err.value
    # org1 keeps committing; org2's old proof still verifies (history is not rewritten).
    _commit(raft3, sign(net.identity("org1/alice"), net.chain_id, _doc("org1", "after")))
    with NodeClient(raft3.urls()[1], timeout=30) as client:
        again = verify_proof(client.proof(first.id), load_genesis(net.genesis_path))
    assert again.signer_org == "org2"
