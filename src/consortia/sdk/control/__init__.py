"""The control plane's Python client: ``ControlClient`` and what it returns.

::

    from consortia.sdk.control import ControlClient
    with ControlClient.from_profile() as cp:      # $CONSORTIA_* or the profile file
        net = cp.wait_for_network(cp.create_network("ledger", consensus="raft").id)

Modules: ``_client`` (the calls), ``_models`` (the resources), ``_credentials`` (profiles
and environment), ``_exceptions`` (one tree under ``ControlError``).
"""

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
    Invitation,
    Me,
    Member,
    Network,
    Node,
    Page,
    Proposal,
    Resource,
    Tenant,
    TenantCreated,
    User,
    Vote,
    VoteCast,
)

__all__ = [
    "AVAILABLE", "CREDENTIALS_FILE", "DEFAULT_PROFILE", "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT", "ENV_ACCESS_KEY_ID", "ENV_CREDENTIALS_FILE", "ENV_ENDPOINT",
    "ENV_SECRET", "FAILED_STATUSES", "UP_DATA_DIR", "AccessKey", "ApiError", "AuditRecord",
    "ControlClient", "ControlError", "CredentialsError", "Invitation", "Me", "Member",
    "Network", "Node", "Page", "Profile", "Proposal", "Resource", "ResourceFailed", "Tenant",
    "TenantCreated", "TransportError", "User", "Vote", "VoteCast", "WaitTimeout", "load_profile",
    "new_client_token", "read_profiles", "write_profile",
]
