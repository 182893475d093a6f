"""``HeadFeed`` and ``NodeEthBackend`` without a server: the head feed's ordering and
closing, the admission-code → JSON-RPC mapping, and the adapter over a real quorum chain
(ledger in a temp dir, py-evm) for what the client tests do not reach."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consortia.execution.evm import CODES, CallResult, EvmTxError
from consortia.node.ethbackend import (
    REJECTIONS,
    NodeEthBackend,
    NodeRefused,
    failure,
    rejection,
)
from consortia.node.ethrpc.backend import (
    ExecutionFailed,
    ExecutionReverted,
    TxRejected,
    TxRejection,
    UnknownBlock,
)
from consortia.node.ethrpc.errors import SERVER_ERROR, from_backend
from consortia.node.ethrpc.types import PENDING, CallRequest, LogFilter
from consortia.node.heads import HeadFeed
from consortia.txpool.lanes import NonceRefused
from consortia.types.errors import (
    AccountNotPermitted,
    ConsortiaError,
    Duplicate,
    Malformed,
    PoolFull,
    TooLarge,
    Unavailable,
)
from tests.quorum_node import QuorumNode
from tests.unit.conftest import World
from tests.unit.evm_helpers import ADDR, sign
from tests.unit.test_quorum_chain import quorum_world

# -- HeadFeed ---------------------------------------------------------------------------------


async def _take(it: AsyncIterator[int], n: int) -> list[int]:
    return [await anext(it) for _ in range(n)]


def test_follower_sees_every_height_from_now_even_when_published_at_once() -> None:
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        feed = HeadFeed(3)
        early, late = feed.follow(), None
        feed.publish(4)
        feed.publish(7)  # a jump: 5 and 6 committed together
        late = feed.follow()  # starts after 7
        first = await _take(early, 4)
        feed.publish(8)
        feed.publish(9)
        second = await _take(early, 2)
        return first, second, await _take(late, 2)

    first, second, late = asyncio.run(scenario())
    assert first == [4, 5, 6, 7]
    assert second == [8, 9]
    assert late == [8, 9]


def test_follower_waits_and_close_ends_it() -> None:
    async def scenario() -> list[int]:
        feed = HeadFeed()
        seen: list[int] = []

        async def consume() -> None:
            async for height in feed.follow():
                seen.append(height)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # the follower is now waiting
        assert seen == [] and not task.done()
        feed.publish(1)
        for _ in range(3):
            await asyncio.sleep(0)
        feed.close()
        await asyncio.wait_for(task, 5)
        feed.publish(2)  # after close: ignored
        assert [h async for h in feed.follow()] == []
        return seen

    assert asyncio.run(scenario()) == [1]


def test_publish_must_grow() -> None:
    feed = HeadFeed(5)
    with pytest.raises(ValueError, match="not above"):
        feed.publish(5)
    with pytest.raises(ValueError):
        HeadFeed(-1)
    assert feed.latest == 5


# -- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(set(CODES) - {"malformed"}))
def test_every_engine_code_has_its_rejection(code: str) -> None:
    mapped = rejection(EvmTxError(code, "some detail"))
    assert isinstance(mapped, TxRejected) and mapped.reason is REJECTIONS[code]
    assert str(mapped) == f"{REJECTIONS[code].value}: some detail"  # engine words not repeated


@pytest.mark.parametrize(("error", "reason", "message"), [
    (EvmTxError("malformed", "rlp"), TxRejection.MALFORMED, "invalid transaction: rlp"),
    (Malformed("a Consortia envelope is not an Ethereum transaction"), TxRejection.MALFORMED,
     "invalid transaction: a Consortia envelope is not an Ethereum transaction"),
    (NonceRefused("nonce too low: next nonce 3, tx nonce 1"), TxRejection.NONCE_TOO_LOW,
     "nonce too low: next nonce 3, tx nonce 1"),
    (NonceRefused("a transaction with nonce 4 is already pending", code="nonce_taken"),
     TxRejection.REPLACEMENT_UNDERPRICED,
     "replacement transaction underpriced: a transaction with nonce 4 is already pending"),
    (NonceRefused("nonce too high: next nonce 0", code="nonce_too_high"),
     TxRejection.NONCE_TOO_HIGH, "nonce too high: next nonce 0"),
    (Duplicate("seen"), TxRejection.ALREADY_KNOWN, "already known: seen"),
    (PoolFull("txpool is full"), TxRejection.POOL_FULL, "txpool is full"),
    (TooLarge("200000 bytes"), TxRejection.OVERSIZED, "oversized data: 200000 bytes"),
    (AccountNotPermitted("account 0xab is bound to no organization"),
     TxRejection.NOT_PERMITTED,
     "transaction not permitted: account 0xab is bound to no organization"),
])
def test_admission_errors_map_to_geth_words(error: ConsortiaError, reason: TxRejection,
                                            message: str) -> None:
    mapped = rejection(error)
    assert isinstance(mapped, TxRejected) and mapped.reason is reason
    assert str(mapped) == message
    assert from_backend(mapped).to_json() == {"code": SERVER_ERROR, "message": message}


def test_unknown_codes_are_a_generic_refusal_not_a_500() -> None:
    for error in (Unavailable("the node is catching up"),
                  Malformed("not a quorum chain", code="wrong_profile"),
                  ConsortiaError("brand new rule", code="something_new")):
        mapped = rejection(error)
        assert isinstance(mapped, NodeRefused)
        answer = from_backend(mapped).to_json()
        assert answer["code"] == SERVER_ERROR and str(error) in answer["message"]
        assert error.code in answer["message"]


def test_call_failures() -> None:
    revert = bytes.fromhex("08c379a0") + bytes(64)
    assert isinstance(failure(CallResult(False, revert, 100, "")), ExecutionReverted)
    custom = failure(CallResult(False, b"\x12\x34\x56\x78", 100, None))
    assert isinstance(custom, ExecutionReverted) and custom.data == b"\x12\x34\x56\x78"
    empty = failure(CallResult(False, b"", 100, None))  # revert() without data
    assert isinstance(empty, ExecutionReverted) and empty.data == b""
    oog = failure(CallResult(False, b"", 100, "out of gas"))
    assert isinstance(oog, ExecutionFailed) and str(oog) == "out of gas"
    bad = failure(CallResult(False, b"", 100, "InvalidJumpDestination: at pc 3"))
    assert str(bad) == "invalid jump destination"
    odd = failure(CallResult(False, b"", 100, "SomethingNew: x"))
    assert str(odd) == "SomethingNew: x"


# -- the adapter over a real chain -------------------------------------------------------------


@pytest.fixture(scope="module")
def qworld() -> World:
    return quorum_world()


def test_reads_calls_and_heads_over_a_real_chain(tmp_path: Path, qworld: World) -> None:
    node = QuorumNode(tmp_path / "ledger.db", qworld)
    backend = NodeEthBackend(node.view, submit=node.submit, heads=node.heads,
                             pending=node.pending, max_logs=1)

    async def scenario() -> None:
        heads = backend.new_heads()
        assert backend.chain_id() == 1337 and await backend.head_number() == 0
        # LOG0 twice per call: PUSH0 PUSH0 LOG0 PUSH0 PUSH0 LOG0 STOP, deployed as is
        runtime = bytes([0x5F, 0x5F, 0xA0, 0x5F, 0x5F, 0xA0, 0x00])
        init = bytes([0x60, len(runtime), 0x60, 10, 0x5F, 0x39, 0x60, len(runtime), 0x5F,
                      0xF3]) + runtime
        deployed = await backend.send_raw_transaction(sign(0, 0, None, init, gas=100_000))
        receipt = await backend.receipt(deployed)
        assert receipt is not None and receipt.contract_address is not None
        logger = receipt.contract_address
        await backend.send_raw_transaction(sign(0, 1, logger, gas=100_000))
        head1 = await asyncio.wait_for(anext(heads), 10)
        head2 = await asyncio.wait_for(anext(heads), 10)
        assert (head1.header.number, head2.header.number) == (1, 2)
        assert [g.log_index for g in head2.logs] == [0, 1]
        assert head2.header.parent_hash == head1.header.hash
        block = await backend.block_by_hash(head2.header.hash)
        assert block is not None and block.header == head2.header
        # one more log than max_logs: the RPC layer then answers "more than 1 results"
        assert len(await backend.logs(LogFilter(0, 2, (logger,)))) == 2
        assert await backend.logs(LogFilter(0, 1, (logger,))) == []

        assert await backend.code(logger, 2) == runtime
        assert await backend.code(logger, 0) == b""
        assert await backend.nonce(ADDR[0], PENDING) == 2
        assert await backend.storage_at(logger, 0, 2) == bytes(32)
        with pytest.raises(UnknownBlock):
            await backend.balance(ADDR[0], 3)
        with pytest.raises(UnknownBlock):
            await backend.call(CallRequest(to=logger), 9)
        assert await backend.call(CallRequest(to=logger), PENDING) == b""
        with pytest.raises(ExecutionFailed, match="insufficient funds for gas \\* price"):
            await backend.call(CallRequest(sender=ADDR[3], to=ADDR[0], value=5), 2)
        with pytest.raises(ExecutionFailed, match="invalid opcode"):
            await backend.call(CallRequest(data=b"\xfe"), 2)
        with pytest.raises(ExecutionFailed, match="intrinsic gas too low"):
            await backend.call(CallRequest(to=logger, gas=100), 2)
        with pytest.raises(ExecutionFailed, match="gas required exceeds allowance"):
            await backend.estimate_gas(CallRequest(data=b"\x5b\x5f\x56"), 2)  # JUMPDEST loop
        with pytest.raises(ExecutionFailed, match="invalid opcode"):
            await backend.estimate_gas(CallRequest(data=b"\xfe"), 2)
        with pytest.raises(ExecutionReverted) as reverted:
            await backend.estimate_gas(CallRequest(data=b"\x5f\x5f\xfd"), 2)
        assert reverted.value.data == b""
        assert await backend.estimate_gas(CallRequest(to=ADDR[1], value=1,
                                                      sender=ADDR[0]), 2) == 21_000
        # a transaction waiting in the pool is found there, without a location
        waiting = sign(0, 5, ADDR[1], value=1)
        tx_hash = await backend.send_raw_transaction(waiting)
        found = await backend.transaction(tx_hash)
        assert found is not None and found.block_hash is None and found.nonce == 5
        assert await backend.receipt(tx_hash) is None
        assert await backend.transaction(bytes(32)) is None
        assert await backend.syncing() is None
        fees = await backend.fees()
        assert (fees.gas_price, fees.max_priority_fee_per_gas) == (0, 0)
        node.heads.close()
        assert [h async for h in heads] == []

    asyncio.run(scenario())
