"""EVM engine benchmark (ADR 0020): ERC-20 transfers through py-evm and through pyrevm.

The same workload for both: deploy bench/evm/Token.sol (compiled bytecode committed in
bench/evm/Token.json), fund ``--accounts`` holders with tokens, then ``--transfers``
pre-signed EIP-1559 transfers among them, in blocks of ``--block``. Measured per block:
decoding + sender recovery of every raw transaction, execution, and the state root.

(a) py-evm: the project's engine (consortia.execution.evm), Prague, state in tries
    read through the StateReader and written back as the block's ``writes``.
(b) pyrevm 0.3.7 (revm): execution in Rust; nonces, the account/storage records and
    the Merkle-Patricia state root (``trie``) are ours, in Python. pyrevm exposes the
    changed storage only as the Debug text of its journal, which we parse per block.

Both state roots are compared block by block: equal roots mean both did the same thing.

    .venv/bin/python bench/evm_engine.py --transfers 2000 --block 500
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import rlp
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from trie.hexary import HexaryTrie

from consortia.execution.evm import (
    BlockEnv,
    EvmEngine,
    GenesisAccount,
    MemoryStore,
    _pyevm,
    decode_transaction,
)

CHAIN_ID = 1337
TOKEN = json.loads((Path(__file__).parent / "evm" / "Token.json").read_text())
TRANSFER = bytes.fromhex("a9059cbb")
EMPTY_ROOT = keccak(rlp.encode(b""))
EMPTY_CODE = keccak(b"")


def workload(n_accounts: int, n_transfers: int, seed: int = 7):
    rng = random.Random(seed)
    keys = [Account.from_key(keccak(b"bench-%d" % i)) for i in range(n_accounts)]
    owner = keys[0]
    nonces = {k.address: 0 for k in keys}

    def sign(k, to, data, gas):
        tx = dict(type=2, chainId=CHAIN_ID, nonce=nonces[k.address], to=to, data=data, gas=gas,
                  maxFeePerGas=0, maxPriorityFeePerGas=0, value=0)
        nonces[k.address] += 1
        return bytes(k.sign_transaction(tx).raw_transaction)

    code = bytes.fromhex(TOKEN["bytecode"][2:]) + encode(
        ["string", "string", "uint256"], ["Bench", "BNC", 10**30])
    deploy = sign(owner, b"", code, 2_000_000)
    token = keccak(rlp.encode([bytes.fromhex(owner.address[2:]), 0]))[12:]
    to_hex = to_checksum_address(token)
    fund = [sign(owner, to_hex, TRANSFER + encode(["address", "uint256"], [k.address, 10**24]),
                 100_000) for k in keys[1:]]
    transfers = []
    for i in range(n_transfers):
        k = keys[1 + i % (n_accounts - 1)]
        dest = keys[rng.randrange(n_accounts)].address
        transfers.append(sign(k, to_hex, TRANSFER + encode(["address", "uint256"], [dest, 1 + i]),
                              100_000))
    alloc = {bytes.fromhex(k.address[2:]): GenesisAccount(balance=10**21) for k in keys}
    return alloc, [deploy, *fund], transfers


def blocks_of(txs, size):
    return [txs[i:i + size] for i in range(0, len(txs), size)]


# ---- (a) py-evm ---------------------------------------------------------------------------
def run_pyevm(alloc, setup, transfers, block):
    store = MemoryStore()
    engine = EvmEngine(CHAIN_ID, store)
    root, writes = engine.genesis(alloc)
    store.apply(writes)
    persist_times: list[float] = []
    original = _pyevm.QuorumState.persist

    def timed_persist(self):
        t = time.perf_counter()
        try:
            return original(self)
        finally:
            persist_times.append(time.perf_counter() - t)

    _pyevm.QuorumState.persist = timed_persist  # type: ignore[method-assign]
    try:
        number = 1
        for b in blocks_of(setup, block):
            out = engine.execute_block(root, BlockEnv(number, 1_700_000_000 + number), b)
            assert not out.rejected and all(r.status for r in out.receipts), out.rejected[:3]
            store.apply(out.writes)
            root, number = out.state_root, number + 1
        persist_times.clear()
        roots, block_times = [], []
        t0 = time.perf_counter()
        for b in blocks_of(transfers, block):
            t = time.perf_counter()
            out = engine.execute_block(root, BlockEnv(number, 1_700_000_000 + number), b)
            block_times.append(time.perf_counter() - t)
            assert not out.rejected and all(r.status for r in out.receipts)
            store.apply(out.writes)
            root, number = out.state_root, number + 1
            roots.append(root)
        elapsed = time.perf_counter() - t0
    finally:
        _pyevm.QuorumState.persist = original  # type: ignore[method-assign]
    return {"engine": "py-evm 0.12.1b1 (Prague)",
            "transfers_per_s": round(len(transfers) / elapsed, 1),
            "block_ms_mean": round(1000 * sum(block_times) / len(block_times), 1),
            "state_root_ms_per_block": round(1000 * sum(persist_times) / len(persist_times), 1),
            "state_nodes": len(store.data)}, roots


# ---- (b) pyrevm ---------------------------------------------------------------------------
_ACCOUNT = re.compile(r"(0x[0-9a-f]{40}): Account \{ info: AccountInfo \{ balance: (\d+), "
                      r"nonce: (\d+), code_hash: (0x[0-9a-f]{64})")
_SLOT = re.compile(r"(\d+): (?:Evm)?StorageSlot \{ (?:previous_or_)?original_value: \d+, "
                   r"present_value: (\d+)")


class RevmState:
    """pyrevm plus what it lacks: nonces, account/storage records and the state root."""

    def __init__(self, alloc):
        from pyrevm import EVM, AccountInfo
        from pyrevm import BlockEnv as RBlockEnv

        self._info = AccountInfo
        self._block_env = RBlockEnv
        self.evm = EVM(spec_id="PRAGUE", gas_limit=30_000_000)
        self.nodes: dict[bytes, bytes] = {}
        self.accounts = HexaryTrie(self.nodes)
        self.storage_roots: dict[bytes, bytes] = {}
        self.known: dict[bytes, tuple[int, int, bytes]] = {}
        self.slots: dict[tuple[bytes, int], int] = {}
        self.codes: dict[bytes, bytes] = {}
        for address, acct in alloc.items():
            self.evm.insert_account_info("0x" + address.hex(),
                                         AccountInfo(balance=acct.balance, nonce=acct.nonce))
        self.root()

    def apply(self, txs, number):
        self.evm.set_block_env(self._block_env(number=number, timestamp=1_700_000_000 + number,
                                               gas_limit=30_000_000, basefee=0))
        for raw in txs:
            tx = decode_transaction(raw, CHAIN_ID)
            sender = "0x" + tx.sender.hex()
            info = self.evm.basic(sender)
            if info.nonce != tx.nonce:
                raise RuntimeError("nonce mismatch")
            if tx.to is None:
                self.evm.deploy(sender, tx.data, gas=tx.gas)  # deploy bumps the nonce
            else:
                self.evm.message_call(sender, "0x" + tx.to.hex(), tx.data, gas=tx.gas,
                                      gas_price=0)
                # message_call does not bump the nonce: the transaction's bookkeeping is ours
                self.evm.insert_account_info(sender, self._info(
                    balance=info.balance, nonce=info.nonce + 1, code_hash=info.code_hash))

    def root(self) -> bytes:
        """Parse the journal (the only view of changed storage), update the tries."""
        journal = self.evm.journal_str
        starts = [m for m in _ACCOUNT.finditer(journal)]
        for i, m in enumerate(starts):
            address = bytes.fromhex(m.group(1)[2:])
            end = starts[i + 1].start() if i + 1 < len(starts) else len(journal)
            body = journal[m.end():end]
            s = body.find("storage: {")
            changed = False
            if s >= 0:
                storage = body[s:body.find("}, status", s) + 1]
                for sm in _SLOT.finditer(storage):
                    slot, value = int(sm.group(1)), int(sm.group(2))
                    if self.slots.get((address, slot), 0) != value:
                        self.slots[(address, slot)] = value
                        st = HexaryTrie(self.nodes, self.storage_roots.get(address, EMPTY_ROOT))
                        key = keccak(slot.to_bytes(32, "big"))
                        if value:
                            st[key] = rlp.encode(value)
                        else:
                            st.delete(key)
                        self.storage_roots[address] = st.root_hash
                        changed = True
            record = (int(m.group(3)), int(m.group(2)), bytes.fromhex(m.group(4)[2:]))
            if changed or self.known.get(address) != record:
                self.known[address] = record
                nonce, balance, code_hash = record
                skey = keccak(address)
                sroot = self.storage_roots.get(address, EMPTY_ROOT)
                if nonce == 0 and balance == 0 and code_hash == EMPTY_CODE and sroot == EMPTY_ROOT:
                    if self.accounts.exists(skey):
                        self.accounts.delete(skey)
                else:
                    self.accounts[skey] = rlp.encode([nonce, balance, sroot, code_hash])
        return self.accounts.root_hash


def run_pyrevm(alloc, setup, transfers, block):
    state = RevmState(alloc)
    number = 1
    for b in blocks_of(setup, block):
        state.apply(b, number)
        state.root()
        number += 1
    roots, block_times, root_times = [], [], []
    t0 = time.perf_counter()
    for b in blocks_of(transfers, block):
        t = time.perf_counter()
        state.apply(b, number)
        r = time.perf_counter()
        roots.append(state.root())
        root_times.append(time.perf_counter() - r)
        block_times.append(time.perf_counter() - t)
        number += 1
    elapsed = time.perf_counter() - t0
    return {"engine": "pyrevm 0.3.7 (Prague) + own tries",
            "transfers_per_s": round(len(transfers) / elapsed, 1),
            "block_ms_mean": round(1000 * sum(block_times) / len(block_times), 1),
            "state_root_ms_per_block": round(1000 * sum(root_times) / len(root_times), 1),
            "state_nodes": len(state.nodes)}, roots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=2000)
    ap.add_argument("--block", type=int, default=500)
    ap.add_argument("--accounts", type=int, default=200)
    args = ap.parse_args()
    t = time.perf_counter()
    alloc, setup, transfers = workload(args.accounts, args.transfers)
    sign_s = time.perf_counter() - t
    a, roots_a = run_pyevm(alloc, setup, transfers, args.block)
    b, roots_b = run_pyrevm(alloc, setup, transfers, args.block)
    print(json.dumps({
        "bench": "evm_engine", "transfers": args.transfers, "block": args.block,
        "accounts": args.accounts, "presign_s": round(sign_s, 2), "pyevm": a, "pyrevm": b,
        "state_roots_agree": roots_a == roots_b,
        "speedup_pyrevm_over_pyevm": round(b["transfers_per_s"] / a["transfers_per_s"], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
