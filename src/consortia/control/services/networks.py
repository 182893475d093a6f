"""Networks: a consortium chain with its profile, consensus and voting policy.

Rules (docs/spec/control-api.md, "Networks"):

- admins and owners create networks; the creating tenant is the network's operator;
- ``quick`` mode: the operator is also the first member, created with the network; its
  chain is built at once (genesis with the member's organization, ``validators``
  validators started through the provisioner) and the network is AVAILABLE when they all
  are. ``standard`` mode: the network record only (CREATING, "waiting for its first
  member"); the first member, created later, founds the chain;
- ``ant`` chains (notary) and ``quorum`` chains (EVM, Ethereum JSON-RPC; ADR 0029) can be
  built, with solo, raft or pbft; ``fabric`` is a valid profile refused with 422
  ``profile_not_available`` before anything is written;
- a quorum network has an EIP-155 chain id (``evm_chain_id``: given, or the lowest one
  from 1337 up that no network of this control plane ever had) and a block gas limit;
  chain ids are never reused (409 ``evm_chain_id_taken``), so a transaction signed for one
  of its chains cannot be replayed on another; EVM settings on another profile are 422
  ``evm_not_applicable``, out of range 422 ``invalid_evm_config``;
- a tenant's live networks have distinct names; deleting one takes its name typed back
  (``confirm_name``), stops its nodes, and leaves its rows (DELETED) and files;
- a network is visible to its operator and to every tenant with a member in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.chains import all_nodes_of
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
    require_confirmation,
)
from consortia.control.services.members import add_founder, founding_validators
from consortia.control.services.runtime import teardown
from consortia.control.services.scope import (
    LIVE,
    live_members,
    visible_network,
    visible_networks,
)
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    Consensus,
    NodeStatus,
    Profile,
    ResourceStatus,
    ThresholdComparator,
    UsageMode,
    UserRole,
)
from consortia.control.store.models import Member, Network, Node, Tenant
from consortia.types.errors import ConfigError, Conflict, Forbidden, InvalidRequest, NotFound
from consortia.types.evm_config import MAX_EVM_CHAIN_ID, EvmConfig

if TYPE_CHECKING:
    from consortia.control.services.control import Control

AVAILABLE_PROFILES = (Profile.ANT, Profile.QUORUM)
"""Profiles whose chains this release can build."""
DEFAULT_CONSENSUS = {Profile.ANT: Consensus.PBFT, Profile.FABRIC: Consensus.RAFT,
                     Profile.QUORUM: Consensus.RAFT}
"""DESIGN §2: each profile's default consensus."""
DEFAULT_EVM_CHAIN_ID = 1337
"""Where the default chain ids start: the one development tools (Hardhat, MetaMask's
localhost) expect, which the first quorum network of a control plane gets."""
DEFAULT_GAS_LIMIT = 30_000_000
WAITING = "waiting for its first member (POST /v1/networks/{id}/members), which founds its chain"


@dataclass(frozen=True, slots=True)
class NewNetwork:
    """What ``NetworkService.create`` is asked for."""

    name: str
    profile: Profile
    usage_mode: UsageMode
    description: str = ""
    consensus: Consensus | None = None
    """None: the profile's default (``DEFAULT_CONSENSUS``)."""
    threshold_percentage: int = 50
    threshold_comparator: ThresholdComparator = ThresholdComparator.GREATER_THAN
    proposal_duration_hours: int = 24
    validators: int | None = None
    """Quick mode: validators of the first member (None: the consensus's default)."""
    member_name: str | None = None
    """Quick mode: the first member's name (None: the tenant's name)."""
    member_description: str = ""
    evm_chain_id: int | None = None
    """Quorum: the EIP-155 chain id (None: the lowest free one from 1337 up)."""
    evm_gas_limit: int | None = None
    """Quorum: the block gas limit (None: 30 million)."""


@dataclass(frozen=True, slots=True)
class CreatedNetwork:
    network: Network
    member: Member | None
    """The operator's member, made with the network in quick mode."""


