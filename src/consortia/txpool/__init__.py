"""Admission and batching: nothing is queued before it is decoded, within limits,
correctly signed by a member in good standing, and new; the pool is bounded and
answers ``PoolFull`` (HTTP 429) instead of growing without limit."""
