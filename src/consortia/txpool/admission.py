"""Stateless admission checks of one transaction, in the order of the transaction path.

decode and limits (400/413) → chain binding and timestamp window (422) →
signer identity (403 unknown) → signature (401) → validity, revocation and role
(403) → for a configuration transaction, a dry run of the change (400 invalid_config,
stale_crl). Duplicates (409) need the pool and the store and are checked by the node.
``check`` holds the GIL only for decoding: the signature verification inside
releases it, so a few threads verify a batch in parallel.
"""

from __future__ import annotations

from collections.abc import Callable

from consortia.crypto import Suite
from consortia.identity import config_update
from consortia.identity.membership import Membership
from consortia.ledger import hashing
from consortia.ledger.rules import check_signer
from consortia.types.config import ChainConfig
from consortia.types.errors import Malformed, StaleTimestamp, TooLarge, WrongChain
from consortia.types.tx import Envelope, Payload, Tx, TxType


class Admission:
    def __init__(self, suite: Suite, config: ChainConfig, clock_ms: Callable[[], int]) -> None:
        self.suite = suite
        self.clock_ms = clock_ms
        self.config = config
        self.membership = Membership(config, suite)

    def reconfigure(self, config: ChainConfig) -> None:
        """Switch to a new configuration in force (e.g. after a CRL update)."""
        self.membership = Membership(config, self.suite)
        self.config = config

    def check(self, raw: bytes, *, fresh: bool = True) -> Tx:
        """Admit one envelope. ``fresh=False`` checks a transaction inside a block another
        validator proposed: no acceptance window (the block may be replayed to a node that
        catches up much later) and no configuration dry run (execution decides)."""
        config, membership = self.config, self.membership
        if len(raw) > config.limits.max_tx_bytes:
            raise TooLarge(f"transaction is {len(raw)} bytes, the limit is "
                           f"{config.limits.max_tx_bytes}")
        env = Envelope.decode(raw)
        payload = Payload.decode(env.payload)
        if payload.chain_id != config.chain_id:
            raise WrongChain(f"transaction is for chain {payload.chain_id!r}, this is "
                             f"{config.chain_id!r}")
        now = self.clock_ms()
        if fresh and abs(payload.timestamp_ms - now) > config.limits.tx_window_ms:
            raise StaleTimestamp(
                f"transaction timestamp is {(payload.timestamp_ms - now) / 1000:+.1f} s from "
                f"the node clock; the window is ±{config.limits.tx_window_ms / 1000:.0f} s")
        if payload.type is TxType.CONFIG:
            raise Malformed("a full configuration is only valid in genesis",
                            code="config_not_allowed")
        check_signer(self.suite, membership, env, payload)
        if fresh and payload.type.is_config:
            # Dry-run the change now: a configuration transaction that cannot apply (a bad or
            # stale CRL) is refused here with its reason instead of taking a block.
            config_update.apply(config, membership, env.signer, payload)
        return Tx(hashing.tx_id(self.suite, env.payload), env, bytes(raw), payload)
