"""The API's request and response bodies (pydantic): what the OpenAPI document shows.

Request bodies refuse unknown fields (``extra="forbid"``): a misspelt field is an error,
not silently ignored. Responses are built from the store's rows (``from_attributes``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from consortia.control.store.enums import (
    AccessKeyStatus,
    AuditResult,
    CaIdentityStatus,
    CertificateStatus,
    Consensus,
    CsrStatus,
    IdentityType,
    NodeHealth,
    NodeStatus,
    NodeType,
    Profile,
    Provisioner,
    ResourceClass,
    ResourceStatus,
    RevocationReason,
    TenantStatus,
    ThresholdComparator,
    UsageMode,
    UserRole,
    UserStatus,
)
from consortia.types.evm_config import MAX_EVM_CHAIN_ID, MAX_GAS_LIMIT, MIN_GAS_LIMIT

ClientToken = Annotated[str, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
    description="Idempotency token: a retry with the same token and parameters returns the "
                "first call's result; the same token with other parameters is a 409 "
                "idempotency_conflict.")]
Username = Annotated[str, Field(min_length=1, max_length=64,
                                pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$",
                                examples=["alice"])]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                             examples=["alice@example.com"])]
Password = Annotated[str, Field(min_length=8, max_length=1024,
                                description="At least 8 characters; stored as Argon2id.")]
Description = Annotated[str, Field(max_length=256)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                            description="1-64 letters, digits, '.', '_', '-', starting with a "
                                        "letter or digit; typed back to delete.")]
MAX_FOUNDING_VALIDATORS = 16
"""Validators a founding member may ask for: one machine's worth; more join one by one."""
Validators = Annotated[int | None, Field(
    default=None, ge=1, le=MAX_FOUNDING_VALIDATORS,
    description="Validators of the founding member (default: solo 1, raft 3, pbft 4; pbft "
                "needs at least 4).")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- tenant --------------------------------------------------------------------------------


class Tenant(_Out):
    id: str = Field(examples=["ten-7k3q9d0xw2m4c8rt"])
    name: str
    display_name: str
    status: TenantStatus
    is_platform: bool = Field(description="The platform operator's tenant, which creates the "
                                          "others.")
    created_at: datetime


class User(_Out):
    id: str = Field(examples=["usr-7k3q9d0xw2m4c8rt"])
    username: str
    email: str | None
    role: UserRole
    status: UserStatus
    has_password: bool = Field(description="Whether the user can log in to the console.")
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class Me(BaseModel):
    tenant: Tenant
    user: User
    auth: Literal["signature", "session"] = Field(
        description="How this request was authenticated.")
    access_key_id: str | None = Field(description="The key that signed the request.")
    session_id: str | None = Field(description="The console session of the request.")


# --- users ---------------------------------------------------------------------------------


class UserCreate(_In):
    username: Username
    role: UserRole
    email: Email | None = None
    password: Password | None = Field(
        default=None, description="Omit for a user who only uses access keys.")
    client_token: ClientToken | None = None


class UserUpdate(_In):
    role: UserRole | None = None
    status: UserStatus | None = None
    email: Email | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _something(self) -> UserUpdate:
        if self.role is None and self.status is None and self.email is None \
                and self.password is None:
            raise ValueError("give at least one of role, status, email, password")
        return self


class UserList(BaseModel):
    items: list[User]
    next_page_token: str | None


# --- access keys ---------------------------------------------------------------------------


class AccessKey(_Out):
    access_key_id: str = Field(examples=["CKJBSWY3DPEHPK3PXP"])
    user_id: str
    description: str
    status: AccessKeyStatus
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")


class AccessKeyCreated(AccessKey):
    secret: str | None = Field(
        description="The secret, shown in this response only and never stored in plain "
                    "text. A retry with the same client_token returns it again while the key "
                    "has never been used, and null after.")


class AccessKeyCreate(_In):
    description: Description = ""
    user_id: str | None = Field(
        default=None, max_length=64,
        description="Whose key: omit for your own; admins and owners may name another "
                    "user of the tenant.")
    client_token: ClientToken | None = None


class AccessKeyList(BaseModel):
    items: list[AccessKey]
    next_page_token: str | None


# --- tenants (the platform tenant's admins) -----------------------------------------------


class TenantCreate(_In):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                      description="Unique slug: lower-case letters, digits, inner hyphens.",
                      examples=["globex"])
    display_name: str = Field("", max_length=128)
    owner: Username = Field(description="The user name of the new tenant's owner.")
    owner_email: Email | None = None


