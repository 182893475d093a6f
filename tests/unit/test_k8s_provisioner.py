"""The kubernetes provisioner's apply path and status mapping, through the official
``kubernetes`` client, against an HTTP server in this test that plays the API server.

This fakes a cluster because none can run here (no container runtime, no kubelet, no way
to install one on this machine). Everything on our side is real: the kubeconfig is parsed
by the client, requests go over HTTP with the bearer token, bodies are the rendered
manifests. The fake keeps objects in memory, answers the handful of calls the provisioner
makes (server-side apply, get, list by label selector, delete), and plays the StatefulSet
controller in its simplest form: one replica means a pod ``<name>-0`` from the template,
zero means none, a new template (configuration hash) replaces the pod. What the kubelet
would report — a pod Ready, crash-looping, failing to pull its image — the tests set on
the pod, then ask the provisioner to ``refresh``. What this cannot show: that a real API
server accepts the objects (the schema tests in test_k8s_manifests.py cover their shape)
and that a real kubelet runs the image.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from consortia.control.provision import _manifests as mf
from consortia.control.provision._kubeapi import observe
from consortia.control.provision.base import NodeSpec, NodeStatus, StatusChange
from consortia.control.provision.kubernetes import KubernetesProvisioner, KubernetesSettings
from consortia.sdk.network import init_network
from consortia.types.errors import ConfigError, Conflict, NotFound, Unavailable

NS = "chains"
TOKEN = "test-token-7f3a"  # the fake API server's, nothing else's
_PATH = re.compile(r"/(?:api/v1|apis/apps/v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)"
                   r"(?:/(?P<name>[^/]+))?")
_KINDS = {"secrets": "Secret", "services": "Service", "persistentvolumeclaims":
          "PersistentVolumeClaim", "statefulsets": "StatefulSet", "pods": "Pod"}


@dataclass
class FakeCluster:
    """The objects, the requests seen, and failures to inject."""

    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[tuple[int, str]] = field(default_factory=list)
    """(status, reason) answered to the next requests instead of serving them."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: int = 0
    hang: threading.Event | None = None
    """While set to an unset event, requests wait for it (a server that does not answer)."""

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.objects.get(("pods", name))

    def set_container(self, pod: str, **fields: Any) -> None:
        """What the kubelet would report of the node's container."""
        with self.lock:
            status = self.objects[("pods", pod)]["status"]
            status["containerStatuses"][0].update(fields)
            status["phase"] = "Running" if fields.get("ready") else status["phase"]

    def _sync(self, sts_name: str) -> None:
        """The StatefulSet controller: one replica, one pod of the current template."""
        sts = self.objects.get(("statefulsets", sts_name))
        pod_name = f"{sts_name}-0"
        pod = self.objects.get(("pods", pod_name))
        want = 0 if sts is None else sts["spec"]["replicas"]
        if want == 0:
            self.objects.pop(("pods", pod_name), None)
            return
        assert sts is not None
        template = sts["spec"]["template"]
        if pod is not None and pod["metadata"]["annotations"] == \
                template["metadata"]["annotations"]:
            return
        self.versions += 1
        self.objects[("pods", pod_name)] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": NS, "uid": f"uid-{self.versions}",
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": dict(template["metadata"]["annotations"])},
            "spec": template["spec"],
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "node", "ready": False, "restartCount": 0, "image":
                 template["spec"]["containers"][0]["image"], "imageID": "",
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]}}

    def handle(self, method: str, url: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        doc = json.loads(body) if body else None
        with self.lock:
            self.requests.append({"method": method, "path": parts.path, "query": query,
                                  "content_type": headers.get("content-type"),
                                  "authorization": headers.get("authorization"),
                                  "body": json.loads(body) if body else None})
        if self.hang is not None:
            self.hang.wait(30)
        with self.lock:
            if self.fail_next:
                code, reason = self.fail_next.pop(0)
                return code, _status(code, reason, "injected failure")
            m = _PATH.fullmatch(parts.path)
            if m is None or m["ns"] != NS or m["plural"] not in _KINDS:
                return 404, _status(404, "NotFound", f"no route {parts.path}")
            plural, name = m["plural"], m["name"]
            if method == "GET" and name is None:
                sel = dict(kv.split("=", 1) for kv in query.get("labelSelector", "").split(",")
                           if kv)
                items = [o for (p, _), o in sorted(self.objects.items()) if p == plural and
                         sel.items() <= o["metadata"].get("labels", {}).items()]
                return 200, {"apiVersion": "v1", "kind": _KINDS[plural] + "List",
                             "metadata": {}, "items": items}
            obj = self.objects.get((plural, name))
            if method == "GET":
                return (200, obj) if obj else (404, _status(404, "NotFound", name))
            if method == "PATCH":
                assert doc is not None
                assert doc["metadata"]["name"] == name and doc["kind"] == _KINDS[plural]
                doc["metadata"]["uid"] = (obj or {}).get("metadata", {}).get("uid", name)
                self.objects[(plural, name)] = doc
                if plural == "statefulsets":
                    self._sync(name)
                return 200, doc
            if method == "DELETE":
                if obj is None:
                    return 404, _status(404, "NotFound", name)
                del self.objects[(plural, name)]
                if plural == "statefulsets":
                    self._sync(name)
                elif plural == "pods":
                    self._sync(name.rsplit("-", 1)[0])   # the controller makes another
                # as the API server: the object for some kinds, a Status for others
                return 200, _status(200, "", "deleted") if plural in (
                    "secrets", "statefulsets") else obj
            return 405, _status(405, "MethodNotAllowed", method)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Success" if code < 300 else "Failure", "reason": reason,
            "message": message, "code": code}


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                code, doc = 401, _status(401, "Unauthorized", "no token")
            else:
                code, doc = cluster.handle(self.command, self.path,
                                           {k.lower(): v for k, v in self.headers.items()},
                                           body)
            raw = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    fake = FakeCluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({       # JSON is YAML: the client reads it as such
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {
            "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "ops", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ops"}}]}))
    yield fake, kubeconfig
    if fake.hang is not None:
        fake.hang.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("net")
    init_network(root, consensus="raft", validators=3, port=21000)
    return root


