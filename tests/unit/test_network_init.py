"""``init_network`` and ``consortia network init``: solo, raft and pbft network directories.

Nothing here starts a node: each layout is checked the way a node reads it
(``NodeSettings.load``, its keystore identity, ``load_genesis``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.node.settings import NodeSettings
from consortia.sdk import LocalNetwork, init_network, load_genesis
from consortia.sdk.identity import Identity
from consortia.sdk.network import NetworkNode
from consortia.types.config import ConsensusKind
from consortia.types.errors import ConfigError

SOLO_NETWORK_KEYS = {"chain_id", "orgs", "nodes", "default_identity", "genesis_hash"}
"""network.json of a solo network, as every earlier release wrote it."""


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _identity_files(org: str, name: str) -> set[str]:
    return {f"orgs/{org}/keystore/{name}/{f}" for f in ("key.pem", "cert.pem", "ca.pem")}


def _org_files(org: str, names: list[str]) -> set[str]:
    files = {f"orgs/{org}/passphrase", f"orgs/{org}/ca/ca-key.pem", f"orgs/{org}/ca/ca-cert.pem",
             f"orgs/{org}/ca/ca-state.json"}
    for name in names:
        files |= _identity_files(org, name)
    return files


def _check_node_identity(settings: NodeSettings, genesis_cert: bytes) -> None:
    """The node's keystore identity opens with its passphrase and is the one genesis lists."""
    ident = Identity.load(settings.resolve(settings.identity.keystore), settings.identity.name,
                          settings.passphrase())
    assert ident.cert_der == genesis_cert


def test_solo_layout_is_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "net"
    net = init_network(root, chain_id="solo1", orgs=["org1", "org2"], port=7300)

    assert _files(root) == ({"network.json", "genesis.json", "nodes/validator0/node.toml"}
                            | _org_files("org1", ["admin", "alice", "validator0"])
                            | _org_files("org2", ["admin", "alice"]))
    doc = json.loads((root / "network.json").read_text())
    assert set(doc) == SOLO_NETWORK_KEYS
    assert doc["nodes"] == [{"id": "validator0", "config": "nodes/validator0/node.toml",
                             "api": "http://127.0.0.1:7300"}]
    assert doc["orgs"] == {"org1": {"identities": ["org1/admin", "org1/alice",
                                                   "org1/validator0"]},
                           "org2": {"identities": ["org2/admin", "org2/alice"]}}
    assert doc["default_identity"] == "org1/alice"

    raw = tomllib.loads((root / "nodes/validator0/node.toml").read_text())
    assert raw == {
        "node": {"id": "validator0", "data_dir": "data", "genesis": "../../genesis.json"},
        "api": {"host": "127.0.0.1", "port": 7300},
        "identity": {"keystore": "../../orgs/org1/keystore", "name": "validator0",
                     "passphrase_file": "../../orgs/org1/passphrase"},
    }
    settings = NodeSettings.load(root / "nodes/validator0/node.toml")
    assert settings.p2p is None

    g = load_genesis(net.genesis_path)
    assert g.hash.hex() == doc["genesis_hash"]
    assert g.config.consensus is ConsensusKind.SOLO
    assert [(v.id, v.org_id) for v in g.config.validators] == [("validator0", "org1")]
    assert g.config.commit_quorum() == 1
    _check_node_identity(settings, g.config.validators[0].cert)

    # Read back: the org of a solo node is inferred, there is no p2p address.
    reopened = LocalNetwork.open(root)
    assert reopened.consensus is ConsensusKind.SOLO
    assert reopened.nodes() == [NetworkNode("validator0", "org1",
                                            root / "nodes/validator0/node.toml",
                                            "http://127.0.0.1:7300", None)]
    assert reopened.node_url() == "http://127.0.0.1:7300"
    assert reopened.node_config() == root / "nodes/validator0/node.toml"


