"""The status and kind enums of the control-plane tables (``docs/spec/control-data-model.md``).

Each is a ``StrEnum`` whose *values* are what the database stores, in a ``VARCHAR(32)``
column with a CHECK constraint listing them (``Enum(native_enum=False)``): no PostgreSQL
``CREATE TYPE``, so adding a value is one migration that rewrites a CHECK, on SQLite and
PostgreSQL alike. Values the issue spells in lower case (roles, profiles, usage modes,
node types) stay lower case; statuses are upper case, as AWS and Alibaba Cloud spell them.

These are the control plane's own enums, not ``consortia.types.config``'s: the schema
changes only through a migration, never because the engine grew a value.
"""

from __future__ import annotations

from enum import StrEnum


class TenantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DELETED = "DELETED"


class UserRole(StrEnum):
    """A user's role within its tenant, strongest first."""

    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class AccessKeyStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class Profile(StrEnum):
    """The engine profile a network runs (DESIGN §2)."""

    FABRIC = "fabric"
    ANT = "ant"
    QUORUM = "quorum"


class Consensus(StrEnum):
    SOLO = "solo"
    RAFT = "raft"
    PBFT = "pbft"


class ThresholdComparator(StrEnum):
    """How a proposal's YES share is compared with the network's threshold (AMB)."""

    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL_TO = "GREATER_THAN_OR_EQUAL_TO"


class UsageMode(StrEnum):
    """``quick``: one-step defaults for trying things out; ``standard``: every choice explicit."""

    QUICK = "quick"
    STANDARD = "standard"


class ResourceStatus(StrEnum):
    """Lifecycle of networks, members and channels (AMB's network and member statuses)."""

    CREATING = "CREATING"
    AVAILABLE = "AVAILABLE"
    CREATE_FAILED = "CREATE_FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"


class InvitationStatus(StrEnum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class ApplicationStatus(StrEnum):
    """A join application's lifecycle (ADR 0018): PENDING until its network's admins
    reject it (REJECTED) or the INVITE_TENANT proposal its acceptance opened is decided
    (APPROVED, with the invitation the approval made; REJECTED); WITHDRAWN by the
    applicant; EXPIRED when its deadline or its proposal's passes undecided. An APPROVED
    application whose member has been created carries its ``member_id``."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"
    EXPIRED = "EXPIRED"


class ProposalAction(StrEnum):
    INVITE_TENANT = "INVITE_TENANT"
    REMOVE_MEMBER = "REMOVE_MEMBER"
    ADD_VALIDATOR = "ADD_VALIDATOR"
    """A validator for the target member, approved by the members that vote YES (ADR 0018)."""


class JoinCodeStatus(StrEnum):
    """A join code is ACTIVE until revoked; expiry and use limits are read from its row."""

    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


class ProposalStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    ACTION_FAILED = "ACTION_FAILED"


class VoteValue(StrEnum):
    YES = "YES"
    NO = "NO"


class NodeType(StrEnum):
    PEER = "peer"
    ORDERER = "orderer"
    VALIDATOR = "validator"


class ResourceClass(StrEnum):
    """CPU, memory and disk granted to a node; the provisioner maps it to real figures."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class NodeStatus(StrEnum):
    CREATING = "CREATING"
    AVAILABLE = "AVAILABLE"
    UNHEALTHY = "UNHEALTHY"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"


class NodeHealth(StrEnum):
    """The last health probe's verdict; ``UNKNOWN`` until the first probe."""

    UNKNOWN = "UNKNOWN"
    PASSING = "PASSING"
    FAILING = "FAILING"


class Provisioner(StrEnum):
    """Who runs a node: a local process supervisor, Kubernetes, or the member itself."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"
    EXTERNAL = "external"


class IdentityType(StrEnum):
    """The role an organization's CA writes into a certificate's OU (ADR 0004)."""

    ADMIN = "admin"
    CLIENT = "client"
    PEER = "peer"
    VALIDATOR = "validator"


class CaIdentityStatus(StrEnum):
    REGISTERED = "REGISTERED"
    ENROLLED = "ENROLLED"
    REVOKED = "REVOKED"


class CertificateStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class CsrStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class AuditResult(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class RevocationReason(StrEnum):
    """RFC 5280 §5.3.1 reasons a certificate can be revoked for, as the CRL entry names them.

    ``certificateHold`` and ``removeFromCRL`` are left out: a revocation here is final."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"
