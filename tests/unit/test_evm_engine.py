"""The EVM engine on real py-evm: genesis, transfers, contracts, reverts, determinism.

Everything runs for real (py-evm, eth-keys with coincurve, the trie); the state store is
the in-memory one, as the engine's contract allows (docs/spec/evm.md).
"""

from __future__ import annotations

import pytest
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from consortia.execution.evm import BlockEnv, EvmCallError, EvmEngine, GenesisAccount, MemoryStore
from tests.unit.evm_helpers import ADDR, CHAIN_ID, Chain, selector, sign, token_code

TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")


def transfer_data(to: bytes, value: int) -> bytes:
    return selector("transfer(address,uint256)") + encode(["address", "uint256"], [to, value])


def balance_of(chain: Chain, token: bytes, who: bytes) -> int:
    r = chain.engine.call(chain.root, chain.env(), to=token,
                          data=selector("balanceOf(address)") + encode(["address"], [who]))
    assert r.success
    return int(decode(["uint256"], r.output)[0])


def test_genesis_balances_code_and_storage() -> None:
    store = MemoryStore()
    engine = EvmEngine(CHAIN_ID, store)
    root, writes = engine.genesis({
        ADDR[0]: GenesisAccount(balance=5),
        ADDR[1]: GenesisAccount(balance=7, nonce=3, code=b"\x60\x00", storage={1: 42}),
    })
    store.apply(writes)
    assert engine.balance(root, ADDR[0]) == 5
    assert engine.nonce(root, ADDR[1]) == 3
    assert engine.code(root, ADDR[1]) == b"\x60\x00"
    assert engine.storage_at(root, ADDR[1], 1) == 42
    assert engine.balance(root, ADDR[2]) == 0
    # the same alloc gives the same root whatever the insertion order
    again, _ = EvmEngine(CHAIN_ID, MemoryStore()).genesis(dict(reversed(list({
        ADDR[0]: GenesisAccount(balance=5),
        ADDR[1]: GenesisAccount(balance=7, nonce=3, code=b"\x60\x00", storage={1: 42}),
    }.items()))))
    assert again == root


@pytest.mark.parametrize("tx_type", [0, 1, 2])
def test_value_transfer_each_type_costs_no_gas_money(tx_type: int) -> None:
    chain = Chain(balance=1000)
    # a 1559 transaction offering a price: accepted, and charged nothing (gas price 0)
    extra = {"maxPriorityFeePerGas": 10**9, "maxFeePerGas": 2 * 10**9} if tx_type == 2 else {}
    out = chain.block([sign(0, 0, ADDR[1], value=300, gas=21_000, tx_type=tx_type, **extra)])
    assert not out.rejected
    r = out.receipts[0]
    assert (r.status, r.gas_used, r.tx_type, r.effective_gas_price) == (1, 21_000, tx_type, 0)
    assert chain.engine.balance(chain.root, ADDR[0]) == 700
    assert chain.engine.balance(chain.root, ADDR[1]) == 1300
    assert chain.engine.nonce(chain.root, ADDR[0]) == 1


def test_erc20_deploy_transfer_balance_and_event() -> None:
    chain = Chain()
    token = chain.deploy_token()
    assert chain.engine.code(chain.root, token)
    out = chain.block([sign(0, 1, token, transfer_data(ADDR[1], 250))])
    r = out.receipts[0]
    assert r.status == 1 and r.contract_address is None
    (log,) = r.logs
    assert log.address == token
    assert log.topics == (TRANSFER_TOPIC, b"\x00" * 12 + ADDR[0], b"\x00" * 12 + ADDR[1])
    assert int.from_bytes(log.data, "big") == 250
    assert balance_of(chain, token, ADDR[1]) == 250
    assert balance_of(chain, token, ADDR[0]) == 10**24 - 250
    assert out.logs_bloom != b"\x00" * 256 and out.logs_bloom == r.logs_bloom


