"""Alembic migrations of the control-plane database; run them with ``store.db.upgrade``."""
