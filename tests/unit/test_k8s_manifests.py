"""The kubernetes provisioner's manifests, rendered from a real node directory (written by
``init_network``: CA-issued identities, an encrypted keystore, a signed genesis) and
validated against the Kubernetes OpenAPI schema (``kubernetes-validate``, which ships the
JSON schemas: no network, no cluster). Then the content that matters: names, labels,
probes, mounts, ports, resources, and a Secret that, mounted as its volume says, gives the
node its configuration and opens its key."""

from __future__ import annotations

import base64
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from consortia.control.provision import _manifests as mf
from consortia.control.provision.base import RESOURCE_CLASSES, NodeSpec
from consortia.control.provision.kubernetes import (
    KubernetesSettings,
    dump_manifests,
    render_node_manifests,
)
from consortia.control.settings import ControlSettings
from consortia.control.store.enums import ResourceClass
from consortia.identity.keystore import FileKeystore
from consortia.node.settings import NodeSettings
from consortia.sdk.network import init_network
from consortia.types.errors import ConfigError

K8S_VERSIONS = ("1.30", "1.33")
"""Oldest and a recent supported Kubernetes minor version the objects must be valid for."""
SETTINGS = KubernetesSettings(image="registry.example/consortia:0.1.0", namespace="chains",
                              storage_class="fast-ssd")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("net")
    init_network(root, consensus="raft", validators=3, port=21000)
    return root


def _spec(net: Path, node: str = "validator0", resource_class: str = "small") -> NodeSpec:
    d = net / "nodes" / node
    return NodeSpec(node, d / "node.toml", d / "data", d / "node.log",
                    "http://127.0.0.1:21000", resource_class)


