"""Networks: a consortium chain with its profile, consensus and voting policy.

Rules (docs/spec/control-api.md, "Networks"):

- admins and owners create networks; the creating tenant is the network's operator;
- ``quick`` mode: the operator is also the first member, created with the network; its
  chain is built at once (genesis with the member's organization, ``validators``
  validators started through the provisioner) and the network is AVAILABLE when they all
  are. ``standard`` mode: the network record only (CREATING, "waiting for its first
  member"); the first member, created later, founds the chain;
- only ``ant`` chains (notary, solo/raft/pbft) exist in this release: ``fabric`` and
  ``quorum`` are valid profiles that are refused with 422 ``profile_not_available``
  before anything is written;
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
from consortia.types.errors import Conflict, Forbidden, InvalidRequest, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control

AVAILABLE_PROFILES = (Profile.ANT,)
"""Profiles whose chains this release can build."""
DEFAULT_CONSENSUS = {Profile.ANT: Consensus.PBFT, Profile.FABRIC: Consensus.RAFT,
                     Profile.QUORUM: Consensus.RAFT}
"""DESIGN §2: each profile's default consensus."""
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
            network_id = new_id("net")
            network = Network(
                id=network_id, tenant_id=actor.tenant_id, name=spec.name,
                description=spec.description, chain_id=network_id, profile=spec.profile,
                consensus=consensus, usage_mode=spec.usage_mode,
                threshold_percentage=spec.threshold_percentage,
                threshold_comparator=spec.threshold_comparator,
                proposal_duration_hours=spec.proposal_duration_hours,
                status=ResourceStatus.CREATING, status_reason=None if quick else WAITING,
                client_token=client_token, request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(network)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, Network, actor.tenant_id, client_token))
                if existing is None:
                    raise
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


def _params(spec: NewNetwork) -> dict[str, object]:
    return {"name": spec.name, "profile": spec.profile.value,
            "usage_mode": spec.usage_mode.value, "description": spec.description,
            "threshold_percentage": spec.threshold_percentage,
            "threshold_comparator": spec.threshold_comparator.value,
            "proposal_duration_hours": spec.proposal_duration_hours,
            "validators": spec.validators, "member_name": spec.member_name,
            "member_description": spec.member_description}
