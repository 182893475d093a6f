"""``python -m consortia.control serve``: the control plane as a process.

::

    python -m consortia.control serve --data-dir /var/lib/consortia --port 7070

Everything lives in the data directory (mode 0700):

- ``master.key`` — the master key (0600), generated on the first start;
- ``control.sqlite3`` — the database, unless ``--database-url`` names another;
- ``credentials`` — the platform owner's access key and the endpoint (0600, the profile
  file of ``consortia.sdk.control``), written on the first start, when ``init_platform``
  creates the platform tenant, its owner and the owner's first key; later starts reuse
  them and only rewrite the endpoint if it changed;
- ``networks/``, ``provisioner/`` — the chains' files and the local provisioner's state.

SIGTERM or SIGINT stops the server cleanly. Node processes keep running and are adopted
by the next start (``services/runtime.py``) — unless ``--stop-nodes-on-exit`` (what
``consortia up`` asks for): then they are stopped, their ids written to
``stopped-nodes.json``, and the next start resumes exactly those.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn

from consortia.control.http import create_app
from consortia.control.provision import NodeStatus as ProvStatus
from consortia.control.services import Control, init_platform
from consortia.control.settings import ControlSettings
from consortia.control.store import db
from consortia.sdk.control import CREDENTIALS_FILE, read_profiles, write_profile
from consortia.sdk.signing import Credentials
from consortia.types.errors import Conflict, ConsortiaError

log = logging.getLogger("consortia.control")

MASTER_KEY_FILE = "master.key"
DATABASE_FILE = "control.sqlite3"
STOPPED_NODES_FILE = "stopped-nodes.json"
DEFAULT_PORT = 7070
PLATFORM_TENANT = "admin"
PLATFORM_OWNER = "admin"


def _port_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give FIRST-LAST, e.g. 20000-32000"
                                         ) from None
    return first, last


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m consortia.control",
                                description="The Consortia control plane.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the control-plane API (initializing it first)")
    s.add_argument("--data-dir", type=Path, required=True,
                   help="master key, database, credentials, chains")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--database-url", default=None,
                   help="default: sqlite:///<data dir>/control.sqlite3")
    s.add_argument("--endpoint", default=None,
                   help="the URL clients use (written to the credentials file); default "
                        "http://<host>:<port>")
    s.add_argument("--tenant", default=PLATFORM_TENANT,
                   help="the platform tenant's name, on the first start")
    s.add_argument("--owner", default=PLATFORM_OWNER,
                   help="its owner's username, on the first start")
    s.add_argument("--node-host", default="127.0.0.1", help="address nodes listen on")
    s.add_argument("--node-ports", type=_port_range, default=(20_000, 32_000),
                   help="FIRST-LAST: ports given to nodes (default 20000-32000)")
    s.add_argument("--stop-nodes-on-exit", action="store_true",
                   help="stop the nodes when the server stops (resumed at the next start)")
    s.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    return p


def initialize(data_dir: Path, database_url: str, endpoint: str, *, tenant: str,
               owner: str) -> str:
    """First start: the platform tenant, owner and key, and the credentials file. Later
    starts: migrate the database, keep the credentials file's endpoint current. What
    happened, in a sentence for the log."""
    master_key = data_dir / MASTER_KEY_FILE
    creds_file = data_dir / CREDENTIALS_FILE
    if not creds_file.exists():
        try:
            init = init_platform(database_url, master_key, tenant=tenant, owner=owner)
        except Conflict:
            db.upgrade(database_url)
            return (f"the control plane was initialized before, but {creds_file} is gone: "
                    "use another access key of the platform owner")
        write_profile(creds_file, endpoint, init.credentials)
        return (f"initialized: tenant {tenant!r}, owner {owner!r}, access key "
                f"{init.credentials.access_key_id} in {creds_file}")
    db.upgrade(database_url)
    profile = read_profiles(creds_file).get("default", {})
    if profile.get("endpoint") != endpoint and profile.get("access_key_id") \
            and profile.get("secret"):
        write_profile(creds_file, endpoint,
                      Credentials(profile["access_key_id"], profile["secret"]))
    return f"reusing {creds_file}"


def _resume_stopped(ctl: Control, data_dir: Path) -> None:
    """Start again the nodes the previous run stopped on exit (``--stop-nodes-on-exit``)."""
    marker = data_dir / STOPPED_NODES_FILE
    if not marker.exists():
        return
    try:
        ids = set(json.loads(marker.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring %s: %s", marker, exc)
        ids = set()
    prov = ctl.runtime.provisioner
    for state in prov.nodes():
        if state.spec.node_id in ids and state.status is ProvStatus.STOPPED:
            log.info("resuming node %s", state.spec.node_id)
            prov.start(state.spec.node_id)
    marker.unlink(missing_ok=True)


def _stop_nodes(ctl: Control, data_dir: Path) -> None:
    """Record the running nodes, then stop them with the control plane."""
    prov = ctl.runtime.provisioner
    ids = [s.spec.node_id for s in prov.nodes()
           if s.status not in (ProvStatus.DELETED, ProvStatus.STOPPED)]
    (data_dir / STOPPED_NODES_FILE).write_text(json.dumps(sorted(ids)))
    log.info("stopping %d node(s)", len(ids))
    ctl.close(stop_nodes=True)


def serve(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database_url = args.database_url or f"sqlite:///{data_dir / DATABASE_FILE}"
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    endpoint = args.endpoint or f"http://{host}:{args.port}"
    log.info("%s", initialize(data_dir, database_url, endpoint, tenant=args.tenant,
                              owner=args.owner))
    settings = ControlSettings.from_files(
        database_url, data_dir / MASTER_KEY_FILE, data_dir=data_dir,
        node_host=args.node_host, node_ports=tuple(args.node_ports))
    ctl = Control(settings)
    stops: list[int] = []
    servers: list[uvicorn.Server] = []

    def _on_signal(signum: int, _frame: object) -> None:
        # Ours outside uvicorn's run, and called again by uvicorn, which re-raises the
        # signals it caught once it has shut down: record, never die before the cleanup.
        stops.append(signum)
        for srv in servers:
            srv.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    ok = started = False
    try:
        ctl.start()  # adopt the nodes that run, reconcile statuses (before serving)
        started = True
        _resume_stopped(ctl, data_dir)
        app = create_app(settings, control=ctl)
        server = uvicorn.Server(uvicorn.Config(
            app, host=args.host, port=args.port, log_level=args.log_level,
            access_log=args.log_level == "debug", loop="asyncio"))
        servers.append(server)
        if not stops:
            server.run()  # returns on SIGTERM / SIGINT, after a graceful shutdown
            ok = server.started
        else:
            ok = True
    finally:
        if args.stop_nodes_on_exit and started:
            _stop_nodes(ctl, data_dir)
        else:
            ctl.close()  # the nodes keep running; the next start adopts them
    log.info("control plane stopped")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.umask(0o077)  # keys, credentials and chain files: the owner's only
    try:
        return serve(args)
    except (ConsortiaError, OSError) as exc:
        log.error("cannot serve: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