class NetworkService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, *, status: ResourceStatus | None = None, limit: int,
             page_token: str | None) -> Page[Network]:
        stmt = visible_networks(actor.tenant_id)
        if status is not None:
            stmt = stmt.where(Network.status == status)
        with self._c.transaction() as db:
            return paginate(db, stmt, Network, limit=limit, page_token=page_token)

    def get(self, actor: Actor, network_id: str) -> Network:
        with self._c.transaction() as db:
            return visible_network(db, actor.tenant_id, network_id)

    def genesis(self, actor: Actor, network_id: str) -> bytes:
        """The chain's genesis file (the trust anchor of its proofs)."""
        with self._c.transaction() as db:
            network = visible_network(db, actor.tenant_id, network_id)
        path = None if self._c.files is None else self._c.files.genesis_path(network.id)
        if network.genesis_hash is None or path is None or not path.is_file():
            raise NotFound(f"network {network_id} has no chain yet")
        return path.read_bytes()

    # --- changing --------------------------------------------------------------------------

    def create(self, actor: Actor, spec: NewNetwork,
               client_token: str | None = None) -> Created[CreatedNetwork]:
        actor.require(UserRole.ADMIN, "creating networks")
        if spec.profile not in AVAILABLE_PROFILES:
            raise InvalidRequest(
                f"the {spec.profile.value} profile is not available in this release (only "
                f"{', '.join(p.value for p in AVAILABLE_PROFILES)} chains can be created)",
                code="profile_not_available")
        if spec.threshold_percentage == 100 \
                and spec.threshold_comparator is ThresholdComparator.GREATER_THAN:
            raise InvalidRequest("no vote can be more than 100 %: use GREATER_THAN_OR_EQUAL_TO "
                                 "100 for unanimity", code="invalid_voting_policy")
        gas_limit = _check_evm(spec)
        consensus = spec.consensus or DEFAULT_CONSENSUS[spec.profile]
        quick = spec.usage_mode is UsageMode.QUICK
        count = founding_validators(consensus, spec.validators) if quick else 0
        if not quick and (spec.member_name is not None or spec.validators is not None
                          or spec.member_description):
            raise InvalidRequest("standard mode creates the network without a member; its "
                                 "first member (POST /v1/networks/{id}/members) chooses its "
                                 "name and validators")
        fp = fingerprint(self._c.fingerprint_key, "network.create", actor,
                         {**_params(spec), "consensus": consensus.value})
        runtime = self._c.runtime if quick else None
        if runtime is not None:
            runtime.start()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Network, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            taken = db.scalar(select(Network.id).where(
                Network.tenant_id == actor.tenant_id, Network.name == spec.name,
                Network.status.in_(LIVE)))
            if taken is not None:
                raise Conflict(f"the tenant already has a network named {spec.name!r} "
                               f"({taken})")
            evm_chain_id = None
            if spec.profile is Profile.QUORUM:
                evm_chain_id = _evm_chain_id(db, spec.evm_chain_id)
            network_id = new_id("net")
            network = Network(
                id=network_id, tenant_id=actor.tenant_id, name=spec.name,
                description=spec.description, chain_id=network_id, profile=spec.profile,
                consensus=consensus, usage_mode=spec.usage_mode,
                threshold_percentage=spec.threshold_percentage,
                threshold_comparator=spec.threshold_comparator,
                proposal_duration_hours=spec.proposal_duration_hours,
                evm_chain_id=evm_chain_id, evm_gas_limit=gas_limit,
                status=ResourceStatus.CREATING, status_reason=None if quick else WAITING,
                client_token=client_token, request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(network)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Network, actor.tenant_id, client_token))
                if existing is None:
                    if evm_chain_id is None:
                        raise
                    raise Conflict(f"EVM chain id {evm_chain_id} was just taken by another "
                                   "network; retry (or name another)",
                                   code="evm_chain_id_taken") from None
                return self._replay(db, actor, existing, fp, client_token or "")
            if runtime is not None:
                tenant = db.get(Tenant, actor.tenant_id)
                add_founder(
                    db, self._c, runtime, actor, network,
                    name=spec.member_name or (tenant.name if tenant else "member"),
                    description=spec.member_description, validators=count)
            self._c.audit.record(db, actor, "network.create", network.id)
        if runtime is not None:
            runtime.launch(network_id)
        with self._c.transaction() as db:
            return Created(CreatedNetwork(visible_network(db, actor.tenant_id, network_id),
                                          _first_member(db, actor, network_id)))

    def delete(self, actor: Actor, network_id: str, confirm_name: str | None) -> None:
        """Stop the network's nodes and mark it, its members and nodes DELETED."""
        actor.require(UserRole.ADMIN, "deleting networks")
        with self._c.transaction() as db:
            network = visible_network(db, actor.tenant_id, network_id)
            if network.tenant_id != actor.tenant_id:
                raise Forbidden("only the tenant that created a network deletes it; a "
                                "member leaves it by deleting its member",
                                code="not_network_creator")
            require_confirmation(confirm_name, network.name, f"network {network.id}")
            if network.status not in LIVE:
                raise Conflict(f"network {network.id} is {network.status.value} already")
            members = live_members(db, network_id)
            if any(m.tenant_id != actor.tenant_id for m in members):
                raise Conflict("other tenants are members of the network; it is deleted "
                               "when its last member leaves", code="network_has_members")
            nodes = [n.id for n in all_nodes_of(db, network_id)]
            network.status = ResourceStatus.DELETING
            for member in members:
                member.status = ResourceStatus.DELETING
            for node in db.scalars(select(Node).where(Node.id.in_(nodes))):
                node.status = NodeStatus.DELETING
            self._c.audit.record(db, actor, "network.delete", network.id)
        teardown(self._c, network_id, nodes, [m.id for m in members])

    # --- helpers ---------------------------------------------------------------------------

    def _replay(self, db: Session, actor: Actor, network: Network, fp: str,
                client_token: str) -> Created[CreatedNetwork]:
        check_replay(network.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "network.create", network.id)
        return Created(CreatedNetwork(network, _first_member(db, actor, network.id)),
                       replayed=True)



