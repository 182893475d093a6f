"""``consortia up``: run the control plane here, with a demo network, until Ctrl-C.

``up`` starts ``python -m consortia.control serve`` as a child process (its own session,
output appended to ``<data dir>/control.log``), waits for ``/healthz``, prints where the
API and the explorer are and the platform owner's access key (from the credentials file the
server wrote on its first start), then creates — or finds again — the demo network through
the SDK client, drawing its nodes' statuses until they are AVAILABLE: three organizations,
the platform tenant's ``org1`` with the validators and two guest tenants' ``org2`` and
``org3`` that join by invitation and vote, each with a peer (``cli/demo.py``). Ctrl-C, SIGTERM or
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
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from consortia.cli.context import console, err_console, fail
from consortia.cli.demo import Demo, DemoSpec, create_demo
from consortia.cli.remote import styled
from consortia.cli.watch import LiveReporter
from consortia.sdk.control import (
    CREDENTIALS_FILE,
    UP_DATA_DIR,
    ControlClient,
    ControlError,
    Profile,
    load_profile,
)

DEFAULT_PORT = 7070
START_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0
"""Seconds the control plane gets to stop (it stops every node first) before a SIGKILL."""
LOG_FILE = "control.log"


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


def _show_demo(demo: Demo) -> None:
    net = demo.network
    t = Table(title=f"demo network [cyan]{net.name}[/] {net.id} · {net.consensus} · "
                    f"{styled(net.status)} · {len(demo.orgs)} organizations",
              title_justify="left")
    for col in ("organization", "member", "tenant (--profile)", "node", "type", "status",
                "API"):
        t.add_column(col)
    for org in demo.orgs:
        who = f"{org.tenant} ({org.profile})"
        for i, n in enumerate(org.nodes or [None]):
            first = i == 0
            t.add_row(org.member.name if first else "", org.member.id if first else "",
                      who if first else "", n.name if n else "-", n.node_type if n else "-",
                      styled(n.status) if n else "-", (n.api_endpoint or "-") if n else "-")
    console.print(t)
    for err in demo.errors:
        err_console.print(f"[yellow]demo organization not ready:[/] {err}")
    if len(demo.orgs) > 1:
        console.print(f"act as another organization: consortia --profile "
                      f"{demo.orgs[1].profile} member list {net.id}")
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
                        made = create_demo(c, r, DemoSpec(consensus=demo_consensus,
                                                          validators=demo_validators),
                                           credentials_file=root / CREDENTIALS_FILE)
                    _show_demo(made)
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
