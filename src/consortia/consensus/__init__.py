"""Consensus: orders batches of admitted transactions into final blocks.

Protocols are deterministic and reach the ledger only through ``Support``
(Fabric's ConsenterSupport): they never import execution or storage. ``solo``
is the one-validator protocol; raft and pbft arrive with multi-node networks.
"""
