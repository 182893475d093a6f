"""Corruption refusal: a node does not start on a damaged ledger, and says which block.

One chain is built once (blocks 1..4, two transactions each) and the node stopped;
each test damages a copy of its data directory with sqlite3, then starts a node on
it. The process must exit with status 2 without serving, and its stderr must say
``refusing to start`` and name block 2, the damaged one. ``--verify-chain`` (the
full check from genesis) must refuse the copy the same way.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from consortia.sdk import LocalNetwork, NodeClient, notary, sign
from consortia.types.block import Header
from consortia.types.config import BlockLimits
from tests.integration.helpers import NodeProcess, describe, healthy

pytestmark = pytest.mark.integration

CHAIN = "corrupt"
BAD = 2          # the damaged block; blocks 1, 3 and 4 are left alone
EXIT_TIMEOUT = 60


@pytest.fixture(scope="module")
def pristine(module_farm) -> LocalNetwork:
    net = module_farm.network("pristine", chain_id=CHAIN, limits=BlockLimits(batch_timeout_ms=20))
    node = module_farm.node(net)
    alice = net.identity("org1/alice")
    with NodeClient(node.url, timeout=30) as c:
        for h in range(1, 5):
            txs = [sign(alice, CHAIN, notary.content(f"b{h}-{i}", f"{h}/{i}".encode()))
                   for i in range(2)]
            out = c.submit_batch(txs, wait=True)
            assert [(r["height"], r["index"]) for r in out["results"]] == [(h, 0), (h, 1)], out
    assert node.stop() is not None
    return net


@pytest.fixture
def copy(pristine, farm, tmp_path) -> tuple[LocalNetwork, NodeProcess]:
    root = tmp_path / "copy"
    shutil.copytree(pristine.root, root)
    net = LocalNetwork.open(root)
    node = farm.node(net, start=False)
    # The copy is intact: it verifies before we damage it.
    out = node.verify_chain()
    assert out.returncode == 0, describe(out)
    return net, node


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _tx_envelope(db: sqlite3.Connection) -> None:
    (env,) = db.execute("SELECT envelope FROM txs WHERE height=? AND idx=1", (BAD,)).fetchone()
    db.execute("UPDATE txs SET envelope=? WHERE height=? AND idx=1", (_flip_last(env), BAD))


def _tx_envelopes_swapped(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT seq, envelope FROM txs WHERE height=? ORDER BY idx",
                      (BAD,)).fetchall()
    (s0, e0), (s1, e1) = rows
    db.execute("UPDATE txs SET envelope=? WHERE seq=?", (e1, s0))
    db.execute("UPDATE txs SET envelope=? WHERE seq=?", (e0, s1))


def _tx_result(db: sqlite3.Connection) -> None:
    db.execute("UPDATE txs SET status=1, code='revoked_identity' WHERE height=? AND idx=1",
               (BAD,))


def _tx_deleted(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM txs WHERE height=? AND idx=1", (BAD,))


def _tx_id(db: sqlite3.Connection) -> None:
    db.execute("UPDATE txs SET txid=? WHERE height=? AND idx=1", (bytes(32), BAD))


def _header_byte(db: sqlite3.Connection) -> None:
    (hdr,) = db.execute("SELECT header FROM blocks WHERE height=?", (BAD,)).fetchone()
    db.execute("UPDATE blocks SET header=? WHERE height=?", (_flip_last(hdr), BAD))


def _header_time(db: sqlite3.Connection) -> None:
    """A well-formed header that says the block was made a second later."""
    (hdr,) = db.execute("SELECT header FROM blocks WHERE height=?", (BAD,)).fetchone()
    h = Header.decode(hdr)
    forged = Header(h.chain_id, h.height, h.prev_hash, h.tx_root, h.results_root, h.tx_count,
                    h.timestamp_ms + 1000, h.proposer, h.config_height, h.config_hash)
    db.execute("UPDATE blocks SET header=? WHERE height=?", (forged.encode(), BAD))


def _certificate(db: sqlite3.Connection) -> None:
    (cert,) = db.execute("SELECT certificate FROM blocks WHERE height=?", (BAD,)).fetchone()
    db.execute("UPDATE blocks SET certificate=? WHERE height=?", (_flip_last(cert), BAD))


CORRUPTIONS: dict[str, Callable[[sqlite3.Connection], None]] = {
    "tx-envelope-byte": _tx_envelope,
    "tx-envelopes-swapped": _tx_envelopes_swapped,
    "tx-result": _tx_result,
    "tx-deleted": _tx_deleted,
    "tx-id": _tx_id,
    "block-header-byte": _header_byte,
    "block-header-time": _header_time,
    "block-certificate-byte": _certificate,
}


def _damage(ledger: Path, how: Callable[[sqlite3.Connection], None]) -> None:
    db = sqlite3.connect(ledger, isolation_level=None)
    try:
        db.execute("BEGIN")
        how(db)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _names_block(text: str) -> bool:
    return re.search(rf"\b(block|height) {BAD}\b", text) is not None


@pytest.mark.parametrize("how", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_node_refuses_to_start_on_a_damaged_ledger(copy, how):
    _, node = copy
    _damage(node.ledger, CORRUPTIONS[how])

    proc = node.spawn()
    try:
        rc = proc.wait(timeout=EXIT_TIMEOUT)
    except Exception:
        served = healthy(node.url)
        node.kill()
        pytest.fail(f"the node kept running on a damaged ledger (serving: {served}):\n"
                    f"{node.log_text()}")
    log = node.log_text()
    assert rc == 2, log
    assert "refusing to start" in log, log
    assert _names_block(log.split("refusing to start", 1)[1]), (
        f"the refusal does not name block {BAD}:\n{log}")
    assert not healthy(node.url)

    out = node.verify_chain()
    assert out.returncode == 2, describe(out)
    assert _names_block(out.stdout + out.stderr), describe(out)


def test_intact_copy_starts_and_serves(copy):
    """The control: the same copy, undamaged, starts and serves its four blocks."""
    _, node = copy
    node.start()
    with node.http() as http:
        assert http.get("/v1/chain").json()["height"] == 4
