"""The Kubernetes objects of one node: a Secret, a PersistentVolumeClaim, a Service and a
StatefulSet, as plain dicts (what ``kubectl apply`` and the API server take).

Pure: files are read by ``read_node_files`` (from the node directory the control plane
wrote: ``node.toml``, the genesis and keystore it names, the passphrase file), everything
else is a function of those bytes, the ``NodeSpec`` and the ``Target``. The same inputs
render the same objects, byte for byte, so a re-apply after a control-plane restart changes
nothing and the configuration hash only moves when a file does.

Inside the pod the node runs the local provisioner's command line,
``python -m consortia.node --config /etc/consortia/node/node.toml``, on a configuration
rewritten for the pod (``pod_config``): files from the Secret mounted read-only, data on the
claim, API and p2p listening on the pod's addresses, peers reached through their Services'
DNS names. Layout and rules: ``docs/spec/provisioning.md`` (the kubernetes provisioner).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from consortia.control.provision.base import NodeSpec
from consortia.types.errors import ConfigError

Manifest = dict[str, Any]
"""One Kubernetes object (apiVersion, kind, metadata, spec/data)."""

CONFIG_DIR = "/etc/consortia/node"
"""Where the Secret is mounted (read-only) in the node's container."""
DATA_DIR = "/var/lib/consortia"
"""Where the claim is mounted; the node's ledger lives in ``data/`` below it."""
NODE_USER = 10001
"""The non-root user and group the node runs as (also the volumes' ``fsGroup``)."""
MANAGED_BY = "consortia"
APP_NAME = "consortia-node"
ANNOTATION_NODE_ID = "consortia.dev/node-id"
"""The control plane's node id, exactly (a label value could not hold every node id)."""
ANNOTATION_SPEC = "consortia.dev/node-spec"
"""On the StatefulSet: the ``NodeSpec`` as JSON, so that a later provisioner adopts it."""
ANNOTATION_CONFIG_HASH = "consortia.dev/config-hash"
"""On the pod template: SHA-256 of the Secret's data; a new configuration rolls the pod."""
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/name={APP_NAME}"
"""The label selector of every node object a provisioner manages."""
_MAX_NAME = 52
"""StatefulSet names longer than this make the pod's ``controller-revision-hash`` label
(name, a dash and a 10-character hash) exceed the 63 characters of a label value."""
_PREFIX = "consortia-"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Resources:
    """What one resource class is granted, in Kubernetes quantities."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    storage: str
    """Size of the node's PersistentVolumeClaim."""


RESOURCES: dict[str, Resources] = {
    # Requests are what the scheduler reserves; limits leave room for a burst of signature
    # verification (CPU) and for the pool and caches (memory). Memory request and limit
    # stay within a factor of two so an overcommitted node is not the first one OOM-killed.
    "small": Resources("250m", "1", "512Mi", "1Gi", "10Gi"),
    "medium": Resources("1", "2", "2Gi", "4Gi", "50Gi"),
    "large": Resources("2", "4", "8Gi", "16Gi", "200Gi"),
}
"""Per resource class (``base.RESOURCE_CLASSES``)."""


