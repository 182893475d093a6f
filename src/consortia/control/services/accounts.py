"""Ethereum accounts bound to a member's organization on a quorum chain (ADR 0025, 0029).

A quorum chain admits an Ethereum transaction only from an address its configuration
binds to an organization. The control plane holds each member's CA, so it binds and
unbinds for the member as it signs every other configuration change: an admin
certificate is issued from the member's CA for the change (valid an hour, never stored),
signs an ``account_update`` (no vote: an organization vouches only for its own accounts),
and the transaction is submitted to an AVAILABLE validator and waited for.

Rules (docs/spec/control-api.md, "Accounts"):

- the bindings are read from the chain's configuration in force, never stored by the
  control plane: what the chain enforces is what is listed;
- every tenant that sees the network lists a member's accounts (the configuration is
  readable by every organization of the chain); only the member's own tenant (admins and
  owners) binds and unbinds them: another tenant's member is "not found";
- refusals, before anything is signed: a network of another profile 409
  ``not_quorum_network``; a member or network not AVAILABLE 409 ``member_not_available``
  / ``network_not_available``; a malformed address 422 ``invalid_address``; an address
  bound to this member already 409 ``account_already_bound``, to another member 409
  ``account_bound_elsewhere``; unbinding an address not bound to it 404
  ``account_not_bound``; no validator to take the change 503 ``chain_unavailable``; the
  chain refusing it (a race with another change) 409 ``account_change_refused``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from sqlalchemy.orm import Session

from consortia.control.services.chains import (
    CHAIN_ERRORS,
    admin_identity,
    open_member_ca,
    validators_of,
    why,
)
from consortia.control.services.context import Actor
from consortia.control.services.org_changes import commit_change
from consortia.control.services.scope import own_member, visible_member
from consortia.control.store.enums import NodeStatus, Profile, ResourceStatus, UserRole
from consortia.control.store.models import Member, Network
from consortia.sdk.tx import sign
from consortia.types.errors import ConfigError, Conflict, InvalidRequest, NotFound, Unavailable
from consortia.types.evm_config import parse_address
from consortia.types.tx import AccountUpdate

if TYPE_CHECKING:
    from consortia.control.services.control import Control


@dataclass(frozen=True, slots=True)
class BoundAccount:
    """An Ethereum address a member's organization transacts with, as the chain binds it."""

    address: str
    """EIP-55 checksummed."""
    network_id: str
    member_id: str
    org_id: str


@dataclass(frozen=True, slots=True)
class _Chain:
    chain_id: str
    api_url: str
    """An AVAILABLE validator's API: where bindings are read and changes submitted."""


def address_of(text: str) -> bytes:
    """The 20 bytes of ``0x`` + 40 hex digits (any case); 422 ``invalid_address``."""
    try:
        return parse_address(text)
    except ConfigError as exc:
        raise InvalidRequest(exc.message, code="invalid_address") from None


def checksummed(raw: bytes) -> str:
    return str(to_checksum_address(raw))


