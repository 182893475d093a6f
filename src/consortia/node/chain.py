"""The chain as this node holds it: store, configuration in force, and the
``Support`` the consensus protocol orders through."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from consortia.consensus.support import PreparedBlock
from consortia.crypto import SigningKey, get_suite
from consortia.execution import notary
from consortia.identity.membership import Membership
from consortia.ledger import hashing
from consortia.ledger.genesis import Genesis
from consortia.ledger.rules import config_hash
from consortia.ledger.store import BlockWrite, LedgerStore
from consortia.ledger.verify import verify_chain
from consortia.types.block import VALID, Block, Header, Result
from consortia.types.config import ChainConfig
from consortia.types.errors import ChainCorrupted, ConfigError
from consortia.types.tx import Envelope, Payload, TxType
from consortia.types.tx import Tx as TxT

log = logging.getLogger("consortia.node.chain")


@dataclass(frozen=True)
class _Artifacts:
    txs: Sequence[TxT]
    execution: notary.Execution


class Chain:
    """Owns the ledger of one node; implements ``consensus.support.Support``."""

    def __init__(self, store: LedgerStore, genesis: Genesis, key: SigningKey,
                 *, verify_tail: int = 32) -> None:
        self.store = store
        self.genesis = genesis
        self.suite = get_suite(genesis.config.suite)
        self.chain_id = genesis.config.chain_id
        self._key = key
        if store.height < 0:
            self._write_genesis()
        stored_genesis = store.meta("genesis_hash")
        if stored_genesis != genesis.hash:
            raise ChainCorrupted("the data directory holds another chain than this genesis "
                                 f"(stored genesis {(stored_genesis or b'').hex()[:16]}, "
                                 f"given {genesis.hash.hex()[:16]})")
        checked = verify_chain(store, genesis, tail=verify_tail)
        log.info("verified the last %d blocks up to height %d", checked, store.height)
        self.config_height, self.config = store.config_in_force()
        self.membership = Membership(self.config, self.suite)
        last = store.block(store.height)
        assert last is not None
        self.last_hash = last.hash
        self.last_header = Header.decode(last.header)
        self.last_certificate = last.certificate
        """This node's stored certificate of the last block, which its next proposal carries."""
        self.cert_config = self.config
        """The configuration the last block's certificate verifies under: the one before it
        when it was a configuration block."""
        if self.config_height == store.height and store.height > 0:
            self.cert_config = store.previous_config() or genesis.config

    def _write_genesis(self) -> None:
        g = self.genesis
        env = Envelope.decode(g.block.envelopes[0])
        self.store.init_meta({"genesis_hash": g.hash, "chain_id": g.config.chain_id.encode()})
        self.store.commit(BlockWrite(
            g.block, g.hash, [hashing.tx_id(self.suite, env.payload)], [TxType.CONFIG],
            [VALID], [], g.config))

    # -- Support -----------------------------------------------------------------------------

    def next_height(self) -> int:
        return self.store.height + 1

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def prepare(self, batch: Sequence[TxT], timestamp_ms: int, proposer: str,
                last_commit: bytes | None = None, *, strict: bool = False) -> PreparedBlock:
        """Execute ``batch`` into the next block. ``last_commit`` is the previous block's
        certificate the header carries: this node's own unless it re-executes another
        validator's proposal (which carries the proposer's). ``strict`` marks such a
        re-execution (the notary executor has no transactions it would leave out, so
        only ``QuorumChain`` reads it)."""
        height = self.next_height()
        if last_commit is None:
            last_commit = self.last_certificate if height >= 2 else b""
        ex = notary.execute(self.suite, self.config, self.membership, batch)
        envelopes = tuple(t.raw for t in batch)
        after = ex.new_config or self.config
        header = Header(
            chain_id=self.chain_id, height=height, prev_hash=self.last_hash,
            tx_root=hashing.tx_root(self.suite, envelopes),
            results_root=hashing.results_root(self.suite, ex.results),
            tx_count=len(envelopes), timestamp_ms=max(timestamp_ms, self.last_header.timestamp_ms),
            proposer=proposer,
            config_height=height if ex.new_config else self.config_height,
            config_hash=config_hash(self.suite, after), last_commit=last_commit)
        hb = header.encode()
        return PreparedBlock(header, hb, hashing.block_hash(self.suite, hb), envelopes,
                        _Artifacts(batch, ex))

    def entry_id(self, raw: bytes) -> bytes:
        """The transaction id of a block entry (``Malformed`` if it does not decode)."""
        return hashing.tx_id(self.suite, Envelope.decode(raw).payload)

    # -- commit ------------------------------------------------------------------------------

    @staticmethod
    def batch_of(prepared: PreparedBlock) -> Sequence[TxT]:
        """The admitted transactions a prepared block was built from."""
        art: _Artifacts = prepared.artifacts
        return art.txs

    @staticmethod
    def results_of(prepared: PreparedBlock) -> list[Result]:
        art: _Artifacts = prepared.artifacts
        return art.execution.results

    def commit(self, block: Block, proposal: PreparedBlock) -> ChainConfig | None:
        """Store a final block; returns the new configuration if the block changed it."""
        art: _Artifacts = proposal.artifacts
        ex = art.execution
        self.store.commit(self._block_write(block, proposal))
        self.last_hash = proposal.hash
        self.last_header = block.header
        self.last_certificate = block.certificate.encode()
        self.cert_config = self.config
        if ex.new_config is not None:
            self.config, self.config_height = ex.new_config, block.header.height
            self.membership = Membership(self.config, self.suite)
            log.info("configuration sequence %d in force from height %d",
                     self.config.sequence, self.config_height)
        return ex.new_config

    def _block_write(self, block: Block, proposal: PreparedBlock) -> BlockWrite:
        """The rows of a final block (a quorum chain adds its Ethereum block to them)."""
        art: _Artifacts = proposal.artifacts
        ex = art.execution
        return BlockWrite(
            block, proposal.hash, [t.id for t in art.txs], [t.payload.type for t in art.txs],
            ex.results, ex.records, ex.new_config)


def check_validator_identity(config: ChainConfig, validator_id: str, cert_der: bytes,
                             *, joining: bool = False) -> None:
    """The node's identity must be its validator's in ``config``; with ``joining`` (a
    multi-validator chain) a node not in ``config`` may start and follow the chain until a
    configuration block adds it."""
    v = config.validator(validator_id)
    if v is None:
        if joining:
            return
        raise ConfigError(f"{validator_id} is not a validator of this chain")
    if v.cert != cert_der:
        raise ConfigError(f"the keystore certificate is not {validator_id}'s certificate in the "
                          "chain configuration")


def decode_payload(raw: bytes) -> Payload:
    return Payload.decode(Envelope.decode(raw).payload)
