"""The BaaS control plane: consortia, organizations, members, nodes and the API that drives them.

It sits beside the transaction path, not in it (DESIGN §3): it reaches nodes only through
provisioners and the nodes' public APIs, and changes a chain only with signed
configuration transactions. Nothing in the node engine imports it.

Today it holds three bricks:

- ``control.auth`` — access keys and signed API requests (verification, nonce store,
  secrets sealed at rest). Spec: ``docs/spec/api-signing.md``.
- ``control.store`` — persistence: the tables of every control-plane resource, their
  Alembic migrations, SQLite (default) and PostgreSQL engines, the shared SQL nonce store
  and Argon2id password hashing. Spec: ``docs/spec/control-data-model.md``.
- ``control.provision`` — provisioners: the ``Provisioner`` protocol and node statuses,
  and the ``local`` provisioner that supervises node processes on this machine. Spec:
  ``docs/spec/provisioning.md``.

Planned: domain, services, HTTP API, the ``kubernetes`` provisioner.
"""