class TenantCreated(BaseModel):
    tenant: Tenant
    owner: User
    access_key: AccessKeyCreated = Field(
        description="The owner's first access key; the secret is shown here only.")


class TenantList(BaseModel):
    items: list[Tenant]
    next_page_token: str | None = None


# --- sessions ------------------------------------------------------------------------------


class LoginRequest(_In):
    tenant: str = Field(min_length=1, max_length=64, examples=["acme"])
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    session_id: str
    tenant: Tenant
    user: User
    expires_at: datetime
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change made "
                                        "with this session's cookie.")


# --- audit ---------------------------------------------------------------------------------


class AuditRecord(_Out):
    id: str
    tenant_id: str | None
    user_id: str | None
    access_key_id: str | None
    action: str = Field(examples=["user.create"])
    resource_type: str
    resource_id: str | None
    request_id: str
    result: AuditResult
    error_code: str | None
    http_status: int | None
    source_ip: str | None
    created_at: datetime


class AuditList(BaseModel):
    items: list[AuditRecord]
    next_page_token: str | None


# --- networks, members, nodes --------------------------------------------------------------


class VotingPolicy(BaseModel):
    """How proposals of the network are decided (AMB's approval threshold policy)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    threshold_percentage: int = Field(default=50, ge=0, le=100,
                                      description="Share of YES votes a proposal needs.")
    threshold_comparator: ThresholdComparator = ThresholdComparator.GREATER_THAN
    proposal_duration_hours: int = Field(default=24, ge=1, le=168)


class MemberConfig(_In):
    name: Name
    description: Description = ""


class NetworkCreate(_In):
    name: Name
    description: Description = ""
    profile: Profile = Field(description="ant (notary) or quorum (EVM, Ethereum JSON-RPC) "
                                         "chains; fabric answers 422 profile_not_available.")
    consensus: Consensus | None = Field(
        default=None, description="Default: the profile's (ant: pbft, quorum: raft).")
    usage_mode: UsageMode = Field(
        default=UsageMode.QUICK,
        description="quick: the operator is also the first member, created with the network, "
                    "and the chain starts at once; standard: the network only, its first "
                    "member (POST /v1/networks/{network_id}/members) founds the chain.")
    voting_policy: VotingPolicy = Field(default_factory=VotingPolicy)
    validators: Validators = None
    member: MemberConfig | None = Field(
        default=None, description="Quick mode: the first member (default name: the tenant's).")
    evm_chain_id: int | None = Field(
        default=None, ge=1, le=MAX_EVM_CHAIN_ID, examples=[1337],
        description="quorum: the EIP-155 chain id Ethereum transactions are signed for "
                    "(default: the lowest from 1337 up that no network of this control "
                    "plane ever had; 409 evm_chain_id_taken if taken).")
    evm_gas_limit: int | None = Field(
        default=None, ge=MIN_GAS_LIMIT, le=MAX_GAS_LIMIT,
        description="quorum: the block gas limit (default 30 000 000).")
    client_token: ClientToken | None = None


class Network(BaseModel):
    id: str = Field(examples=["net-7k3q9d0xw2m4c8rt"])
    tenant_id: str = Field(description="The operator: the tenant that created it.")
    name: str
    description: str
    chain_id: str
    profile: Profile
    consensus: Consensus
    usage_mode: UsageMode
    voting_policy: VotingPolicy
    status: ResourceStatus
    status_reason: str | None
    genesis_hash: str | None = Field(description="Hash of the chain's genesis block (hex), "
                                                 "once the chain is built.")
    evm_chain_id: int | None = Field(default=None, description="quorum: the EIP-155 chain "
                                                               "id; null for other profiles.")
    evm_gas_limit: int | None = Field(default=None, description="quorum: the block gas "
                                                                "limit; null otherwise.")
    created_at: datetime
    updated_at: datetime


class Member(_Out):
    id: str = Field(examples=["mem-7k3q9d0xw2m4c8rt"])
    network_id: str
    tenant_id: str
    name: str
    org_id: str = Field(description="The organization id on chain (the member id).")
    description: str
    status: ResourceStatus
    status_reason: str | None
    ca_certificate_pem: str | None = Field(description="The member CA's root certificate; "
                                                       "its key never leaves the server.")
    created_at: datetime
    updated_at: datetime


class NetworkCreated(Network):
    member: Member | None = Field(description="Quick mode: the operator's member.")


class NetworkList(BaseModel):
    items: list[Network]
    next_page_token: str | None


class MemberCreate(_In):
    name: Name
    description: Description = ""
    validators: Validators = None
    invitation_id: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="Accept this invitation (inv-…) to a network whose chain runs: the "
                    "member's organization is added to the chain for the members that "
                    "voted for it. Without it, only the first member of a standard network "
                    "is created (by the network's creator).")
    client_token: ClientToken | None = None

    @model_validator(mode="after")
    def _invitee_has_no_validators(self) -> MemberCreate:
        if self.invitation_id is not None and self.validators is not None:
            raise ValueError("a member joining by invitation starts without validators; add "
                             "its nodes afterwards")
        return self


class MemberList(BaseModel):
    items: list[Member]
    next_page_token: str | None


class NodeCreate(_In):
    name: Name
    node_type: NodeType = Field(default=NodeType.VALIDATOR,
                                description="ant chains run validators and peers (which "
                                            "follow the chain and order nothing); orderer "
                                            "nodes are not available.")
    resource_class: ResourceClass = ResourceClass.SMALL
    external: bool = Field(default=False,
                           description="A peer the member runs itself from a join bundle "
                                       "(ADR 0019): nothing is started by the control plane.")
    api_endpoint: str | None = Field(
        default=None, max_length=256, examples=["http://peer0.example.com:7060"],
        description="External nodes only: http(s)://host:port where the member runs it, "
                    "reachable by the control plane for its health checks.")
    client_token: ClientToken | None = None


class JoinBundleCreate(_In):
    passphrase: str = Field(
        min_length=1, max_length=1024,
        description="Seals the node's private key in the bundle (at least 12 characters: "
                    "422 weak_passphrase); never stored. The same passphrase opens the "
                    "node's keystore when it runs.")


class Node(_Out):
    id: str = Field(examples=["nd-7k3q9d0xw2m4c8rt"])
    network_id: str
    member_id: str
    name: str
    node_type: NodeType
    resource_class: ResourceClass
    status: NodeStatus
    status_reason: str | None = Field(description="Why it is FAILED or UNHEALTHY.")
    health: NodeHealth = Field(description="The last health check's verdict.")
    health_checked_at: datetime | None
    provisioner: Provisioner
    api_endpoint: str | None = Field(description="Base URL of its node API.")
    p2p_endpoint: str | None = Field(description="host:port of its p2p transport.")
    rpc_url: str | None = Field(
        default=None, validation_alias=AliasChoices("rpc_url", "rpc_endpoint"),
        description="quorum: its Ethereum JSON-RPC over HTTP (web3, ethers, Hardhat); null "
                    "for other profiles and for channels' validators.")
    ws_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ws_url", "ws_endpoint"),
        description="quorum: its Ethereum JSON-RPC over WebSocket (eth_subscribe).")
    channel_id: str | None = Field(
        default=None, description="The channel whose own chain it runs (ADR 0017); null: "
                                  "the network's chain.")
    created_at: datetime
    updated_at: datetime


class NodeList(BaseModel):
    items: list[Node]
    next_page_token: str | None


class Health(BaseModel):
    status: Literal["ok"]


# --- member CAs: identities, certificates, CSR requests ------------------------------------

EnrollmentId = Annotated[str, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$",
    examples=["alice"], description="The identity's name: the CN of its certificates.")]
CsrPem = Annotated[str, Field(
    min_length=1, max_length=65536,
    description="PKCS#10 certificate signing request, PEM, made with the holder's own "
                "ECDSA P-256 key; over 8 KiB is refused (413 csr_too_large).")]
AttributeName = Annotated[str, Field(min_length=1, max_length=64,
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
AttributeValue = Annotated[str, Field(max_length=256)]


class CaIdentityCreate(_In):
    enrollment_id: EnrollmentId
    identity_type: IdentityType = Field(
        default=IdentityType.CLIENT, description="The role written into its certificates.")
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, max_length=32,
        description="Written into each certificate in Fabric's attribute extension "
                    "(OID 1.2.3.4.5.6.7.8.1, JSON {\"attrs\": {...}}) with hf.EnrollmentID "
                    "and hf.Type; names starting with 'hf.' are the CA's own.")
    max_enrollments: int = Field(default=1, ge=0, le=1000,
                                 description="Enrollments the secret allows; 0: no limit.")
    client_token: ClientToken | None = None


class CaIdentity(_Out):
    id: str = Field(examples=["cid-7k3q9d0xw2m4c8rt"])
    network_id: str
    member_id: str
    enrollment_id: str
    identity_type: IdentityType
    attributes: dict[str, str]
    max_enrollments: int
    enrollment_count: int
    status: CaIdentityStatus
    created_at: datetime
    updated_at: datetime


class CaIdentityCreated(CaIdentity):
    enrollment_secret: str | None = Field(
        description="Shown once (stored as an Argon2id hash): null when a retry with the "
                    "same client_token answers.")


class CaIdentityList(BaseModel):
    items: list[CaIdentity]
    next_page_token: str | None


class EnrollRequest(_In):
    enrollment_id: EnrollmentId
    enrollment_secret: str = Field(min_length=1, max_length=256)
    csr_pem: CsrPem
    client_token: ClientToken | None = None


class ReenrollRequest(_In):
    csr_pem: CsrPem
    client_token: ClientToken | None = None


class Certificate(_Out):
    id: str = Field(examples=["crt-7k3q9d0xw2m4c8rt"])
    network_id: str
    member_id: str = Field(description="The member whose CA issued it.")
    ca_identity_id: str | None = Field(description="The identity it was enrolled for; null "
                                                   "for a certificate of a CSR request.")
    serial_number: str = Field(description="Lower-case hex, no leading zeros.")
    subject: str = Field(description="RFC 4514.")
    identity_type: IdentityType
    certificate_pem: str
    not_before: datetime
    not_after: datetime
    status: CertificateStatus = Field(description="EXPIRED once past not_after.")
    revoked_at: datetime | None
    revocation_reason: RevocationReason | None
    previous_certificate_id: str | None = Field(description="The one it re-enrolled.")
    created_at: datetime


class CertificateList(BaseModel):
    items: list[Certificate]
    next_page_token: str | None


class RevokeRequest(_In):
    reason: RevocationReason = RevocationReason.UNSPECIFIED


class Revocation(BaseModel):
    certificates: list[Certificate] = Field(description="The certificates revoked.")
    crl_number: int = Field(description="The number of the member's newest CRL.")
    crl_published: bool = Field(description="Whether that CRL is in force on the chain "
                                             "(false: the network has no chain).")


class Crl(BaseModel):
    member_id: str
    crl_number: int
    crl_published_number: int = Field(description="The newest CRL in force on the chain; "
                                                  "below crl_number: a retried revocation "
                                                  "publishes it.")
    crl_pem: str | None


class CsrRequestCreate(_In):
    csr_pem: CsrPem
    identity_type: IdentityType = Field(default=IdentityType.CLIENT,
                                        description="The role asked for.")
    client_token: ClientToken | None = None


class CsrReject(_In):
    reason: str = Field(min_length=1, max_length=1024)


class CsrRequest(BaseModel):
    id: str = Field(examples=["csr-7k3q9d0xw2m4c8rt"])
    member_id: str = Field(description="The member whose CA is asked.")
    tenant_id: str = Field(description="The requesting tenant.")
    subject: str = Field(description="The subject the CSR asks for (RFC 4514).")
    identity_type: IdentityType
    status: CsrStatus
    reason: str = Field(description="Why it was rejected.")
    decided_at: datetime | None
    decided_by: str | None = Field(description="The user who approved or rejected it.")
    certificate_id: str | None
    certificate_pem: str | None = Field(description="The certificate, once APPROVED.")
    created_at: datetime


class CsrRequestList(BaseModel):
    items: list[CsrRequest]
    next_page_token: str | None
