"""A quorum validator's transaction path in process (ADR 0026): the real ``Node`` (solo),
its ledger on disk, the EVM engine, nonce lanes; raw transactions signed by eth-account."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from consortia.node.quorum import QuorumChain, decode_receipt_row, env_for
from consortia.node.receipts import Receipt
from consortia.node.service import Node
from consortia.node.settings import NodeSettings
from consortia.sdk import notary
from consortia.sdk.tx import sign as sign_tx
from consortia.txpool.ethadmission import Entry
from consortia.types.errors import ConsortiaError
from consortia.types.tx import AccountUpdate
from tests.quorum_helpers import ADDR, GAS_LIMIT, quorum_network, sign
from tests.unit.evm_helpers import selector, token_code

TRANSFER = selector("transfer(address,uint256)")
BALANCE_OF = selector("balanceOf(address)")


def _transfer(to: bytes, amount: int) -> bytes:
    return TRANSFER + abi_encode(["address", "uint256"], [to, amount])


class Running:
    """A started node and helpers to submit and wait (one asyncio loop per test)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def submit(self, *raws: bytes) -> list[Entry | ConsortiaError]:
        return await self.node.submit(list(raws))

    async def commit(self, *raws: bytes) -> list[Receipt]:
        results = await self.submit(*raws)
        errors = [r for r in results if isinstance(r, ConsortiaError)]
        assert not errors, errors
        return await self.node.wait_for([r.id for r in results  # type: ignore[union-attr]
                                         ], timeout=30)

    def call(self, to: bytes, data: bytes) -> bytes:
        chain = self.node.chain
        assert isinstance(chain, QuorumChain)
        res = chain.engine.call(chain.state_root, env_for(chain.evm, chain.next_height(), 0),
                                to=to, data=data)
        assert res.success, res
        return res.output

    def token_balance(self, token: bytes, who: bytes) -> int:
        (value,) = abi_decode(["uint256"], self.call(
            token, BALANCE_OF + abi_encode(["address"], [who])))
        return int(value)


def _settings(root: Path) -> NodeSettings:
    return NodeSettings.load(root / "nodes" / "validator0" / "node.toml")


async def _with_node(root: Path, body) -> None:  # type: ignore[no-untyped-def]
    node = Node(_settings(root))
    await node.start()
    try:
        await body(Running(node))
    finally:
        await node.stop()


def _codes(results: Sequence[Entry | ConsortiaError]) -> list[str]:
    return [r.code if isinstance(r, ConsortiaError) else "ok" for r in results]


@pytest.fixture
def net_root(tmp_path: Path) -> Path:
    quorum_network(tmp_path / "net")
    return tmp_path / "net"


def test_contracts_deploy_and_transfers_arrive_out_of_nonce_order(net_root: Path) -> None:
    async def body(q: Running) -> None:
        (deployed,) = await q.commit(sign(0, 0, None, token_code(), gas=2_000_000))
        assert deployed.status == "committed", deployed
        chain = q.node.chain
        assert isinstance(chain, QuorumChain)
        found = chain.store.eth_receipt(deployed.tx_id)
        assert found is not None
        token = decode_receipt_row(found[2]).contract_address
        assert token is not None
        # Nonces 3 and 2 arrive before 1: the lanes hold them until the gap closes, then
        # blocks carry them in nonce order.
        results = await q.submit(*[sign(0, n, token, _transfer(ADDR[2], 10)) for n in (3, 2)])
        assert _codes(results) == ["ok"] * 2
        pool = q.node.pool
        assert pool.next_nonce(ADDR[0]) == 1 and len(pool) == 2  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # a batch timeout: nothing is ready, nothing is ordered
        assert q.node.store.height == 1
        results += await q.submit(sign(0, 1, token, _transfer(ADDR[2], 10)))
        assert pool.next_nonce(ADDR[0]) == 4  # type: ignore[attr-defined]
        (fourth,) = await q.commit(sign(0, 4, token, _transfer(ADDR[2], 10)))
        receipts = await q.node.wait_for([r.id for r in results  # type: ignore[union-attr]
                                          ], timeout=30)
        assert {r.status for r in receipts} | {fourth.status} == {"committed"}
        assert q.token_balance(token, ADDR[2]) == 40
        assert chain.engine.nonce(chain.state_root, ADDR[0]) == 5
        assert len(q.node.pool) == 0
        # A transfer that reverts (overdraft) is in its block with status 0.
        (over,) = await q.commit(sign(2, 0, token, _transfer(ADDR[3], 41)))
        assert (over.status, over.code) == ("invalid", "execution_reverted")
        assert chain.engine.nonce(chain.state_root, ADDR[2]) == 1

    asyncio.run(_with_node(net_root, body))