@dataclass(frozen=True)
class Target:
    """Where and how nodes are rendered: what the manifests need of the settings."""

    namespace: str
    image: str
    storage_class: str | None = None
    """The claims' ``storageClassName``; None: the cluster's default class."""
    cluster_domain: str = "cluster.local"
    image_pull_policy: str = "IfNotPresent"
    stop_grace_seconds: int = 15
    """``terminationGracePeriodSeconds``: SIGTERM, then SIGKILL (the local ``stop_grace``)."""
    start_timeout_seconds: int = 60
    """How long the startup probe lets a node take to answer ``/healthz`` the first time."""

    def __post_init__(self) -> None:
        if not (len(self.namespace) <= 63 and _LABEL.fullmatch(self.namespace)):
            raise ConfigError(f"kubernetes namespace {self.namespace!r} is not a DNS-1123 "
                              "label (a-z 0-9 -, at most 63)")
        if not self.image or any(c.isspace() for c in self.image):
            raise ConfigError("kubernetes image must name the node image (repository:tag "
                              "or @digest), without spaces; there is no default")
        if self.storage_class is not None and not (
                len(self.storage_class) <= 253 and _SUBDOMAIN.fullmatch(self.storage_class)):
            raise ConfigError(f"kubernetes storage class {self.storage_class!r} is not a "
                              "DNS-1123 subdomain")
        if not _SUBDOMAIN.fullmatch(self.cluster_domain):
            raise ConfigError(f"kubernetes cluster domain {self.cluster_domain!r} is not a "
                              "DNS name")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise ConfigError("kubernetes image_pull_policy is one of Always, IfNotPresent, "
                              "Never")
        if not 1 <= self.stop_grace_seconds <= 3600 or self.start_timeout_seconds < 5:
            raise ConfigError("kubernetes stop grace must be 1-3600 s and start timeout "
                              "at least 5 s")


@dataclass(frozen=True)
class NodeFiles:
    """The bytes a node's pod needs, read from its directory."""

    config: dict[str, Any]
    """``node.toml`` as written by the control plane, parsed."""
    genesis: bytes
    passphrase: bytes
    identity: str
    """The keystore entry's name (``[identity] name``)."""
    keystore: dict[str, bytes]
    """``key.pem``, ``cert.pem``, ``ca.pem`` of that entry."""

    @property
    def api_port(self) -> int:
        return int(self.config["api"]["port"])

    @property
    def p2p_port(self) -> int | None:
        p2p = self.config.get("p2p")
        return None if p2p is None else int(p2p["port"])


_KEYSTORE_FILES = ("key.pem", "cert.pem", "ca.pem")


def read_node_files(spec: NodeSpec, config_text: str | None = None) -> NodeFiles:
    """Read what ``spec``'s configuration names, relative paths against its directory (as
    the node resolves them); ``config_text`` stands for the file's content when given (a
    reconfiguration). A missing or unreadable file is a ``ConfigError`` naming it."""
    base = spec.config.parent
    try:
        text = spec.config.read_text() if config_text is None else config_text
        raw = tomllib.loads(text)
        node, ident, api = raw["node"], raw["identity"], raw["api"]
        genesis_path, keystore = Path(node["genesis"]), Path(ident["keystore"])
        name, port = str(ident["name"]), int(api["port"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"node {spec.node_id}: configuration {spec.config} is not a node "
                          f"configuration the kubernetes provisioner can carry: {exc}") from exc
    if "passphrase_file" not in ident:
        raise ConfigError(f"node {spec.node_id}: the kubernetes provisioner carries the "
                          "keystore passphrase in the node's Secret: the configuration must "
                          "name a passphrase_file, not passphrase_env")
    if not 0 < port < 65536 or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"node {spec.node_id}: API port {port} or keystore entry {name!r} "
                          "is not usable")

    def read(p: Path) -> bytes:
        path = p if p.is_absolute() else base / p
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"node {spec.node_id}: cannot read {path}: {exc}") from exc

    return NodeFiles(raw, read(genesis_path), read(Path(ident["passphrase_file"])), name,
                     {f: read(keystore / name / f) for f in _KEYSTORE_FILES})


def resource_name(node_id: str) -> str:
    """The name of ``node_id``'s objects: ``consortia-<id>`` when the id already is a
    lower-case DNS label short enough, else ``consortia--<id made one, cut>-<8 hex of its
    SHA-256>``. Distinct ids get distinct names: only the second form holds ``--`` right
    after the prefix."""
    simple = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", node_id.lower())).strip("-")
    if simple == node_id and len(_PREFIX) + len(simple) <= _MAX_NAME:
        return _PREFIX + simple
    digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
    room = _MAX_NAME - len(_PREFIX) - 1 - 1 - len(digest)
    cut = simple[:room].strip("-")
    return f"{_PREFIX}-{cut}-{digest}" if cut else f"{_PREFIX}-{digest}"


