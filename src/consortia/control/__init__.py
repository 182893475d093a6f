"""The BaaS control plane: consortia, organizations, members, nodes and the API that drives them.

It sits beside the transaction path, not in it (DESIGN §3): it reaches nodes only through
provisioners and the nodes' public APIs, and changes a chain only with signed
configuration transactions. Nothing in the node engine imports it.

Layers, top down (import contracts keep the web framework in ``http`` only):

- ``control.http`` — the API service: ``create_app(settings)`` (FastAPI), authentication
  by signature or console session, roles, rate limits, errors, OpenAPI, the explorer.
  Spec: ``docs/spec/control-api.md``.
- ``control.services`` — the rules: tenants, users, access keys, sessions, audit,
  idempotency, platform init (``init_platform``); networks, members and nodes, whose
  chains the control plane builds (member CAs sealed in its database, genesis and node
  directories under ``settings.data_dir``) and runs through a provisioner
  (``ChainRuntime``). Decision: ``docs/adr/0011-control-plane-runs-chains.md``.
- ``control.auth`` — access keys and signed API requests (verification, nonce store,
  secrets sealed at rest). Spec: ``docs/spec/api-signing.md``.
- ``control.store`` — persistence: the tables of every control-plane resource, their
  Alembic migrations, SQLite (default) and PostgreSQL engines, the shared SQL nonce store
  and Argon2id password hashing. Spec: ``docs/spec/control-data-model.md``.
- ``control.settings`` — settings and the master key file.
- ``control.provision`` — provisioners: the ``Provisioner`` protocol and node statuses,
  and the ``local`` provisioner that supervises node processes on this machine. Spec:
  ``docs/spec/provisioning.md``.

Planned: invitations, proposals and votes, the CA API (identities, certificates, CSRs),
the ``kubernetes`` provisioner.
"""
