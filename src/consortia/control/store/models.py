"""The control-plane tables (normative description: ``docs/spec/control-data-model.md``).

::

    tenants ─┬─ users ─┬─ access_keys
             │         └─ console_sessions
             ├─ networks ─┬─ members ─┬─ nodes
             │            │           ├─ ca_identities ── certificates ── csr_requests
             │            │           └─ channel_members ── channels ── nodes (channel_id)
             │            ├─ proposals ── votes
             │            ├─ invitations
             │            ├─ join_codes ── join_applications
             audit_records, api_nonces (no foreign keys: they outlive what they describe)

Every resource row carries the ``tenant_id`` that owns it, and rows scoped by a member
reference it through ``(member_id, network_id, tenant_id)``: the database itself refuses a
node, vote or certificate whose tenant or network is not its member's. Deletion is by
status (``DELETED``) for networks, members, channels and nodes, whose ids the chain's
history and the audit trail keep naming; users and access keys are deleted for real.

No ORM relationships are declared: the services query with ``select()`` and the
composite keys, which keeps each query's joins visible where it is written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from consortia.control.store.base import (
    ID_LENGTH,
    Base,
    Idempotent,
    Timestamps,
    UtcDateTime,
    enum_type,
    id_column,
    ref,
    utcnow,
)
from consortia.control.store.enums import (
    AccessKeyStatus,
    ApplicationStatus,
    AuditResult,
    CaIdentityStatus,
    CertificateStatus,
    Consensus,
    CsrStatus,
    IdentityType,
    InvitationStatus,
    JoinCodeStatus,
    NodeHealth,
    NodeStatus,
    NodeType,
    Profile,
    ProposalAction,
    ProposalStatus,
    Provisioner,
    ResourceClass,
    ResourceStatus,
    TenantStatus,
    ThresholdComparator,
    UsageMode,
    UserRole,
    UserStatus,
    VoteValue,
)

_NAME = 64
_DESCRIPTION = 1024
_ENDPOINT = 256

TENANTS = "tenants.id"
NETWORKS = "networks.id"
MEMBERS = "members.id"
PROPOSALS = "proposals.id"
_MEMBER_SCOPE = ("members.id", "members.network_id", "members.tenant_id")


def _member_scope(column: str = "member_id") -> ForeignKeyConstraint:
    """``(column, network_id, tenant_id)`` must be a member of that network and tenant."""
    return ForeignKeyConstraint([column, "network_id", "tenant_id"], list(_MEMBER_SCOPE))


def _tenant_listing(table: str) -> Index:
    """The index behind "this tenant's rows, newest first"."""
    return Index(f"ix_{table}_tenant_id_created_at", "tenant_id", "created_at")


def _idempotency() -> UniqueConstraint:
    return UniqueConstraint("tenant_id", "client_token")


# --- tenants, users, access keys -----------------------------------------------------------


class Tenant(Timestamps, Idempotent, Base):
    """A customer of the platform: owns users, networks, members and nodes."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("client_token"),)

    id: Mapped[str] = id_column("ten")
    name: Mapped[str] = mapped_column(String(_NAME), unique=True)
    """Unique slug, used in URLs and logs."""
    display_name: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[TenantStatus] = mapped_column(enum_type(TenantStatus, "status"),
                                                 default=TenantStatus.ACTIVE)
    is_platform: Mapped[bool] = mapped_column(Boolean, default=False,
                                              server_default=false())
    """The platform operator's tenant (the first one, made by ``init_platform``): its
    owners and admins create the other tenants."""


