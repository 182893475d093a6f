"""A node process: composition root, configuration, HTTP API.

``python -m consortia.node --config node.toml`` (or ``consortia node start``)
runs one node: admission → pool → solo → execution → ledger, served over HTTP.
"""
