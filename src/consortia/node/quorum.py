"""The chain of a quorum node: every height is also an Ethereum block (ADR 0026).

``QuorumChain`` extends :class:`~consortia.node.chain.Chain`. A batch is either one
configuration transaction (an envelope, executed as on every chain; its Ethereum block is
empty and keeps the state root) or Ethereum transactions (:class:`EthEntry`), run by the
:class:`EvmEngine` on the state of the previous height. The Consortia header commits to
the Ethereum block through ``exec_hash`` = keccak256(RLP(Ethereum header)); so the
commit certificate certifies the block hash the JSON-RPC reports.

The Ethereum block of height ``h``: number ``h``, timestamp ``timestamp_ms // 1000``,
parentHash the Ethereum hash of height ``h - 1``, coinbase the zero address (gas is free,
and a block re-executed by any validator must hash the same whoever proposed it), gas
limit ``config.evm.gas_limit``. Height 0's Ethereum block is derived from the genesis
configuration: the alloc's state root, empty transactions and receipts.

Per Ethereum transaction the block's results hold ``VALID`` (status 1) or
``Result(INVALID, "execution_reverted")`` (status 0; the result format is unchanged),
so ``results_root`` commits to the outcome too. A transaction the engine rejects (nonce
or balance no longer fit) is left out of the proposer's block and reported in
``QuorumChain.rejected_of``; in a block another validator proposed it makes the block
invalid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import rlp
from eth_utils.crypto import keccak

from consortia.consensus.support import PreparedBlock
from consortia.crypto import SigningKey
from consortia.execution import notary
from consortia.execution.evm import (
    BlockEnv,
    BlockOutcome,
    EthHeader,
    EvmEngine,
    GenesisAccount,
    Log,
    Receipt,
    Rejected,
    logs_bloom,
)
from consortia.execution.evm.ethblock import EMPTY_TRIE_ROOT
from consortia.execution.evm.store import CachedReader
from consortia.ledger import hashing
from consortia.ledger.genesis import Genesis
from consortia.ledger.rules import config_hash
from consortia.ledger.store import BlockWrite, EvmWrite, LedgerStore, LogRow
from consortia.node.chain import Chain, _Artifacts
from consortia.txpool.ethadmission import EthEntry, eth_bytes, is_envelope
from consortia.types.block import VALID, Block, Header, Result, TxStatus
from consortia.types.codec import Reader, decode, encode
from consortia.types.config import ChainConfig
from consortia.types.errors import ChainCorrupted, ConfigError, InvalidBlock
from consortia.types.evm_config import EvmConfig
from consortia.types.tx import Envelope, Tx, TxType

log = logging.getLogger("consortia.node.quorum")

REVERTED = Result(TxStatus.INVALID, "execution_reverted")
"""An Ethereum transaction that ran and failed (status 0): in the block, nonce and gas used."""
ZERO_ADDRESS = b"\x00" * 20
STATE_ROOT_FIELD = 3
"""Index of stateRoot in the RLP header list (EthHeader.fields)."""


@dataclass(frozen=True)
class _QuorumArtifacts(_Artifacts):
    eth_header: EthHeader | None = None
    outcome: BlockOutcome | None = None
    rejected: tuple[tuple[Any, Rejected], ...] = field(default=())
    """(batch entry, why) of each Ethereum transaction left out of the block."""


def env_for(evm: EvmConfig, height: int, timestamp_ms: int) -> BlockEnv:
    """The Ethereum environment of height ``height`` (module doc)."""
    return BlockEnv(number=height, timestamp=timestamp_ms // 1000, gas_limit=evm.gas_limit,
                    coinbase=ZERO_ADDRESS)


def state_root_of(header_rlp: bytes) -> bytes:
    """The stateRoot of a stored RLP Ethereum header."""
    fields = rlp.decode(header_rlp)
    return bytes(fields[STATE_ROOT_FIELD])


def encode_receipt_row(r: Receipt) -> bytes:
    """The stored form of a receipt (its logs live in the ``eth_logs`` index)."""
    return encode([r.tx_type, r.sender, r.to or b"", r.status, r.gas_used,
                   r.cumulative_gas_used, r.contract_address or b"", r.output,
                   r.revert_reason or ""])


@dataclass(frozen=True)
class ReceiptRow:
    """A stored receipt, decoded (``encode_receipt_row``'s fields)."""

    tx_type: int
    sender: bytes
    to: bytes | None
    status: int
    gas_used: int
    cumulative_gas_used: int
    contract_address: bytes | None
    output: bytes
    revert_reason: str | None


@dataclass
class _PrivateRun:
    root: bytes | None
    receipts: list[tuple[bytes, int, bytes]]
    writes: dict[bytes, bytes]


def encode_private_receipt(r: Receipt) -> bytes:
    """A private receipt: the receipt row and its logs (private logs have no index)."""
    return encode([encode_receipt_row(r),
                   [[g.address, list(g.topics), g.data, g.log_index] for g in r.logs]])


def decode_private_receipt(data: bytes) -> tuple[ReceiptRow, tuple[Log, ...]]:
    r = Reader(decode(data, what="private receipt"), "private receipt", length=2)
    row = decode_receipt_row(r.bytes_("receipt", max_len=2**31))
    logs = tuple(Log(bytes(a), tuple(bytes(t) for t in topics), bytes(d), int(i))
                 for a, topics, d, i in r.list_("logs", max_len=2**20))
    r.end()
    return row, logs


def decode_receipt_row(data: bytes) -> ReceiptRow:
    r = Reader(decode(data, what="receipt"), "receipt", length=9)
    tx_type = r.int_("tx_type", hi=255)
    sender = r.bytes_("sender", max_len=20, exact=20)
    to = r.bytes_("to", max_len=20)
    status = r.int_("status", hi=1)
    gas_used = r.int_("gas_used")
    cumulative = r.int_("cumulative_gas_used")
    contract = r.bytes_("contract_address", max_len=20)
    output = r.bytes_("output", max_len=2**31)
    reason = r.str_("revert_reason", max_len=2**20)
    return ReceiptRow(tx_type, sender, to or None, status, gas_used, cumulative,
                      contract or None, output, reason or None)


class QuorumChain(Chain):
    """A :class:`Chain` whose every height is an Ethereum block (module doc)."""

    def __init__(self, store: LedgerStore, genesis: Genesis, key: SigningKey,
                 *, verify_tail: int = 32) -> None:
        evm = genesis.config.evm
        if evm is None:
            raise ConfigError("a quorum chain needs the configuration's evm section")
        self.state_nodes = CachedReader(store)
        """State nodes and codes read or committed lately (content addressed: never stale)."""
        self.engine = EvmEngine(evm.chain_id, self.state_nodes)
        super().__init__(store, genesis, key, verify_tail=verify_tail)
        head = store.eth_block(store.height)
        if head is None:
            raise ChainCorrupted(f"height {store.height} has no Ethereum block")
        self.eth_hash, header_rlp = head
        self.state_root = state_root_of(header_rlp)
        self.private_root = store.private_root() or EMPTY_TRIE_ROOT
        """This node's private state (ADR 0027): the payloads it took part in, run."""
        self.private_payload: Callable[[bytes], bytes | None] | None = None
        """The payload of a private transaction by its hash from this member's transaction
        manager, ``None`` when it holds none for this node; unset: no manager."""

    @property
    def evm(self) -> EvmConfig:
        evm = self.config.evm
        assert evm is not None  # a quorum configuration always has one (ChainConfig.validate)
        return evm

    def _write_genesis(self) -> None:
        g = self.genesis
        evm = g.config.evm
        assert evm is not None
        root, writes = self.engine.genesis(
            {a.address: GenesisAccount(balance=a.balance) for a in evm.alloc})
        eth = EthHeader(
            parent_hash=b"\x00" * 32, coinbase=ZERO_ADDRESS, state_root=root,
            transactions_root=EMPTY_TRIE_ROOT, receipts_root=EMPTY_TRIE_ROOT,
            logs_bloom=bytes(256), number=0, gas_limit=evm.gas_limit, gas_used=0,
            timestamp=g.block.header.timestamp_ms // 1000)
        env = g.block.envelopes[0]
        payload = Envelope.decode(env).payload
        self.store.init_meta({"genesis_hash": g.hash, "chain_id": g.config.chain_id.encode()})
        self.store.commit(BlockWrite(
            g.block, g.hash, [hashing.tx_id(self.suite, payload)], [TxType.CONFIG], [VALID], [],
            g.config, EvmWrite(eth.hash(), eth.encode(), writes, [], [])))

    def _block_hash_of(self, number: int) -> bytes | None:
        row = self.store.eth_block(number)
        return None if row is None else row[0]

    # -- Support -----------------------------------------------------------------------------

    def prepare(self, batch: Sequence[Any], timestamp_ms: int, proposer: str,
                last_commit: bytes | None = None, *, strict: bool = False) -> PreparedBlock:
        """Execute ``batch`` (one configuration ``Tx``, or ``EthEntry`` items) into the next
        block. With ``strict`` (re-executing another validator's proposal) a transaction
        the engine rejects raises ``InvalidBlock`` instead of being left out."""
        height = self.next_height()
        if last_commit is None:
            last_commit = self.last_certificate if height >= 2 else b""
        ts = max(timestamp_ms, self.last_header.timestamp_ms)
        env = env_for(self.evm, height, ts)
        configs = [t for t in batch if isinstance(t, Tx)]
        if configs and len(batch) != 1:
            raise InvalidBlock("a configuration transaction must be alone in its block")
        if configs and not configs[0].payload.type.is_config:
            raise InvalidBlock("a quorum block holds no notary transactions")
        eth_batch: list[EthEntry] = [t for t in batch if isinstance(t, EthEntry)]
        if len(configs) + len(eth_batch) != len(batch):
            raise InvalidBlock("a quorum block holds envelopes and Ethereum transactions only")
        # The binding is checked again under the configuration in force (ADR 0025): an
        # account unbound after its transaction was admitted does not get it executed.
        bound = [i for i, e in enumerate(eth_batch) if self.evm.org_of(e.sender) is not None]
        unbound = set(range(len(eth_batch))) - set(bound)
        permitted = [eth_batch[i] for i in bound]
        outcome = self.engine.execute_block(
            self.state_root, env, [e.eth for e in permitted], self._block_hash_of,
            markers={i for i, e in enumerate(permitted) if e.private})
        rejected = tuple(sorted(  # indexes are positions in ``batch``
            [(e, Rejected(i, e.id, "account_not_permitted",
                          f"account 0x{e.sender.hex()} is bound to no organization"))
             for i, e in enumerate(eth_batch) if i in unbound]
            + [(permitted[r.index], replace(r, index=bound[r.index]))
               for r in outcome.rejected], key=lambda pair: pair[1].index))
        if rejected and strict:
            first = rejected[0][1]
            raise InvalidBlock(f"the block holds a transaction execution rejects "
                               f"({first.code}: {first.message})")
        if configs:
            ex = notary.execute(self.suite, self.config, self.membership, configs)
            txs: Sequence[Any] = configs
        else:
            out = {r.index for r in outcome.rejected}
            txs = [e for i, e in enumerate(permitted) if i not in out]
            ex = notary.Execution([VALID if r.status == 1 else REVERTED
                                   for r in outcome.receipts], [], None)
        eth_header = outcome.header(self.eth_hash, env)
        envelopes = tuple(t.raw for t in txs)
        after = ex.new_config or self.config
        header = Header(
            chain_id=self.chain_id, height=height, prev_hash=self.last_hash,
            tx_root=hashing.tx_root(self.suite, envelopes),
            results_root=hashing.results_root(self.suite, ex.results),
            tx_count=len(envelopes), timestamp_ms=ts, proposer=proposer,
            config_height=height if ex.new_config else self.config_height,
            config_hash=config_hash(self.suite, after), last_commit=last_commit,
            exec_hash=eth_header.hash())
        hb = header.encode()
        return PreparedBlock(header, hb, hashing.block_hash(self.suite, hb), envelopes,
                             _QuorumArtifacts(txs, ex, eth_header, outcome, rejected))

    def entry_id(self, raw: bytes) -> bytes:
        """An envelope's id, or a raw Ethereum transaction's hash (keccak256; of a private
        marker, the hash of the transaction it carries)."""
        return super().entry_id(raw) if is_envelope(raw) else keccak(eth_bytes(raw))

    @staticmethod
    def rejected_of(prepared: PreparedBlock) -> tuple[tuple[Any, Rejected], ...]:
        """The batch entries the proposer's execution left out, with the engine's reason."""
        art: _QuorumArtifacts = prepared.artifacts
        return art.rejected

    # -- commit ------------------------------------------------------------------------------

    def _block_write(self, block: Block, proposal: PreparedBlock) -> BlockWrite:
        art: _QuorumArtifacts = proposal.artifacts
        assert art.outcome is not None and art.eth_header is not None
        out, ex, height = art.outcome, art.execution, block.header.height
        receipts = [(r.tx_hash, r.tx_index, encode_receipt_row(r)) for r in out.receipts]
        logs = [LogRow(height, r.tx_index, g.log_index, g.address, g.topics, g.data)
                for r in out.receipts for g in r.logs]
        entries: Sequence[object] = art.txs  # EthEntry items, or one configuration Tx
        types = [t.payload.type if isinstance(t, Tx) else t.type for t in entries
                 if isinstance(t, Tx | EthEntry)]
        private = self._run_private(height, block.header.timestamp_ms,
                                    [(i, e) for i, e in enumerate(entries)
                                     if isinstance(e, EthEntry) and e.private])
        writes = out.writes if not private.writes else {**out.writes, **private.writes}
        return BlockWrite(block, proposal.hash, [t.id for t in art.txs], types, ex.results,
                          ex.records, ex.new_config,
                          EvmWrite(art.eth_header.hash(), art.eth_header.encode(), writes,
                                   receipts, logs, private.root, private.receipts))

    def _run_private(self, height: int, timestamp_ms: int,
                     markers: list[tuple[int, EthEntry]]) -> _PrivateRun:
        """Run the payloads of the block's private transactions this node takes part in on
        its private state (ADR 0027). A payload this node's manager does not hold (not a
        participant, or no manager) leaves nothing; a manager that cannot be reached
        raises, so the block is not stored without its private state (the node stops and
        its supervisor restarts it)."""
        run = _PrivateRun(None, [], {})
        if not markers or self.private_payload is None:
            return run
        root = self.private_root
        env = env_for(self.evm, height, timestamp_ms)
        for index, entry in markers:
            payload = self.private_payload(entry.eth.data)
            if payload is None:
                continue
            eth = entry.eth
            done = self.engine.apply_private(root, env, sender=eth.sender, to=eth.to,
                                             data=payload, gas=eth.gas, nonce=eth.nonce,
                                             block_hash_of=self._block_hash_of)
            root = done.state_root
            run.writes.update(done.writes)
            r = done.result
            receipt = Receipt(
                tx_hash=eth.hash, tx_index=index, tx_type=eth.type, sender=eth.sender,
                to=eth.to, status=1 if r.success else 0, gas_used=r.gas_used,
                cumulative_gas_used=r.gas_used, logs=r.logs, logs_bloom=logs_bloom(r.logs),
                contract_address=done.contract_address, output=r.output,
                revert_reason=r.revert_reason)
            run.receipts.append((eth.hash, index, encode_private_receipt(receipt)))
            run.root = root
        return run

    def commit(self, block: Block, proposal: PreparedBlock) -> ChainConfig | None:
        art: _QuorumArtifacts = proposal.artifacts
        assert art.eth_header is not None
        new_config = super().commit(block, proposal)
        if art.outcome is not None:
            self.state_nodes.remember(art.outcome.writes)
        self.eth_hash = art.eth_header.hash()
        self.state_root = art.eth_header.state_root
        self.private_root = self.store.private_root() or EMPTY_TRIE_ROOT
        return new_config