def service_host(node_id: str, target: Target) -> str:
    """The in-cluster DNS name of ``node_id``'s Service."""
    return f"{resource_name(node_id)}.{target.namespace}.svc.{target.cluster_domain}"


def labels(node_id: str) -> dict[str, str]:
    """The labels of every object of ``node_id`` (the node id itself is an annotation)."""
    return {"app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/instance": resource_name(node_id),
            "app.kubernetes.io/component": "node",
            "app.kubernetes.io/managed-by": MANAGED_BY}


def selector(node_id: str) -> dict[str, str]:
    """The StatefulSet's and the Service's pod selector."""
    return {"app.kubernetes.io/name": APP_NAME,
            "app.kubernetes.io/instance": resource_name(node_id)}


def pod_config(files: NodeFiles, target: Target) -> str:
    """``node.toml`` as the pod reads it: the Secret's files by their mounted names, the
    ledger on the claim, API and p2p on every address of the pod (its network namespace is
    the boundary; the Service is the way in), each peer at its Service's DNS name and the
    port it was given. Other settings (pool, consensus, log) are kept as written."""
    cfg = copy.deepcopy(files.config)
    cfg["node"]["data_dir"] = f"{DATA_DIR}/data"
    cfg["node"]["genesis"] = "genesis.json"
    cfg["identity"]["keystore"] = "keystore"
    cfg["identity"]["passphrase_file"] = "passphrase"  # noqa: S105 - a file name
    cfg["api"]["host"] = "0.0.0.0"  # noqa: S104 - the pod's own addresses
    if "p2p" in cfg:
        cfg["p2p"]["host"] = "0.0.0.0"  # noqa: S104 - the pod's own addresses
        peers: dict[str, str] = cfg["p2p"].get("peers", {})
        cfg["p2p"]["peers"] = {peer: f"{service_host(peer, target)}:{addr.rpartition(':')[2]}"
                               for peer, addr in sorted(peers.items())}
    return tomli_w.dumps(cfg)


def secret_data(files: NodeFiles, target: Target) -> dict[str, bytes]:
    """The Secret's entries (keys are flat: a Secret key cannot hold ``/``; the volume's
    ``items`` put the keystore files back under ``keystore/<name>/``)."""
    data = {"node.toml": pod_config(files, target).encode(), "genesis.json": files.genesis,
            "passphrase": files.passphrase}
    data.update({f"keystore-{f}": files.keystore[f] for f in _KEYSTORE_FILES})
    return data


def config_hash(data: dict[str, bytes]) -> str:
    """SHA-256 over the Secret's entries (name and length framed), hex."""
    h = hashlib.sha256()
    for key in sorted(data):
        for part in (key.encode(), data[key]):
            h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def _meta(name: str, spec: NodeSpec, target: Target, **annotations: str) -> dict[str, Any]:
    return {"name": name, "namespace": target.namespace, "labels": labels(spec.node_id),
            "annotations": {ANNOTATION_NODE_ID: spec.node_id, **annotations}}


def spec_annotation(spec: NodeSpec) -> str:
    """``spec`` as the StatefulSet's annotation holds it (sorted JSON)."""
    return json.dumps({"node_id": spec.node_id, "config": str(spec.config),
                       "data_dir": str(spec.data_dir), "log_file": str(spec.log_file),
                       "api_url": spec.api_url, "resource_class": spec.resource_class},
                      sort_keys=True)


def spec_from_annotation(text: str) -> NodeSpec:
    """The ``NodeSpec`` an annotation holds (``ValueError`` if it holds none)."""
    doc = json.loads(text)
    return NodeSpec(str(doc["node_id"]), Path(doc["config"]), Path(doc["data_dir"]),
                    Path(doc["log_file"]), str(doc["api_url"]), str(doc["resource_class"]))


