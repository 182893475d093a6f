"""The control plane's Python client: ``ControlClient`` and what it returns.

::

    from consortia.sdk.control import ControlClient
    with ControlClient.from_profile() as cp:      # $CONSORTIA_* or the profile file
        net = cp.wait_for_network(cp.create_network("ledger", consensus="raft").id)

Modules: ``_client`` (the calls), ``_ca`` (a member CA's calls, CSRs, enrolled keys),
``_channels`` (a network's channels), ``_models`` (the resources), ``_credentials`` (profiles
and environment), ``_exceptions`` (one tree under ``ControlError``).
"""

from consortia.sdk.control._ca import common_name, new_csr, save_enrollment
from consortia.sdk.control._client import (
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    ControlClient,
    new_client_token,
)
from consortia.sdk.control._credentials import (
    CREDENTIALS_FILE,
    DEFAULT_PROFILE,
    ENV_ACCESS_KEY_ID,
    ENV_CREDENTIALS_FILE,
    ENV_ENDPOINT,
    ENV_SECRET,
    UP_DATA_DIR,
    Profile,
    default_files,
    load_profile,
    read_profiles,
    write_profile,
)
from consortia.sdk.control._exceptions import (
    ApiError,
    ControlError,
    CredentialsError,
    ResourceFailed,
    TransportError,
    WaitTimeout,
)
from consortia.sdk.control._models import (
    AVAILABLE,
    FAILED_STATUSES,
    AccessKey,
    AuditRecord,
    CaIdentity,
    Certificate,
    Channel,
    ChannelMember,
    Crl,
    CsrRequest,
    Invitation,
    JoinApplication,
    JoinCode,
    Me,
    Member,
    Network,
    Node,
    Page,
    Proposal,
    Resource,
    Revocation,
    Tenant,
    TenantCreated,
    User,
    Vote,
    VoteCast,
)

__all__ = [
    "AVAILABLE",
    "CREDENTIALS_FILE",
    "DEFAULT_PROFILE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "ENV_ACCESS_KEY_ID",
    "ENV_CREDENTIALS_FILE",
    "ENV_ENDPOINT",
    "ENV_SECRET",
    "FAILED_STATUSES",
    "UP_DATA_DIR",
    "AccessKey",
    "ApiError",
    "AuditRecord",
    "CaIdentity",
    "Certificate",
    "Channel",
    "ChannelMember",
    "ControlClient",
    "ControlError",
    "CredentialsError",
    "Crl",
    "CsrRequest",
    "Invitation",
    "JoinApplication",
    "JoinCode",
    "Me",
    "Member",
    "Network",
    "Node",
    "Page",
    "Profile",
    "Proposal",
    "Resource",
    "ResourceFailed",
    "Revocation",
    "Tenant",
    "TenantCreated",
    "TransportError",
    "User",
    "Vote",
    "VoteCast",
    "WaitTimeout",
    "common_name",
    "default_files",
    "load_profile",
    "new_client_token",
    "new_csr",
    "read_profiles",
    "save_enrollment",
    "write_profile",
]
