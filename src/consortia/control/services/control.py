"""``Control``: the control plane's services over one database, built from its settings.

::

    control = Control(settings)          # the database must be migrated (init_platform does)
    key = control.access_keys.create(actor, description="ci")
    made = control.networks.create(actor, NewNetwork("notary", Profile.ANT, UsageMode.QUICK))
    control.close()                      # nodes keep running; the next Control adopts them

Each service method runs in one database transaction of its own and records what it
changed in the audit trail within that transaction. The HTTP layer
(``consortia.control.http``) authenticates requests, turns them into an ``Actor`` and calls
these methods; the CLI will do the same for platform commands.

With ``settings.data_dir``, the control plane runs chains: ``runtime`` owns a provisioner
(the one ``settings.provisioner`` names — a ``LocalProvisioner`` on
``data_dir/provisioner`` or a ``KubernetesProvisioner`` — unless one is given), hands its
status reports to the database, and talks to nodes through a ``NodeGateway`` (HTTP unless
one is given). It starts with the first service call that needs it, or ``start()``.
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
from consortia.control.provision.base import Provisioner
from consortia.control.provision.kubernetes import KubernetesProvisioner
from consortia.control.provision.local import LocalProvisioner
from consortia.control.services.access_keys import AccessKeyService
from consortia.control.services.accounts import AccountService
from consortia.control.services.applications import ApplicationService
from consortia.control.services.audit import AuditService
from consortia.control.services.authn import AuthService
from consortia.control.services.ca_identities import CaIdentityService
from consortia.control.services.certificates import CertificateService
from consortia.control.services.chains import ChainFiles
from consortia.control.services.channels import ChannelService
from consortia.control.services.csrs import CsrService
from consortia.control.services.external import ExternalNodeService
from consortia.control.services.invitations import InvitationService
from consortia.control.services.join_codes import JoinCodeService
from consortia.control.services.members import MemberService
from consortia.control.services.networks import NetworkService
from consortia.control.services.nodes import NodeService
from consortia.control.services.proposals import ProposalService
from consortia.control.services.runtime import ChainRuntime, HttpNodeGateway, NodeGateway
from consortia.control.services.sessions import SessionService
from consortia.control.services.tenants import TenantService
from consortia.control.services.users import UserService
from consortia.control.settings import ControlSettings
from consortia.control.store import db
from consortia.control.store.nonces import SqlNonceStore
from consortia.control.store.passwords import DEFAULT as DEFAULT_PASSWORDS
from consortia.control.store.passwords import Passwords
from consortia.types.errors import ConfigError, Unavailable


class Control:
    """The services of one control plane: tenants, users, access keys, sessions, audit,
    networks, members, nodes, proposals and votes, invitations, join codes and
    applications, channels, and the members' CAs (identities, certificates, CSRs)."""

    def __init__(self, settings: ControlSettings, *, engine: Engine | None = None,
                 passwords: Passwords = DEFAULT_PASSWORDS, check_schema: bool = True,
                 provisioner: Provisioner | None = None,
                 gateway: NodeGateway | None = None) -> None:
        self.settings = settings
        self._runtime: ChainRuntime | None = None
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
        self.networks = NetworkService(self)
        self.members = MemberService(self)
        self.nodes = NodeService(self)
        self.accounts = AccountService(self)
        self.external_nodes = ExternalNodeService(self)
        self.proposals = ProposalService(self)
        self.invitations = InvitationService(self)
        self.join_codes = JoinCodeService(self)
        self.applications = ApplicationService(self)
        self.ca_identities = CaIdentityService(self)
        self.certificates = CertificateService(self)
        self.csrs = CsrService(self)
        self.channels = ChannelService(self)
        self.files = None if settings.data_dir is None else ChainFiles(settings.data_dir)
        if self.files is not None:
            prov = provisioner if provisioner is not None else _provisioner(settings,
                                                                            self.files)
            self._runtime = ChainRuntime(self, prov, gateway or HttpNodeGateway(), self.files)

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

    @property
    def runtime(self) -> ChainRuntime:
        """The running chains; 503 ``unavailable`` without ``settings.data_dir``."""
        if self._runtime is None:
            raise Unavailable("this control plane runs no chains: it has no data directory "
                              "(settings.data_dir)")
        return self._runtime

    def start(self) -> None:
        """Open the provisioner (adopting the nodes that still run) and reconcile node
        statuses; a no-op without ``settings.data_dir`` or when done already."""
        if self._runtime is not None:
            self._runtime.start()

    def close(self, *, stop_nodes: bool = False) -> None:
        """Close the database and the runtime: nodes keep running (for the next start to
        adopt) unless ``stop_nodes``."""
        if self._runtime is not None:
            self._runtime.close(stop_nodes=stop_nodes)
        if self._own_engine:
            self.engine.dispose()


def _provisioner(settings: ControlSettings, files: ChainFiles) -> Provisioner:
    """The provisioner the settings choose: local (state under ``data_dir/provisioner``)
    or kubernetes (the settings have checked that its kubeconfig is given)."""
    if settings.provisioner == "kubernetes":
        assert settings.kubernetes is not None
        return KubernetesProvisioner(settings.kubernetes)
    return LocalProvisioner(files.provisioner_dir)
