"""``consortia dev validator add|list|remove`` against a raft network run by ``consortia dev up``.

Every step is the ``consortia`` command as a subprocess: ``dev init`` creates a raft-3
network, ``up`` runs it, ``validator add`` commits a fourth validator, starts its node in
the background and returns once it has caught up; ``chain info`` and ``validator list``
show it; refusals (duplicate, unknown, stale sequence, solo network) exit 1 with a
message and no traceback; ``validator remove`` stops the node it started, and Ctrl-C of
``up`` stops a node added while it ran along with its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import (
    START_TIMEOUT,
    cli_command,
    describe,
    free_port_block,
    healthy,
    run_cli,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.integration


class Up:
    """``consortia dev up -N root`` in its own process group (a terminal job), output in files."""

    def __init__(self, root: Path, logs: Path, base: int) -> None:
        self.root = root
        self.base = base
        """First API port (``dev init --port``); p2p ports from ``base + 4``."""
        self.out = logs / "up.stdout"
        self.err = logs / "up.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([*cli_command(), "dev", "up", "-N", str(root)],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=subprocess_env(), start_new_session=True)

    def output(self) -> str:
        logs = "".join(f"\n--- {p.parent.name} ---\n{p.read_text(errors='replace')[-3000:]}"
                       for p in sorted(self.root.glob("nodes/*/node.log")))
        return (f"up exit {self.proc.poll()}\n--- stdout ---\n{self.out.read_text()}\n"
                f"--- stderr ---\n{self.err.read_text()}{logs}")

    def wait_up(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"consortia dev up exited early:\n{self.output()}")
            return "Consortia is up" in self.out.read_text()
        wait_until(ready, START_TIMEOUT, "consortia dev up to start its nodes")

    def interrupt(self) -> None:
        """Ctrl-C in its terminal: SIGINT to the whole process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for pid_file in self.root.glob("nodes/*/node.pid"):  # nodes the CLI started
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    root = tmp_path / "net"
    # API ports base..base+3 (the fourth for the added validator), p2p base+4..base+7;
    # base+8 and base+9 free for the ports `validator add` picks by itself.
    base = free_port_block(10)
    init = run_cli("dev", "init", "-N", root, "--consensus", "raft", "--validators", "3",
                   "--port", base, "--p2p-port", base + 4, "--batch-timeout-ms", "50")
    assert init.returncode == 0, describe(init)
    u = Up(root, tmp_path, base)
    try:
        u.wait_up()
        yield u
    except BaseException:
        print(u.output())
        raise
    finally:
        u.cleanup()


