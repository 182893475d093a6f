"""The journeys of ``docs/journeys.md``, run as the doc gives them: each block marked
``<!-- journey: NAME -->`` is read from the doc and run line by line, each command with the
real ``consortia`` console script in a process of its own, against a control plane served
over HTTP (uvicorn on loopback) whose ``LocalProvisioner`` starts real node processes.

The doc's lines are the small part of bash a user types: ``VAR=$(consortia … --json | jq
-r PATH)`` (this test evaluates the jq path itself, so CI needs no jq), ``consortia …``,
and ``! consortia …  # refused: CODE`` (must exit 1 with that error code). Anything else
fails the test, so the doc cannot grow a step this runner would silently skip; the whole
block must also parse as bash (``bash -n``).

The working directory holds ``.consortia/control/credentials`` with the platform tenant's
owner as ``default``, as ``consortia up`` leaves it (acme stands for up's ``admin``).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consortia.sdk import load_genesis, verify_proof
from consortia.sdk.control import write_profile
from tests.control_helpers import ControlWorld, live_server
from tests.integration.control_real import node_logs, real_control_world
from tests.integration.helpers import cli_command, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOC = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"
COMMAND_TIMEOUT = 180.0
"""Seconds one command may take (creates wait for node processes); never asserted."""

_CAPTURE = re.compile(r"^(?P<var>[A-Z][A-Z0-9_]*)=\$\((?P<cmd>consortia .*?)"
                      r"(?: \| jq -r (?P<path>\S+))?\)$")
_REFUSED = re.compile(r"#\s*refused:\s*(?P<code>[a-z_]+)\s*$")
_VAR = re.compile(r"\$(?P<name>[A-Z][A-Z0-9_]*)")
_JQ_STEP = re.compile(r"\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)|\.?\[(?P<index>\d+)\]")


@dataclass(frozen=True)
class Step:
    """One line of a journey: a command, the variable its output sets, or its refusal."""

    line: str
    argv: list[str]
    """After ``consortia``, with ``$VARS`` still in."""
    var: str | None = None
    jq: str | None = None
    refused: str | None = None


def journey(name: str) -> tuple[str, list[Step]]:
    """The bash block after ``<!-- journey: name -->`` in the doc, and its steps."""
    text = DOC.read_text()
    m = re.search(rf"<!-- journey: {re.escape(name)} -->\s*```bash\n(.*?)```", text, re.S)
    assert m, f"no journey {name!r} in {DOC}"
    steps = []
    for raw in m.group(1).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        refused = None
        if line.startswith("! "):
            r = _REFUSED.search(line)
            assert r, f"a refused step names its error code (# refused: CODE): {line}"
            refused, line = r.group("code"), line[2:].strip()
        cap = _CAPTURE.match(line)
        command = cap.group("cmd") if cap else line
        argv = shlex.split(command, comments=True)
        assert argv[0] == "consortia", f"not a consortia command: {raw}"
        steps.append(Step(raw.strip(), argv[1:], cap.group("var") if cap else None,
                          cap.group("path") if cap else None, refused))
    return m.group(1), steps


def jq(doc: Any, path: str) -> str:
    """``jq -r PATH`` for the paths the doc uses: ``.a.b``, ``.[0].id``, ``.a[0].b``."""
    path = path.strip("'\"")
    pos, value = 0, doc
    while pos < len(path):
        m = _JQ_STEP.match(path, pos)
        assert m, f"unsupported jq path {path!r}"
        value = value[m.group("key")] if m.group("key") else value[int(m.group("index"))]
        pos = m.end()
    return value if isinstance(value, str) else json.dumps(value)


def run_journey(name: str, cwd: Path, logs: Any) -> dict[str, str]:
    """Every step of journey ``name``, in order; the variables it set."""
    block, steps = journey(name)
    if shutil.which("bash"):
        parsed = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True,
                                check=False)
        assert parsed.returncode == 0, f"the {name} journey is not valid bash: {parsed.stderr}"
    env = subprocess_env()
    for var in ("CONSORTIA_ENROLLMENT_SECRET", "CONSORTIA_CREDENTIALS", "CONSORTIA_PROFILE",
                "CONSORTIA_ENDPOINT", "CONSORTIA_ACCESS_KEY_ID", "CONSORTIA_SECRET"):
        env.pop(var, None)
    values: dict[str, str] = {}

    def expand(arg: str) -> str:
        def value(m: re.Match[str]) -> str:
            assert m.group("name") in values, f"${m.group('name')} is not set yet"
            return values[m.group("name")]
        return _VAR.sub(value, arg)

    for step in steps:
        argv = [expand(a) for a in step.argv]
        proc = subprocess.run([*cli_command(), *argv], cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
        said = (f"`{step.line}`\n$ consortia {shlex.join(argv)}\nexit {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n"
                f"{proc.stderr[-3000:]}\n{logs()}")
        if step.refused is not None:
            assert proc.returncode == 1, f"expected a refusal:\n{said}"
            assert f"[{step.refused}]" in proc.stderr, f"expected {step.refused}:\n{said}"
            continue
        assert proc.returncode == 0, said
        if step.var is not None:
            out = json.loads(proc.stdout)
            values[step.var] = jq(out, step.jq) if step.jq else proc.stdout.strip()
            assert values[step.var] and values[step.var] != "null", said
    return values


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    with real_control_world(tmp_path) as w:
        yield w


@pytest.fixture
def home(world: ControlWorld, tmp_path: Path) -> Iterator[Path]:
    """The user's working directory, with the credentials ``consortia up`` would leave."""
    cwd = tmp_path / "user"
    with live_server(world.app) as server:
        write_profile(cwd / ".consortia" / "control" / "credentials", server.url,
                      world.creds("acme"))
        yield cwd


