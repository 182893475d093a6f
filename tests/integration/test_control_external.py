"""An external peer, real processes (ADR 0019): the network is made through the API (the
app's ``LocalProvisioner`` runs its validator), an external peer is created, its join
bundle downloaded, and ``consortia node join BUNDLE`` is run as a subprocess in another
directory — the node syncs, the control plane's poller sees it AVAILABLE, a transaction
submitted through it commits; stopped, it becomes UNHEALTHY; deleted, its identity is
revoked. Waits are on statuses, polled, never on measured durations.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consortia.sdk import NodeClient, notary, sign
from consortia.sdk.bundle import PASSPHRASE_ENV
from tests.control_helpers import ControlWorld
from tests.integration.control_real import (
    client_identity,
    node_logs,
    real_control_world,
    wait_for,
)
from tests.integration.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASS = "external peer passphrase"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path, external_poll_seconds=0.2,
                            external_probe_timeout_seconds=2) as w:
        yield w


def _consortia() -> list[str]:
    exe = shutil.which("consortia", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "consortia.cli.main"]


def test_a_member_runs_an_external_peer_from_its_join_bundle(world: ControlWorld,
                                                            tmp_path: Path) -> None:
    elsewhere = tmp_path / "member-machine"
    elsewhere.mkdir()
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "ext", "profile": "ant",
                                          "consensus": "raft", "validators": 1})
        assert r.status_code == 201, r.text
        net = r.json()
        path = f"/v1/networks/{net['id']}"
        nodes = f"{path}/members/{net['member']['id']}/nodes"
        logs = lambda: node_logs(world, net["id"])  # noqa: E731
        wait_for(lambda: c.get(path).json(), lambda d: d["status"] == "AVAILABLE",
                 "the network did not become AVAILABLE", logs)
        alice = client_identity(world, net, "alice")
        (validator,) = c.get(nodes).json()["items"]
        with NodeClient(validator["api_endpoint"], timeout=30) as vc:
            first = sign(alice, net["chain_id"], notary.digest("before-join", b"1"))
            assert vc.submit(first, wait=True, timeout=20)["status"] == "committed"

        endpoint = f"http://127.0.0.1:{free_port()}"
        r = c.post(nodes, json={"name": "far", "node_type": "peer", "external": True,
                                "api_endpoint": endpoint})
        assert r.status_code == 201, r.text
        peer = r.json()
        r = c.post(f"{nodes}/{peer['id']}/join-bundle", json={"passphrase": PASS})
        assert r.status_code == 200, r.text
        bundle = elsewhere / "far.join.json"
        bundle.write_bytes(r.content)
        (elsewhere / "pass").write_text(PASS + "\n")

        node_dir = elsewhere / "node"
        out = open(elsewhere / "join.log", "wb")  # noqa: SIM115 - closed below
        env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
        proc = subprocess.Popen(
            [*_consortia(), "node", "join", str(bundle), "--dir", str(node_dir),
             "--passphrase-file", str(elsewhere / "pass"),
             "--genesis-hash", net["genesis_hash"]],
            cwd=elsewhere, stdout=out, stderr=subprocess.STDOUT, env=env)
        joined = lambda: (elsewhere / "join.log").read_text(errors="replace")  # noqa: E731
        try:
            done: dict[str, Any] = wait_for(
                lambda: c.get(f"{nodes}/{peer['id']}").json(),
                lambda d: d["status"] == "AVAILABLE" or proc.poll() is not None,
                "the external peer did not become AVAILABLE", joined)
            assert proc.poll() is None, joined()
            assert (done["status"], done["health"]) == ("AVAILABLE", "PASSING")
            assert oct(node_dir.stat().st_mode & 0o777) == "0o700"
            assert not (node_dir / "passphrase").exists()

            with NodeClient(endpoint, timeout=30) as pc:
                info = pc.chain_info()
                assert info["node"]["role"] == "peer" and info["node"]["id"] == peer["id"]
                assert info["genesis_hash"] == net["genesis_hash"]
                assert pc.receipt(first.id)["status"] == "committed"  # synced
                tx = sign(alice, net["chain_id"], notary.content("via-external", b"far away"))
                receipt = pc.submit(tx, wait=True, timeout=20)
                assert receipt["status"] == "committed", receipt
            with NodeClient(validator["api_endpoint"], timeout=30) as vc:
                assert vc.receipt(tx.id)["height"] == receipt["height"]

            proc.send_signal(signal.SIGTERM)  # the member stops its node
            proc.wait(timeout=30)
            wait_for(lambda: c.get(f"{nodes}/{peer['id']}").json(),
                     lambda d: d["status"] == "UNHEALTHY",
                     "the stopped external peer did not become UNHEALTHY", joined)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            out.close()

        r = c.delete(f"{nodes}/{peer['id']}", params={"confirm_name": "far"})
        assert r.status_code == 204, r.text
        assert c.get(f"{nodes}/{peer['id']}").json()["status"] == "DELETED"
        certs = c.get(f"{path}/members/{net['member']['id']}/certificates").json()["items"]
        mine = [x for x in certs if peer["id"] in x["subject"]]
        assert [x["status"] for x in mine] == ["REVOKED"], mine
