"""Kubernetes placement end to end through the control API: a control plane served with
``provisioner="kubernetes"`` creates a network, and its validators become objects in the
cluster, reached at their Services' DNS names, with statuses read from the cluster.

What is faked, and why: no Kubernetes cluster can run on this machine (no container
runtime, no kubelet), so the cluster is the HTTP server of ``tests/k8s_fake.py`` playing
the API server and, in its simplest form, the StatefulSet controller; what the kubelet
would report (a pod Ready, crash-looping, failing to pull its image) the tests set on the
pods. Everything else is real: the signed client, the app, the services, the database, the
``KubernetesProvisioner`` the control plane builds from its settings, the official
``kubernetes`` client speaking HTTP with the kubeconfig's token, and its polling thread.
The node gateway is ``FakeGateway`` (tests/control_helpers.py), but nothing here reaches
it: creating a network and a peer, and deleting them, never talk to a node's API (pods
that do not run have none).
"""

from __future__ import annotations

import base64
import dataclasses
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from consortia.control.http import create_app
from consortia.control.provision import _manifests as mf
from consortia.control.provision.kubernetes import KubernetesProvisioner, KubernetesSettings
from consortia.control.services import Control
from consortia.control.store.enums import NodeStatus
from consortia.control.store.models import Node
from consortia.sdk import load_genesis
from tests.control_helpers import (
    PASSWORD,
    ControlWorld,
    FakeClock,
    FakeGateway,
    FakeProvisioner,
    make_settings,
    make_world,
)
from tests.k8s_fake import NS, FakeCluster, fake_cluster

CRASH_LIMIT = 3
IMAGE = "registry.example/consortia:0.1.0"
LABEL_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
              "app.kubernetes.io/component", "app.kubernetes.io/managed-by"}


def k8s_world(url: str, data_dir: Path, kubeconfig: Path) -> ControlWorld:
    """``make_world``'s tenants over a control plane whose settings choose the kubernetes
    provisioner: ``Control`` builds it (no provisioner is handed in)."""
    from consortia.control.store import db

    clock = FakeClock()
    db.upgrade(url)
    settings = make_settings(url, clock, data_dir=data_dir, provisioner="kubernetes",
                             kubernetes=KubernetesSettings(
                                 image=IMAGE, namespace=NS, kubeconfig=kubeconfig,
                                 poll_interval=0.05, request_timeout=5,
                                 crash_limit=CRASH_LIMIT))
    gateway = FakeGateway()
    control = Control(settings, gateway=gateway)
    world = ControlWorld(settings, control, create_app(settings, control=control), clock,
                         provisioner=control.runtime.provisioner, gateway=gateway)
    for name in ("acme", "globex"):
        world.tenants[name] = control.tenants.create(name, f"{name}-owner",
                                                     owner_password=PASSWORD,
                                                     platform=name == "acme")
    return world


@pytest.fixture
def placed(tmp_path: Path) -> Iterator[tuple[ControlWorld, FakeCluster]]:
    with fake_cluster(tmp_path) as (fake, kubeconfig):
        world = k8s_world(f"sqlite:///{tmp_path / 'control.sqlite3'}", tmp_path / "data",
                          kubeconfig)
        try:
            yield world, fake
        finally:
            world.close(stop_nodes=False)


def wait_for(world: ControlWorld, c: TestClient, path: str, **expected: Any
             ) -> dict[str, Any]:
    """GET ``path`` until its fields equal ``expected`` (the provisioner's poll thread and
    the status writer are asynchronous); the last answer, or a failure showing it."""
    deadline = time.monotonic() + 30
    while True:
        world.flush()
        got: dict[str, Any] = c.get(path).json()
        if all(got.get(k) == v for k, v in expected.items()):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never reached {expected}: {got}")
        time.sleep(0.02)


def secret_files(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in secret["data"].items()}


