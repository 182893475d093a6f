"""``init_network(profile="quorum")``, ``consortia dev init --profile quorum`` and the
``LocalNetwork`` account helpers: Ethereum accounts made per organization, bound and funded
in the genesis configuration, their key files readable by ``consortia account`` and
``consortia contract``; a ``QuorumChain`` over that genesis accepting their transactions.

Real parts throughout: the CAs, the scrypt key files, the genesis, the ledger store, the
py-evm engine and solo consensus. Nothing here starts a node process (the node wiring of
quorum chains is separate work).
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from typer.testing import CliRunner

from consortia.cli.main import app
from consortia.consensus.core import BatchReady, Commit
from consortia.consensus.solo import Solo
from consortia.crypto.suite import get_suite
from consortia.identity.config_update import apply
from consortia.identity.membership import Membership
from consortia.ledger.store import LedgerStore
from consortia.node.quorum import QuorumChain, decode_receipt_row
from consortia.sdk import LocalNetwork, init_network, load_genesis
from consortia.sdk.evm import load_key, read_password
from consortia.sdk.netaccounts import DEFAULT_BALANCE, PASSWORD_FILE, NetworkAccount, find
from consortia.sdk.tx import SignedTx
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import admit_eth
from consortia.types.config import (
    BlockLimits,
    ChainConfig,
    ConsensusKind,
    MembershipPolicy,
    OrgConfig,
    Policies,
    Profile,
    ValidatorConfig,
)
from consortia.types.errors import AccountNotPermitted, ConfigError
from consortia.types.evm_config import parse_address
from consortia.types.tx import AccountUpdate, Envelope, Payload
from tests.unit.conftest import FixedBatchSupport

CHAIN = 4242
BALANCE = 5 * 10**21
SOLO_NETWORK_KEYS = {"chain_id", "orgs", "nodes", "default_identity", "genesis_hash"}


@pytest.fixture(scope="module")
def qnet(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    """Two organizations, two accounts each (module scoped: each key file costs a scrypt
    run). Tests that change the network make their own."""
    return init_network(tmp_path_factory.mktemp("q") / "net", chain_id="qdev",
                        orgs=["org1", "org2"], profile="quorum", evm_chain_id=CHAIN,
                        accounts_per_org=2, balance=BALANCE)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- genesis -------------------------------------------------------------------------------

def test_the_genesis_binds_and_funds_every_account(qnet: LocalNetwork) -> None:
    g = load_genesis(qnet.genesis_path)
    config = g.config
    config.validate()
    assert config.profile is Profile.QUORUM and config.evm is not None
    assert (config.evm.chain_id, config.evm.gas_limit) == (CHAIN, 30_000_000)
    accounts = qnet.accounts()
    assert [a.org for a in accounts] == ["org1", "org1", "org2", "org2"]
    assert len({a.address for a in accounts}) == 4
    raw = [parse_address(a.address) for a in accounts]
    assert [(b.address, b.org_id) for b in config.evm.accounts] == \
        [(r, a.org) for r, a in zip(raw, accounts, strict=True)]
    assert [(x.address, x.balance) for x in config.evm.alloc] == [(r, BALANCE) for r in raw]
    doc = json.loads((qnet.root / "network.json").read_text())
    assert doc["profile"] == "quorum" and doc["evm"] == {"chain_id": CHAIN,
                                                         "gas_limit": 30_000_000}
    assert doc["genesis_hash"] == g.hash.hex()
    assert LocalNetwork.open(qnet.root).profile is Profile.QUORUM


def test_key_files_decrypt_to_the_bound_addresses_with_their_own_password(
        qnet: LocalNetwork) -> None:
    for org in ("org1", "org2"):
        pw_file = qnet.org_dir(org) / PASSWORD_FILE
        assert _mode(pw_file) == 0o600
        password = read_password(pw_file)
        assert password and password == qnet.account_password(org)
        assert password.encode() != qnet.passphrase(org)  # not the CA's passphrase
        for a in qnet.accounts(org):
            assert a.key_file.parent == qnet.org_dir(org) / "accounts"
            assert _mode(a.key_file) == 0o600
            assert load_key(a.key_file, password).address == a.address
    first = qnet.accounts("org2")[0]
    with pytest.raises(Exception, match="wrong password"):
        load_key(first.key_file, qnet.passphrase("org2").decode())


def test_the_ant_genesis_is_unchanged(tmp_path: Path) -> None:
    """An ant network's configuration is the one earlier releases wrote (the genesis header
    commits to its hash), its network.json has the same keys, no account files appear."""
    net = init_network(tmp_path / "ant", chain_id="a1", orgs=["org1", "org2"])
    g = load_genesis(net.genesis_path)
    before = ChainConfig(
        chain_id="a1", profile=Profile.ANT, suite="p256-sha256", consensus=ConsensusKind.SOLO,
        organizations=tuple(OrgConfig(o, net.ca(o).cert_der) for o in ("org1", "org2")),
        validators=(ValidatorConfig("validator0", "org1",
                                    net.identity("org1/validator0").cert_der, ""),),
        policies=Policies(membership=MembershipPolicy()), limits=BlockLimits())
    assert g.config == before
    assert g.block.header.config_hash == get_suite("p256-sha256").hash(before.encode())
    assert set(json.loads((net.root / "network.json").read_text())) == SOLO_NETWORK_KEYS
    assert not list(net.root.rglob("account*"))
    assert net.profile is Profile.ANT and net.accounts() == []
    with pytest.raises(ConfigError, match="belong to quorum networks"):
        net.rpc_url()
    with pytest.raises(ConfigError, match="belong to quorum networks"):
        net.bind_accounts("org1", ["0x" + "11" * 20])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"profile": "quorum", "accounts_per_org": -1}, "accounts per organization"),
    ({"profile": "quorum", "accounts_per_org": 101}, "accounts per organization"),
    ({"profile": "quorum", "balance": 2**256}, "genesis balance"),
    ({"profile": "quorum", "balance": -1}, "genesis balance"),
    ({"profile": "quorum", "evm_chain_id": 0}, "EVM chain id"),
    ({"profile": "quorum", "evm_chain_id": 2**53}, "EVM chain id"),
    ({"profile": "quorum", "evm_gas_limit": 21_000}, "gas limit"),
    ({"evm_chain_id": 1337}, "apply to quorum networks"),
    ({"accounts_per_org": 2}, "apply to quorum networks"),
    ({"profile": "fabric"}, "local networks are ant or quorum"),
    ({"profile": "corda"}, "unknown profile"),
])
def test_bad_arguments_write_nothing(tmp_path: Path, kwargs: dict[str, object],
                                     match: str) -> None:
    root = tmp_path / "net"
    with pytest.raises(ConfigError, match=match):
        init_network(root, **kwargs)  # type: ignore[arg-type]
    assert not root.exists()


def test_defaults_and_a_raft_network_rpc_urls(tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", orgs=["org1"], profile=Profile.QUORUM,
                       consensus="raft", port=21050)
    config = load_genesis(net.genesis_path).config
    assert config.evm is not None
    assert (config.evm.chain_id, config.evm.gas_limit) == (1337, 30_000_000)
    (account,) = net.accounts()
    assert [(a.address, a.balance) for a in config.evm.alloc] == \
        [(parse_address(account.address), DEFAULT_BALANCE)]
    assert net.rpc_url() == "http://127.0.0.1:21050/rpc"
    assert net.rpc_url("validator2") == "http://127.0.0.1:21052/rpc"
    assert net.rpc_url("validator1", websocket=True) == "ws://127.0.0.1:21051/rpc"
    with pytest.raises(ConfigError, match="no node"):
        net.rpc_url("validator9")


# -- LocalNetwork helpers ------------------------------------------------------------------

def test_eth_account_by_address_prefix_and_org(qnet: LocalNetwork) -> None:
    a, b = qnet.accounts("org2")
    assert qnet.eth_account(b.address).address == b.address
    assert qnet.eth_account(b.address.lower()[:12]).address == b.address
    assert qnet.eth_account(b.address[2:].upper()).address == b.address
    assert qnet.eth_account("org2").address == a.address  # an org: its first account
    with pytest.raises(ConfigError, match="no account"):
        qnet.eth_account("0x" + "00" * 20)
    with pytest.raises(ConfigError, match="no account '0x'"):
        qnet.eth_account("0x")  # an empty prefix names nothing
    twins = [NetworkAccount("0xAbC1" + "0" * 36, "org1", Path("k1")),
             NetworkAccount("0xabc2" + "0" * 36, "org1", Path("k2"))]
    with pytest.raises(ConfigError, match="matches 2 accounts"):
        find(twins, "0xabc")
    assert find(twins, "ABC2") is twins[1]
    with pytest.raises(ConfigError, match="no organization"):
        qnet.accounts("org9")


def _update_of(tx: SignedTx) -> tuple[bytes, AccountUpdate]:
    env = Envelope.decode(tx.envelope)
    body = Payload.decode(env.payload).body
    assert isinstance(body, AccountUpdate)
    return env.signer, body


def test_bind_and_unbind_are_signed_by_the_org_admin_and_apply(qnet: LocalNetwork) -> None:
    config = load_genesis(qnet.genesis_path).config
    new = "0x" + "ab" * 20
    tx = qnet.bind_accounts("org2", [new, bytes([7]) * 20])
    signer, update = _update_of(tx)
    assert signer == qnet.identity("org2/admin").cert_der
    assert update == AccountUpdate("add", "org2", (bytes.fromhex("ab" * 20), bytes([7]) * 20))
    env = Envelope.decode(tx.envelope)
    after = apply(config, Membership(config), env.signer, Payload.decode(env.payload))
    assert after.evm is not None and after.evm.org_of(bytes.fromhex("ab" * 20)) == "org2"

    gone = qnet.accounts("org1")[1].address
    env = Envelope.decode(qnet.unbind_accounts("org1", [gone]).envelope)
    after = apply(after, Membership(after), env.signer, Payload.decode(env.payload))
    assert after.evm is not None and after.evm.org_of(parse_address(gone)) is None

    for addresses, match in (([], "at least one"), (["0x1234"], "not an Ethereum address"),
                             ([new, new.upper().replace("0X", "0x")], "named twice"),
                             ([b"\x01" * 19], "20 bytes")):
        with pytest.raises(ConfigError, match=match):
            qnet.bind_accounts("org1", addresses)
    with pytest.raises(ConfigError, match="no organization"):
        qnet.bind_accounts("org9", [new])


def test_new_account_is_recorded_but_not_bound(tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", orgs=["org1"], profile="quorum", accounts_per_org=0)
    assert net.accounts() == []
    made = net.new_account("org1")
    assert LocalNetwork.open(net.root).accounts() == [made]
    assert net.eth_account(made.address).address == made.address
    config = load_genesis(net.genesis_path).config
    assert config.evm is not None and config.evm.accounts == () and config.evm.alloc == ()


# -- a QuorumChain over the genesis --------------------------------------------------------

def _now() -> int:
    return time.time_ns() // 1_000_000


class _Solo:
    """A quorum chain in process on the network's genesis: its ledger, py-evm, solo."""

    def __init__(self, net: LocalNetwork, path: Path) -> None:
        self.store = LedgerStore(path)
        self.chain = QuorumChain(self.store, load_genesis(net.genesis_path),
                                 net.identity("org1/validator0").key)
        self.support = FixedBatchSupport(self.chain)
        self.solo = Solo(self.support, "validator0")

    def order(self, batch: list[object]) -> None:
        self.support.batch = batch  # type: ignore[assignment]
        (action,) = self.solo.step(BatchReady(_now()))
        assert isinstance(action, Commit) and action.prepared is not None
        self.chain.commit(action.block, action.prepared)

    def balance(self, address: str) -> int:
        return self.chain.engine.balance(self.chain.state_root, parse_address(address))


