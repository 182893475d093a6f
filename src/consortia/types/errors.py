"""The project's exception tree, each error mapped once to an HTTP status and a stable code.

::

    ConsortiaError                      500 internal
    ├── InvalidTransaction              400 malformed
    │   ├── Malformed                   400 malformed
    │   ├── TooLarge                    413 too_large
    │   ├── BadSignature                401 bad_signature
    │   ├── WrongChain                  422 wrong_chain
    │   └── StaleTimestamp              422 stale_timestamp
    ├── SignatureError (API request)    401 missing_header | malformed_authorization |
    │                                       malformed_header | unsigned_header |
    │                                       expired_timestamp | unknown_access_key |
    │                                       bad_signature | disabled_access_key |
    │                                       body_mismatch | reused_nonce
    ├── Unauthenticated (control API)   401 invalid_session | bad_credentials
    ├── Unauthorized (identity)         403 unknown_identity | revoked_identity |
    │                                       expired_identity | wrong_role |
    │                                       not_enough_approvals (configuration votes)
    ├── Forbidden (control API)         403 forbidden_role | csrf_failed
    ├── Duplicate                       409 duplicate_transaction
    ├── Conflict (control API)          409 conflict | idempotency_conflict | last_owner
    ├── InvalidRequest (control API)    422 validation_failed | invalid_page_token |
    │                                       confirmation_mismatch
    ├── RateLimited (control API)       429 rate_limited (with retry_after seconds)
    ├── UnsupportedMediaType            415 unsupported_media_type
    ├── PoolFull                        429 pool_full
    ├── Unavailable                     503 unavailable (the node cannot commit any more; the
    │                                       control-plane database is unreachable) |
    │                                       nonce_store_full (control plane)
    ├── NotFound                        404 not_found
    ├── Conflict                        409 conflict (control plane: the resource is in
    │                                       a state that forbids the request)
    ├── InvalidBlock                    500 invalid_block (a broken chain; never a client fault)
    ├── ChainCorrupted                  500 chain_corrupted
    ├── InvalidProof                    422 invalid_proof
    └── ConfigError                     400 invalid_config | stale_crl | stale_config |
                                            config_not_allowed | duplicate_validator |
                                            unknown_validator | wrong_org | duplicate_org |
                                            invalid_ca_cert | too_many_orgs | unknown_org |
                                            last_org | org_has_validators

A subclass may carry a more specific ``code`` than its class default: the code is
the stable, documented contract (docs/spec/rest-api.md), the class is for ``except``.
"""

from __future__ import annotations


class ConsortiaError(Exception):
    """Base of every error the project raises on purpose."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidTransaction(ConsortiaError):
    status = 400
    code = "malformed"


class Malformed(InvalidTransaction):
    status = 400
    code = "malformed"


class TooLarge(InvalidTransaction):
    status = 413
    code = "too_large"


class BadSignature(InvalidTransaction):
    status = 401
    code = "bad_signature"


class WrongChain(InvalidTransaction):
    status = 422
    code = "wrong_chain"


class StaleTimestamp(InvalidTransaction):
    status = 422
    code = "stale_timestamp"


class SignatureError(ConsortiaError):
    """A signed API request was refused (docs/spec/api-signing.md); ``code`` says why.

    Not a transaction's signature (that is ``BadSignature``): this is the HMAC of an HTTP
    request made with an access key.
    """

    status = 401
    code = "bad_signature"


class Unauthorized(ConsortiaError):
    """The signer is not a member in good standing for what it asks to do."""

    status = 403
    code = "unknown_identity"


class Unauthenticated(ConsortiaError):
    """A control-plane call without valid credentials other than a signature: a console
    session that is unknown or expired, or a login with wrong credentials."""

    status = 401
    code = "invalid_session"


class Forbidden(ConsortiaError):
    """The caller is authenticated but its role (or a missing CSRF token) forbids the call."""

    status = 403
    code = "forbidden_role"


class AccountNotPermitted(Forbidden):
    """An Ethereum transaction from an address the chain's ``evm.accounts`` do not bind to
    an organization (ADR 0026)."""

    status = 403
    code = "account_not_permitted"


class Conflict(ConsortiaError):
    """The call contradicts the current state: a taken name, the last owner, a reused
    idempotency token with other parameters (``idempotency_conflict``), a deleted node or
    a node id taken by another spec."""

    status = 409
    code = "conflict"


class InvalidRequest(ConsortiaError):
    """A well-formed request whose values the control plane refuses."""

    status = 422
    code = "validation_failed"


class RateLimited(ConsortiaError):
    """Too many calls for one access key (or login address); retry after ``retry_after`` s."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Duplicate(ConsortiaError):
    status = 409
    code = "duplicate_transaction"


class UnsupportedMediaType(ConsortiaError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(ConsortiaError):
    status = 503
    code = "unavailable"


class PoolFull(ConsortiaError):
    status = 429
    code = "pool_full"


class NotFound(ConsortiaError):
    status = 404
    code = "not_found"


class InvalidBlock(ConsortiaError):
    status = 500
    code = "invalid_block"


class ChainCorrupted(ConsortiaError):
    status = 500
    code = "chain_corrupted"


class InvalidProof(ConsortiaError):
    status = 422
    code = "invalid_proof"


class ConfigError(ConsortiaError):
    status = 400
    code = "invalid_config"