def test_a_network_placed_on_kubernetes_end_to_end(
        placed: tuple[ControlWorld, FakeCluster]) -> None:
    world, fake = placed
    assert isinstance(world.control.runtime.provisioner, KubernetesProvisioner)
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "ledger", "profile": "ant",
                                         "consensus": "raft", "validators": 3})
        assert r.status_code == 201, r.text
        net = r.json()
        assert net["status"] == "CREATING"
        nodes_path = f"/v1/networks/{net['id']}/members/{net['member']['id']}/nodes"
        nodes = c.get(nodes_path).json()["items"]
        ids = [n["id"] for n in nodes]
        assert len(ids) == 3

        # -- each node is recorded as placed on kubernetes, at its Service's DNS name --
        for n in nodes:
            host = f"consortia-{n['id']}.{NS}.svc.cluster.local"
            assert n["provisioner"] == "kubernetes"
            assert n["api_endpoint"] == f"http://{host}:7050"
            assert n["p2p_endpoint"] == f"{host}:7051"
            assert n["status"] == "CREATING"
        genesis = load_genesis(c.get(f"/v1/networks/{net['id']}/genesis").content)
        assert [(v.id, v.endpoint) for v in genesis.config.validators] == [
            (n["id"], n["p2p_endpoint"]) for n in nodes]

        # -- the cluster received the four objects of each validator --------------------
        applied = fake.applied()
        assert [(m["kind"], m["metadata"]["name"]) for m in applied] == [
            (kind, f"consortia-{i}" + ("-data" if kind == "PersistentVolumeClaim" else ""))
            for i in ids
            for kind in ("Secret", "PersistentVolumeClaim", "Service", "StatefulSet")]
        for m in applied:
            meta = m["metadata"]
            assert meta["namespace"] == NS
            assert set(meta["labels"]) == LABEL_KEYS
            assert meta["labels"]["app.kubernetes.io/managed-by"] == "consortia"
            assert meta["annotations"][mf.ANNOTATION_NODE_ID] in ids
        sts = {m["metadata"]["name"]: m for m in applied if m["kind"] == "StatefulSet"}
        for i, n in zip(ids, nodes, strict=True):
            spec = mf.spec_from_annotation(
                sts[f"consortia-{i}"]["metadata"]["annotations"][mf.ANNOTATION_SPEC])
            assert (spec.node_id, spec.api_url) == (i, n["api_endpoint"])
            assert sts[f"consortia-{i}"]["spec"]["template"]["spec"]["containers"][0][
                "image"] == IMAGE

        # -- the Secret holds the node's keystore (its key encrypted), not a plain key --
        secret = next(m for m in applied if m["kind"] == "Secret"
                      and m["metadata"]["name"] == f"consortia-{ids[0]}")
        files = secret_files(secret)
        assert set(files) == {"node.toml", "genesis.json", "passphrase", "keystore-key.pem",
                              "keystore-cert.pem", "keystore-ca.pem"}
        assert files["keystore-key.pem"].startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        for value in files.values():
            assert b"BEGIN PRIVATE KEY" not in value and b"BEGIN EC PRIVATE KEY" not in value
        config = tomllib.loads(files["node.toml"].decode())
        assert config["node"]["id"] == ids[0]
        assert config["p2p"]["peers"] == {n["id"]: n["p2p_endpoint"] for n in nodes[1:]}
        assert load_genesis(files["genesis.json"]).hash.hex() == net["genesis_hash"]

        # -- CREATING → AVAILABLE once the cluster reports the pods ready ---------------
        for i in ids[:2]:
            fake.set_ready(f"consortia-{i}")
        wait_for(world, c, f"{nodes_path}/{ids[1]}", status="AVAILABLE", health="PASSING")
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "CREATING"
        fake.set_ready(f"consortia-{ids[2]}")
        wait_for(world, c, f"/v1/networks/{net['id']}", status="AVAILABLE")
        assert {n["status"] for n in c.get(nodes_path).json()["items"]} == {"AVAILABLE"}

        # -- a peer follows the validators at their Services' names ---------------------
        r = c.post(nodes_path, json={"name": "reader", "node_type": "peer"})
        assert r.status_code == 201, r.text
        peer = r.json()
        assert peer["provisioner"] == "kubernetes" and peer["p2p_endpoint"] is None
        assert peer["api_endpoint"] == (f"http://consortia-{peer['id']}.{NS}.svc."
                                        "cluster.local:7050")
        peer_secret = next(m for m in fake.applied() if m["kind"] == "Secret"
                           and m["metadata"]["name"] == f"consortia-{peer['id']}")
        peer_config = tomllib.loads(secret_files(peer_secret)["node.toml"].decode())
        assert sorted(peer_config["follow"]["validators"]) == sorted(
            n["api_endpoint"] for n in nodes)
        service = fake.objects[("services", f"consortia-{peer['id']}")]
        assert [p["name"] for p in service["spec"]["ports"]] == ["api"]

        # -- a validator added later: its change names its Service, then it is placed ----
        # (the configuration change goes to a validator's API, which no pod serves here:
        # the FakeGateway takes it, committed)
        r = c.post(nodes_path, json={"name": "validator3", "node_type": "validator"})
        assert r.status_code == 201, r.text
        added = r.json()
        assert added["p2p_endpoint"] == (f"consortia-{added['id']}.{NS}.svc.cluster.local"
                                         ":7051")
        change = world.gateway.committed[-1].payload.body
        assert (change.op, change.validator_id, change.endpoint) == (
            "add", added["id"], added["p2p_endpoint"])
        added_secret = next(m for m in fake.applied() if m["kind"] == "Secret"
                            and m["metadata"]["name"] == f"consortia-{added['id']}")
        added_config = tomllib.loads(secret_files(added_secret)["node.toml"].decode())
        assert added_config["p2p"]["peers"] == {n["id"]: n["p2p_endpoint"] for n in nodes}
        fake.set_ready(f"consortia-{added['id']}")
        wait_for(world, c, f"{nodes_path}/{added['id']}", status="AVAILABLE")
        ids.append(added["id"])

        # -- a channel's validators are placed the same way ------------------------------
        channels = f"/v1/networks/{net['id']}/channels"
        r = c.post(channels, json={"name": "trade", "member_id": net["member"]["id"],
                                   "consensus": "raft"})
        assert r.status_code == 201, r.text
        channel = r.json()
        chan_nodes = c.get(f"{channels}/{channel['id']}").json()["nodes"]
        chan_ids = [n["id"] for n in chan_nodes]
        assert len(chan_ids) == 3
        for n in chan_nodes:
            host = f"consortia-{n['id']}.{NS}.svc.cluster.local"
            assert (n["api_endpoint"], n["p2p_endpoint"]) == (f"http://{host}:7050",
                                                              f"{host}:7051")
        chan_genesis = load_genesis(c.get(f"{channels}/{channel['id']}/genesis").content)
        assert [v.endpoint for v in chan_genesis.config.validators] == [
            n["p2p_endpoint"] for n in chan_nodes]
        for i in chan_ids:
            fake.set_ready(f"consortia-{i}")
        wait_for(world, c, f"{channels}/{channel['id']}", status="AVAILABLE")

        # -- failing pods: UNHEALTHY while the kubelet restarts it, FAILED in a loop -----
        pod = f"consortia-{ids[0]}-0"
        crash = {"ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                              "message": "refusing to start: bad genesis"}}}
        fake.set_container(pod, restartCount=1, **crash)
        got = wait_for(world, c, f"{nodes_path}/{ids[0]}", status="UNHEALTHY")
        assert got["health"] == "FAILING"
        assert "exited with status 2" in got["status_reason"]
        fake.set_container(pod, restartCount=CRASH_LIMIT)
        got = wait_for(world, c, f"{nodes_path}/{ids[0]}", status="FAILED")
        assert got["status_reason"].startswith(f"crash loop: {CRASH_LIMIT} restarts")
        assert "refusing to start: bad genesis" in got["status_reason"]
        fake.set_container(f"consortia-{ids[1]}-0", ready=False, state={"waiting": {
            "reason": "ImagePullBackOff", "message": "pull access denied"}})
        got = wait_for(world, c, f"{nodes_path}/{ids[1]}", status="FAILED")
        assert got["status_reason"] == "ImagePullBackOff: pull access denied"
        # the network in service keeps its status: its nodes' statuses say it
        assert c.get(f"/v1/networks/{net['id']}").json()["status"] == "AVAILABLE"

        # -- delete the network: every node goes with it, its peer included, and their
        # objects leave the cluster ----------------------------------------------------
        r = c.delete(f"/v1/networks/{net['id']}", params={"confirm_name": "ledger"})
        assert r.status_code == 204, r.text
        assert {n["status"] for n in c.get(nodes_path).json()["items"]} == {"DELETED"}
    deleted = set(fake.deleted())
    for i in [*ids, *chan_ids, peer["id"]]:
        name = f"consortia-{i}"
        assert {("statefulsets", name), ("services", name), ("secrets", name)} <= deleted
        for plural in ("statefulsets", "services", "secrets", "pods"):
            assert (plural, name) not in fake.objects and (plural, f"{name}-0") \
                not in fake.objects
        # the ledger's claim is kept (retain_volumes), as a local node's directory is
        assert ("persistentvolumeclaims", f"{name}-data") in fake.objects
        assert ("persistentvolumeclaims", f"{name}-data") not in deleted


def test_a_cluster_that_refuses_the_objects_fails_the_network(
        placed: tuple[ControlWorld, FakeCluster]) -> None:
    world, fake = placed
    world.control.start()
    fake.fail_method = "PATCH"                 # the polls' reads are answered
    fake.fail_next = [(422, "Invalid")]        # the first validator's Secret is refused
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "bad", "profile": "ant",
                                         "consensus": "solo", "validators": 1})
        assert r.status_code == 201, r.text
        net = wait_for(world, c, f"/v1/networks/{r.json()['id']}", status="CREATE_FAILED")
        assert "could not start validator validator0" in net["status_reason"]
        assert "422" in net["status_reason"]
    assert not [k for k in fake.objects if k[0] == "statefulsets"]


