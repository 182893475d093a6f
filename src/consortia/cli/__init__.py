"""The ``consortia`` command. It reaches the system only through ``consortia.sdk``
and HTTP; node processes are started as separate processes (``python -m consortia.node``)."""
