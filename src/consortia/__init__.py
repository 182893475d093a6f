"""Consortia: a self-hosted Blockchain-as-a-Service platform.

The node engine (types → crypto → identity → ledger → txpool → consensus →
execution → node) lives in sub-packages; ``consortia.sdk`` is the client side
and ``consortia.cli`` the ``consortia`` command.
"""

__version__ = "0.1.0"