class AccountService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def list(self, actor: Actor, network_id: str, member_id: str) -> list[BoundAccount]:
        """The addresses the chain's configuration in force binds to the member's
        organization, in the order they were bound (to every tenant that sees the
        network)."""
        with self._c.transaction() as db:
            member = visible_member(db, actor.tenant_id, network_id, member_id)
            chain = _chain(db, member, require_available=False)
        return [BoundAccount(checksummed(raw), network_id, member.id, member.org_id)
                for raw, org in _bindings(self._c, chain) if org == member.org_id]

    def bind(self, actor: Actor, network_id: str, member_id: str,
             address: str) -> BoundAccount:
        """Bind ``address`` to the member's organization: an ``account_update`` add signed
        by the member's admin, answered once the chain committed it."""
        return self._change(actor, network_id, member_id, address, "add")

    def unbind(self, actor: Actor, network_id: str, member_id: str, address: str) -> None:
        """Unbind ``address`` from the member's organization (its transactions are refused
        once the change commits)."""
        self._change(actor, network_id, member_id, address, "remove")

    # --- helpers ---------------------------------------------------------------------------

    def _change(self, actor: Actor, network_id: str, member_id: str, address: str,
                op: str) -> BoundAccount:
        verb = "binding" if op == "add" else "unbinding"
        actor.require(UserRole.ADMIN, f"{verb} Ethereum accounts")
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
            raw = address_of(address)
            chain = _chain(db, member, require_available=True)
        shown = checksummed(raw)
        owner = dict(_bindings(self._c, chain)).get(raw)
        org_id = member.org_id
        if op == "add" and owner == org_id:
            raise Conflict(f"account {shown} is bound to member {member_id} already",
                           code="account_already_bound")
        if op == "add" and owner is not None:
            raise Conflict(f"account {shown} is bound to another member of the network",
                           code="account_bound_elsewhere")
        if op == "remove" and owner != org_id:
            raise NotFound(f"account {shown} is not bound to member {member_id}",
                           code="account_not_bound")
        try:
            admin = admin_identity(open_member_ca(self._c.box, member))
        except CHAIN_ERRORS as exc:
            raise Unavailable(f"could not open member {member_id}'s CA: {why(exc)}",
                              code="chain_unavailable") from None
        tx = sign(admin, chain.chain_id, AccountUpdate(op, org_id, (raw,)))
        where = "to" if op == "add" else "from"
        commit_change(self._c, chain.chain_id, chain.api_url, tx,
                      f"{'bind' if op == 'add' else 'unbind'} account {shown} {where} "
                      f"{org_id}", refused="account_change_refused")
        with self._c.transaction() as db:
            self._c.audit.record(db, actor, "account.bind" if op == "add"
                                 else "account.unbind", shown)
        return BoundAccount(shown, network_id, member_id, org_id)


def _bindings(control: Control, chain: _Chain) -> list[tuple[bytes, str]]:
    """(address, organization) of every binding of the configuration in force."""
    try:
        info = control.runtime.gateway.chain_info(chain.api_url)
        return [(address_of(str(a["address"])), str(a["org_id"]))
                for a in _evm_section(info)["accounts"]]
    except (InvalidRequest, TypeError) as exc:
        raise Unavailable(f"the chain's configuration could not be read: {exc}",
                          code="chain_unavailable") from None
    except CHAIN_ERRORS as exc:
        raise Unavailable(f"could not read the chain's configuration: {why(exc)}",
                          code="chain_unavailable") from None


def _evm_section(info: dict[str, Any]) -> dict[str, Any]:
    evm = info["config"].get("evm")
    if not isinstance(evm, dict):
        raise KeyError("the configuration in force has no evm section")
    return evm


def _chain(db: Session, member: Member, *, require_available: bool) -> _Chain:
    """Where the member's network's chain is read and changed; 409 for a network that is
    not quorum (or, to change it, a member or network not AVAILABLE), 503 when no validator
    is AVAILABLE."""
    network = db.get(Network, member.network_id)
    assert network is not None
    if network.profile is not Profile.QUORUM:
        raise Conflict(f"network {network.id} is an {network.profile.value} network; "
                       "Ethereum accounts belong to quorum networks",
                       code="not_quorum_network")
    if require_available:
        if network.status is not ResourceStatus.AVAILABLE:
            raise Conflict(f"network {network.id} is {network.status.value}",
                           code="network_not_available")
        if member.status is not ResourceStatus.AVAILABLE:
            raise Conflict(f"member {member.id} is {member.status.value}: its organization "
                           "is not on the chain", code="member_not_available")
    if network.genesis_hash is None:
        raise Unavailable(f"network {network.id} has no chain yet", code="chain_unavailable")
    api = next((v.api_endpoint for v in validators_of(db, network.id)
                if v.status is NodeStatus.AVAILABLE and v.api_endpoint), None)
    if api is None:
        raise Unavailable("no validator of the network is AVAILABLE", code="chain_unavailable")
    return _Chain(network.chain_id, api)