def test_log_index_counts_across_the_block() -> None:
    chain = Chain()
    token = chain.deploy_token()
    out = chain.block([sign(0, 1, token, transfer_data(ADDR[1], 1)),
                       sign(0, 2, token, transfer_data(ADDR[2], 1))])
    assert [r.logs[0].log_index for r in out.receipts] == [0, 1]
    assert [r.cumulative_gas_used for r in out.receipts] == [
        out.receipts[0].gas_used, out.receipts[0].gas_used + out.receipts[1].gas_used]
    assert out.gas_used == out.receipts[1].cumulative_gas_used


def test_revert_with_reason_is_included_and_changes_nothing_but_the_nonce() -> None:
    chain = Chain()
    token = chain.deploy_token()
    out = chain.block([sign(1, 0, token, transfer_data(ADDR[2], 5))])  # ADDR[1] has no tokens
    r = out.receipts[0]
    assert r.status == 0 and r.logs == ()
    assert r.revert_reason == "ERC20: transfer amount exceeds balance"
    assert chain.engine.nonce(chain.root, ADDR[1]) == 1
    assert balance_of(chain, token, ADDR[2]) == 0


def test_panic_is_decoded() -> None:
    chain = Chain()
    token = chain.deploy_token()
    data = selector("ratio(uint256,uint256)") + encode(["uint256", "uint256"], [1, 0])
    r = chain.engine.call(chain.root, chain.env(), to=token, data=data)
    assert not r.success
    assert r.revert_reason == "panic: division or modulo by zero (0x12)"


def test_out_of_gas_uses_all_gas() -> None:
    chain = Chain()
    token = chain.deploy_token()
    out = chain.block([sign(0, 1, token, transfer_data(ADDR[1], 5), gas=30_000)])
    r = out.receipts[0]
    assert (r.status, r.gas_used, r.revert_reason) == (0, 30_000, "out of gas")


def test_call_and_estimate_gas() -> None:
    chain = Chain()
    token = chain.deploy_token()
    data = transfer_data(ADDR[1], 5)
    estimate = chain.engine.estimate_gas(chain.root, chain.env(), sender=ADDR[0], to=token,
                                         data=data)
    # the estimate is enough, one gas less is not
    assert chain.engine.call(chain.root, chain.env(), sender=ADDR[0], to=token, data=data,
                             gas=estimate).success
    assert not chain.engine.call(chain.root, chain.env(), sender=ADDR[0], to=token, data=data,
                                 gas=estimate - 1).success
    # calls keep nothing
    assert balance_of(chain, token, ADDR[1]) == 0
    with pytest.raises(EvmCallError) as err:
        chain.engine.estimate_gas(chain.root, chain.env(), sender=ADDR[1], to=token, data=data)
    assert err.value.code == "execution_reverted"
    assert err.value.reason == "ERC20: transfer amount exceeds balance"


def test_blockhash_comes_from_block_hash_of() -> None:
    chain = Chain()
    token = chain.deploy_token()
    chain.block([sign(0, 1, ADDR[1], value=1, gas=21_000)])
    data = selector("hashOf(uint256)") + encode(["uint256"], [1])
    r = chain.engine.call(chain.root, chain.env(), to=token, data=data,
                          block_hash_of=chain.hashes.get)
    assert r.output == chain.hashes[1]
    unknown = chain.engine.call(chain.root, chain.env(), to=token, data=data)
    assert unknown.output == b"\x00" * 32


@pytest.mark.parametrize(("make", "code"), [
    (lambda: sign(0, 5, ADDR[1], value=1, gas=21_000), "nonce_too_high"),
    (lambda: sign(2, 0, ADDR[1], value=10**30, gas=21_000), "insufficient_funds"),
    (lambda: sign(0, 0, ADDR[1], value=1, gas=31_000_000), "exceeds_block_gas_limit"),
    (lambda: sign(0, 0, ADDR[1], chain_id=1), "invalid_chain_id"),
    (lambda: b"\x05\xc0", "tx_type_not_supported"),
])
def test_unrunnable_transactions_are_left_out_with_their_code(make, code: str) -> None:
    chain = Chain()
    before = chain.root
    out = chain.block([make(), sign(3, 0, ADDR[1], value=1, gas=21_000)])
    assert [r.code for r in out.rejected] == [code]
    assert out.rejected[0].index == 0
    assert len(out.receipts) == 1 and out.receipts[0].tx_index == 0
    assert out.state_root != before