def all_logs(world: ControlWorld) -> str:
    assert world.settings.data_dir is not None
    out = [node_logs(world, d.name) for d in (world.settings.data_dir / "networks").glob("*")]
    for log in sorted((world.settings.data_dir / "networks").glob("*/channels/*/nodes/*/"
                                                                  "node.log")):
        out.append(f"--- {log.parent.name} ---\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


def test_the_doc_has_both_journeys_and_only_consortia_commands() -> None:
    for name in ("alibaba", "amb"):
        _, steps = journey(name)
        assert len(steps) >= 10
    _, steps = journey("alibaba")
    assert [s.refused for s in steps if s.refused] == ["not_found", "unknown_identity"]
    assert jq([{"nodes": [{"api_endpoint": "x"}]}], ".[0].nodes[0].api_endpoint") == "x"


def test_alibaba_journey_through_the_cli(world: ControlWorld, home: Path) -> None:
    values = run_journey("alibaba", home, lambda: all_logs(world))
    # what the journey left behind, read back: the proof verified (the verify step), and
    # the channel's chain is the one erin's client directory names
    client = json.loads((home / "org2-trade" / "network.json").read_text())
    assert client["chain_id"] == values["CHN"] and client["default_identity"] == \
        f"{values['ORG2']}/erin"
    genesis = load_genesis(home / "org2-trade" / "genesis.json")
    checked = verify_proof((home / "invoice-42.proof.json").read_bytes(), genesis)
    assert (checked.chain_id, checked.signer_org, checked.signer_name) == (
        values["CHN"], values["ORG2"], "erin")


def test_amb_journey_through_the_cli(world: ControlWorld, home: Path) -> None:
    values = run_journey("amb", home, lambda: all_logs(world))
    client = json.loads((home / "org-b-client" / "network.json").read_text())
    assert client["chain_id"] == values["NET"]
    assert [n["role"] for n in client["nodes"]] == ["peer"]  # B's own peer took the tx
