"""``consortia contract`` and ``consortia account`` against a real ganache (npm).

The Consortia quorum node will speak the same JSON-RPC; until it exists, ganache is the
real Ethereum node these tests run against (started by the ``ganache`` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from consortia.sdk.evm.devnodes import DevNode, rpc
from tests.evm_helpers import EXAMPLES
from tests.integration.helpers import cli_command, describe, subprocess_env

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
OTHER = "0x000000000000000000000000000000000000dEaD"


class World:
    """The working directory of the tests: accounts, password file, artifacts, token."""

    def __init__(self, root: Path, node: DevNode) -> None:
        self.root = root
        self.node = node
        self.password_file = root / "password"
        self.password_file.write_text(PASSWORD + "\n")
        self.token = ""
        self.owner = ""

    def run(self, *args: str, stdin: str | None = None, password: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        extra = ["--password-file", str(self.password_file)] if password else []
        cmd = [*cli_command(), *args[:2], *extra, *args[2:]]  # options before a "--"
        return subprocess.run(cmd, capture_output=True, text=True,
                              input=stdin, cwd=self.root, timeout=120, check=False,
                              env=subprocess_env(CONSORTIA_RPC=self.node.url,
                                                 CONSORTIA_ACCOUNTS=str(self.root / "acc"),
                                                 **(env or {})))

    def ok(self, *args: str, password: bool = True) -> Any:
        proc = self.run(*args, "--json", password=password)
        assert proc.returncode == 0, describe(proc)
        return json.loads(proc.stdout)

    def nonce(self, address: str) -> int:
        return int(rpc(self.node.url, "eth_getTransactionCount", [address, "latest"]), 16)


@pytest.fixture(scope="module")
def world(ganache: DevNode, tmp_path_factory: pytest.TempPathFactory) -> World:
    w = World(tmp_path_factory.mktemp("contract-cli"), ganache)
    made = w.ok("account", "new")
    w.owner = made["address"]
    assert Path(made["path"]).stat().st_mode & 0o777 == 0o600
    ganache.fund([w.owner])
    compiled = w.ok("contract", "compile", str(EXAMPLES / "Token.sol"), "--out", "build",
                    password=False)
    assert compiled["artifacts"] == [str(Path("build") / "Token.json")]
    deployed = w.ok("contract", "deploy", "build/Token.json", "Consortia Token", "CTK",
                    "1_000_000", "--key", w.owner)
    assert deployed["status"] == 1
    (log,) = deployed["logs"]
    assert log["event"] == "Transfer" and log["args"]["value"] == 1_000_000
    w.token = deployed["contract_address"]
    return w


def test_account_list_shows_the_key_file(world: World) -> None:
    listed = world.ok("account", "list", password=False)
    assert [a["address"] for a in listed] == [world.owner]
    doc = json.loads(Path(listed[0]["path"]).read_text())
    assert doc["crypto"]["kdf"] == "scrypt"  # encrypted; no private key in clear


def test_send_transfer_then_call_balance_of(world: World) -> None:
    before = world.ok("contract", "call", world.token, "balanceOf", OTHER,
                      "--abi", "build/Token.json", password=False)["result"]
    sent = world.ok("contract", "send", world.token, "transfer", OTHER, "250",
                    "--abi", "build/Token.json", "--key", world.owner)
    assert sent["status"] == 1 and sent["gas_used"] > 21_000
    (log,) = sent["logs"]
    assert log["event"] == "Transfer"
    assert log["args"] == {"from": world.owner, "to": OTHER, "value": 250}
    after = world.ok("contract", "call", world.token, "balanceOf", OTHER,
                     "--abi", "build/Token.json", password=False)["result"]
    assert after == before + 250
    by_sig = world.ok("contract", "call", world.token, "balanceOf(address)", world.owner,
                      "--abi", "build/Token.json", password=False)["result"]
    assert by_sig == 1_000_000 - after


def test_overdraft_surfaces_insufficient_balance_and_sends_nothing(world: World) -> None:
    nonce = world.nonce(world.owner)
    proc = world.run("contract", "send", world.token, "transfer", OTHER, "10_000_000",
                     "--abi", "build/Token.json", "--key", world.owner)
    assert proc.returncode == 1, describe(proc)
    assert "insufficient balance" in proc.stderr and "[reverted]" in proc.stderr
    assert world.nonce(world.owner) == nonce  # refused at estimation: nothing sent


def test_mined_revert_shows_status_and_reason(world: World) -> None:
    """With an explicit gas limit there is no estimation: the transaction is mined, fails,
    and the reason is recovered by replaying it."""
    nonce = world.nonce(world.owner)
    proc = world.run("contract", "send", world.token, "transfer", OTHER, "10_000_000",
                     "--abi", "build/Token.json", "--key", world.owner, "--gas", "100000",
                     "--json")
    assert proc.returncode == 1, describe(proc)
    outcome = json.loads(proc.stdout)
    assert outcome["status"] == 0 and outcome["revert_reason"] == "insufficient balance"
    assert "insufficient balance" in proc.stderr
    assert world.nonce(world.owner) == nonce + 1


def test_wrong_password_is_refused(world: World, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    proc = world.run("contract", "send", world.token, "transfer", OTHER, "1", "--abi",
                     "build/Token.json", "--key", world.owner, "--password-file", str(wrong),
                     password=False)
    assert proc.returncode == 1 and "[wrong_password]" in proc.stderr, describe(proc)


@pytest.mark.parametrize(("args", "code"), [
    (("transfer", "not-an-address", "1"), "bad_argument"),
    (("transfer", OTHER, "-1"), "bad_argument"),
    (("transfer", OTHER), "bad_argument"),
    (("mint", OTHER, "1"), "unknown_function"),
])
def test_bad_arguments_are_refused_before_sending(world: World, args: tuple[str, ...],
                                                  code: str) -> None:
    nonce = world.nonce(world.owner)
    proc = world.run("contract", "send", "--abi", "build/Token.json", "--key", world.owner,
                     world.token, args[0], "--", *args[1:])
    assert proc.returncode == 1 and f"[{code}]" in proc.stderr, describe(proc)
    assert world.nonce(world.owner) == nonce


def test_import_reads_the_key_from_stdin_not_the_command_line(world: World) -> None:
    key = "0x" + os.urandom(32).hex()
    proc = world.run("account", "import", "--json", stdin=key + "\n")
    assert proc.returncode == 0, describe(proc)
    assert key not in proc.stdout and key[2:] not in Path(json.loads(proc.stdout)["path"]
                                                         ).read_text()


def test_unreachable_rpc_is_a_clear_error(world: World) -> None:
    proc = world.run("contract", "call", world.token, "totalSupply", "--abi",
                     "build/Token.json", "--rpc", "http://127.0.0.1:9", password=False)
    assert proc.returncode == 1 and "[rpc_unreachable]" in proc.stderr, describe(proc)