@pytest.mark.parametrize(("consensus", "n", "quorum"), [
    (ConsensusKind.RAFT, 3, 2),
    (ConsensusKind.PBFT, 4, 3),
    (ConsensusKind.RAFT, 5, 3),
])
def test_multi_validator_layout(tmp_path: Path, consensus: ConsensusKind, n: int,
                                quorum: int) -> None:
    root = tmp_path / "net"
    orgs = ["org1", "org2"]
    net = init_network(root, chain_id="multi", orgs=orgs, port=7400, consensus=consensus,
                       validators=n)
    ids = [f"validator{i}" for i in range(n)]
    owner = {vid: orgs[i % 2] for i, vid in enumerate(ids)}

    expected = {"network.json", "genesis.json"} | {f"nodes/{v}/node.toml" for v in ids}
    for org in orgs:
        expected |= _org_files(org, ["admin", "alice",
                                     *[v for v in ids if owner[v] == org]])
    assert _files(root) == expected

    doc = json.loads((root / "network.json").read_text())
    assert set(doc) == SOLO_NETWORK_KEYS | {"consensus"}
    assert doc["consensus"] == consensus.value
    assert doc["nodes"] == [
        {"id": v, "org": owner[v], "config": f"nodes/{v}/node.toml",
         "api": f"http://127.0.0.1:{7400 + i}", "p2p": f"127.0.0.1:{7500 + i}"}
        for i, v in enumerate(ids)]
    for org in orgs:
        assert doc["orgs"][org]["identities"] == [
            f"{org}/admin", f"{org}/alice", *[f"{org}/{v}" for v in ids if owner[v] == org]]

    g = load_genesis(net.genesis_path)
    assert g.hash.hex() == doc["genesis_hash"]
    assert g.config.consensus is consensus
    assert [(v.id, v.org_id) for v in g.config.validators] == [(v, owner[v]) for v in ids]
    assert g.config.commit_quorum() == quorum
    listed = {v.id: v.cert for v in g.config.validators}

    settings = {v: NodeSettings.load(root / f"nodes/{v}/node.toml") for v in ids}
    p2p = {v: s.p2p for v, s in settings.items() if s.p2p is not None}
    assert set(p2p) == set(ids)
    ports: list[int] = []
    for vid, s in settings.items():
        assert s.node.id == vid
        assert s.identity.name == vid
        assert s.resolve(s.identity.keystore).resolve() == \
            root.resolve() / "orgs" / owner[vid] / "keystore"
        assert s.resolve(s.node.genesis).resolve() == net.genesis_path.resolve()
        assert s.resolve(s.node.data_dir) == root.resolve() / "nodes" / vid / "data"
        ports += [s.api.port, p2p[vid].port]
        # Every other validator, at the address it listens on; never itself.
        assert p2p[vid].peers == {other: f"{p2p[other].host}:{p2p[other].port}"
                                  for other in ids if other != vid}
        _check_node_identity(s, listed[vid])
    assert len(set(ports)) == len(ports) == 2 * n
    # Symmetric: a knows b's address exactly when b knows a's.
    for a in ids:
        for b in ids:
            if a != b:
                assert a in p2p[b].peers and b in p2p[a].peers

    reopened = LocalNetwork.open(root)
    assert reopened.consensus is consensus
    assert [(x.id, x.org, x.api, x.p2p) for x in reopened.nodes()] == [
        (v, owner[v], f"http://127.0.0.1:{7400 + i}", f"127.0.0.1:{7500 + i}")
        for i, v in enumerate(ids)]
    assert reopened.node_url() == "http://127.0.0.1:7400"
    assert reopened.node_url("validator2") == "http://127.0.0.1:7402"
    assert reopened.node_config("validator1") == root / "nodes/validator1/node.toml"
    with pytest.raises(ConfigError, match="no node"):
        reopened.node_url("validator99")
    # Each validator identity is also reachable as org/name through the SDK.
    assert reopened.identity(f"{owner['validator1']}/validator1").cert_der == \
        listed["validator1"]


def test_defaults_explicit_p2p_port_and_three_orgs(tmp_path: Path) -> None:
    raft = init_network(tmp_path / "raft", consensus=ConsensusKind.RAFT, port=8000)
    assert [n.id for n in raft.nodes()] == ["validator0", "validator1", "validator2"]
    assert [n.org for n in raft.nodes()] == ["org1"] * 3     # one organization by default
    pbft = init_network(tmp_path / "pbft", consensus="pbft", orgs=["a", "b", "c"],
                        port=8000, p2p_port=9000, host="127.0.0.2")
    assert [(n.org, n.api, n.p2p) for n in pbft.nodes()] == [
        ("a", "http://127.0.0.2:8000", "127.0.0.2:9000"),
        ("b", "http://127.0.0.2:8001", "127.0.0.2:9001"),
        ("c", "http://127.0.0.2:8002", "127.0.0.2:9002"),
        ("a", "http://127.0.0.2:8003", "127.0.0.2:9003")]
    s = NodeSettings.load(pbft.node_config("validator3"))
    assert s.p2p is not None and s.p2p.host == "127.0.0.2" and s.p2p.port == 9003
    assert s.p2p.peers["validator0"] == "127.0.0.2:9000"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"consensus": ConsensusKind.PBFT, "validators": 3}, "at least 4 validators.*3f \\+ 1"),
    ({"consensus": ConsensusKind.PBFT, "validators": 1}, "at least 4 validators"),
    ({"consensus": ConsensusKind.RAFT, "validators": 0}, "at least 1 validator"),
    ({"consensus": ConsensusKind.SOLO, "validators": 2}, "exactly one validator"),
    ({"consensus": ConsensusKind.SOLO, "p2p_port": 9000}, "no p2p"),
    ({"consensus": ConsensusKind.RAFT, "port": 7050, "p2p_port": 7051}, "overlap"),
    ({"consensus": ConsensusKind.RAFT, "validators": 101, "port": 7050}, "overlap"),
    ({"consensus": ConsensusKind.PBFT, "port": 65534}, "65535"),
    ({"consensus": "paxos"}, "unknown consensus"),
])
def test_refused_before_anything_is_written(tmp_path: Path, kwargs: dict[str, object],
                                            match: str) -> None:
    root = tmp_path / "net"
    with pytest.raises(ConfigError, match=match):
        init_network(root, **kwargs)
    assert not root.exists()


