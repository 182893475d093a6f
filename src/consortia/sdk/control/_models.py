"""What the control API returns, as frozen dataclasses (``docs/spec/control-api.md``).

Each resource keeps the JSON it was read from in ``raw`` (for ``--json`` output and for
fields a newer server adds); a field a server does not send is None. Timestamps stay the
API's RFC 3339 strings. Statuses are the API's strings; the sets below say which end a
wait.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

AVAILABLE = "AVAILABLE"
FAILED_STATUSES = frozenset({"FAILED", "CREATE_FAILED", "DELETED", "DELETING"})
"""A resource in one of these will not become AVAILABLE by waiting."""


@dataclass(frozen=True, slots=True)
class Resource:
    """Base of the API's objects: the JSON they came from, kept whole."""

    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False,
                                kw_only=True)

    @classmethod
    def from_json(cls: type[R], doc: dict[str, Any]) -> R:
        """Build from an API object: known fields by name, nested objects typed."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw":
                continue
            value = doc.get(f.name)
            nested = _NESTED.get((cls.__name__, f.name))
            if nested is not None and isinstance(value, dict):
                value = nested.from_json(value)
            values[f.name] = value
        return cls(**values, raw=doc)


R = TypeVar("R", bound=Resource)


@dataclass(frozen=True, slots=True)
class Tenant(Resource):
    id: str
    name: str
    display_name: str | None
    status: str
    created_at: str


@dataclass(frozen=True, slots=True)
class User(Resource):
    id: str
    username: str
    email: str | None
    role: str
    """owner, admin, operator or viewer."""
    status: str
    has_password: bool
    created_at: str
    updated_at: str
    last_login_at: str | None


@dataclass(frozen=True, slots=True)
class Me(Resource):
    """``GET /v1/tenant``: who the caller is."""

    tenant: Tenant
    user: User
    auth: str
    access_key_id: str | None
    session_id: str | None


@dataclass(frozen=True, slots=True)
class AccessKey(Resource):
    access_key_id: str
    user_id: str
    description: str
    status: str
    created_at: str
    updated_at: str
    last_used_at: str | None
    secret: str | None = None
    """Only in the answer that created the key (and retries before its first use)."""


@dataclass(frozen=True, slots=True)
class TenantCreated(Resource):
    """``POST /v1/tenants``: the new tenant, its owner and the owner's first access key."""

    tenant: Tenant
    owner: User
    access_key: AccessKey


@dataclass(frozen=True, slots=True)
class AuditRecord(Resource):
    id: str
    tenant_id: str | None
    user_id: str | None
    access_key_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    request_id: str
    result: str
    error_code: str | None
    http_status: int | None
    source_ip: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class Member(Resource):
    id: str
    network_id: str
    tenant_id: str
    name: str
    org_id: str
    description: str
    status: str
    status_reason: str | None
    ca_certificate_pem: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Network(Resource):
    id: str
    tenant_id: str
    name: str
    description: str
    chain_id: str
    profile: str
    consensus: str
    usage_mode: str
    voting_policy: dict[str, Any]
    status: str
    status_reason: str | None
    genesis_hash: str | None
    created_at: str
    updated_at: str
    member: Member | None = None
    """Only in the answer of a quick-mode create: the operator's member."""
    evm_chain_id: int | None = None
    """quorum: the EIP-155 chain id its Ethereum transactions are signed for."""
    evm_gas_limit: int | None = None
    """quorum: the block gas limit."""


@dataclass(frozen=True, slots=True)
class Node(Resource):
    id: str
    network_id: str
    member_id: str
    name: str
    node_type: str
    resource_class: str
    status: str
    status_reason: str | None
    health: str
    health_checked_at: str | None
    provisioner: str
    api_endpoint: str | None
    p2p_endpoint: str | None
    created_at: str
    updated_at: str
    channel_id: str | None = None
    """The channel whose own chain it runs (ADR 0017); None: the network's chain."""
    rpc_url: str | None = None
    """quorum: its Ethereum JSON-RPC over HTTP (``web3.HTTPProvider(node.rpc_url)``)."""
    ws_url: str | None = None
    """quorum: its Ethereum JSON-RPC over WebSocket."""


