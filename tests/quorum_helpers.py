"""Quorum networks for the node tests: an ``init_network`` directory whose genesis is
turned into a quorum chain's (an ``evm`` section with funded, bound accounts)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from consortia.ledger.genesis import load_genesis
from consortia.sdk.network import NETWORK_FILE, LocalNetwork, init_network, write_genesis
from consortia.types.config import Profile
from consortia.types.evm_config import AccountBinding, EvmConfig, GenesisAccount

CHAIN_ID = 1337
GAS_LIMIT = 30_000_000
KEYS: list[LocalAccount] = [Account.from_key(bytes([i + 1]) * 32) for i in range(6)]
"""Accounts 0-1 bound to org1, 2-3 to org2, 4 funded but bound to nobody, 5 nothing."""
ADDR = [bytes.fromhex(k.address[2:]) for k in KEYS]


BINDINGS = {0: "org1", 1: "org1", 2: "org2", 3: "org2"}


def quorum_network(root: Path, *, bindings: dict[int, str] | None = None, funded: int = 5,
                   balance: int = 10**24, **kwargs: Any) -> LocalNetwork:
    """``init_network(root, **kwargs)`` (organizations org1 and org2 unless told) with a
    quorum genesis:
    ``KEYS[i]`` bound to ``bindings[i]`` (default :data:`BINDINGS`), the first ``funded``
    accounts holding ``balance`` wei."""
    kwargs.setdefault("orgs", ["org1", "org2"])
    net = init_network(root, **kwargs)
    genesis = load_genesis(net.genesis_path)
    bound = BINDINGS if bindings is None else bindings
    evm = EvmConfig(CHAIN_ID, GAS_LIMIT,
                    alloc=tuple(GenesisAccount(a, balance) for a in ADDR[:funded]),
                    accounts=tuple(AccountBinding(ADDR[i], org) for i, org in bound.items()))
    config = dataclasses.replace(genesis.config, profile=Profile.QUORUM, evm=evm)
    made = write_genesis(net.genesis_path, config, net.identity("org1/admin"))
    doc = json.loads((root / NETWORK_FILE).read_text())
    doc["genesis_hash"] = made.hash.hex()
    (root / NETWORK_FILE).write_text(json.dumps(doc, indent=2))
    return LocalNetwork.open(root)


def sign(key: int, nonce: int, to: bytes | None, data: bytes = b"", value: int = 0,
         gas: int = 200_000, chain_id: int = CHAIN_ID, **extra: Any) -> bytes:
    """An EIP-1559 transaction of ``KEYS[key]`` at fee 0 (gas is free on quorum chains)."""
    tx: dict[str, Any] = dict(nonce=nonce, gas=gas, value=value, data=data, chainId=chain_id,
                              to=to_checksum_address(to) if to is not None else b"",
                              type=2, maxFeePerGas=0, maxPriorityFeePerGas=0)
    tx.update(extra)
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)