def test_even_raft_is_allowed(tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", consensus=ConsensusKind.RAFT, validators=4)
    g = load_genesis(net.genesis_path)
    assert len(g.config.validators) == 4 and g.config.commit_quorum() == 3


# -- the CLI ---------------------------------------------------------------------------------

def _cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_cli_ant_profile_with_four_validators_is_pbft(tmp_path: Path) -> None:
    root = tmp_path / "ant"
    code, out = _cli("dev", "init", "-N", root, "--profile", "ant", "--validators", "4")
    assert code == 0, out
    net = LocalNetwork.open(root)
    assert net.consensus is ConsensusKind.PBFT
    assert [n.id for n in net.nodes()] == [f"validator{i}" for i in range(4)]
    assert load_genesis(net.genesis_path).config.commit_quorum() == 3
    for node in net.nodes():
        assert node.id in out and node.api in out and str(node.p2p) in out
        assert NodeSettings.load(node.config).p2p is not None
    assert "consortia dev up" in out


def test_cli_raft_orderers(tmp_path: Path) -> None:
    root = tmp_path / "raft"
    code, out = _cli("dev", "init", "-N", root, "--consensus", "raft", "--orderers", "3",
                     "--port", "9100", "--p2p-port", "9300")
    assert code == 0, out
    net = LocalNetwork.open(root)
    assert net.consensus is ConsensusKind.RAFT
    assert [(n.api, n.p2p) for n in net.nodes()] == [
        (f"http://127.0.0.1:{9100 + i}", f"127.0.0.1:{9300 + i}") for i in range(3)]
    g = load_genesis(net.genesis_path)
    assert g.config.consensus is ConsensusKind.RAFT and g.config.commit_quorum() == 2


def test_cli_defaults(tmp_path: Path) -> None:
    # No option: solo, as before. --orderers alone: raft.
    code, out = _cli("dev", "init", "-N", tmp_path / "solo")
    assert code == 0, out
    assert LocalNetwork.open(tmp_path / "solo").consensus is ConsensusKind.SOLO
    assert "consortia node start --config" in out
    code, out = _cli("dev", "init", "-N", tmp_path / "ord", "--orderers", "5")
    assert code == 0, out
    net = LocalNetwork.open(tmp_path / "ord")
    assert net.consensus is ConsensusKind.RAFT and len(net.nodes()) == 5
    code, out = _cli("dev", "init", "-N", tmp_path / "bft", "--consensus", "pbft")
    assert code == 0, out
    assert len(LocalNetwork.open(tmp_path / "bft").nodes()) == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "fabric"], "profile fabric is not available yet"),
    (["--evm-chain-id", "5"], "apply to quorum networks"),
    (["--profile", "quorum", "--evm-chain-id", "0"], "EVM chain id must be"),
    (["--consensus", "pbft", "--validators", "3"], "pbft needs at least 4 validators"),
    (["--consensus", "solo", "--validators", "3"], "exactly one validator"),
    (["--validators", "3", "--orderers", "4"], "disagree"),
])
def test_cli_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    root = tmp_path / "net"
    code, out = _cli("dev", "init", "-N", root, *args)
    assert code == 1, out
    assert message in out
    assert not (root / "network.json").exists()


def test_up_resolves_consensus_like_network_init() -> None:
    from consortia.cli.dev import resolve_consensus
    assert resolve_consensus(None, None) == (ConsensusKind.SOLO, None)
    assert resolve_consensus(None, 1) == (ConsensusKind.SOLO, 1)
    assert resolve_consensus(None, 4) == (ConsensusKind.PBFT, 4)
    assert resolve_consensus(None, None, 3) == (ConsensusKind.RAFT, 3)
    assert resolve_consensus(ConsensusKind.RAFT, 3) == (ConsensusKind.RAFT, 3)
    assert resolve_consensus(ConsensusKind.PBFT, None) == (ConsensusKind.PBFT, None)


def test_up_stops_every_child(tmp_path: Path) -> None:
    """``up``'s shutdown reaches every node process (stand-ins here, not nodes)."""
    from consortia.cli import dev

    net = init_network(tmp_path / "net", consensus=ConsensusKind.RAFT)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    children = [dev._Child(node, subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"]), None) for node in net.nodes()]
    try:
        assert dev._stop_all(children, net.root) == 0
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        for c in children:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
    assert [c.proc.returncode for c in children] == [-signal.SIGTERM] * 3
