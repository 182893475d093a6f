"""Ethereum roots, bloom, receipts and header hash, checked against py-evm's own objects
(an independent implementation of the same encodings) and known constants."""

from __future__ import annotations

from eth.db.trie import make_trie_root_and_nodes
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_abi.abi import encode

from consortia.execution.evm import ordered_trie_root
from consortia.execution.evm.ethblock import EMPTY_TRIE_ROOT, logs_bloom
from tests.unit.evm_helpers import ADDR, Chain, selector, sign


def test_empty_trie_root_is_ethereums() -> None:
    assert EMPTY_TRIE_ROOT.hex() == \
        "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    assert ordered_trie_root([]) == EMPTY_TRIE_ROOT


def test_roots_bloom_and_header_agree_with_py_evm() -> None:
    chain = Chain()
    token = chain.deploy_token()
    data = selector("transfer(address,uint256)") + encode(["address", "uint256"], [ADDR[1], 3])
    txs = [sign(0, 1, token, data, tx_type=2), sign(0, 2, ADDR[2], value=1, gas=21_000,
                                                    tx_type=0),
           sign(0, 3, token, data, tx_type=1),
           sign(1, 0, token, data[:-1] + b"\x09", tx_type=2)]  # 9 > 6 held: reverts
    env = chain.env()
    out = chain.block(txs)
    assert [r.status for r in out.receipts] == [1, 1, 1, 0]
    evm_txs = [t.evm_tx for t in out.transactions]
    assert out.transactions_root == make_trie_root_and_nodes(evm_txs)[0]
    evm_receipts = [
        t.evm_tx.make_receipt(b"\x01" if r.status else b"", r.cumulative_gas_used,
                              [(log.address, [int.from_bytes(x, "big") for x in log.topics],
                                log.data) for log in r.logs])
        for t, r in zip(out.transactions, out.receipts, strict=True)]
    assert out.receipts_root == make_trie_root_and_nodes(evm_receipts)[0]
    for mine, theirs in zip(out.receipts, evm_receipts, strict=True):
        assert int.from_bytes(mine.logs_bloom, "big") == theirs.bloom
        assert mine.logs_bloom == logs_bloom(mine.logs)
    ours = out.header(chain.hashes[chain.number - 1], env)
    theirs_header = PragueBlockHeader(
        parent_hash=ours.parent_hash, uncles_hash=ours.ommers_hash, coinbase=ours.coinbase,
        state_root=ours.state_root, transaction_root=ours.transactions_root,
        receipt_root=ours.receipts_root, bloom=int.from_bytes(ours.logs_bloom, "big"),
        difficulty=0, block_number=ours.number, gas_limit=ours.gas_limit,
        gas_used=ours.gas_used, timestamp=ours.timestamp, extra_data=b"",
        mix_hash=ours.prev_randao, nonce=ours.nonce, base_fee_per_gas=0,
        withdrawals_root=ours.withdrawals_root, blob_gas_used=0, excess_blob_gas=0,
        parent_beacon_block_root=ours.parent_beacon_block_root,
        requests_hash=ours.requests_hash)
    assert ours.hash() == theirs_header.hash