def _first_member(db: Session, actor: Actor, network_id: str) -> Member | None:
    return db.scalar(select(Member).where(Member.network_id == network_id,
                                          Member.tenant_id == actor.tenant_id)
                     .order_by(Member.created_at, Member.id).limit(1))


def _check_evm(spec: NewNetwork) -> int | None:
    """The block gas limit a network gets (None: not quorum); 422 for EVM settings on
    another profile or out of the range the chain accepts."""
    if spec.profile is not Profile.QUORUM:
        if spec.evm_chain_id is not None or spec.evm_gas_limit is not None:
            raise InvalidRequest(f"evm_chain_id and evm_gas_limit apply to quorum networks, "
                                 f"not {spec.profile.value} ones", code="evm_not_applicable")
        return None
    gas_limit = DEFAULT_GAS_LIMIT if spec.evm_gas_limit is None else spec.evm_gas_limit
    try:
        chain_id = DEFAULT_EVM_CHAIN_ID if spec.evm_chain_id is None else spec.evm_chain_id
        EvmConfig(chain_id, gas_limit).validate(set())
    except ConfigError as exc:
        raise InvalidRequest(exc.message, code="invalid_evm_config") from None
    return gas_limit


def _evm_chain_id(db: Session, asked: int | None) -> int:
    """``asked`` if no network of this control plane ever had it (409 otherwise), or the
    lowest such id from ``DEFAULT_EVM_CHAIN_ID`` up."""
    used = set(db.scalars(select(Network.evm_chain_id).where(
        Network.evm_chain_id.is_not(None))))
    if asked is not None:
        if asked in used:
            raise Conflict(f"EVM chain id {asked} belongs to another network of this control "
                           "plane (chain ids are never reused, so that a transaction signed "
                           "for one chain cannot be replayed on another)",
                           code="evm_chain_id_taken")
        return asked
    chain_id = DEFAULT_EVM_CHAIN_ID
    while chain_id in used:
        chain_id += 1
    if chain_id > MAX_EVM_CHAIN_ID:  # pragma: no cover - 2**53 networks
        raise Conflict("no EVM chain id left", code="evm_chain_id_taken")
    return chain_id


def _params(spec: NewNetwork) -> dict[str, object]:
    return {"name": spec.name, "profile": spec.profile.value,
            "usage_mode": spec.usage_mode.value, "description": spec.description,
            "threshold_percentage": spec.threshold_percentage,
            "threshold_comparator": spec.threshold_comparator.value,
            "proposal_duration_hours": spec.proposal_duration_hours,
            "validators": spec.validators, "member_name": spec.member_name,
            "member_description": spec.member_description,
            # only when given: the fingerprints of requests made before they existed hold
            **{k: v for k, v in (("evm_chain_id", spec.evm_chain_id),
                                 ("evm_gas_limit", spec.evm_gas_limit)) if v is not None}}
