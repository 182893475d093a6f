"""An in-memory chain that implements ``ReplicaSupport`` for simulated validators.

Blocks use the real ``Header`` and Merkle rules; transactions are opaque byte
strings (``b"tx:<n>"``; a Byzantine proposer may slip in ``b"bad:..."``, which
``validate`` refuses). A configuration transaction ``b"cfg:add:<id>"`` or
``b"cfg:remove:<id>"`` goes alone in its block and changes the validator set for
every later height, as a real configuration block does. Signatures are HMAC-SHA256
under per-validator keys: a fast, deterministic stand-in for P-256 that the simulator
can afford millions of times. The committed chain survives a simulated crash (it
models the durable ledger); the pool of pending transactions does not.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass

from consortia.consensus.support import PreparedBlock
from consortia.ledger import merkle
from consortia.types.block import Block, Header
from consortia.types.errors import InvalidBlock

_ZERO = bytes(32)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


GENESIS = Header("sim", 0, _ZERO, _h(b""), _h(b""), 0, 0, "", 0, _ZERO)
GENESIS_BYTES = GENESIS.encode()
GENESIS_HASH = _h(GENESIS_BYTES)


@dataclass(frozen=True)
class Committed:
    block: Block
    hash: bytes
    state: bytes
    """Running hash of every transaction applied so far: equal heights, equal states."""


class SimSupport:
    chain_id = "sim"

    def __init__(self, node_id: str, validator_ids: tuple[str, ...], keys: dict[str, bytes],
                 *, max_block_txs: int = 20) -> None:
        self.node_id = node_id
        self._validators = validator_ids
        self._keys = keys
        self.max_block_txs = max_block_txs
        self.chain: list[Committed] = []
        self.pending: OrderedDict[bytes, None] = OrderedDict()
        self._committed_txs: set[bytes] = set()
        self._previous: tuple[tuple[str, ...], int] | None = None
        """The set before the last configuration block, and the height after that block."""

    # -- chain state -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        return len(self.chain)

    def next_height(self) -> int:
        return self.height + 1

    def last_hash(self) -> bytes:
        return self.chain[-1].hash if self.chain else GENESIS_HASH

    def _last_time(self) -> int:
        return self.chain[-1].block.header.timestamp_ms if self.chain else 0

    def state(self) -> bytes:
        return self.chain[-1].state if self.chain else _ZERO

    def validators(self) -> tuple[str, ...]:
        return self._validators

    def previous_validators(self) -> tuple[tuple[str, ...], int] | None:
        return self._previous if self._previous and self._previous[1] == self.next_height() \
            else None

    def _reconfigured(self, tx: bytes) -> tuple[str, ...] | None:
        """The validator set after configuration transaction ``tx`` (None: not a valid one
        for the set in force)."""
        parts = tx.split(b":")
        if len(parts) != 3 or parts[0] != b"cfg" or parts[1] not in (b"add", b"remove"):
            return None
        vid = parts[2].decode(errors="replace")
        if parts[1] == b"add":
            return None if vid in self._validators else (*self._validators, vid)
        if vid not in self._validators or len(self._validators) == 1:
            return None
        return tuple(v for v in self._validators if v != vid)

    def submit(self, tx: bytes) -> None:
        if tx not in self._committed_txs:
            self.pending[tx] = None

    def lose_pool(self) -> None:
        """A crash forgets pending transactions; committed blocks stay."""
        self.pending.clear()

    # -- Support -----------------------------------------------------------------------------

    def _seal(self, envelopes: tuple[bytes, ...], now_ms: int, proposer: str) -> PreparedBlock:
        header = Header(self.chain_id, self.next_height(), self.last_hash(),
                        merkle.root(_h, envelopes), _h(b""), len(envelopes),
                        max(now_ms, self._last_time()), proposer, 0, _ZERO)
        hb = header.encode()
        return PreparedBlock(header, hb, _h(hb), envelopes, None)

    def propose(self, now_ms: int, proposer: str) -> PreparedBlock | None:
        batch: list[bytes] = []
        for tx in list(self.pending)[: self.max_block_txs]:
            if tx.startswith(b"cfg:"):
                if not batch:
                    if self._reconfigured(tx) is None:
                        del self.pending[tx]  # no longer applies (already done)
                        continue
                    batch = [tx]
                break
            batch.append(tx)
        if not batch:
            return None
        return self._seal(tuple(batch), now_ms, proposer)

    def propose_with(self, envelopes: tuple[bytes, ...], now_ms: int,
                     proposer: str) -> PreparedBlock:
        """Build a block of chosen transactions (Byzantine proposers use this)."""
        return self._seal(envelopes, now_ms, proposer)

    def validate(self, header_bytes: bytes, envelopes: tuple[bytes, ...]) -> PreparedBlock:
        try:
            header = Header.decode(header_bytes)
        except Exception as exc:
            raise InvalidBlock(f"undecodable header: {exc}") from exc
        if header.height != self.next_height():
            raise InvalidBlock(f"height {header.height}, expected {self.next_height()}")
        if header.prev_hash != self.last_hash():
            raise InvalidBlock("prev_hash does not link to the last committed block")
        if header.tx_count != len(envelopes) or header.tx_root != merkle.root(_h, envelopes):
            raise InvalidBlock("tx_root does not match the transactions")
        if header.timestamp_ms < self._last_time():
            raise InvalidBlock("timestamp goes backwards")
        for tx in envelopes:
            if tx.startswith(b"cfg:") and len(envelopes) == 1 \
                    and self._reconfigured(tx) is not None:
                continue
            if not tx.startswith(b"tx:") or tx in self._committed_txs:
                raise InvalidBlock(f"invalid or already committed transaction {tx[:20]!r}")
        if len(set(envelopes)) != len(envelopes):
            raise InvalidBlock("a transaction appears twice")
        return PreparedBlock(header, header_bytes, _h(header_bytes), envelopes, None)

    def block(self, height: int) -> Block | None:
        return self.chain[height - 1].block if 1 <= height <= self.height else None

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._keys[self.node_id], message, "sha256").digest()

    def verify(self, validator_id: str, message: bytes, signature: bytes) -> bool:
        key = self._keys.get(validator_id)
        if key is None:
            return False
        return hmac.compare_digest(hmac.new(key, message, "sha256").digest(), signature)

    # -- commit ------------------------------------------------------------------------------

    def commit(self, block: Block) -> Committed:
        """Append a final block (the driver's job on a ``Commit`` action)."""
        hd = block.header
        if hd.height != self.next_height():
            raise InvalidBlock(f"{self.node_id}: commit of height {hd.height} after "
                               f"{self.height}")
        if hd.prev_hash != self.last_hash():
            raise InvalidBlock(f"{self.node_id}: block {hd.height} does not link")
        state = self.state()
        for tx in block.envelopes:
            state = _h(state + tx)
            self._committed_txs.add(tx)
            self.pending.pop(tx, None)
        if len(block.envelopes) == 1:
            changed = self._reconfigured(block.envelopes[0])
            if changed is not None:
                self._previous = (self._validators, hd.height + 1)
                self._validators = changed
        c = Committed(block, _h(block.header_bytes), state)
        self.chain.append(c)
        return c
