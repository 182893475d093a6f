"""The control plane's services: the rules of tenants, users, access keys, console sessions,
the audit trail, and networks with their members and nodes (the chains the control plane
runs: ``chains``, ``runtime``, and where their nodes go: ``placement``), over the store.
No web framework here: the HTTP layer (``consortia.control.http``) and the CLI call these.

Owns: who may do what (roles, owner protections, tenant isolation: another tenant's id is
"not found"), idempotent creates (``client_token``), keyset pagination, and the audit
record of every change, written in the change's own transaction. Spec:
``docs/spec/control-api.md``.

::

    control = Control(settings)
    actor = Actor.of(control.auth.signed(parsed, now), request_id="req-1")
    created = control.users.create(actor, username="bob", role=UserRole.OPERATOR)
"""

from consortia.control.services.access_keys import IssuedKey
from consortia.control.services.audit import AuditFilter
from consortia.control.services.context import Actor, Caller, Created, Page
from consortia.control.services.control import Control
from consortia.control.services.networks import CreatedNetwork, NewNetwork
from consortia.control.services.platform import PlatformInit, init_platform
from consortia.control.services.tenants import NewTenant
from consortia.control.services.users import UserChanges

__all__ = [
    "Actor", "AuditFilter", "Caller", "Control", "Created", "CreatedNetwork", "IssuedKey",
    "NewNetwork", "NewTenant", "Page", "PlatformInit", "UserChanges", "init_platform",
]
