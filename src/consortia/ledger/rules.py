"""The validity rules of a committed block, shared by the node and the offline verifier.

One implementation decides whether a block belongs after its predecessor under
a configuration: the node uses it when it checks its own chain at start-up, the
proof verifier when it walks configuration blocks. Keeping them one function is
what makes an offline proof mean the same thing as the node's own check.
"""

from __future__ import annotations

from collections.abc import Sequence

from consortia.crypto import Suite
from consortia.identity import config_update
from consortia.identity.membership import Member, Membership
from consortia.ledger import hashing
from consortia.ledger.certify import verify_certificate
from consortia.types.block import Block, Header, Result, TxStatus
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


def verify_block(suite: Suite, config: ChainConfig, prev_hash: bytes, block: Block,
                 results: Sequence[Result] | None) -> tuple[bytes, ChainConfig]:
    """Check ``block`` follows ``prev_hash`` under ``config`` (the configuration in force
    before it). ``results`` are the stored results, when the caller has them.

    Returns the block's hash and the configuration in force after it.
    """
    hd: Header = block.header
    h = hashing.block_hash(suite, block.header_bytes)
    where = f"block {hd.height}"
    if hd.chain_id != config.chain_id:
        raise InvalidBlock(f"{where}: chain id {hd.chain_id!r} is not {config.chain_id!r}")
    if hd.prev_hash != prev_hash:
        raise InvalidBlock(f"{where}: prev_hash does not link to the block before it")
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
    if hd.config_hash != config_hash(suite, after):
        raise InvalidBlock(f"{where}: config_hash does not match the configuration in force")
    return h, after