def _transfer(account: LocalAccount, nonce: int, to: str, value: int) -> bytes:
    tx: dict[str, Any] = {"type": 2, "chainId": CHAIN, "nonce": nonce, "to": to, "value": value,
          "gas": 21_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "data": b""}
    return bytes(account.sign_transaction(tx).raw_transaction)


def test_a_quorum_chain_accepts_a_transfer_signed_by_an_org_account(
        tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", chain_id="qdev", orgs=["org1", "org2"],
                       profile="quorum", evm_chain_id=CHAIN, balance=BALANCE)
    h = _Solo(net, tmp_path / "ledger.db")
    alice, bob = net.accounts("org1")[0].address, net.accounts("org2")[0].address
    assert h.balance(alice) == BALANCE == h.balance(bob)

    raw = _transfer(net.eth_account("org1"), 0, bob, 10**18)
    h.order([admit_eth(raw, h.chain.config)])
    row = h.store.eth_receipt(keccak(raw))
    assert row is not None and decode_receipt_row(row[2]).status == 1
    assert h.balance(alice) == BALANCE - 10**18 and h.balance(bob) == BALANCE + 10**18

    # a new account may not transact until its organization's admin binds it on chain
    fresh = net.new_account("org2")
    signer = net.eth_account(fresh.address)
    with pytest.raises(AccountNotPermitted):
        admit_eth(_transfer(signer, 0, alice, 0), h.chain.config)
    bind = net.bind_accounts("org2", [fresh.address])
    h.order([Admission(h.chain.suite, h.chain.config, _now).check(bind.envelope)])
    assert h.chain.evm.org_of(parse_address(fresh.address)) == "org2"
    entry = admit_eth(_transfer(signer, 0, alice, 0), h.chain.config)
    h.order([entry])
    assert h.store.eth_receipt(entry.id) is not None


