"""``init_platform``: the first start of a control plane (``consortia control init``).

::

    result = init_platform("sqlite:///var/consortia/control.sqlite3",
                           Path("/etc/consortia/master.key"), tenant="acme",
                           owner="alice", owner_password=getpass())
    print(result.credentials.access_key_id, result.credentials.secret)   # shown once

Generates the master key file (mode 0600) unless it exists, migrates the database to
head, and creates the first tenant with its owner and the owner's first access key.
Refuses a database that already holds a tenant: later tenants are created with
``Control.tenants.create``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consortia.control.services.control import Control
from consortia.control.settings import (
    ControlSettings,
    create_master_key_file,
    load_master_key,
)
from consortia.control.store import db
from consortia.sdk.signing import Credentials
from consortia.types.errors import Conflict


@dataclass(frozen=True, slots=True)
class PlatformInit:
    tenant_id: str
    owner_user_id: str
    credentials: Credentials
    """The owner's first access key: print the secret once, it is not shown again."""
    master_key_created: bool
    """True when this call generated the master key file."""


def init_platform(database_url: str, master_key_file: Path, *, tenant: str, owner: str,
                  owner_password: str | None = None,
                  owner_email: str | None = None) -> PlatformInit:
    created = not master_key_file.exists()
    key = create_master_key_file(master_key_file) if created else load_master_key(
        master_key_file)
    db.upgrade(database_url)
    control = Control(ControlSettings(database_url=database_url, master_key=key))
    try:
        if control.tenants.any_exist():
            raise Conflict("the control plane is initialized already; create more tenants "
                           "with Control.tenants.create")
        made = control.tenants.create(tenant, owner, owner_password=owner_password,
                                      owner_email=owner_email, platform=True)
    finally:
        control.close()
    return PlatformInit(made.tenant.id, made.owner.id, made.credentials, created)