def ok(proc: subprocess.CompletedProcess[str], up: Up) -> str:
    assert proc.returncode == 0, describe(proc) + "\n" + up.output()
    return proc.stdout


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, the reason on stderr, no traceback."""
    assert proc.returncode == 1, describe(proc)
    assert "Traceback" not in proc.stderr + proc.stdout, describe(proc)
    text = " ".join(proc.stderr.split())  # rich wraps long messages
    for needle in needles:
        assert needle in text, describe(proc)
    return text


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_add_list_and_remove_a_validator_of_a_running_raft_network(up: Up) -> None:
    root, base = up.root, up.base
    ids = ["validator0", "validator1", "validator2"]

    def cli(*args: str | Path | int) -> subprocess.CompletedProcess[str]:
        return run_cli(*map(str, args), network=root, timeout=120)

    put = json.loads(ok(cli("notary", "put", "-b", "before", "--text", "x", "--json"), up))
    assert put["status"] == "committed"

    # add: committed, node started in the background, caught up before the command returns.
    out = ok(cli("dev", "validator", "add", "validator3", "--org", "org2",
                 "--api-port", base + 3, "--p2p-port", base + 7), up)
    text = " ".join(out.split())
    assert "validator3 (org2) is a validator from block" in text, out
    assert "validator3 has caught up" in text, out
    pid = int((root / "nodes/validator3/node.pid").read_text())
    assert _pid_alive(pid)
    new_api = f"http://127.0.0.1:{base + 3}"

    rows = json.loads(ok(cli("chain", "info", "--json"), up))
    assert [r["id"] for r in rows] == [*ids, "validator3"] and all(r["up"] for r in rows), rows
    mine = json.loads(ok(cli("chain", "info", "--node", new_api, "--json"), up))
    assert mine["node"]["id"] == "validator3"
    assert "validator3" in [v["id"] for v in mine["validators"]]
    assert mine["height"] >= max(r["height"] for r in rows[:3]) - 1  # others may have moved

    listed = json.loads(ok(cli("dev", "validator", "list", "--json"), up))
    assert listed["sequence"] == 1
    v3 = listed["validators"][-1]
    assert v3 == {"id": "validator3", "org": "org2", "endpoint": f"127.0.0.1:{base + 7}",
                  "api": new_api, "height": v3["height"], "background_pid": pid}
    assert "validator3" in ok(cli("dev", "validator", "list"), up)

    # The new validator takes transactions and they commit.
    via_new = json.loads(ok(cli("notary", "put", "-b", "via-new", "--text", "y", "--node",
                                new_api, "--json"), up))
    assert via_new["status"] == "committed"

    # Refusals: a clear message and exit 1, nothing written.
    refused(cli("dev", "validator", "add", "validator3"),
            "validator3 is a validator already", "[duplicate_validator]")
    refused(cli("dev", "validator", "remove", "nosuch"), "no node 'nosuch'")
    refused(cli("dev", "validator", "remove", "validator1", "--sequence", "0"),
            "approved against configuration 0", "[stale_config]")
    assert [n["id"] for n in json.loads((root / "network.json").read_text())["nodes"]] == [
        *ids, "validator3"]

    # remove: committed; the node the CLI started is stopped.
    out = ok(cli("dev", "validator", "remove", "validator3"), up)
    assert "validator3 is no longer a validator" in out and f"stopped its node (pid {pid})" in out
    wait_until(lambda: not _pid_alive(pid), 15, "validator3's node to exit")
    assert not (root / "nodes/validator3/node.pid").exists()
    # network.json marks it retired: `up` and `chain info` leave it out; its id is spent.
    entry = next(n for n in json.loads((root / "network.json").read_text())["nodes"]
                 if n["id"] == "validator3")
    assert entry["retired"] is True
    info = json.loads(ok(cli("chain", "info", "--json"), up))
    assert [row["id"] for row in info] == ids
    refused(cli("dev", "validator", "add", "validator3"), "has run before")
    listed = json.loads(ok(cli("dev", "validator", "list", "--json"), up))
    assert [v["id"] for v in listed["validators"]] == ids and listed["sequence"] == 2
    refused(cli("dev", "validator", "remove", "validator3"),
            "validator3 is not a validator", "[unknown_validator]")
    put = json.loads(ok(cli("notary", "put", "-b", "after", "--text", "z", "--json"), up))
    assert put["status"] == "committed"

    # A validator added with the ports the command picks; Ctrl-C of `up` stops it too.
    out = ok(cli("dev", "validator", "add", "validator4", "--timeout", "45"), up)
    assert "validator4 has caught up" in " ".join(out.split()), out
    node4 = next(n for n in json.loads((root / "network.json").read_text())["nodes"]
                 if n["id"] == "validator4")
    # Round robin over the organizations, like `network init`: node 4 of org1; the first
    # ports after the network's that no node uses.
    assert node4["org"] == "org1"
    assert (node4["api"], node4["p2p"]) == (f"http://127.0.0.1:{base + 8}",
                                            f"127.0.0.1:{base + 9}")
    assert healthy(node4["api"])
    pid4 = int((root / "nodes/validator4/node.pid").read_text())
    up.interrupt()
    assert up.proc.returncode == 0, up.output()
    assert "all 4 nodes stopped" in up.out.read_text(), up.output()
    assert not _pid_alive(pid4)
    assert not any(healthy(f"http://127.0.0.1:{port}") for port in range(base, base + 3))


def test_a_solo_network_refuses_validator_changes(tmp_path: Path) -> None:
    """Refused before anything is written or any node is asked."""
    root = tmp_path / "solo"
    init = run_cli("dev", "init", "-N", root, "--port", free_port_block(1))
    assert init.returncode == 0, describe(init)
    before = (root / "network.json").read_text()
    for args in (("add", "validator1", "--org", "org1"), ("remove", "validator0")):
        refused(run_cli("dev", "validator", *args, network=root),
                "solo", "[config_not_allowed]")
    assert (root / "network.json").read_text() == before
    assert not (root / "orgs/org1/keystore/validator1").exists()