def test_nodes_of_another_placement_are_failed_with_the_reason(tmp_path: Path) -> None:
    """A database whose nodes the local provisioner placed, served later with kubernetes:
    the cluster does not run them, and the reason says so (nothing is placed twice)."""
    url = f"sqlite:///{tmp_path / 'control.sqlite3'}"
    local = make_world(url, data_dir=tmp_path / "data", provisioner=FakeProvisioner())
    with local.client(local.creds("acme")) as c:
        r = c.post("/v1/networks", json={"name": "n", "profile": "ant", "consensus": "solo",
                                         "validators": 1})
        assert r.status_code == 201, r.text
        net = r.json()
    local.flush()
    local.close(stop_nodes=False)

    with fake_cluster(tmp_path) as (fake, kubeconfig):
        settings = dataclasses.replace(
            local.settings, provisioner="kubernetes",
            kubernetes=KubernetesSettings(image=IMAGE, namespace=NS, kubeconfig=kubeconfig))
        control = Control(settings, gateway=FakeGateway())
        try:
            control.start()
            control.runtime.flush()
            with control.transaction() as db:
                node = db.scalar(select(Node).where(Node.network_id == net["id"]))
                assert node is not None
                assert node.status is NodeStatus.FAILED
                assert node.status_reason is not None
                assert "placed by the local provisioner" in node.status_reason
                assert "with the kubernetes one" in node.status_reason
            assert fake.applied() == []
        finally:
            control.close()