class User(Timestamps, Idempotent, Base):
    """A person or program acting for a tenant, with one role in it."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("id", "tenant_id"),  # target of access_keys' (user_id, tenant_id)
        _idempotency(),
        _tenant_listing("users"),
    )

    id: Mapped[str] = id_column("usr")
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    username: Mapped[str] = mapped_column(String(_NAME))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[UserRole] = mapped_column(enum_type(UserRole, "role"))
    status: Mapped[UserStatus] = mapped_column(enum_type(UserStatus, "status"),
                                               default=UserStatus.ACTIVE)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """Argon2id PHC string (``passwords.hash_password``); NULL: no console login."""
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AccessKey(Timestamps, Idempotent, Base):
    """An API access key of a user (ADR 0007); its secret is stored sealed, never plain."""

    __tablename__ = "access_keys"
    __table_args__ = (
        ForeignKeyConstraint(["user_id", "tenant_id"], ["users.id", "users.tenant_id"],
                             ondelete="CASCADE"),
        Index("ix_access_keys_user_id_tenant_id", "user_id", "tenant_id"),
        _idempotency(),
        _tenant_listing("access_keys"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    """The access key id from ``control.auth.generate_access_key`` (``CK`` + 16 base32)."""
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    user_id: Mapped[str] = ref()
    description: Mapped[str] = mapped_column(String(256), default="")
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    """``SecretBox.seal(id, secret)``: AES-256-GCM under the server master key."""
    status: Mapped[AccessKeyStatus] = mapped_column(enum_type(AccessKeyStatus, "status"),
                                                    default=AccessKeyStatus.ACTIVE)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ConsoleSession(Base):
    """A console login: the browser holds a random token in a cookie, the row its SHA-256.

    The token itself is never stored, so a database dump opens no session. Sessions end at
    ``expires_at``, at logout, or with their user (``ON DELETE CASCADE``).
    """

    __tablename__ = "console_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["user_id", "tenant_id"], ["users.id", "users.tenant_id"],
                             ondelete="CASCADE"),
        Index("ix_console_sessions_user_id_tenant_id", "user_id", "tenant_id"),
        Index("ix_console_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = id_column("ses")
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    user_id: Mapped[str] = ref()
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    """Lower-case hex SHA-256 of the session token (256 random bits) held by the cookie."""
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source_ip: Mapped[str | None] = mapped_column(String(45))
    """The address the login came from."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- networks and their members ------------------------------------------------------------


class Network(Timestamps, Idempotent, Base):
    """A consortium blockchain network: profile, consensus and voting policy."""

    __tablename__ = "networks"
    __table_args__ = (
        CheckConstraint("threshold_percentage BETWEEN 0 AND 100", name="threshold_percentage"),
        CheckConstraint("proposal_duration_hours BETWEEN 1 AND 168",
                        name="proposal_duration_hours"),
        _idempotency(),
        _tenant_listing("networks"),
    )

    id: Mapped[str] = id_column("net")
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The tenant that created the network."""
    name: Mapped[str] = mapped_column(String(_NAME))
    description: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    chain_id: Mapped[str] = mapped_column(String(_NAME), unique=True)
    """The chain id written into genesis and into every transaction's payload."""
    profile: Mapped[Profile] = mapped_column(enum_type(Profile, "profile"))
    consensus: Mapped[Consensus] = mapped_column(enum_type(Consensus, "consensus"))
    usage_mode: Mapped[UsageMode] = mapped_column(enum_type(UsageMode, "usage_mode"),
                                                  default=UsageMode.STANDARD)
    threshold_percentage: Mapped[int] = mapped_column(Integer)
    threshold_comparator: Mapped[ThresholdComparator] = mapped_column(
        enum_type(ThresholdComparator, "threshold_comparator"))
    proposal_duration_hours: Mapped[int] = mapped_column(Integer)
    status: Mapped[ResourceStatus] = mapped_column(enum_type(ResourceStatus, "status"),
                                                   default=ResourceStatus.CREATING)
    status_reason: Mapped[str | None] = mapped_column(String(_DESCRIPTION))
    """Why the network is ``CREATING`` (waiting for its first member) or ``CREATE_FAILED``."""
    genesis_hash: Mapped[str | None] = mapped_column(String(64))
    """Lower-case hex hash of the chain's genesis block, once the chain is built: the trust
    anchor proofs are verified against."""
    evm_chain_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """``quorum``: the EIP-155 chain id written into genesis (NULL for other profiles).
    Unique over every network ever made here, deleted ones too, so a transaction signed
    for one of this control plane's chains can never be replayed on another (ADR 0029)."""
    evm_gas_limit: Mapped[int | None] = mapped_column(BigInteger)
    """``quorum``: the block gas limit written into genesis (NULL for other profiles)."""


