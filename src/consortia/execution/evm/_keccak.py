"""Keccak-256 in C for everything Ethereum in the process.

py-evm, trie, eth-keys, eth-utils and eth-account all hash through one object,
``eth_hash.auto.keccak``, which picks pycryptodome when it is installed (it is: other
parts of the platform use it). pycryptodome's keccak costs about 7 µs a call here against
under 1 µs for safe-pysha3's C implementation, and a block hashes tens of thousands of
trie nodes, messages and addresses: the profiled node spent a quarter of its time there
(docs/performance.md). :func:`use_fast_keccak` points that shared object at the pysha3
backend; the two give identical digests (tests/unit/test_evm_engine.py checks it).
``ETH_HASH_BACKEND``, eth-hash's own setting, still wins when an operator sets it.
"""

from __future__ import annotations

import os

from eth_hash.auto import keccak


def use_fast_keccak() -> str:
    """Switch the process's keccak to pysha3 unless ``ETH_HASH_BACKEND`` says otherwise;
    the backend now in use."""
    if os.environ.get("ETH_HASH_BACKEND"):
        return os.environ["ETH_HASH_BACKEND"]
    try:
        from eth_hash.backends.pysha3 import backend
    except ImportError:  # safe-pysha3 missing: correct, only slower
        return "pycryptodome"
    keccak.hasher = backend.keccak256  # type: ignore[assignment]
    keccak.preimage = backend.preimage  # type: ignore[assignment]
    return "pysha3"