def render(spec: NodeSpec, files: NodeFiles, target: Target, *,
           replicas: int = 1) -> list[Manifest]:
    """The node's objects in the order they are applied: Secret, PersistentVolumeClaim,
    Service (what the pod needs), then the StatefulSet (``replicas`` 0 for a stopped node)."""
    name = resource_name(spec.node_id)
    res = RESOURCES[spec.resource_class]
    data = secret_data(files, target)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, spec, target),
              "type": "Opaque",
              "data": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())}}
    claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                  "resources": {"requests": {"storage": res.storage}}}
    if target.storage_class is not None:
        claim_spec["storageClassName"] = target.storage_class
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": _meta(f"{name}-data", spec, target), "spec": claim_spec}
    ports = [("api", files.api_port)]
    if files.p2p_port is not None:
        ports.append(("p2p", files.p2p_port))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, spec, target),
               "spec": {"type": "ClusterIP", "selector": selector(spec.node_id),
                        # Validators must reach each other before any is Ready (a raft or
                        # pbft node is healthy only once it has a chain to serve).
                        "publishNotReadyAddresses": True,
                        "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"}
                                  for n, p in ports]}}
    stateful_set = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": _meta(name, spec, target, **{ANNOTATION_SPEC: spec_annotation(spec)}),
        "spec": {"replicas": replicas, "serviceName": name,
                 "selector": {"matchLabels": selector(spec.node_id)},
                 "podManagementPolicy": "Parallel",
                 "updateStrategy": {"type": "RollingUpdate"},
                 "template": _pod_template(spec, files, target, name, res,
                                           config_hash(data), ports)}}
    return [secret, claim, service, stateful_set]


def _pod_template(spec: NodeSpec, files: NodeFiles, target: Target, name: str,
                  res: Resources, digest: str, ports: list[tuple[str, int]]) -> Manifest:
    def probe(period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": "/healthz", "port": "api", "scheme": "HTTP"},
                "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": failures}

    items = [{"key": k, "path": k} for k in ("node.toml", "genesis.json", "passphrase")]
    items += [{"key": f"keystore-{f}", "path": f"keystore/{files.identity}/{f}"}
              for f in _KEYSTORE_FILES]
    container = {
        "name": "node", "image": target.image, "imagePullPolicy": target.image_pull_policy,
        "command": ["python", "-m", "consortia.node", "--config", f"{CONFIG_DIR}/node.toml"],
        "workingDir": CONFIG_DIR,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                {"name": "HOME", "value": "/tmp"}],  # noqa: S108 - the pod's own emptyDir
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
        "resources": {"requests": {"cpu": res.cpu_request, "memory": res.memory_request},
                      "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit}},
        # Startup: up to start_timeout for the first answer; then readiness takes the node
        # out of its Service after 3 failed checks (15 s), liveness restarts it after 6
        # (60 s): a node that stopped serving after a failed commit answers 503.
        "startupProbe": probe(5, max(1, target.start_timeout_seconds // 5)),
        "readinessProbe": probe(5, 3),
        "livenessProbe": probe(10, 6),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "data", "mountPath": DATA_DIR},
                         {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - its emptyDir
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "metadata": {"labels": labels(spec.node_id),
                     "annotations": {ANNOTATION_NODE_ID: spec.node_id,
                                     ANNOTATION_CONFIG_HASH: digest}},
        "spec": {
            "automountServiceAccountToken": False,   # a node never talks to the cluster
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": target.stop_grace_seconds,
            "securityContext": {"runAsNonRoot": True, "runAsUser": NODE_USER,
                                "runAsGroup": NODE_USER, "fsGroup": NODE_USER,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [
                # 0440: the files belong to root and the fsGroup; the node reads them as
                # a member of that group.
                {"name": "config", "secret": {"secretName": name, "defaultMode": 0o440,
                                              "items": items}},
                {"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        },
    }