def _by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = _by_kind(objs)["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("resource_class", RESOURCE_CLASSES)
def test_every_object_of_every_class_is_valid_kubernetes(net: Path,
                                                         resource_class: str) -> None:
    objs = render_node_manifests(_spec(net, resource_class=resource_class), SETTINGS)
    assert [o["kind"] for o in objs] == ["Secret", "PersistentVolumeClaim", "Service",
                                         "StatefulSet"]
    for obj in objs + render_node_manifests(_spec(net), SETTINGS, stopped=True):
        for version in K8S_VERSIONS:
            # strict: an unknown field anywhere (a typo) is an error too
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_schema_check_can_fail(net: Path) -> None:
    """The validation above is not vacuous: a misspelt field or a wrong type is caught."""
    sts = _by_kind(render_node_manifests(_spec(net), SETTINGS))["StatefulSet"]
    bad = json.loads(json.dumps(sts))
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    bad = json.loads(json.dumps(sts))
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_resources_follow_the_resource_class(net: Path) -> None:
    assert set(RESOURCE_CLASSES) == {c.value for c in ResourceClass} == set(mf.RESOURCES)
    seen = []
    for rc in RESOURCE_CLASSES:
        objs = render_node_manifests(_spec(net, resource_class=rc), SETTINGS)
        res, want = _container(objs)["resources"], mf.RESOURCES[rc]
        assert res == {"requests": {"cpu": want.cpu_request, "memory": want.memory_request},
                       "limits": {"cpu": want.cpu_limit, "memory": want.memory_limit}}
        claim = _by_kind(objs)["PersistentVolumeClaim"]["spec"]
        assert claim["resources"]["requests"]["storage"] == want.storage
        assert claim["storageClassName"] == "fast-ssd"
        assert claim["accessModes"] == ["ReadWriteOnce"]
        seen.append((want.cpu_limit, want.memory_limit, want.storage))
    assert len(set(seen)) == 3                           # the classes differ


def test_names_labels_and_namespace(net: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    kinds = _by_kind(objs)
    for o in objs:
        meta = o["metadata"]
        assert meta["namespace"] == "chains"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "consortia"
        assert meta["labels"]["app.kubernetes.io/instance"] == "consortia-validator0"
        assert meta["annotations"][mf.ANNOTATION_NODE_ID] == "validator0"
        assert DNS_LABEL.fullmatch(meta["name"]) and len(meta["name"]) <= 63
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == "consortia-validator0-data"
    sts = kinds["StatefulSet"]
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == "consortia-validator0"
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert kinds["Service"]["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert mf.spec_from_annotation(
        sts["metadata"]["annotations"][mf.ANNOTATION_SPEC]) == _spec(net)


@given(st.text(alphabet="ABCxyz019._-", min_size=1, max_size=64).filter(
    lambda s: s[0].isalnum()))
def test_every_node_id_gets_a_valid_distinct_name(node_id: str) -> None:
    name = mf.resource_name(node_id)
    assert DNS_LABEL.fullmatch(name) and name[0].isalpha() and len(name) <= 52
    # distinct ids, distinct names: the lower-cased, dash-for-dot twin is another name
    twin = node_id.lower().replace(".", "-").replace("_", "-")
    if twin != node_id and twin[0].isalnum():
        assert mf.resource_name(twin) != name


def test_ports_probes_and_command(net: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    c = _container(objs)
    assert c["image"] == "registry.example/consortia:0.1.0"
    assert c["command"] == ["python", "-m", "consortia.node", "--config",
                            "/etc/consortia/node/node.toml"]
    assert c["ports"] == [{"name": "api", "containerPort": 21000, "protocol": "TCP"},
                          {"name": "p2p", "containerPort": 21100, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "api", "scheme": "HTTP"}
        assert c[probe]["timeoutSeconds"] >= 1
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 60
    svc = _by_kind(objs)["Service"]["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["ports"]] == [
        ("api", 21000, "api"), ("p2p", 21100, "p2p")]
    assert svc["publishNotReadyAddresses"] is True


def test_a_solo_node_has_no_p2p_port(tmp_path: Path) -> None:
    init_network(tmp_path, port=21500)
    objs = render_node_manifests(_spec(tmp_path), SETTINGS)
    assert [p["name"] for p in _container(objs)["ports"]] == ["api"]
    assert [p["name"] for p in _by_kind(objs)["Service"]["spec"]["ports"]] == ["api"]
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSIONS[0], strict=True)


def test_non_root_read_only_and_mounts(net: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    pod = _by_kind(objs)["StatefulSet"]["spec"]["template"]["spec"]
    c = _container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"] == {"name": "config", "mountPath": mf.CONFIG_DIR,
                                "readOnly": True}
    assert mounts["data"]["mountPath"] == mf.DATA_DIR and "readOnly" not in mounts["data"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == "consortia-validator0"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "consortia-validator0-data"
    assert "emptyDir" in volumes[mounts["tmp"]["name"]]    # the only writable scratch


def _mount(objs: list[dict[str, Any]], into: Path) -> Path:
    """Write the Secret's entries where its volume's items put them (what the kubelet
    does), under ``into`` standing for the mount point."""
    secret = _by_kind(objs)["Secret"]
    volume = next(v for v in _by_kind(objs)["StatefulSet"]["spec"]["template"]["spec"][
        "volumes"] if v["name"] == "config")
    assert {i["key"] for i in volume["secret"]["items"]} == set(secret["data"])
    for item in volume["secret"]["items"]:
        path = into / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(secret["data"][item["key"]]))
    return into


def test_the_secret_holds_the_node_files_base64(net: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    data = {k: base64.b64decode(v) for k, v in _by_kind(objs)["Secret"]["data"].items()}
    org = net / "orgs" / "org1"
    assert data["genesis.json"] == (net / "genesis.json").read_bytes()
    assert data["passphrase"] == (org / "passphrase").read_bytes()
    for f in ("key.pem", "cert.pem", "ca.pem"):
        assert data[f"keystore-{f}"] == (org / "keystore" / "validator0" / f).read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in data["keystore-key.pem"]   # never decrypted


def test_the_mounted_secret_is_a_node_configuration_that_opens_its_key(
        net: Path, tmp_path: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    config = _mount(objs, tmp_path) / "node.toml"
    settings = NodeSettings.load(config)          # the node's own validation
    assert settings.node.data_dir == Path(mf.DATA_DIR) / "data"
    assert settings.api.host == "0.0.0.0" and settings.api.port == 21000
    assert settings.p2p is not None and settings.p2p.port == 21100
    assert settings.p2p.peers == {
        "validator1": "consortia-validator1.chains.svc.cluster.local:21101",
        "validator2": "consortia-validator2.chains.svc.cluster.local:21102"}
    assert settings.resolve(settings.node.genesis).read_bytes() == (
        net / "genesis.json").read_bytes()
    stored = FileKeystore(settings.resolve(settings.identity.keystore)).load(
        settings.identity.name, settings.passphrase())
    assert stored.name == "validator0"      # the key opened with the Secret's passphrase
    assert stored.cert_der == x509.load_pem_x509_certificate(
        (net / "orgs" / "org1" / "keystore" / "validator0" / "cert.pem").read_bytes()
    ).public_bytes(serialization.Encoding.DER)


def test_a_new_configuration_changes_the_pod_template_hash(net: Path, tmp_path: Path) -> None:
    spec = _spec(net)
    before = render_node_manifests(spec, SETTINGS)
    assert render_node_manifests(spec, SETTINGS) == before          # deterministic
    text = spec.config.read_text().replace('[api]\nhost = "127.0.0.1"',
                                           '[log]\nlevel = "debug"\n\n[api]\nhost = "127.0.0.1"')
    assert text != spec.config.read_text()
    after = mf.render(spec, mf.read_node_files(spec, text), SETTINGS.target())

    def digest(objs: list[dict[str, Any]]) -> str:
        return str(_by_kind(objs)["StatefulSet"]["spec"]["template"]["metadata"][
            "annotations"][mf.ANNOTATION_CONFIG_HASH])
    assert digest(after) != digest(before)
    pod_toml = base64.b64decode(_by_kind(after)["Secret"]["data"]["node.toml"])
    assert tomllib.loads(pod_toml.decode())["log"] == {"level": "debug"}   # kept


def test_review_output_redacts_secrets_unless_asked(net: Path) -> None:
    objs = render_node_manifests(_spec(net), SETTINGS)
    passphrase = (net / "orgs" / "org1" / "passphrase").read_text().strip()
    shown = dump_manifests(objs)
    doc = json.loads(shown)
    assert doc["kind"] == "List" and len(doc["items"]) == 4
    assert passphrase not in shown
    assert base64.b64encode(passphrase.encode()).decode()[:16] not in shown
    assert doc["items"][0]["data"]["passphrase"].startswith("<redacted: ")
    assert objs[0]["data"]["passphrase"] != doc["items"][0]["data"]["passphrase"]  # a copy
    revealed = json.loads(dump_manifests(objs, reveal_secrets=True))
    assert revealed["items"] == objs


def test_unusable_node_directories_are_refused(net: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a node configuration"):
        render_node_manifests(_spec(tmp_path), SETTINGS)
    d = tmp_path / "n"
    d.mkdir()
    text = (net / "nodes" / "validator0" / "node.toml").read_text()
    (d / "node.toml").write_text(text)            # relative paths now lead nowhere
    with pytest.raises(ConfigError, match="cannot read"):
        render_node_manifests(NodeSpec("validator0", d / "node.toml", d, d / "l",
                                       "http://h:1"), SETTINGS)
    (d / "node.toml").write_text(text.replace('passphrase_file = "../../orgs/org1/passphrase"',
                                              'passphrase_env = "PW"'))
    with pytest.raises(ConfigError, match="passphrase_env"):
        render_node_manifests(NodeSpec("validator0", d / "node.toml", d, d / "l",
                                       "http://h:1"), SETTINGS)


def test_settings_refuse_what_cannot_work(tmp_path: Path) -> None:
    for bad in ({"image": ""}, {"image": "a b"}, {"namespace": "Chains"},
                {"namespace": "-x"}, {"storage_class": "Fast_SSD"},
                {"kubeconfig": tmp_path / "none"}, {"request_timeout": 0},
                {"image_pull_policy": "Sometimes"}, {"crash_limit": 0}):
        args: dict[str, Any] = {"image": "img:1", **bad}
        with pytest.raises(ConfigError):
            KubernetesSettings(**args)
    key = os.urandom(32)
    with pytest.raises(ConfigError, match="kubeconfig"):       # chosen, but nowhere to apply
        ControlSettings(database_url="sqlite://", master_key=key, provisioner="kubernetes",
                        kubernetes=KubernetesSettings(image="img:1"))
    with pytest.raises(ConfigError, match="kubernetes settings"):
        ControlSettings(database_url="sqlite://", master_key=key, provisioner="kubernetes")
    with pytest.raises(ConfigError, match="provisioner is local"):
        ControlSettings(database_url="sqlite://", master_key=key,
                        kubernetes=KubernetesSettings(image="img:1"))
    with pytest.raises(ConfigError, match="not local or kubernetes"):
        ControlSettings(database_url="sqlite://", master_key=key, provisioner="docker")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    ok = ControlSettings(database_url="sqlite://", master_key=key, provisioner="kubernetes",
                         kubernetes=KubernetesSettings(image="img:1", kubeconfig=kubeconfig))
    assert ok.kubernetes is not None and ok.kubernetes.namespace == "consortia"
