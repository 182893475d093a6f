"""The node's ``ReplicaSupport`` for multi-validator protocols (raft, pbft).

On top of ``NodeSupport`` (propose from the pool) it checks blocks other validators
propose: every transaction is admitted again (decode, signer, signature, role —
without the freshness window, since a node catching up replays old blocks; a
transaction this node already verified from gossip is not verified twice), then
the block is executed and must come out byte-identical, header roots included. It
verifies votes with the validator certificates of the configuration in force, and
remembers its own proposals so their transactions return to the pool if another
block wins the height.
"""

from __future__ import annotations

from consortia.consensus.support import PreparedBlock
from consortia.ledger.certify import validator_key, verify_certificate
from consortia.ledger.rules import check_last_commit
from consortia.ledger.verify import load_block
from consortia.node.chain import Chain
from consortia.node.support import NodeSupport
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import Entry, QuorumAdmission
from consortia.txpool.pool import Pool
from consortia.types.block import Block, Header
from consortia.types.errors import ConsortiaError, InvalidBlock


class ReplicaNodeSupport(NodeSupport):
    def __init__(self, chain: Chain, pool: Pool, admission: Admission | QuorumAdmission
                 ) -> None:
        super().__init__(chain, pool)
        self.admission = admission
        self._proposed: dict[int, tuple[bytes, list[Entry]]] = {}
        self._config = chain.config
        self._retired: dict[str, bytes] = {
            v.id: v.cert for v in chain.cert_config.validators
            if chain.config.validator(v.id) is None}
        """Certificates of validators a configuration block removed: their votes still
        count in the certificate of that block (checked under the set before it) — also
        after a restart right after that block (``Chain.cert_config``)."""

    def previous_validators(self) -> tuple[tuple[str, ...], int] | None:
        chain = self.chain
        if chain.cert_config is chain.config or chain.config_height != chain.store.height:
            return None
        return (tuple(v.id for v in chain.cert_config.validators), chain.config_height + 1)

    def validators(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.chain.config.validators)

    def last_hash(self) -> bytes:
        return self.chain.last_hash

    def block(self, height: int) -> Block | None:
        if not 1 <= height <= self.chain.store.height:
            return None
        return load_block(self.chain.store, height)[0]

    def verify(self, validator_id: str, message: bytes, signature: bytes) -> bool:
        """(Whether ``validator_id`` may sign in a given role is the caller's check: it
        holds the validator set the message is judged under.)"""
        config = self.chain.config
        if config is not self._config:
            for old in self._config.validators:
                if config.validator(old.id) is None:
                    self._retired[old.id] = old.cert
            self._config = config
        v = config.validator(validator_id)
        cert = v.cert if v is not None else self._retired.get(validator_id)
        if cert is None:
            return False
        return self.chain.suite.verify(validator_key(self.chain.suite, cert), message,
                                       signature)

    def _take_batch(self) -> list[Entry]:
        """The pool's next batch without the transactions the ledger already holds.

        A block another validator built is stored on the commit thread, but its
        transactions leave this node's pool only when the event loop settles that step
        (``Node._run_step``); a step that runs on the commit thread before then — the first
        proposal of a new raft leader or pbft primary — would find them still pending and
        propose them again, a block every validator refuses (``validate``). The ledger is
        written on the thread running this, so it says exactly which are committed."""
        batch = super()._take_batch()
        committed = self.chain.store.known_txids([t.id for t in batch]) if batch else set()
        if committed:
            self.pool.done(list(committed))
            batch = [t for t in batch if t.id not in committed]
        return batch

    def propose(self, now_ms: int, proposer: str) -> PreparedBlock | None:
        prepared = super().propose(now_ms, proposer)
        if prepared is not None:
            self._proposed[prepared.header.height] = (prepared.hash, list(Chain.batch_of(
                prepared)))
        return prepared

    def validate(self, header_bytes: bytes, envelopes: tuple[bytes, ...]) -> PreparedBlock:
        try:
            header = Header.decode(header_bytes)
        except ConsortiaError as exc:
            raise InvalidBlock(f"proposed header cannot be decoded: {exc.message}") from exc
        if header.height != self.chain.next_height():
            raise InvalidBlock(f"proposed height {header.height}, expected "
                               f"{self.chain.next_height()}")
        if header.prev_hash != self.chain.last_hash:
            raise InvalidBlock("proposed block does not follow the last committed block")
        self._check_last_commit(header)
        txs: list[Entry] = []
        seen: set[bytes] = set()
        for i, raw in enumerate(envelopes):
            try:
                tx = self._known(raw) or self.admission.check(raw, fresh=False)
            except ConsortiaError as exc:
                raise InvalidBlock(f"transaction {i} of the proposed block: {exc.message}"
                                   ) from exc
            if tx.id in seen:
                raise InvalidBlock(f"transaction {i} appears twice in the proposed block")
            seen.add(tx.id)
            txs.append(tx)
        if self.chain.store.known_txids(seen):
            raise InvalidBlock("the proposed block replays committed transactions")
        prepared = self.chain.prepare(txs, header.timestamp_ms, header.proposer,  # type: ignore[arg-type]
                                      header.last_commit, strict=True)
        if prepared.header_bytes != header_bytes:
            raise InvalidBlock("the proposed block does not match its re-execution "
                               "(roots, configuration or time differ)")
        return prepared

    def _check_last_commit(self, header: Header) -> None:
        """The previous block's certificate the proposal carries must finalize the block
        this node committed there, under that block's configuration: it becomes the
        certificate every ledger stores for it."""
        try:
            cert = check_last_commit(header)
            if cert is not None:
                chain = self.chain
                verify_certificate(chain.suite, chain.cert_config, chain.last_header,
                                   chain.last_hash, cert)
        except ConsortiaError as exc:
            raise InvalidBlock(f"proposed block's last commit: {exc.message}") from exc

    def _known(self, raw: bytes) -> Entry | None:
        """The pool's copy of a transaction, verified when it was gossiped to this node."""
        try:
            txid = self.chain.entry_id(raw)
        except ConsortiaError:
            return None
        tx: Entry | None = self.pool.get(txid)
        return tx if tx is not None and tx.raw == raw else None

    def settle(self, height: int, block_hash: bytes) -> list[Entry]:
        """After height ``height`` committed: the transactions of this node's own proposal
        for it, if another block won, to return to the pool."""
        mine = self._proposed.pop(height, None)
        for h in [h for h in self._proposed if h < height]:
            self._proposed.pop(h)
        if mine is None or mine[0] == block_hash:
            return []
        return mine[1]
