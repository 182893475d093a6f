"""The profile-specific parts of a node: its chain, admission and pool (ADR 0026).

Every profile shares the node's transaction path (admit → pool → order → commit); a
quorum chain differs in what a block entry is (a configuration envelope or a raw
Ethereum transaction), how it is admitted, how the pool orders it (nonce lanes) and how a
block executes (the EVM). Validators, peers and the re-execution of proposed blocks pick
their parts here, so no caller tests the profile itself.
"""

from __future__ import annotations

import logging
import time

import httpx

from consortia.crypto import SigningKey
from consortia.ledger.genesis import Genesis
from consortia.ledger.store import LedgerStore
from consortia.node.chain import Chain
from consortia.node.quorum import QuorumChain
from consortia.node.settings import NodeSettings
from consortia.privacy.client import PrivacyClient, PrivacyClientError
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import QuorumAdmission
from consortia.txpool.pool import Pool, TxPool
from consortia.txpool.quorum_pool import QuorumPool
from consortia.types.config import Profile
from consortia.types.errors import ConfigError, Unavailable

log = logging.getLogger("consortia.node")
FETCH_ATTEMPTS = 5


def open_chain(store: LedgerStore, genesis: Genesis, key: SigningKey) -> Chain:
    """The chain of ``genesis``'s profile over ``store`` (verified on opening)."""
    if genesis.config.profile is Profile.QUORUM:
        return QuorumChain(store, genesis, key)
    return Chain(store, genesis, key)


def admission_for(chain: Chain, base: Admission) -> Admission | QuorumAdmission:
    """``base`` (envelopes), wrapped for a quorum chain to take Ethereum transactions."""
    return QuorumAdmission(base) if isinstance(chain, QuorumChain) else base


def pool_for(chain: Chain, settings: NodeSettings) -> Pool:
    """A FIFO pool, or a quorum chain's configuration queue plus nonce lanes."""
    limits = settings.pool
    if isinstance(chain, QuorumChain):
        q = chain

        def committed_nonce(sender: bytes) -> int:
            return q.engine.nonce(q.state_root, sender)

        def gas_limit() -> int | None:
            return q.evm.gas_limit

        return QuorumPool(committed_nonce, max_txs=limits.max_txs, max_bytes=limits.max_bytes,
                          gas_limit=gas_limit)
    return TxPool(limits.max_txs, limits.max_bytes)


def attach_privacy(chain: Chain, settings: NodeSettings) -> PrivacyClient | None:
    """Connect a quorum chain to its member's transaction manager (``[privacy]``), so it
    runs the private transactions it takes part in (ADR 0027); the client, or None."""
    section = settings.privacy
    if section is None:
        return None
    if not isinstance(chain, QuorumChain):
        raise ConfigError("[privacy] is for quorum chains (private transactions)")
    client = PrivacyClient(section.url.rstrip("/"), section.token(settings.base_dir),
                           timeout=section.timeout_s)

    def fetch(payload_hash: bytes) -> bytes | None:
        """The payload, ``None`` for a non-participant; a manager that stays unreachable
        fails the block's commit (the node stops rather than skip its private state)."""
        for attempt in range(FETCH_ATTEMPTS):
            try:
                return client.receive(payload_hash)
            except (httpx.HTTPError, PrivacyClientError) as exc:
                if isinstance(exc, PrivacyClientError) and exc.status < 500:
                    raise Unavailable(f"the transaction manager refused payload "
                                      f"{payload_hash.hex()[:16]}…: {exc}") from exc
                log.warning("transaction manager unreachable (%s); retrying", exc)
                time.sleep(0.5 * 2**attempt)
        raise Unavailable(f"the transaction manager did not answer for payload "
                          f"{payload_hash.hex()[:16]}… after {FETCH_ATTEMPTS} attempts")

    chain.private_payload = fetch
    return client
