"""``Control``: the control plane's services over one database, built from its settings.

::

    control = Control(settings)          # the database must be migrated (init_platform does)
    key = control.access_keys.create(actor, description="ci")
    control.close()

Each service method runs in one database transaction of its own and records what it
changed in the audit trail within that transaction. The HTTP layer
(``consortia.control.http``) authenticates requests, turns them into an ``Actor`` and calls
these methods; the CLI will do the same for platform commands.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from consortia.control.auth.keys import SecretBox
from consortia.control.services.access_keys import AccessKeyService
from consortia.control.services.audit import AuditService
from consortia.control.services.authn import AuthService
from consortia.control.services.sessions import SessionService
from consortia.control.services.tenants import TenantService
from consortia.control.services.users import UserService
from consortia.control.settings import ControlSettings
from consortia.control.store import db
from consortia.control.store.nonces import SqlNonceStore
from consortia.control.store.passwords import DEFAULT as DEFAULT_PASSWORDS
from consortia.control.store.passwords import Passwords
from consortia.types.errors import ConfigError


class Control:
    """The services of one control plane: tenants, users, access keys, sessions, audit."""

    def __init__(self, settings: ControlSettings, *, engine: Engine | None = None,
                 passwords: Passwords = DEFAULT_PASSWORDS, check_schema: bool = True) -> None:
        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine if engine is not None else db.create_engine(settings.database_url)
        if check_schema:
            current, head = db.current_revision(self.engine), db.head_revision()
            if current != head:
                self.close()
                raise ConfigError(f"the control-plane database is at revision {current}, "
                                  f"not {head}: run consortia control init (or db.upgrade)")
        self._sessions = db.session_factory(self.engine)
        self.box = SecretBox(settings.master_key, previous=settings.previous_master_keys)
        self.fingerprint_key = hmac.new(settings.master_key, b"consortia/request-fingerprint",
                                        hashlib.sha256).digest()
        self.passwords = passwords
        self.nonces = SqlNonceStore(self.engine)
        self.audit = AuditService(self)
        self.tenants = TenantService(self)
        self.users = UserService(self)
        self.access_keys = AccessKeyService(self)
        self.sessions = SessionService(self)
        self.auth = AuthService(self)

    def __repr__(self) -> str:
        return f"Control(database={self.engine.url.render_as_string(hide_password=True)!r})"

    def clock(self) -> float:
        return self.settings.clock()

    def now(self) -> datetime:
        """The settings' clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.settings.clock(), UTC)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on an exception."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()
