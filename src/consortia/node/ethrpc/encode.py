"""The JSON objects of the execution-apis spec for blocks, transactions, receipts and logs.

Pre-Shanghai shape (no withdrawals, no blob fields): Consortia's EVM has no beacon chain.
``sha3Uncles`` is the hash of the empty uncle list, ``difficulty`` and ``totalDifficulty``
are ``0x0`` (clients still read them), ``uncles`` is empty.
"""

from __future__ import annotations

from typing import Any

from consortia.node.ethrpc.codec import data, quantity
from consortia.node.ethrpc.types import (
    AccessListEntry,
    AccessListTx,
    DynamicFeeTx,
    EthBlock,
    EthHeader,
    EthLog,
    EthReceipt,
    EthTransaction,
    LegacyTx,
    tx_type,
)

EMPTY_UNCLES_HASH = bytes.fromhex(
    "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")
"""Keccak-256 of RLP([]) — the ``sha3Uncles`` of every block without uncles."""


def _opt_address(value: bytes | None) -> str | None:
    return None if value is None else data(value)


def _opt_quantity(value: int | None) -> str | None:
    return None if value is None else quantity(value)


def header_json(header: EthHeader) -> dict[str, Any]:
    """The header fields (``newHeads`` notifications are exactly this)."""
    out: dict[str, Any] = {
        "number": quantity(header.number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_hash),
        "sha3Uncles": data(EMPTY_UNCLES_HASH),
        "logsBloom": data(header.logs_bloom),
        "transactionsRoot": data(header.transactions_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipts_root),
        "miner": data(header.miner),
        "difficulty": "0x0",
        "extraData": data(header.extra_data),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
    }
    if header.base_fee_per_gas is not None:
        out["baseFeePerGas"] = quantity(header.base_fee_per_gas)
    return out


def block_json(block: EthBlock, full: bool) -> dict[str, Any]:
    """A block with its transactions' hashes, or the transaction objects when ``full``."""
    out = header_json(block.header)
    out["totalDifficulty"] = "0x0"
    out["size"] = quantity(block.header.size)
    out["uncles"] = []
    out["transactions"] = [tx_json(tx) if full else data(tx.hash)
                           for tx in block.transactions]
    return out


def _access_list(entries: tuple[AccessListEntry, ...]) -> list[dict[str, Any]]:
    return [{"address": data(e.address), "storageKeys": [data(k) for k in e.storage_keys]}
            for e in entries]


def tx_json(tx: EthTransaction) -> dict[str, Any]:
    """A transaction object with the fields of its type."""
    out: dict[str, Any] = {
        "type": quantity(tx_type(tx)),
        "hash": data(tx.hash),
        "nonce": quantity(tx.nonce),
        "blockHash": _opt_address(tx.block_hash),
        "blockNumber": _opt_quantity(tx.block_number),
        "transactionIndex": _opt_quantity(tx.transaction_index),
        "from": data(tx.sender),
        "to": _opt_address(tx.to),
        "value": quantity(tx.value),
        "gas": quantity(tx.gas),
        "input": data(tx.input),
        "r": quantity(tx.r),
        "s": quantity(tx.s),
    }
    if isinstance(tx, LegacyTx):
        out["gasPrice"] = quantity(tx.gas_price)
        out["v"] = quantity(tx.v)
        if tx.chain_id is not None:
            out["chainId"] = quantity(tx.chain_id)
        return out
    out["chainId"] = quantity(tx.chain_id)
    out["accessList"] = _access_list(tx.access_list)
    out["v"] = quantity(tx.y_parity)
    out["yParity"] = quantity(tx.y_parity)
    if isinstance(tx, AccessListTx):
        out["gasPrice"] = quantity(tx.gas_price)
        return out
    assert isinstance(tx, DynamicFeeTx)
    out["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
    out["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
    paid = tx.effective_gas_price
    out["gasPrice"] = quantity(tx.max_fee_per_gas if paid is None else paid)
    return out


def log_json(log: EthLog) -> dict[str, Any]:
    """A log object. ``removed`` is always false: Consortia's chains do not reorganize."""
    return {
        "address": data(log.address),
        "topics": [data(t) for t in log.topics],
        "data": data(log.data),
        "blockNumber": quantity(log.block_number),
        "blockHash": data(log.block_hash),
        "transactionHash": data(log.transaction_hash),
        "transactionIndex": quantity(log.transaction_index),
        "logIndex": quantity(log.log_index),
        "removed": False,
    }


def receipt_json(receipt: EthReceipt) -> dict[str, Any]:
    """A receipt object (post-Byzantium: ``status``, no ``root``)."""
    return {
        "transactionHash": data(receipt.transaction_hash),
        "transactionIndex": quantity(receipt.transaction_index),
        "blockHash": data(receipt.block_hash),
        "blockNumber": quantity(receipt.block_number),
        "from": data(receipt.sender),
        "to": _opt_address(receipt.to),
        "cumulativeGasUsed": quantity(receipt.cumulative_gas_used),
        "gasUsed": quantity(receipt.gas_used),
        "effectiveGasPrice": quantity(receipt.effective_gas_price),
        "contractAddress": _opt_address(receipt.contract_address),
        "logs": [log_json(log) for log in receipt.logs],
        "logsBloom": data(receipt.logs_bloom),
        "type": quantity(receipt.tx_type),
        "status": quantity(receipt.status),
    }
