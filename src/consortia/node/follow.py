"""Verifying and committing blocks a peer fetched from a validator (no I/O).

A peer trusts no validator: each block it is served is judged exactly as a validator
catching up judges a block it fetched from another's ledger, under the configuration in
force before it:

1. it must be the next height (``InvalidBlock`` otherwise: a validator that serves
   another height is not answering the question asked);
2. ``rules.verify_block``: chain id, ``prev_hash`` link to this ledger's last block,
   time, ``tx_count``, ``tx_root``, the configuration transaction of a configuration
   block, ``config_hash``, and the commit certificate — a quorum of the validators of
   the configuration in force;
3. as ``ReplicaNodeSupport.validate`` checks a proposal: the previous block's certificate
   the header carries finalizes this ledger's last block (under its configuration: it
   replaces the stored one, as on every validator), every transaction decodes, is bound
   to this chain and — when its signer is a member — carries that signer's signature,
   none is already committed, and the block re-executes to the very same header bytes
   (``results_root`` included). Membership (revocation, validity, role) is execution's
   verdict, recorded in the results, not a reason to refuse the block: a certificate
   revoked by a CRL block ordered after the transaction was admitted makes that
   transaction INVALID ``revoked_identity``, on every ledger alike;
4. ``Chain.commit`` stores it in one SQLite transaction (crash safe: whole or absent).

Nothing of a refused block is stored. The verifier runs on the node's single commit
thread, so the ledger has one writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia.consensus.support import PreparedBlock
from consortia.ledger.certify import verify_certificate
from consortia.ledger.hashing import tx_id
from consortia.ledger.rules import Tip, check_last_commit, verify_block
from consortia.node.chain import Chain
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import Entry, QuorumAdmission, admit_eth, is_envelope
from consortia.types.block import Block, Result
from consortia.types.errors import ConsortiaError, InvalidBlock, Unauthorized
from consortia.types.tx import Envelope, Payload, Tx, TxType


@dataclass(frozen=True)
class Applied:
    """A block the peer verified and stored, and what its waiters need."""

    height: int
    txs: Sequence[Entry]
    results: list[Result]
    reconfigured: bool


@dataclass(frozen=True)
class Outcome:
    """What one batch of served blocks came to: the blocks stored, in order, and why the
    first refused one (if any) was refused — the blocks after it were not looked at."""

    applied: list[Applied]
    refused: InvalidBlock | None = None


class BlockVerifier:
    """Checks and commits served blocks onto ``chain`` (commit thread only)."""

    def __init__(self, chain: Chain, admission: Admission | QuorumAdmission) -> None:
        self.chain = chain
        self.admission = admission
        """Kept on the configuration in force, for the peer's own submissions."""

    def apply(self, block: Block) -> Applied:
        """Verify ``block`` as the next block and store it; ``InvalidBlock`` if it is not."""
        chain = self.chain
        hd = block.header
        expected = chain.next_height()
        if hd.height != expected:
            raise InvalidBlock(f"served block {hd.height}, expected {expected}")
        last = chain.last_header
        # The certificate stored for the last block may be this ledger's copy of another
        # quorum than the one the new header carries; validate() checks that one finalizes
        # the last block, and the commit stores it, as every validator does.
        tip = Tip(chain.last_hash, last.height, last.timestamp_ms, last.config_height,
                  hd.last_commit if hd.height >= 2 else chain.last_certificate)
        try:
            block_hash, _ = verify_block(chain.suite, chain.config, tip, block, None)
            prepared = self._validate(block)
        except InvalidBlock:
            raise
        except ConsortiaError as exc:
            raise InvalidBlock(f"block {hd.height}: {exc.message}") from exc
        if prepared.hash != block_hash:  # (validate compared the header bytes already)
            raise InvalidBlock(f"block {hd.height} re-executes to another hash")
        new_config = chain.commit(Block(prepared.header, prepared.header_bytes,
                                        block.certificate, prepared.envelopes), prepared)
        if new_config is not None:
            self.admission.reconfigure(new_config)
        return Applied(hd.height, Chain.batch_of(prepared), Chain.results_of(prepared),
                       new_config is not None)

    def _validate(self, block: Block) -> PreparedBlock:
        chain = self.chain
        hd = block.header
        cert = check_last_commit(hd)
        if cert is not None:
            verify_certificate(chain.suite, chain.cert_config, chain.last_header,
                               chain.last_hash, cert)
        txs: list[Entry] = []
        seen: set[bytes] = set()
        for i, raw in enumerate(block.envelopes):
            try:
                tx = self._decode(raw)
            except ConsortiaError as exc:
                raise InvalidBlock(f"block {hd.height} transaction {i}: {exc.message}"
                                   ) from exc
            if tx.id in seen:
                raise InvalidBlock(f"block {hd.height}: transaction {i} appears twice")
            seen.add(tx.id)
            txs.append(tx)
        if chain.store.known_txids(seen):
            raise InvalidBlock(f"block {hd.height} replays committed transactions")
        prepared = chain.prepare(txs, hd.timestamp_ms, hd.proposer,  # type: ignore[arg-type]
                                 hd.last_commit, strict=True)
        if prepared.header_bytes != block.header_bytes:
            raise InvalidBlock(f"block {hd.height} does not match its re-execution (roots, "
                               "configuration or time differ)")
        return prepared

    def _decode(self, raw: bytes) -> Entry:
        """A transaction of a served block: well formed, of this chain, and signed by its
        signer's key when the configuration in force knows the signer (who is not known is
        execution's ``unknown_identity``; signatures only admission checks). A quorum
        chain's raw Ethereum transaction must decode under its EVM chain id; its sender's
        binding is execution's check (``QuorumChain.prepare``)."""
        chain = self.chain
        if chain.config.evm is not None and not is_envelope(raw):
            return admit_eth(raw, chain.config, check_sender=False)
        env = Envelope.decode(raw)
        payload = Payload.decode(env.payload)
        if payload.chain_id != chain.chain_id:
            raise InvalidBlock(f"transaction of chain {payload.chain_id!r}")
        if payload.type is TxType.CONFIG:
            raise InvalidBlock("a full configuration is only valid in genesis")
        try:
            member = chain.membership.identify(env.signer)
        except Unauthorized:
            member = None
        if member is not None and not chain.suite.verify(member.public_key, env.payload,
                                                         env.signature):
            raise InvalidBlock("signature does not verify against the signer's certificate")
        return Tx(tx_id(chain.suite, env.payload), env, bytes(raw), payload)

    def apply_many(self, raws: Sequence[bytes]) -> Outcome:
        """Decode and apply served blocks in order, stopping at the first refused one."""
        applied: list[Applied] = []
        for raw in raws:
            try:
                block = Block.decode(raw)
            except ConsortiaError as exc:
                return Outcome(applied, InvalidBlock(f"a served block cannot be decoded: "
                                                     f"{exc.message}"))
            try:
                applied.append(self.apply(block))
            except InvalidBlock as exc:
                return Outcome(applied, exc)
        return Outcome(applied)
