"""The transaction manager's refusals, each a stable code and HTTP status.

::

    ConsortiaError
    └── PrivacyError                    400 privacy_error
        ├── NotAParticipant             404 not_a_participant
        ├── UnknownSender               422 unknown_sender      (``from`` is not a key of ours)
        ├── UnknownRecipient            422 unknown_recipient   (a ``privateFor`` key no
        │                                                        authority binds to a member)
        ├── NotAddressed                422 not_addressed       (a push with no box for us)
        ├── Tampered                    422 tampered            (an envelope that does not open)
        ├── PeerRefused                 403 peer_refused        (not a member's manager)
        ├── ForeignKey                  403 foreign_key         (a key bound to another org)
        ├── InvalidEntry                403 invalid_entry       (a directory entry whose
        │                                                        signature or signer fails)
        ├── StaleEntry                  409 stale_entry         (not newer than the one held)
        └── RecipientUnreachable        503 recipient_unreachable

Malformed input uses the project's ``Malformed`` (400 malformed) and ``TooLarge``
(413 too_large).
"""

from __future__ import annotations

from consortia.types.errors import ConsortiaError


class PrivacyError(ConsortiaError):
    status = 400
    code = "privacy_error"


class NotAParticipant(PrivacyError):
    """This manager holds no box for any of its keys under that hash. Deliberately the
    same answer whether the hash is unknown or belongs to others: a non-participant
    learns nothing more than the chain already shows."""

    status = 404
    code = "not_a_participant"


class UnknownSender(PrivacyError):
    status = 422
    code = "unknown_sender"


class UnknownRecipient(PrivacyError):
    status = 422
    code = "unknown_recipient"


class NotAddressed(PrivacyError):
    status = 422
    code = "not_addressed"


class Tampered(PrivacyError):
    status = 422
    code = "tampered"


class PeerRefused(PrivacyError):
    status = 403
    code = "peer_refused"


class ForeignKey(PrivacyError):
    status = 403
    code = "foreign_key"


class InvalidEntry(PrivacyError):
    status = 403
    code = "invalid_entry"


class StaleEntry(PrivacyError):
    status = 409
    code = "stale_entry"


class RecipientUnreachable(PrivacyError):
    """At least one recipient organization's manager did not acknowledge the payload.

    ``failures`` maps organization id → last reason; ``hash`` is the payload's hash, stored
    locally, which the node must NOT put on chain."""

    status = 503
    code = "recipient_unreachable"

    def __init__(self, message: str, *, payload_hash: bytes,
                 failures: dict[str, str]) -> None:
        super().__init__(message)
        self.payload_hash = payload_hash
        self.failures = failures