def _spec(net: Path, node: str = "validator0", resource_class: str = "small") -> NodeSpec:
    d = net / "nodes" / node
    return NodeSpec(node, d / "node.toml", d / "data", d / "node.log",
                    f"http://127.0.0.1:{21000 + int(node[-1])}", resource_class)


def _provisioner(kubeconfig: Path, events: list[StatusChange] | None = None,
                 **options: Any) -> KubernetesProvisioner:
    settings = KubernetesSettings(image="registry.example/consortia:0.1.0", namespace=NS,
                                  kubeconfig=kubeconfig, crash_limit=3, request_timeout=5,
                                  poll_interval=0.05, **options)
    observers = [] if events is None else [events.append]
    return KubernetesProvisioner(settings, observers=observers, poll=False)


def test_create_applies_the_four_objects_server_side(
        cluster: tuple[FakeCluster, Path], net: Path) -> None:
    fake, kubeconfig = cluster
    events: list[StatusChange] = []
    spec = _spec(net)
    with _provisioner(kubeconfig, events) as prov:
        state = prov.create(spec)
        assert state.status is NodeStatus.CREATING
        assert prov.create(spec) == state                       # the same spec: a no-op
        with pytest.raises(Conflict):
            prov.create(_spec(net, resource_class="large"))
    applied = [r for r in fake.requests if r["method"] == "PATCH"]
    assert [r["body"]["kind"] for r in applied] == ["Secret", "PersistentVolumeClaim",
                                                    "Service", "StatefulSet"]
    assert [r["body"] for r in applied] == mf.render(spec, mf.read_node_files(spec),
                                                     prov.target)
    for r in fake.requests:
        assert r["authorization"] == f"Bearer {TOKEN}"
    for r in applied:
        assert r["content_type"] == "application/apply-patch+yaml"
        assert r["query"] == {"fieldManager": "consortia", "force": "true"}
        assert r["path"].startswith(f"/api/v1/namespaces/{NS}/") or \
            r["path"] == f"/apis/apps/v1/namespaces/{NS}/statefulsets/consortia-validator0"
    assert [(e.previous, e.status) for e in events] == [(None, NodeStatus.CREATING)]


