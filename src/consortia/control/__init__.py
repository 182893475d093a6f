"""The BaaS control plane: consortia, organizations, members, nodes and the API that drives them.

It sits beside the transaction path, not in it (DESIGN §3): it reaches nodes only through
provisioners and the nodes' public APIs, and changes a chain only with signed
configuration transactions. Nothing in the node engine imports it.

Layers, top down (import contracts keep the web framework in ``http`` only):

- ``control.http`` — the API service: ``create_app(settings)`` (FastAPI), authentication
  by signature or console session, roles, rate limits, errors, OpenAPI, the explorer.
  Spec: ``docs/spec/control-api.md``.
- ``control.services`` — the rules: tenants (the platform tenant creates the others),
  users, access keys, sessions, audit, idempotency, platform init (``init_platform``);
  networks, members and nodes (validators and peers), whose chains the control plane
  builds (member CAs sealed in its database, genesis and node directories under
  ``settings.data_dir``) and runs through a provisioner (``ChainRuntime``) — ADR 0011;
  proposals, votes and invitations, whose approved actions change the chain by
  configuration transactions signed for the YES voters — ADR 0016; members' CAs
  (identities, enrollment, certificates, CSRs, CRLs on chain) — ADR 0013.
- ``control.auth`` — access keys and signed API requests (verification, nonce store,
  secrets sealed at rest). Spec: ``docs/spec/api-signing.md``.
- ``control.store`` — persistence: the tables of every control-plane resource, their
  Alembic migrations, SQLite (default) and PostgreSQL engines, the shared SQL nonce store
  and Argon2id password hashing. Spec: ``docs/spec/control-data-model.md``.
- ``control.settings`` — settings and the master key file.
- ``control.provision`` — provisioners: the ``Provisioner`` protocol and node statuses,
  the ``local`` provisioner that supervises node processes on this machine, and the
  ``kubernetes`` provisioner (ADR 0014). Spec: ``docs/spec/provisioning.md``.

Channels (``services/channels.py``): each a chain of its own among some members of a
network — ADR 0017. External nodes run by members from join bundles
(``services/external.py``) — ADR 0019. Not yet: join applications.
"""