@dataclass(frozen=True, slots=True)
class Account(Resource):
    """An Ethereum address a member's organization transacts with on a quorum chain, as
    the chain's configuration binds it (ADR 0029)."""

    address: str
    """EIP-55 checksummed."""
    network_id: str
    member_id: str
    org_id: str


@dataclass(frozen=True, slots=True)
class ChannelMember(Resource):
    """A member of the network whose organization is in a channel's chain."""

    member_id: str
    name: str
    org_id: str
    """Its organization id on the channel's chain (the member's id)."""
    tenant_id: str
    joined_at: str


@dataclass(frozen=True, slots=True)
class Channel(Resource):
    """A ledger shared by some members of a network: a chain of its own (ADR 0017),
    ordered by validators of its creating member."""

    id: str
    network_id: str
    tenant_id: str
    """The tenant that created it."""
    name: str
    description: str
    chain_id: str
    """The channel's chain id (its id): transactions for the channel name it."""
    consensus: str
    creator_member_id: str | None
    status: str
    status_reason: str | None
    genesis_hash: str | None
    members: list[ChannelMember]
    nodes: list[Node] | None
    """Its validators (where clients submit): shown to its members' tenants, else None."""
    created_at: str
    updated_at: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Channel:
        nodes = doc.get("nodes")
        values: dict[str, Any] = {f.name: doc.get(f.name) for f in dataclasses.fields(cls)
                                  if f.name not in ("raw", "members", "nodes")}
        return cls(**values,
                   members=[ChannelMember.from_json(m) for m in doc.get("members") or []],
                   nodes=None if nodes is None else [Node.from_json(n) for n in nodes],
                   raw=doc)


@dataclass(frozen=True, slots=True)
class Proposal(Resource):
    """A vote of a network's members: INVITE_TENANT, REMOVE_MEMBER or ADD_VALIDATOR."""

    id: str
    network_id: str
    proposer_member_id: str
    """The proposing member."""
    action: str
    status: str
    """IN_PROGRESS, APPROVED, REJECTED, EXPIRED or ACTION_FAILED."""
    tally: dict[str, Any]
    """``{yes, no, eligible, outstanding}``: the votes of the members entitled now."""
    target_tenant_id: str | None
    target_member_id: str | None
    description: str | None
    threshold_percentage: int | None
    threshold_comparator: str | None
    expires_at: str | None
    decided_at: str | None
    failure_reason: str | None
    """Why an approved proposal's action failed (ACTION_FAILED)."""
    created_at: str
    node_name: str | None = None
    """ADD_VALIDATOR: the new validator's name."""
    resource_class: str | None = None
    node_id: str | None = None
    """ADD_VALIDATOR: the node its approval made."""


@dataclass(frozen=True, slots=True)
class Vote(Resource):
    id: str
    proposal_id: str
    member_id: str
    vote: str
    """YES or NO."""
    created_at: str


@dataclass(frozen=True, slots=True)
class VoteCast(Resource):
    """A vote and the proposal after it (decided, its action done, when the vote made the
    outcome certain)."""

    vote: Vote
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class Invitation(Resource):
    """An invitation to join a network, made by an approved INVITE_TENANT proposal."""

    id: str
    network: dict[str, Any]
    """``{id, name, description, profile, consensus, voting_policy}``: the invitee cannot
    read the network itself before it joins."""
    inviting_tenant_id: str
    invitee_tenant_id: str
    proposal_id: str | None
    message: str | None
    status: str
    """PENDING, ACCEPTED, REJECTED or EXPIRED."""
    expires_at: str | None
    responded_at: str | None
    member_id: str | None
    """The member created by accepting it."""
    created_at: str

    @property
    def network_id(self) -> str:
        return str(self.network["id"])