def test_statuses_follow_the_pod(cluster: tuple[FakeCluster, Path], net: Path) -> None:
    fake, kubeconfig = cluster
    events: list[StatusChange] = []
    pod = "consortia-validator0-0"
    with _provisioner(kubeconfig, events) as prov:
        prov.create(_spec(net))
        prov.refresh()
        assert prov.status("validator0").status is NodeStatus.CREATING
        fake.set_container(pod, ready=True, state={"running": {}})
        prov.refresh()
        state = prov.wait_for("validator0", NodeStatus.AVAILABLE, timeout=5)
        assert state.health is not None and state.health.ok
        fake.set_container(pod, ready=False, restartCount=1,
                           state={"waiting": {"reason": "CrashLoopBackOff"}},
                           lastState={"terminated": {"exitCode": 2, "reason": "Error",
                                                     "message": "refusing to start: x"}})
        prov.refresh()
        state = prov.status("validator0")
        assert state.status is NodeStatus.UNHEALTHY and state.restarts == 1
        assert state.reason is not None and "exited with status 2" in state.reason
        fake.set_container(pod, restartCount=3)
        prov.refresh()
        state = prov.status("validator0")
        assert state.status is NodeStatus.FAILED
        assert state.reason is not None and state.reason.startswith("crash loop: 3 restarts")
        assert "refusing to start: x" in state.reason
        # start: a fresh pod (the kubelet's restart count starts again)
        assert prov.start("validator0").status is NodeStatus.CREATING
        assert fake.pod(pod)["status"]["containerStatuses"][0]["restartCount"] == 0
        prov.refresh()
        assert prov.status("validator0").restarts == 0
    assert [e.status for e in events] == [
        NodeStatus.CREATING, NodeStatus.AVAILABLE, NodeStatus.UNHEALTHY, NodeStatus.FAILED,
        NodeStatus.CREATING]


def test_stop_start_reconfigure_delete(cluster: tuple[FakeCluster, Path], net: Path,
                                       tmp_path: Path) -> None:
    fake, kubeconfig = cluster
    # a copy of the network: reconfigure writes the node's configuration file
    import shutil
    root = tmp_path / "net"
    shutil.copytree(net, root)
    spec = _spec(root, "validator1")
    name = "consortia-validator1"
    with _provisioner(kubeconfig) as prov:
        prov.create(spec)
        assert fake.pod(f"{name}-0") is not None
        assert prov.stop("validator1").status is NodeStatus.STOPPED
        assert fake.pod(f"{name}-0") is None
        assert fake.objects[("statefulsets", name)]["spec"]["replicas"] == 0
        prov.refresh()
        assert prov.status("validator1").status is NodeStatus.STOPPED
        assert prov.start("validator1").status is NodeStatus.CREATING
        assert fake.pod(f"{name}-0") is not None

        old_hash = fake.pod(f"{name}-0")["metadata"]["annotations"][mf.ANNOTATION_CONFIG_HASH]
        new_text = spec.config.read_text() + '\n[log]\nlevel = "debug"\n'
        state = prov.reconfigure("validator1", new_text)
        assert state.status is NodeStatus.CREATING
        assert state.reason == "restarted on a new configuration"
        assert spec.config.read_text() == new_text
        new_hash = fake.pod(f"{name}-0")["metadata"]["annotations"][mf.ANNOTATION_CONFIG_HASH]
        assert new_hash != old_hash                               # the pod was rolled
        with pytest.raises(ConfigError):                          # refused, nothing written
            prov.reconfigure("validator1", "not toml [")
        assert spec.config.read_text() == new_text

        state = prov.delete("validator1")
        assert state.status is NodeStatus.DELETED
        assert {k for k in fake.objects if k[1].startswith(name)} == {
            ("persistentvolumeclaims", f"{name}-data")}            # the ledger is kept
        with pytest.raises(Conflict):
            prov.start("validator1")
        prov.create(spec)                                         # again, then for good
        prov.delete("validator1", remove_data=True)
        assert not [k for k in fake.objects if k[1].startswith(name)]
        with pytest.raises(NotFound):
            prov.stop("nobody")


