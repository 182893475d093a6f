"""``ControlClient``: the control plane's API (``docs/spec/control-api.md``) as methods.

::

    with ControlClient.from_profile() as cp:              # or ControlClient(url, creds)
        net = cp.create_network("ledger", consensus="raft", validators=3)
        net = cp.wait_for_network(net.id, timeout=120)     # AVAILABLE, or raises
        for node in cp.iter_nodes(net.id, net.member.id):
            print(node.name, node.status, node.api_endpoint)

Every request is signed (``SigningAuth``) and has a timeout. A refusal raises
``ApiError`` with the API's status, error code, message and request id; no answer raises
``TransportError``; both are ``ControlError``. Create calls send a ``client_token`` (a new
random one unless given), so a create retried after a lost answer meets the first call's
resource instead of making a second. ``list_*`` return one ``Page``; ``iter_*`` follow
``next_page_token`` to the end. Pass an ``httpx.MockTransport`` as ``transport`` to test
code that uses this client without a server.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from consortia import __version__
from consortia.sdk.auth import SigningAuth
from consortia.sdk.control._accounts import AccountCalls
from consortia.sdk.control._applications import ApplicationCalls
from consortia.sdk.control._ca import CaCalls
from consortia.sdk.control._channels import ChannelCalls
from consortia.sdk.control._credentials import DEFAULT_PROFILE, load_profile
from consortia.sdk.control._exceptions import (
    ApiError,
    ResourceFailed,
    TransportError,
    WaitTimeout,
)
from consortia.sdk.control._models import (
    AVAILABLE,
    FAILED_STATUSES,
    AccessKey,
    AuditRecord,
    Channel,
    Invitation,
    Me,
    Member,
    Network,
    Node,
    Page,
    Proposal,
    R,
    Tenant,
    TenantCreated,
    User,
    Vote,
    VoteCast,
)
from consortia.sdk.signing import Credentials

DEFAULT_TIMEOUT = 60.0
"""Seconds per request: adding a node waits for its configuration change to commit."""
DEFAULT_WAIT_TIMEOUT = 300.0
DEFAULT_POLL_INTERVAL = 1.0
_UA = f"consortia-sdk/{__version__}"


def new_client_token() -> str:
    """A fresh idempotency token (``sdk-`` + 32 hex digits)."""
    return "sdk-" + secrets.token_hex(16)


class _HasStatus(Protocol):
    @property
    def status(self) -> str: ...


S = TypeVar("S", bound=_HasStatus)


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _error(resp: httpx.Response) -> ApiError:
    request_id = resp.headers.get("x-request-id")
    try:
        err = resp.json()["error"]
        return ApiError(str(err["message"]), code=str(err["code"]), status=resp.status_code,
                        request_id=err.get("request_id") or request_id,
                        details=err.get("details"))
    except (ValueError, KeyError, TypeError):
        return ApiError(resp.text[:500] or resp.reason_phrase, code="http_error",
                        status=resp.status_code, request_id=request_id)


class ControlClient(CaCalls, ChannelCalls, ApplicationCalls, AccountCalls):
    """Synchronous client of one control plane, signing with one access key (its member-CA
    calls: ``CaCalls``, ``_ca.py``; its channel calls: ``ChannelCalls``, ``_channels.py``;
    join codes and applications: ``ApplicationCalls``, ``_applications.py``)."""

    def __init__(self, base_url: str, credentials: Credentials | None, *,
                 timeout: float = DEFAULT_TIMEOUT,
                 poll_interval: float = DEFAULT_POLL_INTERVAL,
                 transport: httpx.BaseTransport | None = None) -> None:
        """``credentials`` None sends unsigned calls (``health`` needs none)."""
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        auth = SigningAuth(credentials) if credentials is not None else None
        self._http = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout,
                                  transport=transport, headers={"user-agent": _UA})

    @classmethod
    def from_profile(cls, profile: str = DEFAULT_PROFILE, path: Path | None = None,
                     **options: Any) -> ControlClient:
        """A client for the endpoint and key ``load_profile`` finds (environment, files)."""
        p = load_profile(profile, path)
        return cls(p.endpoint, p.credentials, **options)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"ControlClient({self.base_url!r})"

    # --- plumbing ------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: dict[str, Any] | None = None) -> httpx.Response:
        """One call; the response when it succeeded, else ``ApiError``/``TransportError``."""
        try:
            resp = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException as exc:
            raise TransportError(f"no answer from {self.base_url} in time ({exc})",
                                 code="timeout") from exc
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {self.base_url}: {exc.__class__.__name__} "
                                 f"({exc})", code="unreachable") from exc
        if resp.status_code >= 400:
            raise _error(resp)
        return resp

    def _get(self, model: type[R], path: str, **params: Any) -> R:
        return model.from_json(self.request("GET", path, params=_params(**params)).json())

    def _post(self, model: type[R], path: str, body: dict[str, Any]) -> R:
        return model.from_json(self.request("POST", path, json=body).json())

    def _delete(self, path: str, **params: Any) -> None:
        self.request("DELETE", path, params=_params(**params))

    def _page(self, model: type[R], path: str, **params: Any) -> Page[R]:
        doc = self.request("GET", path, params=_params(**params)).json()
        return Page([model.from_json(d) for d in doc["items"]], doc.get("next_page_token"))

    def _iterate(self, model: type[R], path: str, **params: Any) -> Iterator[R]:
        token: str | None = None
        while True:
            page = self._page(model, path, **params, page_token=token)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    @staticmethod
    def _create(body: dict[str, Any], client_token: str | None) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if v is not None}
        out["client_token"] = client_token or new_client_token()
        return out

    # --- service and tenant --------------------------------------------------------------

    def health(self) -> bool:
        """True when ``/healthz`` answers ok (no credentials needed)."""
        return bool(self.request("GET", "/healthz").json().get("status") == "ok")

    def me(self) -> Me:
        """The caller's tenant and user (``GET /v1/tenant``)."""
        return self._get(Me, "/v1/tenant")

    def create_tenant(self, name: str, owner: str, *,
                      owner_email: str | None = None) -> TenantCreated:
        """A new tenant with its owner and the owner's first key (platform owners only)."""
        return self._post(TenantCreated, "/v1/tenants", _params(
            name=name, owner=owner, owner_email=owner_email))

    def list_tenants(self, *, limit: int | None = None,
                     page_token: str | None = None) -> Page[Tenant]:
        return self._page(Tenant, "/v1/tenants", limit=limit, page_token=page_token)

    def iter_tenants(self) -> Iterator[Tenant]:
        return self._iterate(Tenant, "/v1/tenants")

    # --- users ---------------------------------------------------------------------------

    def create_user(self, username: str, role: str, *, email: str | None = None,
                    password: str | None = None, client_token: str | None = None) -> User:
        return self._post(User, "/v1/users", self._create(
            {"username": username, "role": role, "email": email, "password": password},
            client_token))

    def list_users(self, *, role: str | None = None, status: str | None = None,
                   limit: int | None = None, page_token: str | None = None) -> Page[User]:
        return self._page(User, "/v1/users", role=role, status=status, limit=limit,
                          page_token=page_token)

    def iter_users(self, *, role: str | None = None,
                   status: str | None = None) -> Iterator[User]:
        return self._iterate(User, "/v1/users", role=role, status=status)

    def get_user(self, user_id: str) -> User:
        return self._get(User, f"/v1/users/{user_id}")

    def update_user(self, user_id: str, *, role: str | None = None, status: str | None = None,
                    email: str | None = None, password: str | None = None) -> User:
        body = _params(role=role, status=status, email=email, password=password)
        return User.from_json(self.request("PATCH", f"/v1/users/{user_id}", json=body).json())

    def delete_user(self, user_id: str) -> None:
        self._delete(f"/v1/users/{user_id}")

    # --- access keys ---------------------------------------------------------------------

    def create_access_key(self, *, description: str | None = None, user_id: str | None = None,
                          client_token: str | None = None) -> AccessKey:
        """A new key; its ``secret`` is in this answer only."""
        return self._post(AccessKey, "/v1/access-keys", self._create(
            {"description": description, "user_id": user_id}, client_token))

    def list_access_keys(self, *, user_id: str | None = None, status: str | None = None,
                         limit: int | None = None,
                         page_token: str | None = None) -> Page[AccessKey]:
        return self._page(AccessKey, "/v1/access-keys", user_id=user_id, status=status,
                          limit=limit, page_token=page_token)

    def iter_access_keys(self, *, user_id: str | None = None,
                         status: str | None = None) -> Iterator[AccessKey]:
        return self._iterate(AccessKey, "/v1/access-keys", user_id=user_id, status=status)

    def get_access_key(self, access_key_id: str) -> AccessKey:
        return self._get(AccessKey, f"/v1/access-keys/{access_key_id}")

    def disable_access_key(self, access_key_id: str) -> AccessKey:
        return self._post(AccessKey, f"/v1/access-keys/{access_key_id}/disable", {})

    def enable_access_key(self, access_key_id: str) -> AccessKey:
        return self._post(AccessKey, f"/v1/access-keys/{access_key_id}/enable", {})

    def delete_access_key(self, access_key_id: str) -> None:
        self._delete(f"/v1/access-keys/{access_key_id}")

    # --- audit ---------------------------------------------------------------------------

    def list_audit(self, *, limit: int | None = None, page_token: str | None = None,
                   **filters: str | None) -> Page[AuditRecord]:
        """Newest first. ``filters``: action, resource_type, resource_id, user_id,
        access_key_id, request_id, result (SUCCESS|FAILURE), since, until (RFC 3339)."""
        return self._page(AuditRecord, "/v1/audit", limit=limit, page_token=page_token,
                          **filters)

    def iter_audit(self, **filters: str | None) -> Iterator[AuditRecord]:
        return self._iterate(AuditRecord, "/v1/audit", **filters)

    # --- networks ------------------------------------------------------------------------

    def create_network(self, name: str, *, profile: str = "ant", consensus: str | None = None,
                       usage_mode: str | None = None, validators: int | None = None,
                       member_name: str | None = None, member_description: str | None = None,
                       voting_policy: dict[str, Any] | None = None,
                       description: str | None = None, evm_chain_id: int | None = None,
                       evm_gas_limit: int | None = None,
                       client_token: str | None = None) -> Network:
        """A network (CREATING): in quick mode (default) with the caller's member, whose
        chain starts at once; ``wait_for_network`` waits until it is AVAILABLE.
        ``profile="quorum"``: an Ethereum chain with ``evm_chain_id`` (default: the lowest
        unused from 1337 up) and ``evm_gas_limit``; members bind accounts with
        ``bind_account``."""
        member = None
        if member_name is not None:
            member = _params(name=member_name, description=member_description)
        return self._post(Network, "/v1/networks", self._create(
            {"name": name, "profile": profile, "consensus": consensus,
             "usage_mode": usage_mode, "validators": validators, "member": member,
             "voting_policy": voting_policy, "description": description,
             "evm_chain_id": evm_chain_id, "evm_gas_limit": evm_gas_limit}, client_token))

    def list_networks(self, *, status: str | None = None, limit: int | None = None,
                      page_token: str | None = None) -> Page[Network]:
        return self._page(Network, "/v1/networks", status=status, limit=limit,
                          page_token=page_token)

    def iter_networks(self, *, status: str | None = None) -> Iterator[Network]:
        return self._iterate(Network, "/v1/networks", status=status)

    def get_network(self, network_id: str) -> Network:
        return self._get(Network, f"/v1/networks/{network_id}")

    def genesis(self, network_id: str) -> bytes:
        """The chain's genesis file (``consortia verify --genesis``)."""
        return self.request("GET", f"/v1/networks/{network_id}/genesis").content

    def delete_network(self, network_id: str, *, confirm_name: str) -> None:
        """Stops its nodes; ``confirm_name`` must be the network's name."""
        self._delete(f"/v1/networks/{network_id}", confirm_name=confirm_name)

    # --- members -------------------------------------------------------------------------

    def create_member(self, network_id: str, name: str, *, description: str | None = None,
                      validators: int | None = None, invitation_id: str | None = None,
                      client_token: str | None = None) -> Member:
        """The caller's member of ``network_id``; with ``invitation_id``, accepting it."""
        return self._post(Member, f"/v1/networks/{network_id}/members", self._create(
            {"name": name, "description": description, "validators": validators,
             "invitation_id": invitation_id}, client_token))

    def list_members(self, network_id: str, *, status: str | None = None,
                     limit: int | None = None, page_token: str | None = None) -> Page[Member]:
        return self._page(Member, f"/v1/networks/{network_id}/members", status=status,
                          limit=limit, page_token=page_token)

    def iter_members(self, network_id: str, *, status: str | None = None) -> Iterator[Member]:
        return self._iterate(Member, f"/v1/networks/{network_id}/members", status=status)

    def get_member(self, network_id: str, member_id: str) -> Member:
        return self._get(Member, f"/v1/networks/{network_id}/members/{member_id}")

    def delete_member(self, network_id: str, member_id: str, *, confirm_name: str) -> None:
        self._delete(f"/v1/networks/{network_id}/members/{member_id}",
                     confirm_name=confirm_name)

    # --- nodes ---------------------------------------------------------------------------

    def _nodes(self, network_id: str, member_id: str) -> str:
        return f"/v1/networks/{network_id}/members/{member_id}/nodes"

    def create_node(self, network_id: str, member_id: str, name: str, *,
                    node_type: str | None = None, resource_class: str | None = None,
                    external: bool = False, api_endpoint: str | None = None,
                    client_token: str | None = None) -> Node:
        """A validator joins the chain (a configuration change, then its process), or a
        peer follows it. ``external`` with ``api_endpoint`` (http(s)://host:port): a peer
        the member runs itself from its join bundle (``download_join_bundle``, ADR 0019);
        the control plane starts nothing and polls its health there."""
        return self._post(Node, self._nodes(network_id, member_id), self._create(
            {"name": name, "node_type": node_type, "resource_class": resource_class,
             "external": True if external else None, "api_endpoint": api_endpoint},
            client_token))

    def list_nodes(self, network_id: str, member_id: str, *, status: str | None = None,
                   limit: int | None = None, page_token: str | None = None) -> Page[Node]:
        return self._page(Node, self._nodes(network_id, member_id), status=status,
                          limit=limit, page_token=page_token)

    def iter_nodes(self, network_id: str, member_id: str, *,
                   status: str | None = None) -> Iterator[Node]:
        return self._iterate(Node, self._nodes(network_id, member_id), status=status)

    def get_node(self, network_id: str, member_id: str, node_id: str) -> Node:
        return self._get(Node, f"{self._nodes(network_id, member_id)}/{node_id}")

    def delete_node(self, network_id: str, member_id: str, node_id: str, *,
                    confirm_name: str) -> None:
        self._delete(f"{self._nodes(network_id, member_id)}/{node_id}",
                     confirm_name=confirm_name)

    def download_join_bundle(self, network_id: str, member_id: str, node_id: str,
                             passphrase: str) -> bytes:
        """An external node's join bundle, its key sealed under ``passphrase``; each call
        issues a new identity and revokes the previous one (ADR 0019)."""
        return self.request("POST", f"{self._nodes(network_id, member_id)}/{node_id}"
                            "/join-bundle", json={"passphrase": passphrase}).content

    # --- proposals, votes, invitations ---------------------------------------------------

    def create_proposal(self, network_id: str, member_id: str, action: str, *,
                        target_tenant_id: str | None = None,
                        target_member_id: str | None = None, description: str | None = None,
                        node_name: str | None = None, resource_class: str | None = None,
                        client_token: str | None = None) -> Proposal:
        """INVITE_TENANT (``target_tenant_id``), REMOVE_MEMBER (``target_member_id``) or
        ADD_VALIDATOR (``target_member_id``: one of the caller's members, ``node_name``,
        ``resource_class``), proposed by the caller's member ``member_id``."""
        return self._post(Proposal, f"/v1/networks/{network_id}/proposals", self._create(
            {"member_id": member_id, "action": action, "target_tenant_id": target_tenant_id,
             "target_member_id": target_member_id, "description": description,
             "node_name": node_name, "resource_class": resource_class}, client_token))

    def list_proposals(self, network_id: str, *, status: str | None = None,
                       limit: int | None = None,
                       page_token: str | None = None) -> Page[Proposal]:
        return self._page(Proposal, f"/v1/networks/{network_id}/proposals", status=status,
                          limit=limit, page_token=page_token)

    def iter_proposals(self, network_id: str, *,
                       status: str | None = None) -> Iterator[Proposal]:
        return self._iterate(Proposal, f"/v1/networks/{network_id}/proposals", status=status)

    def get_proposal(self, network_id: str, proposal_id: str) -> Proposal:
        return self._get(Proposal, f"/v1/networks/{network_id}/proposals/{proposal_id}")

    def vote(self, network_id: str, proposal_id: str, member_id: str, vote: str) -> VoteCast:
        """``vote`` YES or NO, cast by the caller's member ``member_id``; the vote and the
        proposal after it."""
        return self._post(VoteCast,
                          f"/v1/networks/{network_id}/proposals/{proposal_id}/votes",
                          {"member_id": member_id, "vote": vote})

    def list_votes(self, network_id: str, proposal_id: str, *, limit: int | None = None,
                   page_token: str | None = None) -> Page[Vote]:
        return self._page(Vote, f"/v1/networks/{network_id}/proposals/{proposal_id}/votes",
                          limit=limit, page_token=page_token)

    def list_invitations(self, *, status: str | None = None, limit: int | None = None,
                         page_token: str | None = None) -> Page[Invitation]:
        """Invitations of the caller's tenant to join networks."""
        return self._page(Invitation, "/v1/invitations", status=status, limit=limit,
                          page_token=page_token)

    def iter_invitations(self, *, status: str | None = None) -> Iterator[Invitation]:
        return self._iterate(Invitation, "/v1/invitations", status=status)

    def get_invitation(self, invitation_id: str) -> Invitation:
        return self._get(Invitation, f"/v1/invitations/{invitation_id}")

    def reject_invitation(self, invitation_id: str) -> Invitation:
        return self._post(Invitation, f"/v1/invitations/{invitation_id}/reject", {})

    def accept_invitation(self, invitation_id: str, member_name: str, *,
                          description: str | None = None,
                          client_token: str | None = None) -> Member:
        """Join the invitation's network as a new member named ``member_name`` (its
        organization is added to the chain; the member starts without nodes)."""
        inv = self.get_invitation(invitation_id)
        return self.create_member(inv.network_id, member_name, description=description,
                                  invitation_id=invitation_id, client_token=client_token)

    # --- waiting -------------------------------------------------------------------------

    def wait_for(self, fetch: Callable[[], S], *, what: str,
                 timeout: float = DEFAULT_WAIT_TIMEOUT,
                 on_poll: Callable[[S], None] | None = None) -> S:
        """Poll ``fetch`` until its resource is AVAILABLE (returned). A FAILED,
        CREATE_FAILED, DELETING or DELETED one raises ``ResourceFailed``; ``timeout``
        seconds without either raise ``WaitTimeout``. ``on_poll`` sees every state."""
        deadline = time.monotonic() + timeout
        while True:
            item = fetch()
            if on_poll is not None:
                on_poll(item)
            if item.status == AVAILABLE:
                return item
            if item.status in FAILED_STATUSES:
                reason = getattr(item, "status_reason", None)
                raise ResourceFailed(f"{what} is {item.status}"
                                     + (f": {reason}" if reason else ""), item)
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} is still {item.status} after {timeout:.0f} s",
                                  item)
            time.sleep(self.poll_interval)

    def wait_for_network(self, network_id: str, *, timeout: float = DEFAULT_WAIT_TIMEOUT,
                         on_poll: Callable[[Network], None] | None = None) -> Network:
        """Until the network is AVAILABLE (all its founding validators are)."""
        return self.wait_for(lambda: self.get_network(network_id),
                             what=f"network {network_id}", timeout=timeout, on_poll=on_poll)

    def wait_for_member(self, network_id: str, member_id: str, *,
                        timeout: float = DEFAULT_WAIT_TIMEOUT,
                        on_poll: Callable[[Member], None] | None = None) -> Member:
        return self.wait_for(lambda: self.get_member(network_id, member_id),
                             what=f"member {member_id}", timeout=timeout, on_poll=on_poll)

    def wait_for_channel(self, network_id: str, channel_id: str, *,
                         timeout: float = DEFAULT_WAIT_TIMEOUT,
                         on_poll: Callable[[Channel], None] | None = None) -> Channel:
        """Until the channel is AVAILABLE (all its validators are)."""
        return self.wait_for(lambda: self.get_channel(network_id, channel_id),
                             what=f"channel {channel_id}", timeout=timeout, on_poll=on_poll)

    def wait_for_node(self, network_id: str, member_id: str, node_id: str, *,
                      timeout: float = DEFAULT_WAIT_TIMEOUT,
                      on_poll: Callable[[Node], None] | None = None) -> Node:
        """Until the node is AVAILABLE (caught up and answering its health check)."""
        return self.wait_for(lambda: self.get_node(network_id, member_id, node_id),
                             what=f"node {node_id}", timeout=timeout, on_poll=on_poll)
