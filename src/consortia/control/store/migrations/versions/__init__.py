"""One module per revision, ``NNNN_<slug>.py``; ``store.db.new_revision`` writes the next."""