def test_a_later_provisioner_adopts_the_nodes(cluster: tuple[FakeCluster, Path],
                                              net: Path) -> None:
    fake, kubeconfig = cluster
    with _provisioner(kubeconfig) as prov:
        prov.create(_spec(net, "validator0"))
        prov.create(_spec(net, "validator2", "medium"))
        prov.stop("validator2")
        fake.set_container("consortia-validator0-0", ready=True)
    with _provisioner(kubeconfig) as prov:
        states = {s.spec.node_id: s for s in prov.nodes()}
        assert states["validator0"].spec == _spec(net, "validator0")
        assert states["validator0"].status is NodeStatus.AVAILABLE
        assert states["validator2"].spec.resource_class == "medium"
        assert states["validator2"].status is NodeStatus.STOPPED
        assert prov.create(_spec(net, "validator0")).status is NodeStatus.AVAILABLE  # no-op


def test_what_needs_an_operator_is_failed(cluster: tuple[FakeCluster, Path],
                                          net: Path) -> None:
    fake, kubeconfig = cluster
    with _provisioner(kubeconfig) as prov:
        prov.create(_spec(net))
        fake.set_container("consortia-validator0-0", state={"waiting": {
            "reason": "ImagePullBackOff", "message": "pull access denied"}})
        prov.refresh()
        state = prov.status("validator0")
        assert state.status is NodeStatus.FAILED
        assert state.reason == "ImagePullBackOff: pull access denied"


def test_cluster_errors_are_specific_and_leave_nothing_recorded(
        cluster: tuple[FakeCluster, Path], net: Path) -> None:
    fake, kubeconfig = cluster
    with _provisioner(kubeconfig) as prov:
        fake.fail_next = [(422, "Invalid")]
        with pytest.raises(ConfigError, match="422"):
            prov.create(_spec(net))
        fake.fail_next = [(500, "InternalError")]
        with pytest.raises(Unavailable, match="500"):
            prov.create(_spec(net))
        with pytest.raises(NotFound):
            prov.status("validator0")
        assert prov.create(_spec(net)).status is NodeStatus.CREATING   # a retry works
        fake.fail_next = [(503, "ServiceUnavailable")]
        with pytest.raises(Unavailable):
            prov.refresh()
        assert prov.status("validator0").status is NodeStatus.CREATING


def test_unreachable_or_refusing_clusters_are_unavailable(tmp_path: Path,
                                                          net: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    with pytest.raises(Unavailable, match="list StatefulSets"):
        _provisioner(kubeconfig).open()
    with pytest.raises(ConfigError, match="kubeconfig"):
        KubernetesProvisioner(KubernetesSettings(image="i:1"))


def test_every_call_has_a_timeout(cluster: tuple[FakeCluster, Path], net: Path) -> None:
    fake, kubeconfig = cluster
    settings = KubernetesSettings(image="i:1", namespace=NS, kubeconfig=kubeconfig,
                                  request_timeout=0.2)
    with KubernetesProvisioner(settings, poll=False) as prov:
        fake.hang = threading.Event()           # the API server stops answering
        with pytest.raises(Unavailable, match="apply Secret"):
            prov.create(_spec(net))
        with pytest.raises(Unavailable, match="list StatefulSets"):
            prov.refresh()
        fake.hang.set()
    seen = [r["method"] for r in fake.requests]
    assert seen == ["GET", "GET", "GET", "PATCH", "GET"]   # no retries: one try per call


def test_a_wrong_token_is_unavailable(cluster: tuple[FakeCluster, Path],
                                      tmp_path: Path) -> None:
    _, kubeconfig = cluster
    doc = json.loads(kubeconfig.read_text())
    doc["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(json.dumps(doc))
    with pytest.raises(Unavailable, match="401"):
        _provisioner(bad).open()


def _sts(replicas: int = 1, digest: str = "h1") -> dict[str, Any]:
    return {"spec": {"replicas": replicas, "template": {"metadata": {"annotations": {
        mf.ANNOTATION_CONFIG_HASH: digest}}}}}


def _pod(digest: str = "h1", **container: Any) -> dict[str, Any]:
    return {"metadata": {"annotations": {mf.ANNOTATION_CONFIG_HASH: digest}},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "node", "restartCount": 0, **container}]}}


