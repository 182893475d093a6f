"""The validity rules of a committed block, shared by the node and the offline verifier.

One implementation decides whether a block belongs after its predecessor under
a configuration: the node uses it when it checks its own chain at start-up, the
proof verifier when it walks configuration blocks. Keeping them one function is
what makes an offline proof mean the same thing as the node's own check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia.crypto import Suite
from consortia.identity import config_update
from consortia.identity.membership import Member, Membership
from consortia.ledger import hashing
from consortia.ledger.certify import verify_certificate
from consortia.types.block import Block, Certificate, Header, Result, TxStatus
from consortia.types.config import ChainConfig, Role
from consortia.types.errors import BadSignature, ConsortiaError, InvalidBlock
from consortia.types.tx import Envelope, Payload, TxType


def roles_for(config: ChainConfig, tx_type: TxType) -> tuple[Role, ...]:
    """Which certificate roles may sign a transaction of ``tx_type``."""
    if tx_type.is_config:
        return (config.policies.config_role,)
    return config.policies.writer_roles


def check_signer(suite: Suite, membership: Membership, env: Envelope, payload: Payload,
                 *, verify_signature: bool = True) -> Member:
    """Membership (at the payload's timestamp) and signature of one transaction."""
    member = membership.identify(env.signer)
    if verify_signature and not suite.verify(member.public_key, env.payload, env.signature):
        raise BadSignature("signature does not verify against the signer's certificate")
    return membership.validate(env.signer, roles_for(membership.config, payload.type),
                               payload.timestamp_ms)


def config_hash(suite: Suite, config: ChainConfig) -> bytes:
    return suite.hash(config.encode())


def apply_config_tx(suite: Suite, config: ChainConfig, env: Envelope,
                    payload: Payload) -> ChainConfig:
    membership = Membership(config, suite)
    check_signer(suite, membership, env, payload)
    return config_update.apply(config, membership, env.signer, payload)


@dataclass(frozen=True, slots=True)
class Tip:
    """What a block must follow: the previous block's hash, height, time, the height of the
    configuration block in force, and the previous block's stored certificate bytes (which
    the block's ``last_commit`` must repeat)."""

    hash: bytes
    height: int
    timestamp_ms: int
    config_height: int
    certificate: bytes

    @staticmethod
    def of(header: Header, block_hash: bytes, certificate: bytes) -> Tip:
        return Tip(block_hash, header.height, header.timestamp_ms, header.config_height,
                   certificate)


def check_last_commit(hd: Header) -> Certificate | None:
    """The previous block's certificate a header carries, checked for shape: present from
    height 2 on (block 1 follows genesis, which has no votes), for the block before, by its
    hash. Whether its votes make a quorum is checked where the previous block's
    configuration is known (the node on proposal; the chain check through ``Tip``)."""
    where = f"block {hd.height}"
    if hd.height < 2:
        if hd.last_commit:
            raise InvalidBlock(f"{where}: carries a last commit, the block before has no votes")
        return None
    cert = hd.last_certificate()
    if cert is None:
        raise InvalidBlock(f"{where}: does not carry the certificate of block {hd.height - 1}")
    if cert.height != hd.height - 1 or cert.block_hash != hd.prev_hash:
        raise InvalidBlock(f"{where}: its last commit certifies another block than the one "
                           "before it")
    return cert


def verify_block(suite: Suite, config: ChainConfig, prev: Tip | None, block: Block,
                 results: Sequence[Result] | None) -> tuple[bytes, ChainConfig]:
    """Check ``block`` under ``config`` (the configuration in force before it), following
    ``prev`` when the caller knows the previous block (the offline verifier, walking only
    configuration blocks, does not). ``results`` are the stored results, when known.

    Returns the block's hash and the configuration in force after it.
    """
    hd: Header = block.header
    h = hashing.block_hash(suite, block.header_bytes)
    where = f"block {hd.height}"
    if hd.chain_id != config.chain_id:
        raise InvalidBlock(f"{where}: chain id {hd.chain_id!r} is not {config.chain_id!r}")
    if prev is not None:
        if hd.height != prev.height + 1:
            raise InvalidBlock(f"{where}: does not follow height {prev.height}")
        if hd.prev_hash != prev.hash:
            raise InvalidBlock(f"{where}: prev_hash does not link to the block before it")
        if hd.timestamp_ms < prev.timestamp_ms:
            raise InvalidBlock(f"{where}: timestamp is earlier than the previous block's")
        if not hd.is_config and hd.config_height != prev.config_height:
            raise InvalidBlock(f"{where}: config_height {hd.config_height} is not the "
                               f"configuration in force ({prev.config_height})")
        if hd.height >= 2 and hd.last_commit != prev.certificate:
            raise InvalidBlock(f"{where}: its last commit is not the stored certificate of "
                               "the block before it")
    check_last_commit(hd)
    if hd.tx_count != len(block.envelopes):
        raise InvalidBlock(f"{where}: header counts {hd.tx_count} transactions, "
                           f"body has {len(block.envelopes)}")
    if hashing.tx_root(suite, block.envelopes) != hd.tx_root:
        raise InvalidBlock(f"{where}: tx_root does not match its transactions")
    if results is not None and hashing.results_root(suite, results) != hd.results_root:
        raise InvalidBlock(f"{where}: results_root does not match the stored results")
    verify_certificate(suite, config, hd, h, block.certificate)
    after = config
    if hd.is_config:
        if len(block.envelopes) != 1:
            raise InvalidBlock(f"{where}: a configuration block holds exactly one transaction")
        if results is not None and results[0].status is not TxStatus.VALID:
            raise InvalidBlock(f"{where}: configuration block with an invalid transaction")
        try:
            env = Envelope.decode(block.envelopes[0])
            after = apply_config_tx(suite, config, env, Payload.decode(env.payload))
        except ConsortiaError as exc:
            raise InvalidBlock(f"{where}: configuration transaction is invalid: {exc}") from exc
    elif hd.config_height >= hd.height:
        raise InvalidBlock(f"{where}: config_height names a later block")
    if hd.config_hash != config_hash(suite, after):
        raise InvalidBlock(f"{where}: config_hash does not match the configuration in force")
    return h, after
