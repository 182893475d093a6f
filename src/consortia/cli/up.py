"""``consortia up``: run the control plane here, with a demo network, until Ctrl-C.

``up`` starts ``python -m consortia.control serve`` as a child process (its own session,
output appended to ``<data dir>/control.log``), waits for ``/healthz``, prints where the
API and the explorer are and the platform owner's access key (from the credentials file the
server wrote on its first start), then creates — or finds again — the demo network through
the SDK client, drawing its nodes' statuses until they are AVAILABLE. Ctrl-C, SIGTERM or
SIGHUP stop the control plane, which stops its nodes (``--stop-nodes-on-exit``) and
resumes them at the next ``up``; the data directory (default ``.consortia/control``) keeps
everything, so ``up`` again finds the same platform, key and demo network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from consortia.cli.context import console, err_console, fail
from consortia.cli.remote import styled
from consortia.cli.watch import LiveReporter, Reporter, network_nodes, wait_until_ready
from consortia.sdk.control import (
    CREDENTIALS_FILE,
    UP_DATA_DIR,
    ControlClient,
    ControlError,
    Network,
    Profile,
    load_profile,
)

DEFAULT_PORT = 7070
START_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0
"""Seconds the control plane gets to stop (it stops every node first) before a SIGKILL."""
LOG_FILE = "control.log"


@dataclass(frozen=True)
class DemoSpec:
    """The demo network ``up`` makes: one organization for now (adding organizations to a
    running chain goes through invitations and proposals)."""

    name: str = "demo"
    consensus: str = "raft"
    validators: int = 3
    member: str = "org1"


def create_demo(client: ControlClient, progress: Reporter, spec: DemoSpec = DemoSpec(), *,
                timeout: float = 300.0) -> Network:
    """The demo network, AVAILABLE with all its nodes: the live one named ``spec.name`` if
    there is one (``up`` again), else a new quick-mode network with one member."""
    net = next((n for n in client.iter_networks()
                if n.name == spec.name and n.status not in ("DELETED", "DELETING")), None)
    if net is None:
        progress.step(f"creating network {spec.name} ({spec.consensus}, {spec.validators} "
                      "validator(s)) …")
        net = client.create_network(spec.name, consensus=spec.consensus,
                                    validators=spec.validators, member_name=spec.member,
                                    description="the demo network of consortia up")
    else:
        progress.step(f"found network {spec.name} ({net.id}); waiting for its nodes …")
    ready, _ = wait_until_ready(client, net.id, progress, timeout=timeout)
    return ready


def _server_command(data_dir: Path, host: str, port: int, database_url: str | None,
                    node_ports: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "consortia.control", "serve", "--data-dir", str(data_dir),
           "--host", host, "--port", str(port), "--stop-nodes-on-exit"]
    if database_url:
        cmd += ["--database-url", database_url]
    if node_ports:
        cmd += ["--node-ports", node_ports]
    return cmd


def _log_tail(log: Path, start: int, lines: int = 25) -> str:
    try:
        with log.open("rb") as f:
            f.seek(start)
            tail = f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in tail)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, start: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with ControlClient(url, None, timeout=2.0) as probe, \
            err_console.status(f"starting the control plane at {url} …"):
        while True:
            if proc.poll() is not None:
                fail(f"the control plane exited with status {proc.returncode}; its log is "
                     f"{log}{_log_tail(log, start)}")
            try:
                if probe.health():
                    return
            except ControlError:
                pass
            if time.monotonic() >= deadline:
                _stop(proc)
                fail(f"the control plane did not answer at {url} within {START_TIMEOUT:.0f} "
                     f"s; its log is {log}{_log_tail(log, start)}")
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM the control plane (it stops its nodes), SIGKILL it if it lingers."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not abandon it
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        err_console.print(f"[yellow]the control plane did not stop within "
                          f"{STOP_TIMEOUT:.0f} s: killing it (its nodes may still run)[/]")
        proc.kill()
        return proc.wait()


def _panel(url: str, data_dir: Path, profile: Profile | None, log: Path) -> Panel:
    creds = data_dir / CREDENTIALS_FILE
    if profile is not None:
        keys = (f"access key id {profile.credentials.access_key_id}\n"
                f"secret        {profile.credentials.secret}\n"
                f"credentials   {creds}  (0600; the CLI and SDK read it from here)\n")
    else:
        keys = f"[yellow]no credentials file at {creds}[/]\n"
    env = "" if data_dir.absolute() == (Path.cwd() / UP_DATA_DIR).absolute() else (
        f"  export CONSORTIA_CREDENTIALS={creds}\n")
    return Panel.fit(
        "[bold green]Consortia is up[/]  the control plane\n\n"
        f"API           {url}   (OpenAPI: {url}/openapi.json)\n"
        f"explorer      {url}/explorer\n"
        + keys
        + f"data dir      {data_dir}\n"
        f"log           {log}\n\n"
        "[bold]Try it[/] (in another terminal, in this directory):\n"
        + env
        + "  consortia network list\n"
        "  consortia network create ledger --consensus raft --validators 3\n"
        "  consortia audit --limit 10\n\n"
        "Ctrl-C stops the control plane and its nodes; `consortia up` again resumes them.",
        title="consortia up")


def _show_demo(c: ControlClient, net: Network) -> None:
    t = Table(title=f"demo network [cyan]{net.name}[/] {net.id} · {net.consensus} · "
                    f"{styled(net.status)}", title_justify="left")
    for col in ("node", "member", "status", "API"):
        t.add_column(col)
    for n in network_nodes(c, net.id):
        t.add_row(n.name, n.member_id, styled(n.status), n.api_endpoint or "-")
    console.print(t)
    console.print(f"demo network id [cyan]{net.id}[/]   genesis: consortia network genesis "
                  f"{net.id}")


def up(data_dir: Annotated[Path | None, typer.Option(
           "--data-dir", help="where the control plane keeps everything (default "
           "$CONSORTIA_DATA_DIR or .consortia/control)")] = None,
       host: Annotated[str, typer.Option(help="address the API listens on")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="API port")] = DEFAULT_PORT,
       database_url: Annotated[str | None, typer.Option(
           help="default: SQLite in the data dir")] = None,
       node_ports: Annotated[str | None, typer.Option(
           help="FIRST-LAST ports for nodes (default 20000-32000)")] = None,
       demo: Annotated[bool, typer.Option("--demo/--no-demo",
                                          help="create (or find) the demo network")] = True,
       demo_consensus: Annotated[str, typer.Option(help="the demo's consensus")] = "raft",
       demo_validators: Annotated[int, typer.Option(min=1, help="the demo's validators")
                                  ] = 3,
       ) -> None:
    """Run the control plane (API, explorer, chains) with a demo network, until Ctrl-C."""
    root = (data_dir or Path(os.environ.get("CONSORTIA_DATA_DIR", str(UP_DATA_DIR)))).absolute()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = root / LOG_FILE
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104

    def _interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # A supervisor's SIGTERM or a closed terminal's SIGHUP stops the control plane too,
    # never orphans it; installed before it starts so no window leaves it behind.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)  # SIGINT too: a background job may inherit SIG_IGN
    with ControlClient(url, None, timeout=2.0) as probe:
        try:
            if probe.health():
                fail(f"something already answers at {url} (another `consortia up`?); "
                     "stop it or choose another --port")
        except ControlError:
            pass
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("ab") as out:
            start = out.tell()
            proc = subprocess.Popen(
                _server_command(root, host, port, database_url, node_ports), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_healthy(proc, url, log, start)
        try:
            profile: Profile | None = load_profile(path=root / CREDENTIALS_FILE, env={})
        except ControlError as exc:
            err_console.print(f"[yellow]note:[/] {exc}")
            profile = None
        console.print(_panel(url, root, profile, log))
        if demo and profile is not None:
            with ControlClient(url, profile.credentials) as c:
                try:
                    with LiveReporter() as r:
                        net = create_demo(c, r, DemoSpec(consensus=demo_consensus,
                                                         validators=demo_validators))
                    _show_demo(c, net)
                except ControlError as exc:
                    err_console.print(f"[yellow]demo network:[/] {exc}")
        console.print("[bold]serving[/]; Ctrl-C stops the control plane and its nodes")
        code = proc.wait()
        fail(f"the control plane exited with status {code}; its log is {log}"
             f"{_log_tail(log, start)}")
    except KeyboardInterrupt:
        if proc is not None:
            with err_console.status("stopping the control plane and its nodes …"):
                code = _stop(proc)
            console.print("control plane stopped" + ("" if code == 0 else
                                                     f" (exit status {code})"))
