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
and that a real kubelet runs the image. The fake: ``tests/k8s_fake.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consortia.control.provision import _manifests as mf
from consortia.control.provision._kubeapi import observe
from consortia.control.provision.base import NodeSpec, NodeStatus, StatusChange
from consortia.control.provision.kubernetes import KubernetesProvisioner, KubernetesSettings
from consortia.sdk.network import init_network
from consortia.types.errors import ConfigError, Conflict, NotFound, Unavailable
from tests.k8s_fake import NS, TOKEN, FakeCluster, fake_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    with fake_cluster(tmp_path) as c:
        yield c


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


def test_endpoints_are_the_services_names_and_volumes_go_when_not_retained(
        cluster: tuple[FakeCluster, Path], net: Path) -> None:
    fake, kubeconfig = cluster
    with _provisioner(kubeconfig, retain_volumes=False, api_port=8080, p2p_port=9090) as prov:
        host = f"consortia-validator0.{NS}.svc.cluster.local"
        assert prov.api_url("validator0") == f"http://{host}:8080"
        assert prov.p2p_address("validator0") == f"{host}:9090"
        prov.create(_spec(net))
        state = prov.delete("validator0")            # remove_data not asked: the settings
        assert state.status is NodeStatus.DELETED and state.reason is None
    assert not [k for k in fake.objects if k[1].startswith("consortia-validator0")]
    with pytest.raises(ConfigError, match="two distinct ports"):
        KubernetesSettings(image="i:1", api_port=7050, p2p_port=7050)


def test_a_node_created_while_a_refresh_reads_the_cluster_is_not_judged_by_it(
        cluster: tuple[FakeCluster, Path], net: Path) -> None:
    """A refresh lists StatefulSets, then pods; a node created between the two (or while
    they are read) is absent from the first list. Judged by it, the node would be FAILED
    ("its StatefulSet is gone"): it is left to the next refresh instead."""
    fake, kubeconfig = cluster
    with _provisioner(kubeconfig) as prov:
        prov.create(_spec(net, "validator0"))

        def create_meanwhile(method: str, path: str) -> None:
            if method == "GET" and path.endswith("/pods"):     # sets listed, pods not yet
                fake.on_request = None
                prov.create(_spec(net, "validator1"))

        fake.on_request = create_meanwhile
        prov.refresh()
        assert fake.on_request is None                                  # it did run
        assert prov.status("validator1").status is NodeStatus.CREATING
        assert prov.status("validator0").status is NodeStatus.CREATING
        fake.set_ready("consortia-validator1")
        prov.refresh()                                                  # the next one does
        assert prov.status("validator1").status is NodeStatus.AVAILABLE
