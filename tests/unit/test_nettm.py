"""The transaction managers ``init_network(profile="quorum")`` writes (``sdk.nettm``,
ADR 0028) and the port plan (``sdk.netplan``): files and modes, settings the manager and
the node accept, a directory the managers verify against the organizations' CAs, the
opt-out, refusals that write nothing; ``--private-for`` checks of the SDK.

Real parts: the CAs, scrypt key files, the manager's and the node's settings loaders, the
directory verifier. No process starts here (tests/integration/test_quorum_dev_privacy.py
runs them).
"""

from __future__ import annotations

import base64
import stat
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.node.settings import NodeSettings
from consortia.privacy import keys as keyfiles
from consortia.privacy.box import public_bytes
from consortia.privacy.directory import OrgTrust, SignedDirectoryFile
from consortia.privacy.settings import PrivacySettings, read_secret
from consortia.sdk import LocalNetwork, init_network
from consortia.sdk.evm import BadArgument, private_keys
from consortia.sdk.identity import Identity
from consortia.sdk.nettm import DIRECTORY_FILE
from consortia.types.errors import ConfigError


@pytest.fixture(scope="module")
def qnet(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return init_network(tmp_path_factory.mktemp("tm") / "q", orgs=["org1", "org2", "org3"],
                        profile="quorum", consensus="raft", port=21500)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_org_gets_a_manager_with_private_files(qnet: LocalNetwork) -> None:
    managers = qnet.managers()
    assert [m.org for m in managers] == ["org1", "org2", "org3"]
    ports = {int(m.url.rsplit(":", 1)[1]) for m in managers}
    ports |= {int(m.peer.rsplit(":", 1)[1]) for m in managers}
    assert ports == set(range(21700, 21706))  # port + 200 …, two per organization
    for m in managers:
        for name in ("tm.key", "passphrase", "token"):
            assert _mode(m.dir / name) == 0o600, name
        assert len(read_secret(m.token_file, "token")) >= 32
        settings = PrivacySettings.load(m.config)  # the manager's own loader accepts it
        assert settings.manager.org_id == m.org
        assert {t.org_id for t in settings.trust} == {"org1", "org2", "org3"}
        assert settings.directory.file == (qnet.root / DIRECTORY_FILE).resolve()
        key = keyfiles.load_key(settings.keys.files[0],
                                read_secret(settings.keys.passphrase_file, "passphrase"))
        assert base64.b64encode(public_bytes(key)).decode() == qnet.privacy_key(m.org)
        assert qnet.tm_url(m.org) == f"http://127.0.0.1:{settings.local.port}"
    assert len({m.public_key for m in managers}) == 3


def test_the_directory_verifies_and_each_tls_certificate_is_a_managers(
        qnet: LocalNetwork) -> None:
    trust = OrgTrust.from_ca_certs({o: qnet.ca(o).cert_der for o in ("org1", "org2", "org3")})
    now = time.time_ns() // 1_000_000
    directory = SignedDirectoryFile(qnet.root / DIRECTORY_FILE).load(trust, now)
    for m in qnet.managers():
        assert directory.org_of(base64.b64decode(m.public_key)) == m.org
        entry = directory.entry(m.org)
        assert entry is not None and entry.endpoint == m.peer
        passphrase = read_secret(m.dir / "passphrase", "passphrase")
        tls = Identity.load(m.dir / "keystore", "tm", passphrase)
        assert trust.identify_manager(tls.cert_der, now) == m.org  # role peer, org's CA


def test_every_node_of_an_org_names_its_manager(qnet: LocalNetwork) -> None:
    for node in qnet.nodes():
        settings = NodeSettings.load(node.config)
        assert settings.privacy is not None
        assert settings.privacy.url == qnet.tm_url(node.org)
        token = settings.privacy.token(settings.base_dir)
        assert token == (qnet.manager(node.org).token_file).read_text().strip()


def test_a_peer_added_later_gets_its_orgs_manager(tmp_path: Path) -> None:
    net = init_network(tmp_path / "q", orgs=["org1", "org2"], profile="quorum", port=21800)
    peer = net.add_peer("peer2", "org2", api_port=21810)
    doc = tomllib.loads(peer.config.read_text())
    assert doc["privacy"]["url"] == net.tm_url("org2")
    assert (peer.config.parent / doc["privacy"]["token_file"]).resolve() == \
        net.manager("org2").token_file.resolve()


def test_privacy_can_be_left_out(tmp_path: Path) -> None:
    net = init_network(tmp_path / "q", orgs=["org1", "org2"], profile="quorum",
                       privacy=False, port=21900)
    assert net.managers() == [] and "managers" not in net.doc
    assert not (net.root / DIRECTORY_FILE).exists()
    assert not (net.org_dir("org1") / "tm").exists()
    assert "privacy" not in tomllib.loads(net.node_config().read_text())
    with pytest.raises(ConfigError, match="no transaction manager"):
        net.privacy_key("org1")
    with pytest.raises(ConfigError, match="no organization"):
        net.tm_url("org9")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"privacy": True}, "quorum networks"),
    ({"tm_port": 23000}, "quorum networks"),
    ({"profile": "quorum", "privacy": False, "tm_port": 23000}, "manager port applies"),
    ({"profile": "quorum", "consensus": "raft", "tm_port": 22001}, "overlap"),  # an API
    ({"profile": "quorum", "tm_port": 65535}, "1..65535"),
    ({"profile": "quorum", "port": 22000, "consensus": "raft", "tm_port": 22101},
     "overlap"),                                                # a p2p port
])
def test_bad_manager_arguments_write_nothing(tmp_path: Path, kwargs: dict[str, object],
                                             message: str) -> None:
    args: dict[str, object] = {"orgs": ["org1", "org2"], "port": 22000, **kwargs}
    with pytest.raises(ConfigError, match=message):
        init_network(tmp_path / "q", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "q").exists()


def test_cli_dev_init_lists_the_keys_and_no_privacy_leaves_them_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dev", "init", "-N", str(tmp_path / "a"), "--profile",
                                      "quorum", "--port", "22300"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    net = LocalNetwork.open(tmp_path / "a")
    assert "transaction managers" in out
    for org in ("org1", "org2"):
        assert net.privacy_key(org) in out and net.tm_url(org) in out
    result = CliRunner().invoke(app, ["dev", "init", "-N", str(tmp_path / "b"), "--profile",
                                      "quorum", "--no-privacy", "--port", "22400"])
    assert result.exit_code == 0, result.output
    assert "transaction managers" not in result.output
    assert LocalNetwork.open(tmp_path / "b").managers() == []


@pytest.mark.parametrize("keys", [
    [], ["not base64!"], [base64.b64encode(b"x" * 31).decode()],
    [base64.b64encode(b"k" * 32).decode()] * 2,
    [base64.b64encode(bytes([i]) * 32).decode() for i in range(65)],
])
def test_private_for_keys_are_checked_before_anything_is_sent(keys: list[str]) -> None:
    with pytest.raises(BadArgument) as err:
        private_keys(keys)
    assert err.value.code == "bad_private_for"


def test_good_private_for_keys_pass_unchanged() -> None:
    keys = [base64.b64encode(bytes([i]) * 32).decode() for i in range(3)]
    assert private_keys(keys) == keys