@pytest.mark.parametrize(("sts", "pod", "previous", "expected"), [
    (None, None, NodeStatus.AVAILABLE, NodeStatus.FAILED),
    (_sts(0), None, NodeStatus.AVAILABLE, NodeStatus.STOPPED),
    (_sts(), None, NodeStatus.CREATING, NodeStatus.CREATING),
    (_sts(), None, NodeStatus.AVAILABLE, NodeStatus.UNHEALTHY),
    (_sts(), _pod(ready=True), NodeStatus.CREATING, NodeStatus.AVAILABLE),
    (_sts(), _pod(ready=True), NodeStatus.FAILED, NodeStatus.AVAILABLE),
    (_sts(), _pod(ready=False), NodeStatus.AVAILABLE, NodeStatus.UNHEALTHY),
    (_sts(), _pod(ready=False), NodeStatus.FAILED, NodeStatus.FAILED),
    (_sts(digest="h2"), _pod(ready=True), NodeStatus.AVAILABLE, NodeStatus.CREATING),
    (_sts(), _pod(ready=False, restartCount=9, state={"waiting": {
        "reason": "CrashLoopBackOff"}}), NodeStatus.CREATING, NodeStatus.FAILED),
    (_sts(), _pod(ready=False, restartCount=2, state={"waiting": {
        "reason": "CrashLoopBackOff"}}), NodeStatus.CREATING, NodeStatus.CREATING),
    (_sts(), _pod(ready=False, state={"waiting": {"reason": "CreateContainerConfigError"}}),
     NodeStatus.CREATING, NodeStatus.FAILED),
])
def test_the_status_mapping(sts: dict[str, Any] | None, pod: dict[str, Any] | None,
                            previous: NodeStatus, expected: NodeStatus) -> None:
    status, reason, _, health = observe(sts, pod, previous=previous, crash_limit=5, now=1.0)
    assert status is expected
    assert health.ok is (status is NodeStatus.AVAILABLE) and health.checked_at == 1.0
    assert (reason is None) is (status in (NodeStatus.AVAILABLE, NodeStatus.STOPPED))


def test_unscheduled_pods_say_why() -> None:
    pod = _pod(ready=False)
    pod["status"].update(phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "message": "0/3 nodes: Insufficient cpu"}])
    status, reason, _, _ = observe(_sts(), pod, previous=NodeStatus.CREATING, crash_limit=5)
    assert status is NodeStatus.CREATING
    assert reason == "not scheduled: 0/3 nodes: Insufficient cpu"


def test_the_control_plane_runs_the_provisioner_its_settings_choose(
        cluster: tuple[FakeCluster, Path], net: Path, tmp_path: Path) -> None:
    from consortia.control.auth.keys import new_master_key
    from consortia.control.services.control import Control
    from consortia.control.settings import ControlSettings
    from consortia.control.store import db

    _, kubeconfig = cluster
    with _provisioner(kubeconfig) as prov:       # a node placed by an earlier control plane
        prov.create(_spec(net))
    url = f"sqlite:///{tmp_path / 'control.sqlite3'}"
    db.upgrade(url)
    settings = ControlSettings(
        database_url=url, master_key=new_master_key(), data_dir=tmp_path / "data",
        provisioner="kubernetes",
        kubernetes=KubernetesSettings(image="registry.example/consortia:0.1.0", namespace=NS,
                                      kubeconfig=kubeconfig))
    control = Control(settings)
    try:
        assert isinstance(control.runtime.provisioner, KubernetesProvisioner)
        control.start()                              # opens it: the cluster's node is known
        assert [s.spec.node_id for s in control.runtime.provisioner.nodes()] == ["validator0"]
    finally:
        control.close()