# -- the CLI -------------------------------------------------------------------------------

def _cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def test_cli_dev_init_quorum_prints_accounts_and_rpc(tmp_path: Path) -> None:
    root = tmp_path / "q"
    code, out = _cli("dev", "init", "-N", root, "--profile", "quorum", "--evm-chain-id", "777",
                     "--accounts-per-org", "1", "--port", "21300", "--validators", "3")
    assert code == 0, out
    net = LocalNetwork.open(root)
    assert net.consensus is ConsensusKind.RAFT  # several quorum validators: raft
    config = load_genesis(net.genesis_path).config
    assert config.evm is not None and config.evm.chain_id == 777
    assert len(net.accounts()) == 2
    for a in net.accounts():
        assert a.address in out and a.org in out
    assert "http://127.0.0.1:21300/rpc" in out and "ws://127.0.0.1:21300/rpc" in out
    assert "chain id 777" in out

    # `consortia account list` reads an organization's key files
    org1 = net.accounts("org1")[0]
    result = CliRunner().invoke(app, ["account", "list", "--accounts",
                                      str(root / "orgs/org1/accounts"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"address": org1.address, "path": str(org1.key_file)}]


def test_cli_bind_account_refusals(tmp_path: Path, qnet: LocalNetwork) -> None:
    ant = tmp_path / "ant"
    assert _cli("dev", "init", "-N", ant)[0] == 0
    cases: list[tuple[list[str | Path], str]] = [
            (["-N", ant, "--org", "org1", "0x" + "11" * 20], "belong to quorum networks"),
            (["-N", qnet.root, "--org", "org1"], "name the addresses to bind (or pass --new)"),
            (["-N", qnet.root, "--org", "org1", "0x12"], "not an Ethereum address"),
            (["-N", qnet.root, "--org", "org7", "0x" + "11" * 20], "no organization"),
            # nothing listens there: the signed update is not delivered
            (["-N", qnet.root, "--org", "org1", "0x" + "11" * 20, "--node",
              "http://127.0.0.1:1", "--timeout", "1"], "did not answer")]
    for args, message in cases:
        code, out = _cli("dev", "bind-account", *args)
        assert code == 1, out
        assert message in out
    code, out = _cli("dev", "unbind-account", "-N", qnet.root, "--org", "org1")
    assert code == 1 and "name the addresses to unbind" in out
