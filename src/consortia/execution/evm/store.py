"""How the engine reads state, and the writes it hands back.

The world state is a set of Merkle-Patricia trie nodes, contract codes and nothing else,
each stored under its own keccak256 hash (content addressed). The engine never writes
to storage: it reads through :class:`StateReader` (``get(key) -> bytes | None``) and
returns the new nodes of a block as a plain ``dict`` (``BlockOutcome.writes``), which the
ledger commits in the same SQLite transaction as the block, so a crash leaves either
both or neither. Nodes are never deleted: an old state root stays readable for
``eth_call``/``eth_getBalance`` at an older block, and a block re-executed from a parent
whose nodes are stored gives the same roots.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Protocol

from eth.db.backends.base import BaseDB


class StateReader(Protocol):
    """Read access to stored state nodes (the ledger's table, or memory in tests)."""

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key`` (a 32-byte hash), ``None`` if absent."""
        ...


class MemoryStore:
    """A :class:`StateReader` in memory, for tests and benchmarks."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def apply(self, writes: Mapping[bytes, bytes]) -> None:
        """Commit a block's writes (what the ledger does in its block transaction)."""
        self.data.update(writes)


class CachedReader:
    """A :class:`StateReader` that keeps recently read or written nodes in memory.

    Content addressing makes this cache never stale: a key's value cannot change, so a hit
    is always right. Only values are cached, never an absence (a missing key may be
    written by a later block). :meth:`remember` takes a committed block's writes: the
    next block touches the same hot accounts and contract code (an ERC-20's code and its
    balances' trie paths), which would otherwise be read back from SQLite at once. Least
    recently used values go first once ``max_bytes`` is exceeded. Thread-safe: the node
    prepares blocks and answers JSON-RPC reads from different threads.
    """

    def __init__(self, store: StateReader, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._values: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                self.hits += 1
                return value
            self.misses += 1
        value = self.store.get(key)
        if value is not None:
            self.remember({key: value})
        return value

    def remember(self, writes: Mapping[bytes, bytes]) -> None:
        """Keep ``writes`` (committed nodes) as the most recently used."""
        with self._lock:
            for key, value in writes.items():
                old = self._values.pop(key, None)
                if old is not None:
                    self._bytes -= len(key) + len(old)
                self._values[key] = value
                self._bytes += len(key) + len(value)
            while self._bytes > self.max_bytes and self._values:
                k, v = self._values.popitem(last=False)
                self._bytes -= len(k) + len(v)


class OverlayDB(BaseDB):
    """py-evm's key-value view: reads fall through to the store, writes stay in ``writes``.

    Deletions are ignored (nodes are content addressed and kept, see the module doc).
    """

    def __init__(self, store: StateReader) -> None:
        self.store = store
        self.writes: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self.writes.get(key)
        if value is None:
            value = self.store.get(key)
            if value is None:
                raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def _exists(self, key: bytes) -> bool:
        return key in self.writes or self.store.get(key) is not None

    def __delitem__(self, key: bytes) -> None:
        """Kept on purpose: an older state root may still need the node."""

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("the state store is not enumerable")

    def __len__(self) -> int:
        raise NotImplementedError("the state store is not enumerable")
