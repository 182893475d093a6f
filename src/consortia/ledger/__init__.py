"""The ledger: block store, state and indexes, Merkle trees, certificates, genesis, proofs.

One SQLite database per node in WAL mode (ADR 0002); one database transaction
per block, so a block and everything derived from it appear together or not at all.
"""