# --- serve's flags and variables -------------------------------------------------------------


def serve_args(*argv: str) -> Any:
    from consortia.control.__main__ import parser

    return parser().parse_args(["serve", "--data-dir", "/nonexistent", *argv])


def test_serve_chooses_the_placement_from_flags_and_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from consortia.control.__main__ import _K8S_FLAGS, kubernetes_settings

    for _, var in [*_K8S_FLAGS.values(), ("", "CONSORTIA_PROVISIONER")]:
        monkeypatch.delenv(var, raising=False)      # whatever the shell running the tests has
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    args = serve_args()
    assert args.provisioner == "local" and kubernetes_settings(args) is None   # the default

    got = kubernetes_settings(serve_args(
        "--provisioner", "kubernetes", "--kubeconfig", str(kubeconfig), "--node-image", IMAGE,
        "--namespace", "ledgers", "--storage-class", "fast-ssd", "--kube-context", "prod",
        "--cluster-domain", "corp.local", "--image-pull-policy", "Always",
        "--k8s-poll-seconds", "2.5", "--k8s-delete-volumes", "true"))
    assert got == KubernetesSettings(
        image=IMAGE, kubeconfig=kubeconfig, namespace="ledgers", storage_class="fast-ssd",
        context="prod", cluster_domain="corp.local", image_pull_policy="Always",
        poll_interval=2.5, retain_volumes=False)

    monkeypatch.setenv("CONSORTIA_PROVISIONER", "kubernetes")
    monkeypatch.setenv("CONSORTIA_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("CONSORTIA_NODE_IMAGE", IMAGE)
    monkeypatch.setenv("CONSORTIA_K8S_NAMESPACE", "from-env")
    got = kubernetes_settings(serve_args("--namespace", "from-flag"))   # a flag wins
    assert got is not None and got.namespace == "from-flag" and got.retain_volumes
    assert kubernetes_settings(serve_args()) == KubernetesSettings(
        image=IMAGE, kubeconfig=kubeconfig, namespace="from-env")


@pytest.mark.parametrize(("argv", "message"), [
    (["--namespace", "x"], "--namespace place nodes on kubernetes"),
    (["--provisioner", "kubernetes", "--node-image", IMAGE], "needs --kubeconfig"),
    (["--provisioner", "kubernetes", "--kubeconfig", "KC"], "needs --node-image"),
    (["--provisioner", "kubernetes", "--kubeconfig", "KC", "--node-image", IMAGE,
      "--k8s-poll-seconds", "soon"], "is not a number"),
    (["--provisioner", "kubernetes", "--kubeconfig", "KC", "--node-image", IMAGE,
      "--k8s-delete-volumes", "maybe"], "give true or false"),
    (["--provisioner", "kubernetes", "--kubeconfig", "KC", "--node-image", IMAGE,
      "--namespace", "Not_A_Label"], "not a DNS-1123 label"),
    (["--provisioner", "kubernetes", "--kubeconfig", "/nonexistent/kc", "--node-image",
      IMAGE], "is not a file"),
])
def test_serve_refuses_a_bad_placement(tmp_path: Path, argv: list[str],
                                       message: str) -> None:
    from consortia.control.__main__ import kubernetes_settings
    from consortia.types.errors import ConfigError

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    argv = [str(kubeconfig) if a == "KC" else a for a in argv]
    with pytest.raises(ConfigError, match=message):
        kubernetes_settings(serve_args(*argv))


def test_serve_refuses_a_bad_placement_before_writing_anything(tmp_path: Path) -> None:
    from consortia.control.__main__ import main

    data_dir = tmp_path / "data"
    assert main(["serve", "--data-dir", str(data_dir), "--provisioner", "kubernetes",
                 "--node-image", IMAGE]) == 1
    assert not data_dir.exists()
