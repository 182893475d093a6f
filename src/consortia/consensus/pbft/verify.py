"""Checking what peers sign, and choosing what a new view must propose.

Everything here is a pure function of the messages, the validator set and the
support's ``verify``, so every honest validator reaches the same verdict on the
same new-view. Checks are cached by value (messages are frozen and hashable):
the same view change arrives many times (retransmitted, inside new-views).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from consortia.consensus.pbft.messages import (
    NewView,
    PreparedProof,
    ViewChange,
    prepare_message,
)
from consortia.consensus.support import ReplicaSupport
from consortia.types.block import Certificate, Vote, vote_message

_CACHE_LIMIT = 4096
T = TypeVar("T")


def quorum_size(n: int) -> int:
    """Smallest quorum any two of which share f+1 validators, f = (n-1)//3: 2f+1 when
    n = 3f+1 (ceil((n+f+1)/2) in general, so a larger n never weakens safety)."""
    f = (n - 1) // 3
    return (n + f + 2) // 2


@dataclass(frozen=True, slots=True)
class Choice:
    """What a valid new-view obliges: at ``height`` (the highest height its view changes
    prove; 0 if none does), re-propose ``digest`` (the highest prepared block) or, when
    empty, accept a fresh proposal of the new primary. ``contents``: the candidate blocks
    for ``digest``."""

    height: int
    digest: bytes
    contents: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    cert: Certificate | None
    """Certificate of ``height - 1`` (proves that height committed)."""


def proven(vc: ViewChange) -> bool:
    """Whether a view change proves its height: height 1, the certificate of the height
    below, or a prepared certificate at its height (f+1 honest validators validated that
    block on top of a committed parent). An honest validator with its durable state
    always proves its height; one that lost it still counts in a quorum."""
    return vc.height == 1 or vc.last_cert is not None or vc.prepared is not None


def choose(vcs: tuple[ViewChange, ...]) -> Choice | None:
    """The new-view rule. None if two certificates of the same view prepare different
    blocks (impossible unless more than f validators are faulty)."""
    height = max((vc.height for vc in vcs if proven(vc)), default=0)
    cert = next((vc.last_cert for vc in vcs if vc.height == height and vc.last_cert), None)
    best: PreparedProof | None = None
    for vc in vcs:
        p = vc.prepared
        if vc.height != height or p is None:
            continue
        if best is None or p.view > best.view:
            best = p
        elif p.view == best.view and p.digest != best.digest:
            return None
    if best is None:
        return Choice(height, b"", (), cert)
    contents = tuple((vc.prepared.header_bytes, vc.prepared.envelopes) for vc in vcs
                     if vc.prepared is not None and vc.height == height
                     and vc.prepared.digest == best.digest)
    return Choice(height, best.digest, contents, cert)


class Verifier:
    """Signature and certificate checks against one validator set, the set in force from
    height ``since`` on; certificates of lower heights (the configuration block that
    changed the set, carried in checkpoints and view changes) are checked by ``previous``."""

    def __init__(self, support: ReplicaSupport, validators: tuple[str, ...], quorum: int,
                 previous: Verifier | None = None, since: int = 0) -> None:
        self.previous = previous
        self.since = since
        self.support = support
        self.chain_id = support.chain_id
        self.validators = frozenset(validators)
        self.order = validators
        self.quorum = quorum
        self._certs: set[Certificate] = set()
        self._vcs: set[ViewChange] = set()

    def primary(self, view: int) -> str:
        return self.order[view % len(self.order)]

    def signed(self, signer: str, message: bytes, signature: bytes) -> bool:
        return signer in self.validators and self.support.verify(signer, message, signature)

    def _votes(self, votes: tuple[Vote, ...], message: bytes) -> bool:
        """Every vote valid and distinct, by validators, at least a quorum of them (the
        rules of ``ledger.certify``, so a certificate the core accepts verifies offline)."""
        seen: set[str] = set()
        for v in votes:
            if v.validator_id in seen or not self.signed(v.validator_id, message, v.signature):
                return False
            seen.add(v.validator_id)
        return len(seen) >= self.quorum

    def cert(self, c: Certificate) -> bool:
        if c.height < self.since and self.previous is not None:
            return self.previous.cert(c)
        if c in self._certs:
            return True
        if not self._votes(c.votes, vote_message(self.chain_id, c.height, c.round,
                                                 c.block_hash)):
            return False
        self._remember(self._certs, c)
        return True

    def proof(self, p: PreparedProof) -> bool:
        return self._votes(p.votes, prepare_message(self.chain_id, p.view, p.height, p.digest))

    def view_change(self, vc: ViewChange) -> bool:
        """Signed by its validator; the certificate it carries is of the height below its
        own; its prepared certificate from an earlier view, at its height, with a quorum.
        (Without either, its height is unproven and ``choose`` ignores it.)"""
        if vc in self._vcs:
            return True
        if vc.height < 1 or not self.signed(vc.signer, vc.signing_bytes(self.chain_id),
                                            vc.signature):
            return False
        c = vc.last_cert
        if c is not None and (c.height != vc.height - 1 or not self.cert(c)):
            return False
        p = vc.prepared
        if p is not None and (p.height != vc.height or p.view >= vc.view or not self.proof(p)):
            return False
        self._remember(self._vcs, vc)
        return True

    def new_view(self, nv: NewView) -> Choice | None:
        """The choice a new-view obliges, or None if it is not a valid new-view: signed by
        the primary of its view, with a quorum of valid view changes for that view from
        distinct validators."""
        if nv.signer != self.primary(nv.view):
            return None
        if not self.signed(nv.signer, nv.signing_bytes(self.chain_id), nv.signature):
            return None
        signers = {vc.signer for vc in nv.view_changes}
        if len(signers) != len(nv.view_changes) or len(signers) < self.quorum:
            return None
        for vc in nv.view_changes:
            if vc.view != nv.view or not self.view_change(vc):
                return None
        return choose(nv.view_changes)

    @staticmethod
    def _remember(cache: set[T], item: T) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache.add(item)
