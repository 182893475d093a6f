"""Cryptographic suites (hash + signature + key formats), AEAD and digital envelopes.

Callers name a suite (``get_suite("p256-sha256")``) and use only the ``Suite``
protocol, so SM2/SM3 or secp256k1/Keccak can be registered without touching them.
This package imports nothing else of the project.
"""

from consortia.crypto.suite import CryptoError, PublicKey, SigningKey, Suite, get_suite, suites

__all__ = ["CryptoError", "PublicKey", "SigningKey", "Suite", "get_suite", "suites"]
