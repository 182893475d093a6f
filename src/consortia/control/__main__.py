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

Placement (``--provisioner``, or ``CONSORTIA_PROVISIONER``): ``local`` (the default) runs
nodes as processes of this machine; ``kubernetes`` places each as a StatefulSet in the
cluster of ``--kubeconfig`` (``CONSORTIA_KUBECONFIG``), in ``--namespace``, from
``--node-image`` (no default), and records their Services' DNS names as their endpoints:
the control plane must then resolve and reach those names (it runs in the cluster, or on
a host with its DNS and routes). Each ``--k8s-…``/kubernetes flag has a ``CONSORTIA_…``
variable, named in ``--help``; a flag wins over its variable. docs/cli.md, "Against a
Kubernetes cluster".

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
from consortia.control.provision.kubernetes import KubernetesSettings
from consortia.control.services import Control, init_platform
from consortia.control.settings import ControlSettings
from consortia.control.store import db
from consortia.sdk.control import CREDENTIALS_FILE, read_profiles, write_profile
from consortia.sdk.signing import Credentials
from consortia.types.errors import ConfigError, Conflict, ConsortiaError

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
    _placement_arguments(s)
    s.add_argument("--stop-nodes-on-exit", action="store_true",
                   help="stop the nodes when the server stops (resumed at the next start)")
    s.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    return p


_K8S_FLAGS: dict[str, tuple[str, str]] = {
    # dest: (flag, environment variable)
    "kubeconfig": ("--kubeconfig", "CONSORTIA_KUBECONFIG"),
    "kube_context": ("--kube-context", "CONSORTIA_KUBE_CONTEXT"),
    "namespace": ("--namespace", "CONSORTIA_K8S_NAMESPACE"),
    "node_image": ("--node-image", "CONSORTIA_NODE_IMAGE"),
    "storage_class": ("--storage-class", "CONSORTIA_K8S_STORAGE_CLASS"),
    "cluster_domain": ("--cluster-domain", "CONSORTIA_K8S_CLUSTER_DOMAIN"),
    "image_pull_policy": ("--image-pull-policy", "CONSORTIA_K8S_IMAGE_PULL_POLICY"),
    "k8s_poll_seconds": ("--k8s-poll-seconds", "CONSORTIA_K8S_POLL_SECONDS"),
    "k8s_delete_volumes": ("--k8s-delete-volumes", "CONSORTIA_K8S_DELETE_VOLUMES"),
}
"""The kubernetes placement's flags and the variables that stand for them."""
_HELP = {
    "kubeconfig": "the cluster's kubeconfig (required with --provisioner kubernetes)",
    "kube_context": "its context (default: the kubeconfig's current one)",
    "namespace": "where the nodes' objects go (default consortia); one control plane each",
    "node_image": "the node image, Consortia installed (required: there is no default)",
    "storage_class": "of the nodes' volume claims (default: the cluster's default class)",
    "cluster_domain": "the cluster's DNS domain (default cluster.local)",
    "image_pull_policy": "Always, IfNotPresent (default) or Never",
    "k8s_poll_seconds": "between two reads of the nodes' StatefulSets and pods (default 5)",
    "k8s_delete_volumes": "delete a node's volume claim (its ledger) with the node; by "
                          "default it is kept, as a local node's directory is (1/true)",
}


def _placement_arguments(s: argparse.ArgumentParser) -> None:
    env = os.environ
    s.add_argument("--provisioner", choices=["local", "kubernetes"],
                   default=env.get("CONSORTIA_PROVISIONER", "local"),
                   help="where nodes run: processes of this machine (local, the default) "
                        "or StatefulSets in a cluster (kubernetes) [CONSORTIA_PROVISIONER]")
    g = s.add_argument_group("kubernetes placement (with --provisioner kubernetes)")
    for dest, (flag, var) in _K8S_FLAGS.items():
        g.add_argument(flag, dest=dest, default=env.get(var) or None,
                       help=f"{_HELP[dest]} [{var}]")


def kubernetes_settings(args: argparse.Namespace) -> KubernetesSettings | None:
    """The kubernetes placement the arguments ask for; None for the local one. A
    kubernetes flag with the local provisioner, or a value out of range, is a
    ``ConfigError`` naming the flag."""
    given = [dest for dest in _K8S_FLAGS if getattr(args, dest, None) is not None]
    if args.provisioner != "kubernetes":
        if given:
            flags = ", ".join(_K8S_FLAGS[d][0] for d in given)
            raise ConfigError(f"{flags} place nodes on kubernetes: add --provisioner "
                              "kubernetes (or drop them)")
        return None
    for dest in ("kubeconfig", "node_image"):
        if getattr(args, dest) is None:
            flag, var = _K8S_FLAGS[dest]
            raise ConfigError(f"--provisioner kubernetes needs {flag} (or {var})")
    options: dict[str, object] = {}
    for dest, key in (("namespace", "namespace"), ("storage_class", "storage_class"),
                      ("cluster_domain", "cluster_domain"),
                      ("image_pull_policy", "image_pull_policy"),
                      ("kube_context", "context")):
        if getattr(args, dest) is not None:
            options[key] = getattr(args, dest)
    if args.k8s_poll_seconds is not None:
        try:
            options["poll_interval"] = float(args.k8s_poll_seconds)
        except ValueError:
            raise ConfigError(f"--k8s-poll-seconds {args.k8s_poll_seconds!r} is not a "
                              "number") from None
    if args.k8s_delete_volumes is not None:
        value = str(args.k8s_delete_volumes).strip().lower()
        if value not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"--k8s-delete-volumes {args.k8s_delete_volumes!r}: give "
                              "true or false")
        options["retain_volumes"] = value in ("0", "false", "no")
    return KubernetesSettings(image=args.node_image, kubeconfig=Path(args.kubeconfig),
                              **options)  # type: ignore[arg-type]


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
    kubernetes = kubernetes_settings(args)   # refuse a bad placement before writing
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database_url = args.database_url or f"sqlite:///{data_dir / DATABASE_FILE}"
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    endpoint = args.endpoint or f"http://{host}:{args.port}"
    log.info("%s", initialize(data_dir, database_url, endpoint, tenant=args.tenant,
                              owner=args.owner))
    settings = ControlSettings.from_files(
        database_url, data_dir / MASTER_KEY_FILE, data_dir=data_dir,
        node_host=args.node_host, node_ports=tuple(args.node_ports),
        provisioner=args.provisioner, kubernetes=kubernetes)
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