def test_invalid_transactions_are_refused_and_change_nothing(net_root: Path) -> None:
    async def body(q: Running) -> None:
        await q.commit(sign(0, 0, ADDR[1], value=1))
        height = q.node.store.height
        good = sign(1, 0, ADDR[0], value=1)
        tampered = bytearray(good)
        tampered[-40] ^= 0x01  # r changed: it recovers to another (unbound) address
        overflowed = good[:-32] + b"\xff" * 32  # s above the curve order: recovers nothing
        results = await q.submit(
            sign(4, 0, ADDR[0], value=1),                # funded, bound to nobody
            sign(5, 0, ADDR[0]),                         # unknown account
            sign(1, 0, ADDR[0], chain_id=1),             # another chain's id
            sign(1, 0, ADDR[0], gas=GAS_LIMIT + 1),      # above the block gas limit
            sign(0, 0, ADDR[1], value=2),                # nonce 0 is used
            sign(1, 100, ADDR[0]),                       # far ahead of the account's nonce
            bytes(tampered),
            overflowed,
            b"\x02\xc0",                                 # not a transaction
        )
        codes = _codes(results)
        assert codes[:7] == ["account_not_permitted", "account_not_permitted",
                             "invalid_chain_id", "exceeds_block_gas_limit", "nonce_too_low",
                             "nonce_too_high", "account_not_permitted"]
        assert codes[7] in ("invalid_sender", "malformed")
        assert codes[8] == "malformed"
        await asyncio.sleep(0.3)
        assert q.node.store.height == height
        assert len(q.node.pool) == 0

    asyncio.run(_with_node(net_root, body))


def test_a_notary_record_is_not_for_a_quorum_chain(net_root: Path) -> None:
    net = quorum_network(net_root.parent / "n2")

    async def body(q: Running) -> None:
        tx = sign_tx(net.identity("org1/alice"), net.chain_id, notary.content("b-1", b"x"))
        (result,) = await q.submit(tx.envelope)
        assert isinstance(result, ConsortiaError) and result.code == "wrong_profile"

    asyncio.run(_with_node(net_root.parent / "n2", body))


def test_a_transaction_execution_cannot_run_is_dropped_and_its_nonce_reused(
        net_root: Path) -> None:
    async def body(q: Running) -> None:
        (dropped,) = await q.commit(sign(0, 0, ADDR[1], value=10**30))  # > its balance
        assert (dropped.status, dropped.code) == ("dropped", "insufficient_funds")
        assert q.node.store.tx(dropped.tx_id) is None
        (ok,) = await q.commit(sign(0, 0, ADDR[1], value=5))
        assert ok.status == "committed"

    asyncio.run(_with_node(net_root, body))


def test_binding_an_account_by_configuration_lets_it_transact(net_root: Path) -> None:
    net = quorum_network(net_root.parent / "n3")
    root = net_root.parent / "n3"

    async def body(q: Running) -> None:
        (refused,) = await q.submit(sign(4, 0, ADDR[0], value=1))
        assert isinstance(refused, ConsortiaError) and refused.code == "account_not_permitted"
        bind = sign_tx(net.identity("org2/admin"), net.chain_id,
                       AccountUpdate("add", "org2", (ADDR[4],)))
        (receipt,) = await q.commit(bind.envelope)
        assert receipt.status == "committed", receipt
        (ok,) = await q.commit(sign(4, 0, ADDR[0], value=1))
        assert ok.status == "committed"

    asyncio.run(_with_node(root, body))

    async def after_restart(q: Running) -> None:
        chain = q.node.chain
        assert isinstance(chain, QuorumChain)
        assert chain.evm.org_of(ADDR[4]) == "org2"
        assert chain.engine.nonce(chain.state_root, ADDR[4]) == 1
        (ok,) = await q.commit(sign(4, 1, ADDR[0], value=1))
        assert ok.status == "committed"

    asyncio.run(_with_node(root, after_restart))


def test_quorum_chains_wait_longer_before_suspecting_the_leader() -> None:
    """An EVM block takes far longer to validate than a notary one: with pbft's 300 ms
    view timeout, a 4-validator quorum network under load changed views for ever
    (bench/evm.py --launch consortia-4); quorum chains default to QUORUM_TIMEOUT_MS."""
    import dataclasses

    from consortia.consensus.pbft import Params
    from consortia.consensus.raft import RaftTimings
    from consortia.node.replication import QUORUM_TIMEOUT_MS, timeouts
    from consortia.types.config import ChainConfig, ConsensusKind, Profile
    from consortia.types.evm_config import EvmConfig

    ant = ChainConfig(chain_id="c", profile=Profile.ANT, suite="p256-sha256",
                      consensus=ConsensusKind.PBFT, organizations=(), validators=())
    quorum = dataclasses.replace(ant, profile=Profile.QUORUM, evm=EvmConfig(1337, 30_000_000))
    assert timeouts(ant, None) == {}
    assert timeouts(quorum, None)["params"].view_timeout_ms == QUORUM_TIMEOUT_MS
    assert timeouts(quorum, 5_000)["params"] == Params(view_timeout_ms=5_000, max_backoff=3)
    raft = dataclasses.replace(quorum, consensus=ConsensusKind.RAFT)
    assert timeouts(raft, None)["timings"] == RaftTimings(election_ms=QUORUM_TIMEOUT_MS,
                                                          heartbeat_ms=333)
    assert timeouts(dataclasses.replace(ant, consensus=ConsensusKind.RAFT), 900)[
        "timings"].election_ms == 900
