"""Plain data of the chain: frozen dataclasses, their canonical codec, the error tree.

This package imports nothing else of the project, so every layer can depend on it.
Hashing and signing live in ``consortia.crypto``; computing ids from these
structures is done by ``consortia.ledger.hashing``.
"""