class Member(Timestamps, Idempotent, Base):
    """An organization of a network, owned by one tenant, with its own CA."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("network_id", "name"),
        UniqueConstraint("network_id", "org_id"),
        UniqueConstraint("id", "network_id", "tenant_id"),  # target of _member_scope
        _idempotency(),
        _tenant_listing("members"),
    )

    id: Mapped[str] = id_column("mem")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    name: Mapped[str] = mapped_column(String(_NAME))
    org_id: Mapped[str] = mapped_column(String(_NAME))
    """The organization id on chain (MSP id); never reused within a network."""
    description: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    status: Mapped[ResourceStatus] = mapped_column(enum_type(ResourceStatus, "status"),
                                                   default=ResourceStatus.CREATING)
    status_reason: Mapped[str | None] = mapped_column(String(_DESCRIPTION))
    """Why the member is ``CREATE_FAILED``, when it is."""
    ca_certificate_pem: Mapped[str | None] = mapped_column(Text)
    ca_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The CA's private key, encrypted under the server master key; never stored plain."""
    crl_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The CA's newest CRL (DER), regenerated at each revocation."""
    crl_number: Mapped[int] = mapped_column(Integer, default=0)
    """The number of ``crl_der`` (0: no CRL yet)."""
    crl_published_number: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The number of the newest CRL committed on the chain: below ``crl_number``, a
    revocation waits to be published (a retried revocation publishes it)."""


class Proposal(Timestamps, Idempotent, Base):
    """A member's proposal to invite a tenant or remove a member, decided by votes."""

    __tablename__ = "proposals"
    __table_args__ = (
        _member_scope("proposer_member_id"),
        CheckConstraint(
            "(action = 'INVITE_TENANT' AND target_tenant_id IS NOT NULL"
            " AND target_member_id IS NULL) OR "
            "(action = 'REMOVE_MEMBER' AND target_member_id IS NOT NULL"
            " AND target_tenant_id IS NULL) OR "
            "(action = 'ADD_VALIDATOR' AND target_member_id IS NOT NULL"
            " AND target_tenant_id IS NULL AND node_name IS NOT NULL)", name="target"),
        CheckConstraint("threshold_percentage BETWEEN 0 AND 100", name="threshold_percentage"),
        UniqueConstraint("id", "network_id"),  # target of votes' (proposal_id, network_id)
        Index("ix_proposals_network_id_status", "network_id", "status"),
        Index("ix_proposals_proposer_member_id", "proposer_member_id"),
        _idempotency(),
        _tenant_listing("proposals"),
    )

    id: Mapped[str] = id_column("prp")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref()
    proposer_member_id: Mapped[str] = ref()
    action: Mapped[ProposalAction] = mapped_column(enum_type(ProposalAction, "action"))
    target_tenant_id: Mapped[str | None] = ref(ForeignKey(TENANTS), nullable=True)
    target_member_id: Mapped[str | None] = ref(ForeignKey(MEMBERS), nullable=True)
    description: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    threshold_percentage: Mapped[int] = mapped_column(Integer)
    """The network's policy when the proposal was made: later changes do not apply to it."""
    threshold_comparator: Mapped[ThresholdComparator] = mapped_column(
        enum_type(ThresholdComparator, "threshold_comparator"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[ProposalStatus] = mapped_column(enum_type(ProposalStatus, "status"),
                                                   default=ProposalStatus.IN_PROGRESS)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    failure_reason: Mapped[str | None] = mapped_column(String(_DESCRIPTION))
    """Why an approved proposal's action failed (status ``ACTION_FAILED``)."""
    node_name: Mapped[str | None] = mapped_column(String(_NAME))
    """ADD_VALIDATOR: the name of the validator to add to the target member."""
    node_resource_class: Mapped[ResourceClass | None] = mapped_column(
        enum_type(ResourceClass, "node_resource_class"))
    node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """ADD_VALIDATOR: the node the approval created."""


class Vote(Timestamps, Base):
    """One member's vote on one proposal of its network; at most one per pair."""

    __tablename__ = "votes"
    __table_args__ = (
        ForeignKeyConstraint(["proposal_id", "network_id"],
                             ["proposals.id", "proposals.network_id"]),
        _member_scope(),
        UniqueConstraint("proposal_id", "member_id"),
        Index("ix_votes_member_id", "member_id"),
    )

    id: Mapped[str] = id_column("vot")
    proposal_id: Mapped[str] = ref()
    network_id: Mapped[str] = ref()
    member_id: Mapped[str] = ref()
    tenant_id: Mapped[str] = ref()
    """The voting member's tenant."""
    value: Mapped[VoteValue] = mapped_column(enum_type(VoteValue, "value"))


class Invitation(Timestamps, Idempotent, Base):
    """An invitation for a tenant to create a member in a network."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index("ix_invitations_invitee_tenant_id_status", "invitee_tenant_id", "status"),
        Index("ix_invitations_network_id_status", "network_id", "status"),
        _idempotency(),
        _tenant_listing("invitations"),
    )

    id: Mapped[str] = id_column("inv")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The inviting tenant (the proposer's, or the network owner's in quick mode)."""
    invitee_tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    proposal_id: Mapped[str | None] = ref(ForeignKey(PROPOSALS), nullable=True)
    """The approved proposal that made it; NULL when the network's mode needs no vote."""
    message: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    status: Mapped[InvitationStatus] = mapped_column(enum_type(InvitationStatus, "status"),
                                                     default=InvitationStatus.PENDING)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    member_id: Mapped[str | None] = ref(ForeignKey(MEMBERS), nullable=True)
    """The member created when the invitation was accepted."""


class JoinApplication(Timestamps, Idempotent, Base):
    """A tenant's request to join a network, the mirror image of an invitation."""

    __tablename__ = "join_applications"
    __table_args__ = (
        Index("ix_join_applications_network_id_status", "network_id", "status"),
        _idempotency(),
        _tenant_listing("join_applications"),
    )

    id: Mapped[str] = id_column("app")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The applying tenant."""
    member_name: Mapped[str] = mapped_column(String(_NAME))
    """The name the applicant's member would take."""
    message: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    status: Mapped[ApplicationStatus] = mapped_column(enum_type(ApplicationStatus, "status"),
                                                      default=ApplicationStatus.PENDING)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    proposal_id: Mapped[str | None] = ref(ForeignKey(PROPOSALS), nullable=True)
    """The proposal opened to decide it, in a network that votes on new members."""
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    member_id: Mapped[str | None] = ref(ForeignKey(MEMBERS), nullable=True)
    """The member the applicant created from the invitation its approval made."""
    join_code_id: Mapped[str | None] = ref(ForeignKey("join_codes.id"), nullable=True)
    """The join code it was submitted with."""
    invitation_id: Mapped[str | None] = ref(ForeignKey("invitations.id"), nullable=True)
    """The invitation its approved proposal made (the applicant joins with it)."""


class JoinCode(Timestamps, Idempotent, Base):
    """A shareable code with which a tenant that cannot see a network applies to join it
    (ADR 0018). Only an HMAC of its secret is stored; the code is shown once."""

    __tablename__ = "join_codes"
    __table_args__ = (
        _member_scope(),
        CheckConstraint("max_uses IS NULL OR max_uses > 0", name="max_uses"),
        Index("ix_join_codes_network_id", "network_id"),
        _idempotency(),
        _tenant_listing("join_codes"),
    )

    id: Mapped[str] = id_column("jc")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The creating tenant (a member's)."""
    member_id: Mapped[str] = ref()
    """The member in whose name applications are invited."""
    description: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    secret_hmac: Mapped[str] = mapped_column(String(64))
    """HMAC-SHA256 (keyed from the master key) of the code's secret part, hex."""
    status: Mapped[JoinCodeStatus] = mapped_column(enum_type(JoinCodeStatus, "status"),
                                                   default=JoinCodeStatus.ACTIVE)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    max_uses: Mapped[int | None] = mapped_column(Integer)
    """How many applications it takes; NULL: any number until it expires."""
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --- channels and nodes --------------------------------------------------------------------


class Channel(Timestamps, Idempotent, Base):
    """A Fabric-profile channel: a ledger shared by some members of a network."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("network_id", "name"),
        UniqueConstraint("id", "network_id"),  # target of channel_members' key
        _idempotency(),
        _tenant_listing("channels"),
    )

    id: Mapped[str] = id_column("chn")
    network_id: Mapped[str] = ref(ForeignKey(NETWORKS))
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The tenant that created the channel."""
    name: Mapped[str] = mapped_column(String(_NAME))
    description: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    status: Mapped[ResourceStatus] = mapped_column(enum_type(ResourceStatus, "status"),
                                                   default=ResourceStatus.CREATING)
    consensus: Mapped[Consensus] = mapped_column(enum_type(Consensus, "consensus"),
                                                 default=Consensus.SOLO)
    """How the channel's own chain orders its blocks (ADR 0017)."""
    creator_member_id: Mapped[str | None] = ref(ForeignKey(MEMBERS), nullable=True)
    """The creating member: its organization runs the channel's validators."""
    status_reason: Mapped[str | None] = mapped_column(String(_DESCRIPTION))
    """Why the channel is ``CREATING`` or ``CREATE_FAILED``."""
    genesis_hash: Mapped[str | None] = mapped_column(String(64))
    """Lower-case hex hash of the channel chain's genesis block, once written."""


class ChannelMember(Timestamps, Base):
    """A member's participation in a channel of its network."""

    __tablename__ = "channel_members"
    __table_args__ = (
        ForeignKeyConstraint(["channel_id", "network_id"], ["channels.id", "channels.network_id"],
                             ondelete="CASCADE"),
        _member_scope(),
        Index("ix_channel_members_member_id", "member_id"),
    )

    channel_id: Mapped[str] = ref(primary_key=True)
    member_id: Mapped[str] = ref(primary_key=True)
    network_id: Mapped[str] = ref()
    tenant_id: Mapped[str] = ref()
    """The member's tenant."""


class Node(Timestamps, Idempotent, Base):
    """A peer, orderer or validator process run for a member."""

    __tablename__ = "nodes"
    __table_args__ = (
        _member_scope(),
        UniqueConstraint("network_id", "name"),
        Index("ix_nodes_network_id_status", "network_id", "status"),
        Index("ix_nodes_member_id", "member_id"),
        Index("ix_nodes_channel_id", "channel_id"),
        _idempotency(),
        _tenant_listing("nodes"),
    )

    id: Mapped[str] = id_column("nd")
    network_id: Mapped[str] = ref()
    member_id: Mapped[str] = ref()
    tenant_id: Mapped[str] = ref()
    name: Mapped[str] = mapped_column(String(_NAME))
    node_type: Mapped[NodeType] = mapped_column(enum_type(NodeType, "node_type"))
    resource_class: Mapped[ResourceClass] = mapped_column(
        enum_type(ResourceClass, "resource_class"), default=ResourceClass.SMALL)
    status: Mapped[NodeStatus] = mapped_column(enum_type(NodeStatus, "status"),
                                               default=NodeStatus.CREATING)
    status_reason: Mapped[str | None] = mapped_column(String(_DESCRIPTION))
    """Why the node is ``UNHEALTHY`` or ``FAILED``."""
    health: Mapped[NodeHealth] = mapped_column(enum_type(NodeHealth, "health"),
                                               default=NodeHealth.UNKNOWN)
    health_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provisioner: Mapped[Provisioner] = mapped_column(enum_type(Provisioner, "provisioner"),
                                                     default=Provisioner.LOCAL)
    provisioner_ref: Mapped[str | None] = mapped_column(String(_ENDPOINT))
    """The provisioner's handle: a process directory, a StatefulSet name."""
    api_endpoint: Mapped[str | None] = mapped_column(String(_ENDPOINT))
    p2p_endpoint: Mapped[str | None] = mapped_column(String(_ENDPOINT))
    rpc_endpoint: Mapped[str | None] = mapped_column(String(_ENDPOINT))
    """Ethereum JSON-RPC over HTTP (``quorum`` profile)."""
    ws_endpoint: Mapped[str | None] = mapped_column(String(_ENDPOINT))
    """Ethereum JSON-RPC over WebSocket and event subscriptions."""
    channel_id: Mapped[str | None] = ref(ForeignKey("channels.id"), nullable=True)
    """The channel whose own chain this validator runs (ADR 0017); NULL: the network's."""


# --- an organization's CA: identities, certificates, CSRs ----------------------------------


class CaIdentity(Timestamps, Idempotent, Base):
    """An identity registered with a member's CA (Fabric CA's register, then enroll)."""

    __tablename__ = "ca_identities"
    __table_args__ = (
        _member_scope(),
        UniqueConstraint("member_id", "enrollment_id"),
        CheckConstraint("max_enrollments >= 0 AND enrollment_count >= 0", name="enrollments"),
        _idempotency(),
        _tenant_listing("ca_identities"),
    )

    id: Mapped[str] = id_column("cid")
    member_id: Mapped[str] = ref()
    network_id: Mapped[str] = ref()
    tenant_id: Mapped[str] = ref()
    enrollment_id: Mapped[str] = mapped_column(String(_NAME))
    """The certificate's CN."""
    identity_type: Mapped[IdentityType] = mapped_column(enum_type(IdentityType, "identity_type"))
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    """Argon2id hash of the enrollment secret; the secret is shown once, at registration."""
    attributes: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """JSON object of string attributes written into every certificate of the identity
    (Fabric's attribute extension, ADR 0013)."""
    max_enrollments: Mapped[int] = mapped_column(Integer, default=1)
    """How many enrollments the secret allows; 0 means no limit."""
    enrollment_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CaIdentityStatus] = mapped_column(enum_type(CaIdentityStatus, "status"),
                                                     default=CaIdentityStatus.REGISTERED)


class Certificate(Timestamps, Idempotent, Base):
    """A certificate issued by a member's CA (enroll, re-enroll or an approved CSR)."""

    __tablename__ = "certificates"
    __table_args__ = (
        _member_scope(),
        UniqueConstraint("member_id", "serial_number"),
        Index("ix_certificates_ca_identity_id", "ca_identity_id"),
        _idempotency(),
        _tenant_listing("certificates"),
    )

    id: Mapped[str] = id_column("crt")
    member_id: Mapped[str] = ref()
    """The member whose CA issued it."""
    network_id: Mapped[str] = ref()
    tenant_id: Mapped[str] = ref()
    ca_identity_id: Mapped[str | None] = ref(ForeignKey("ca_identities.id"), nullable=True)
    serial_number: Mapped[str] = mapped_column(String(64))
    """Lower-case hex, no leading zeros."""
    subject: Mapped[str] = mapped_column(String(512))
    identity_type: Mapped[IdentityType] = mapped_column(enum_type(IdentityType, "identity_type"))
    certificate_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[CertificateStatus] = mapped_column(enum_type(CertificateStatus, "status"),
                                                      default=CertificateStatus.ACTIVE)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    """An RFC 5280 reason name (``keyCompromise``, ``superseded`` …)."""
    previous_certificate_id: Mapped[str | None] = ref(ForeignKey("certificates.id"),
                                                      nullable=True)
    """The certificate this one re-enrolled."""


class CsrRequest(Timestamps, Idempotent, Base):
    """A certificate signing request awaiting the approval of the CA's member."""

    __tablename__ = "csr_requests"
    __table_args__ = (
        Index("ix_csr_requests_member_id_status", "member_id", "status"),
        _idempotency(),
        _tenant_listing("csr_requests"),
    )

    id: Mapped[str] = id_column("csr")
    member_id: Mapped[str] = ref(ForeignKey(MEMBERS))
    """The member whose CA is asked to sign."""
    tenant_id: Mapped[str] = ref(ForeignKey(TENANTS))
    """The requesting tenant (possibly another member's, as when a new member joins)."""
    ca_identity_id: Mapped[str | None] = ref(ForeignKey("ca_identities.id"), nullable=True)
    csr_pem: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(512))
    identity_type: Mapped[IdentityType] = mapped_column(enum_type(IdentityType, "identity_type"))
    status: Mapped[CsrStatus] = mapped_column(enum_type(CsrStatus, "status"),
                                              default=CsrStatus.PENDING)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """The id of the user who approved or rejected it."""
    reason: Mapped[str] = mapped_column(String(_DESCRIPTION), default="")
    certificate_id: Mapped[str | None] = ref(ForeignKey("certificates.id"), nullable=True)


# --- append-only records -------------------------------------------------------------------


class AuditRecord(Base):
    """Who did what to which resource, and how it ended. Never updated or deleted.

    No foreign keys: a record outlives the user, key or resource it names.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_audit_records_resource_id", "resource_id"),
        Index("ix_audit_records_request_id", "request_id"),
    )

    id: Mapped[str] = id_column("aud")
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """NULL for platform-level actions (creating a tenant)."""
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    access_key_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    """The key that signed the request; NULL for a console session."""
    action: Mapped[str] = mapped_column(String(_NAME))
    """``<resource>.<verb>``, e.g. ``network.create``, ``proposal.vote``."""
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(_NAME))
    """An id, or for ``account.*`` the Ethereum address (42 characters)."""
    request_id: Mapped[str] = mapped_column(String(_NAME))
    result: Mapped[AuditResult] = mapped_column(enum_type(AuditResult, "result"))
    error_code: Mapped[str | None] = mapped_column(String(_NAME))
    http_status: Mapped[int | None] = mapped_column(Integer)
    """The HTTP status the call was answered with (NULL for calls made outside HTTP)."""
    source_ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiNonce(Base):
    """A used request nonce, kept until its request could no longer be replayed (ADR 0007)."""

    __tablename__ = "api_nonces"
    __table_args__ = (Index("ix_api_nonces_expires_at", "expires_at"),)

    access_key_id: Mapped[str] = mapped_column(String(_NAME), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(_NAME), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Double)
    """Seconds since the epoch; the entry is live while ``expires_at >= now``."""