@dataclass(frozen=True, slots=True)
class JoinCode(Resource):
    """A code with which another tenant applies to join a network (ADR 0018)."""

    id: str
    network_id: str
    member_id: str
    description: str | None
    status: str
    """ACTIVE or REVOKED."""
    usable: bool
    """ACTIVE, not expired, not used up."""
    expires_at: str
    max_uses: int | None
    uses: int
    created_at: str
    join_code: str | None = None
    """The code to share: in the create answer only (only a hash of it is kept)."""


@dataclass(frozen=True, slots=True)
class JoinApplication(Resource):
    """A tenant's application to join a network, reviewed by its admins and decided by an
    INVITE_TENANT proposal."""

    id: str
    network: dict[str, Any]
    """``{id, name, profile, consensus}``: the applicant cannot read the network itself."""
    tenant_id: str
    """The applying tenant."""
    member_name: str
    message: str | None
    status: str
    """PENDING, APPROVED, REJECTED, WITHDRAWN or EXPIRED."""
    proposal_id: str | None
    invitation_id: str | None
    """APPROVED: create the member with it."""
    member_id: str | None
    expires_at: str | None
    decided_at: str | None
    created_at: str

    @property
    def network_id(self) -> str:
        return str(self.network["id"])


@dataclass(frozen=True, slots=True)
class CaIdentity(Resource):
    """An identity registered with a member's CA; its holder enrolls with the secret."""

    id: str
    network_id: str
    member_id: str
    enrollment_id: str
    """The certificates' common name."""
    identity_type: str
    """client, peer, admin or validator: the OU role of its certificates."""
    attributes: dict[str, str]
    max_enrollments: int
    enrollment_count: int
    status: str
    """REGISTERED, ENROLLED or REVOKED."""
    created_at: str
    updated_at: str
    enrollment_secret: str | None = None
    """Only in the answer that registered it (None on a retry with the same token)."""


@dataclass(frozen=True, slots=True)
class Certificate(Resource):
    id: str
    network_id: str
    member_id: str
    """The member whose CA issued it."""
    ca_identity_id: str | None
    serial_number: str
    subject: str
    identity_type: str
    certificate_pem: str
    not_before: str
    not_after: str
    status: str
    """ACTIVE, REVOKED or EXPIRED."""
    revoked_at: str | None
    revocation_reason: str | None
    previous_certificate_id: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class Revocation(Resource):
    """What a revocation did: the certificates, the new CRL's number, whether it is in
    force on the chain."""

    certificates: list[Certificate]
    crl_number: int
    crl_published: bool

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Revocation:
        return cls([Certificate.from_json(c) for c in doc.get("certificates", [])],
                   int(doc["crl_number"]), bool(doc["crl_published"]), raw=doc)


@dataclass(frozen=True, slots=True)
class Crl(Resource):
    member_id: str
    crl_number: int
    crl_published_number: int
    """Below ``crl_number``: the newest CRL is not in force yet (retry a revocation)."""
    crl_pem: str | None


@dataclass(frozen=True, slots=True)
class CsrRequest(Resource):
    """A request for a certificate from a member's CA, decided by its admins."""

    id: str
    member_id: str
    tenant_id: str
    """The requesting tenant."""
    subject: str
    identity_type: str
    status: str
    """PENDING, APPROVED or REJECTED."""
    reason: str
    decided_at: str | None
    decided_by: str | None
    certificate_id: str | None
    certificate_pem: str | None
    created_at: str


_NESTED: dict[tuple[str, str], type[Resource]] = {
    ("Me", "tenant"): Tenant, ("Me", "user"): User,
    ("TenantCreated", "tenant"): Tenant, ("TenantCreated", "owner"): User,
    ("TenantCreated", "access_key"): AccessKey, ("Network", "member"): Member,
    ("VoteCast", "vote"): Vote, ("VoteCast", "proposal"): Proposal,
}


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a list: pass ``next_page_token`` back for the next (None: the last)."""

    items: list[R]
    next_page_token: str | None
