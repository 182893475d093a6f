"""A solo quorum chain in process (ADR 0026): real ledger store, real py-evm engine, real
solo consensus; raw transactions signed by eth-account."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from consortia.consensus.core import BatchReady, Commit
from consortia.consensus.solo import Solo
from consortia.ledger.genesis import make_genesis
from consortia.ledger.store import LedgerStore
from consortia.node.quorum import QuorumChain, decode_receipt_row, env_for, state_root_of
from consortia.sdk.tx import sign as sign_tx
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import EthEntry, admit_eth, is_envelope
from consortia.types.block import TxStatus
from consortia.types.config import BlockLimits, ChainConfig, ConsensusKind, Profile, ValidatorConfig
from consortia.types.errors import AccountNotPermitted, InvalidBlock
from consortia.types.evm_config import AccountBinding, EvmConfig, GenesisAccount
from consortia.types.tx import AccountUpdate, TxType
from tests.unit.conftest import NOW_MS, FixedBatchSupport, World, make_org
from tests.unit.evm_helpers import ADDR, CHAIN_ID, selector, sign, token_code

TRANSFER = selector("transfer(address,uint256)")
BALANCE_OF = selector("balanceOf(address)")


def quorum_world() -> World:
    org1, org2 = make_org("org1", validator=True), make_org("org2")
    evm = EvmConfig(CHAIN_ID, 30_000_000,
                    alloc=tuple(GenesisAccount(a, 10**21) for a in ADDR[:3]),
                    accounts=(AccountBinding(ADDR[0], "org1"), AccountBinding(ADDR[1], "org2")))
    config = ChainConfig(
        chain_id="q-chain", profile=Profile.QUORUM, suite="p256-sha256",
        consensus=ConsensusKind.SOLO, organizations=(org1.org_config(), org2.org_config()),
        validators=(ValidatorConfig("validator0", "org1", org1["validator0"].cert_der),),
        limits=BlockLimits(), evm=evm)
    admin = org1["admin"]
    return World(org1, org2, config, make_genesis(config, admin.key, admin.cert_der, NOW_MS))


class QHarness:
    def __init__(self, path: Path, world: World) -> None:
        self.world = world
        self.store = LedgerStore(path)
        self.chain = QuorumChain(self.store, world.genesis, world.validator.key)
        self.support = FixedBatchSupport(self.chain)
        self.solo = Solo(self.support, "validator0")
        self.time = NOW_MS

    def admit(self, *raws: bytes) -> list[EthEntry]:
        return [admit_eth(r, self.chain.config) for r in raws]

    def order(self, *raws: bytes):  # type: ignore[no-untyped-def]
        self.time += 1000
        self.support.batch = self.admit(*raws)  # type: ignore[arg-type]
        (action,) = self.solo.step(BatchReady(self.time))
        assert isinstance(action, Commit) and action.prepared is not None
        self.chain.commit(action.block, action.prepared)
        return action.block, action.prepared

    def call(self, to: bytes, data: bytes) -> bytes:
        c = self.chain
        res = c.engine.call(c.state_root, env_for(c.evm, c.next_height(), self.time), to=to,
                            data=data)
        assert res.success
        return res.output

    def token_balance(self, token: bytes, who: bytes) -> int:
        (value,) = abi_decode(["uint256"], self.call(token, BALANCE_OF + abi_encode(
            ["address"], [who])))
        return int(value)


@pytest.fixture(scope="module")
def qworld() -> World:
    return quorum_world()


def deploy(h: QHarness) -> bytes:
    raw = sign(0, 0, None, token_code(), gas=3_000_000)
    h.order(raw)
    row = h.store.eth_receipt(keccak(raw))
    assert row is not None
    receipt = decode_receipt_row(row[2])
    assert receipt.status == 1 and receipt.contract_address is not None
    return receipt.contract_address


def test_genesis_is_ethereum_block_zero(tmp_path: Path, qworld: World) -> None:
    h = QHarness(tmp_path / "l.db", qworld)
    eth_hash, header = h.store.eth_block(0)  # type: ignore[misc]
    assert keccak(header) == eth_hash == h.chain.eth_hash
    assert h.chain.engine.balance(state_root_of(header), ADDR[0]) == 10**21
    assert h.chain.last_header.exec_hash == b""  # genesis keeps header version 2


def test_deploy_transfer_revert_and_logs(tmp_path: Path, qworld: World) -> None:
    h = QHarness(tmp_path / "l.db", qworld)
    token = deploy(h)
    assert h.token_balance(token, ADDR[0]) == 10**24
    raw = sign(0, 1, token, TRANSFER + abi_encode(["address", "uint256"], [ADDR[1], 500]))
    block, _ = h.order(raw)
    assert h.token_balance(token, ADDR[1]) == 500
    hd = block.header
    assert hd.exec_hash == keccak(h.store.eth_block(hd.height)[1])  # type: ignore[index]
    assert block.envelopes == (raw,) and not is_envelope(raw)
    stored = h.store.tx(keccak(raw))
    assert stored is not None and stored.type is TxType.EVM and stored.envelope == raw
    logs = h.store.eth_logs(0, hd.height, [token], [[keccak(b"Transfer(address,address,uint256)")]])
    assert [g.height for g in logs] == [1, 2]  # the mint at deployment and the transfer
    assert logs[1].topics[2] == bytes(12) + ADDR[1]
    # a transfer above the balance reverts: included, nonce used, status 0
    bad = sign(1, 0, token, TRANSFER + abi_encode(["address", "uint256"], [ADDR[0], 501]))
    block, prepared = h.order(bad)
    assert block.envelopes == (bad,)
    result = prepared.artifacts.execution.results[0]
    assert (result.status, result.code) == (TxStatus.INVALID, "execution_reverted")
    assert decode_receipt_row(h.store.eth_receipt(keccak(bad))[2]).status == 0  # type: ignore[index]
    assert h.chain.engine.nonce(h.chain.state_root, ADDR[1]) == 1
    assert h.token_balance(token, ADDR[1]) == 500


def test_unbound_sender_is_not_permitted(tmp_path: Path, qworld: World) -> None:
    h = QHarness(tmp_path / "l.db", qworld)
    with pytest.raises(AccountNotPermitted) as info:
        h.admit(sign(2, 0, ADDR[0], value=1))
    assert info.value.code == "account_not_permitted" and info.value.status == 403
    assert ADDR[2].hex() in str(info.value)
    assert h.store.height == 0


def test_rejected_transaction_is_left_out_and_invalid_in_a_strict_recheck(
        tmp_path: Path, qworld: World) -> None:
    h = QHarness(tmp_path / "l.db", qworld)
    gap = h.admit(sign(0, 5, ADDR[1], value=1))
    ok = h.admit(sign(1, 0, ADDR[0], value=7))
    prepared = h.chain.prepare(gap + ok, NOW_MS + 1, "validator0")
    assert prepared.envelopes == (ok[0].raw,)
    ((entry, why),) = QuorumChain.rejected_of(prepared)
    assert entry is gap[0] and why.code == "nonce_too_high"
    with pytest.raises(InvalidBlock):
        h.chain.prepare(gap + ok, NOW_MS + 1, "validator0", strict=True)


def test_an_account_unbound_after_admission_is_left_out(tmp_path: Path, qworld: World) -> None:
    """ADR 0025: the binding is checked again when the block executes, under the
    configuration in force then, so unbinding an account stops its admitted transactions."""
    h = QHarness(tmp_path / "l.db", qworld)
    admitted = h.admit(sign(1, 0, ADDR[0], value=7))  # org2's account, bound now
    unbind = sign_tx(qworld.org2["admin"], "q-chain", AccountUpdate("remove", "org2", (ADDR[1],)),
                     timestamp_ms=NOW_MS)
    config_tx = Admission(h.chain.suite, h.chain.config, lambda: NOW_MS).check(unbind.envelope)
    h.time += 1000
    h.support.batch = [config_tx]  # type: ignore[list-item]
    (action,) = h.solo.step(BatchReady(h.time))
    assert isinstance(action, Commit) and action.prepared is not None
    h.chain.commit(action.block, action.prepared)
    assert h.chain.evm.org_of(ADDR[1]) is None
    ok = h.admit(sign(0, 0, ADDR[2], value=3))
    prepared = h.chain.prepare(admitted + ok, h.time + 1000, "validator0")
    assert prepared.envelopes == (ok[0].raw,)
    ((entry, why),) = QuorumChain.rejected_of(prepared)
    assert entry is admitted[0] and why.code == "account_not_permitted" and why.index == 0
    with pytest.raises(InvalidBlock, match="account_not_permitted"):
        h.chain.prepare(admitted + ok, h.time + 1000, "validator0", strict=True)


def test_restart_keeps_state_and_hashes_and_reproposal_is_identical(
        tmp_path: Path, qworld: World) -> None:
    h = QHarness(tmp_path / "l.db", qworld)
    token = deploy(h)
    raw = sign(0, 1, token, TRANSFER + abi_encode(["address", "uint256"], [ADDR[1], 9]))
    entries = h.admit(raw)
    first = h.chain.prepare(entries, h.time + 1000, "validator0")
    again = h.chain.prepare(h.admit(raw), h.time + 1000, "validator0")
    assert first.header_bytes == again.header_bytes and first.hash == again.hash
    h.order(raw)
    hashes = [h.store.eth_block(i) for i in range(3)]
    root, eth_hash = h.chain.state_root, h.chain.eth_hash
    h.store.close()
    h2 = QHarness(tmp_path / "l.db", qworld)
    assert (h2.chain.state_root, h2.chain.eth_hash) == (root, eth_hash)
    assert [h2.store.eth_block(i) for i in range(3)] == hashes
    h2.time = h.time
    assert h2.token_balance(token, ADDR[1]) == 9
    nxt = sign(0, 2, token, TRANSFER + abi_encode(["address", "uint256"], [ADDR[1], 1]))
    h2.order(nxt)
    assert h2.token_balance(token, ADDR[1]) == 10
    parent = h2.store.eth_block(2)[0]  # type: ignore[index]
    import rlp
    assert bytes(rlp.decode(h2.store.eth_block(3)[1])[0]) == parent  # type: ignore[index]


def test_evm_view_answers_what_the_rpc_adapter_asks(tmp_path: Path, qworld: World) -> None:
    from consortia.node.evmview import EvmView

    h = QHarness(tmp_path / "l.db", qworld)
    token = deploy(h)
    raw = sign(0, 1, token, TRANSFER + abi_encode(["address", "uint256"], [ADDR[1], 42]))
    h.order(raw)
    view = EvmView(h.store, h.chain.engine, lambda: h.chain.evm)
    assert view.head() == 2
    b2 = view.block(2)
    assert b2 is not None and b2.tx_hashes == (keccak(raw),) and b2.raw_txs == (raw,)
    assert keccak(b2.header.encode()) == b2.hash == h.chain.last_header.exec_hash
    assert b2.header.parent_hash == view.block_hash(1)
    assert view.block_by_hash(b2.hash) == b2 and view.block(3) is None
    tx = view.transaction(keccak(raw))
    assert tx is not None and tx.tx.sender == ADDR[0] and tx.block_number == 2
    assert tx.index == 0 and tx.block_hash == b2.hash
    rc = view.receipt(keccak(raw))
    assert rc is not None and rc.receipt.status == 1 and len(rc.logs) == 1
    assert rc.logs_bloom == b2.header.logs_bloom
    logs = view.logs(0, 2, [token])
    assert [(g.block_number, g.tx_hash) for g in logs] == [
        (1, logs[0].tx_hash), (2, keccak(raw))]
    assert view.logs(0, 2, [ADDR[3]]) == []
    # state at a height: before and after the transfer
    (before,) = abi_decode(["uint256"], view.call(1, sender=ADDR[0], to=token, data=(
        BALANCE_OF + abi_encode(["address"], [ADDR[1]]))).output)
    (after,) = abi_decode(["uint256"], view.call(2, sender=ADDR[0], to=token, data=(
        BALANCE_OF + abi_encode(["address"], [ADDR[1]]))).output)
    assert (before, after) == (0, 42)
    assert view.nonce(ADDR[0], 0) == 0 and view.nonce(ADDR[0], 2) == 2
    assert view.pending_nonce(ADDR[0]) == 2
    assert view.balance(ADDR[0], 2) == 10**21 and view.code(token, 0) == b""
    assert len(view.code(token, 2)) > 0
    assert view.estimate_gas(2, sender=ADDR[0], to=ADDR[1], value=1) == 21_000
    assert view.transaction(b"\x00" * 32) is None and view.receipt(b"\x00" * 32) is None