def test_replayed_nonce_is_left_out() -> None:
    chain = Chain()
    raw = sign(0, 0, ADDR[1], value=1, gas=21_000)
    chain.block([raw])
    out = chain.block([raw])
    assert [r.code for r in out.rejected] == ["nonce_too_low"]
    assert out.receipts == () and out.gas_used == 0


def test_same_block_twice_from_the_same_parent_gives_the_same_outcome() -> None:
    chain = Chain()
    token = chain.deploy_token()
    txs = [sign(0, 1 + i, token, transfer_data(ADDR[1 + i % 3], i + 1)) for i in range(10)]
    env = BlockEnv(number=2, timestamp=1_700_000_002)
    a = chain.engine.execute_block(chain.root, env, txs, chain.hashes.get)
    b = chain.engine.execute_block(chain.root, env, txs, chain.hashes.get)
    assert (a.state_root, a.transactions_root, a.receipts_root, a.logs_bloom, a.gas_used) == (
        b.state_root, b.transactions_root, b.receipts_root, b.logs_bloom, b.gas_used)
    assert a.writes == b.writes
    assert a.header(b"\x01" * 32, env).hash() == b.header(b"\x01" * 32, env).hash()
    # and the parent state is untouched: a different block from it gives another root
    c = chain.engine.execute_block(chain.root, env, txs[:1], chain.hashes.get)
    assert c.state_root != a.state_root


def test_old_state_roots_stay_readable() -> None:
    chain = Chain(balance=100)
    first = chain.root
    chain.block([sign(0, 0, ADDR[1], value=40, gas=21_000)])
    assert chain.engine.balance(first, ADDR[0]) == 100
    assert chain.engine.balance(chain.root, ADDR[0]) == 60
    assert token_code()  # the helper compiles (keeps flake quiet on unused import)


def test_cached_reader_keeps_values_never_absences_and_stays_within_its_bytes() -> None:
    from consortia.execution.evm.store import CachedReader
    store = MemoryStore()
    cache = CachedReader(store, max_bytes=3 * (32 + 100))
    keys = [keccak(bytes([i])) for i in range(5)]
    assert cache.get(keys[0]) is None
    store.apply({keys[0]: b"a" * 100})  # written after a miss: the miss was not remembered
    assert cache.get(keys[0]) == b"a" * 100
    del store.data[keys[0]]  # served from memory now (content addressed: cannot be stale)
    assert cache.get(keys[0]) == b"a" * 100
    cache.remember({k: b"b" * 100 for k in keys[1:4]})  # a committed block's writes
    assert cache.get(keys[0]) is None  # least recently used went first
    assert [cache.get(k) for k in keys[1:4]] == [b"b" * 100] * 3
    assert cache._bytes <= cache.max_bytes


def test_an_engine_over_a_cached_reader_gives_the_same_roots() -> None:
    from consortia.execution.evm.store import CachedReader
    plain, cached = MemoryStore(), MemoryStore()
    reader = CachedReader(cached)
    alloc = {ADDR[0]: GenesisAccount(balance=10**18)}
    roots = []
    for store, engine in ((plain, EvmEngine(CHAIN_ID, plain)),
                          (cached, EvmEngine(CHAIN_ID, reader))):
        root, writes = engine.genesis(alloc)
        store.apply(writes)
        env = BlockEnv(number=1, timestamp=1, gas_limit=30_000_000)
        out = engine.execute_block(root, env, [sign(0, n, ADDR[1], value=1, gas=21_000)
                                               for n in range(3)])
        store.apply(out.writes)
        if engine.store is reader:
            reader.remember(out.writes)
        roots.append((out.state_root, engine.balance(out.state_root, ADDR[1])))
    assert roots[0] == roots[1] and roots[0][1] == 3
    assert reader.hits > 0
