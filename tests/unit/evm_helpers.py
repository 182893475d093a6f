"""Shared pieces of the EVM engine tests: keys, the compiled Token, a chain in memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address

from consortia.execution.evm import BlockEnv, EvmEngine, GenesisAccount, MemoryStore

CHAIN_ID = 1337
TOKEN = json.loads((Path(__file__).parents[2] / "bench" / "evm" / "Token.json").read_text())
KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]
ADDR = [bytes.fromhex(k.address[2:]) for k in KEYS]


def selector(signature: str) -> bytes:
    from eth_utils.crypto import keccak

    return keccak(signature.encode())[:4]


def token_code(supply: int = 10**24) -> bytes:
    return bytes.fromhex(TOKEN["bytecode"][2:]) + encode(
        ["string", "string", "uint256"], ["Token", "TOK", supply])


def sign(key_index: int, nonce: int, to: bytes | None, data: bytes = b"", value: int = 0,
         gas: int = 200_000, tx_type: int = 2, chain_id: int = CHAIN_ID, **extra: Any) -> bytes:
    tx: dict[str, Any] = dict(nonce=nonce, gas=gas, value=value, data=data, chainId=chain_id,
                              to=to_checksum_address(to) if to is not None else b"")
    if tx_type == 2:
        tx.update(type=2, maxFeePerGas=0, maxPriorityFeePerGas=0)
    elif tx_type == 1:
        tx.update(type=1, gasPrice=0, accessList=[])
    else:
        tx.update(gasPrice=0)
    tx.update(extra)
    return bytes(KEYS[key_index].sign_transaction(tx).raw_transaction)


class Chain:
    """A chain in memory: blocks applied one after the other, their hashes for BLOCKHASH."""

    def __init__(self, balance: int = 10**21) -> None:
        self.store = MemoryStore()
        self.engine = EvmEngine(CHAIN_ID, self.store)
        self.root, writes = self.engine.genesis({a: GenesisAccount(balance=balance)
                                                 for a in ADDR})
        self.store.apply(writes)
        self.number = 0
        self.hashes: dict[int, bytes] = {0: b"\x11" * 32}

    def env(self) -> BlockEnv:
        return BlockEnv(number=self.number + 1, timestamp=1_700_000_000 + self.number + 1)

    def block(self, txs: list[bytes]):  # -> BlockOutcome
        env = self.env()
        out = self.engine.execute_block(self.root, env, txs, self.hashes.get)
        self.store.apply(out.writes)
        self.root = out.state_root
        self.number += 1
        self.hashes[self.number] = out.header(self.hashes[self.number - 1], env).hash()
        return out

    def deploy_token(self, key_index: int = 0, nonce: int = 0) -> bytes:
        out = self.block([sign(key_index, nonce, None, token_code(), gas=2_000_000)])
        assert out.receipts[0].status == 1
        address = out.receipts[0].contract_address
        assert address is not None
        return address
