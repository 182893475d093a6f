"""The identity rule: who is at the other end of a TLS connection.

A peer is the validator of the configuration in force whose certificate is
*exactly* (byte for byte) the certificate the peer presented in the handshake,
and that certificate passes ``Membership.validate(cert, (validator,), now)``:
issued by its organization's CA in the configuration, inside its validity
window, not on its organization's on-chain CRL, role ``validator``. Anything
else is refused with a reason that names a ``refused.*`` counter.
"""

from __future__ import annotations

from consortia.identity.membership import Membership
from consortia.types.config import ChainConfig, Role
from consortia.types.errors import Unauthorized

_REASONS = {
    "unknown_identity": "unknown",
    "revoked_identity": "revoked",
    "expired_identity": "expired",
    "wrong_role": "wrong_role",
}


class PeerRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def authorize(cert_der: bytes, config: ChainConfig, membership: Membership, now_ms: int, *,
              expected: str | None = None) -> str:
    """The validator id of ``cert_der`` under ``config`` at ``now_ms``, or ``PeerRefused``.

    ``expected`` (a dialed peer) must be that validator: a valid certificate of another
    validator at the dialed address is ``unexpected_peer``.
    """
    try:
        membership.validate(cert_der, (Role.VALIDATOR,), now_ms)
    except Unauthorized as exc:
        raise PeerRefused(_REASONS.get(exc.code, "unknown"), exc.message) from None
    peer = next((v.id for v in config.validators if v.cert == cert_der), None)
    if peer is None:
        raise PeerRefused("unknown", "the certificate is not a validator's in the configuration")
    if expected is not None and peer != expected:
        raise PeerRefused("unexpected_peer",
                          f"dialed {expected} but the certificate is {peer}'s")
    return peer
