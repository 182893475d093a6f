"""Building and signing transactions."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from consortia.ledger.hashing import tx_id
from consortia.sdk.identity import Identity
from consortia.types.tx import (
    Approval,
    Body,
    Envelope,
    OrgUpdate,
    Payload,
    ValidatorUpdate,
    body_type,
)


@dataclass(frozen=True)
class SignedTx:
    id: bytes
    envelope: bytes
    payload: Payload

    @property
    def id_hex(self) -> str:
        return self.id.hex()


def sign(identity: Identity, chain_id: str, body: Body, *, timestamp_ms: int | None = None,
         nonce: bytes | None = None) -> SignedTx:
    """Bind ``body`` to ``chain_id`` with a fresh nonce and the current time, and sign it."""
    payload = Payload(chain_id, body_type(body), nonce or os.urandom(16),
                      timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000,
                      body)
    pb = payload.encode()
    env = Envelope(pb, identity.cert_der, identity.key.sign(pb)).encode()
    return SignedTx(tx_id(identity.suite, pb), env, payload)


def approve(identity: Identity, chain_id: str, update: ValidatorUpdate | OrgUpdate) -> Approval:
    """An organization admin's approval of a validator or organization change, to collect
    in ``update.approvals`` before the transaction is signed and submitted."""
    return Approval(identity.cert_der, identity.key.sign(update.approval_message(chain_id)))


def validator_update(admins: list[Identity], chain_id: str, update: ValidatorUpdate) -> SignedTx:
    """Sign ``update`` by the first admin, approved by the others (one per organization;
    a majority of the chain's organizations is needed)."""
    if not admins:
        raise ValueError("a validator change needs at least one admin")
    approvals = tuple(approve(a, chain_id, update) for a in admins[1:])
    return sign(admins[0], chain_id, replace(update, approvals=approvals))


def org_update(admins: list[Identity], chain_id: str, update: OrgUpdate) -> SignedTx:
    """Sign ``update`` (add or remove an organization) by the first admin, approved by the
    others (one per organization in force; together they must pass the chain's
    ``policies.membership`` vote). Approvals already in ``update`` are replaced."""
    if not admins:
        raise ValueError("an organization change needs at least one admin")
    approvals = tuple(approve(a, chain_id, update) for a in admins[1:])
    return sign(admins[0], chain_id, replace(update, approvals=approvals))
