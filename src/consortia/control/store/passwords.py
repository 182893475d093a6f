"""Console passwords and CA enrollment secrets, hashed with Argon2id (RFC 9106).

::

    stored = hash_password("correct horse")          # '$argon2id$v=19$m=19456,t=2,p=1$…'
    if verify_password(stored, attempt):
        if needs_rehash(stored):                     # parameters raised since it was stored
            user.password_hash = hash_password(attempt)

The hash is a PHC string carrying its own salt and parameters, so parameters can be raised
later: old hashes still verify, and ``needs_rehash`` says which to replace at the next
successful login. Default parameters are OWASP's Argon2id baseline — 19 MiB, 2 passes,
1 lane, 16-byte salt, 32-byte tag — about 25 ms on the project's reference 2-core machine
(ADR 0008 says why not more). Passwords are normalized to Unicode NFC first (RFC 8265's
OpaqueString), so the same password typed on two systems verifies.
"""

from __future__ import annotations

import unicodedata

import argon2
from argon2.exceptions import VerificationError

OWASP_BASELINE = argon2.Parameters(
    type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
    time_cost=2, memory_cost=19 * 1024, parallelism=1,
)
"""Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet)."""

MAX_PASSWORD_BYTES = 1024
"""Longer passwords are refused by ``hash_password`` and never verify."""


class Passwords:
    """Argon2id hashing with one set of parameters (``OWASP_BASELINE`` unless told)."""

    def __init__(self, parameters: argon2.Parameters = OWASP_BASELINE) -> None:
        if parameters.type is not argon2.Type.ID:
            raise ValueError("passwords are hashed with Argon2id only")
        self.parameters = parameters
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """The PHC string to store; ``ValueError`` for an empty or over-long password."""
        data = _encode(password)
        if not data:
            raise ValueError("a password cannot be empty")
        if len(data) > MAX_PASSWORD_BYTES:
            raise ValueError(f"a password is at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
        return self._hasher.hash(data)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``.

        ``stored=None`` (no such user, or no password set) still costs one verification,
        against a dummy hash, so response times do not tell which users exist. A stored
        value that is not an Argon2 hash raises ``argon2.exceptions.InvalidHashError``
        (a ``ValueError``): the database holds something it never should.
        """
        data = _encode(password)
        target = stored if stored is not None else self._dummy_hash()
        if len(data) > MAX_PASSWORD_BYTES:
            return False
        try:
            verified = self._hasher.verify(target, data)
        except VerificationError:
            return False
        return verified and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other parameters than this instance's."""
        return self._hasher.check_needs_rehash(stored)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(b"consortia/no-such-password")
        return self._dummy


def _encode(password: str) -> bytes:
    return unicodedata.normalize("NFC", password).encode("utf-8")


DEFAULT = Passwords()


def hash_password(password: str) -> str:
    """``DEFAULT.hash``: the Argon2id PHC string to store for ``password``."""
    return DEFAULT.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """``DEFAULT.verify``: whether ``password`` matches ``stored`` (None never matches)."""
    return DEFAULT.verify(stored, password)


def needs_rehash(stored: str) -> bool:
    """``DEFAULT.needs_rehash``: whether ``stored`` should be hashed again at next login."""
    return DEFAULT.needs_rehash(stored)
