"""Organization changes on a running chain, signed for the members that voted for them.

A proposal's YES votes are the members' consent; the control plane, which holds each
member's CA, turns them into signatures: an admin certificate is issued from the CA of
every member that voted YES (valid an hour, never stored), the first signs the
configuration transaction and the others approve it. The chain checks the approvals
against its own copy of the voting rule (``MembershipPolicy``, written into genesis from
the network's voting policy), so a control plane cannot add or remove an organization the
members did not vote for.

- ``add_organization``: an ``OrgUpdate`` *add* carrying the new member's CA certificate.
- ``remove_organization``: the member's validators leave the validator set first, one
  ``ValidatorUpdate`` each (a raft or pbft set changes one node at a time), then an
  ``OrgUpdate`` *remove*; a change the chain already made (an earlier attempt that
  committed) is skipped, so a retried removal finishes the job.

Each transaction is bound to the configuration in force, read from the validator it is
submitted to, and waited for; a refusal raises ``Conflict`` (``org_change_refused``), a
chain that cannot take it now ``Unavailable`` (``chain_unavailable``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from consortia.control.services.chains import (
    CHAIN_ERRORS,
    admin_identity,
    member_ca_der,
    open_member_ca,
    validator_change,
    validators_of,
    why,
)
from consortia.control.store.enums import NodeStatus
from consortia.control.store.models import Member, Network, Node
from consortia.sdk.client import NodeError
from consortia.sdk.identity import Identity
from consortia.sdk.tx import SignedTx, org_update
from consortia.types.errors import Conflict, Unavailable
from consortia.types.tx import OrgUpdate

if TYPE_CHECKING:
    from consortia.control.services.control import Control



@dataclass(frozen=True)
class _Target:
    chain_id: str
    api_url: str
    """An AVAILABLE validator's API, where the change is submitted."""
    approvers: list[Member]


def _target(db: Session, network_id: str, approver_ids: list[str],
            leaving: str | None = None) -> _Target:
    network = db.get(Network, network_id)
    assert network is not None
    approvers = [m for m in (db.get(Member, i) for i in approver_ids)
                 if m is not None and m.ca_key_sealed is not None]
    if not approvers:
        raise Conflict("no member that voted for the change can sign it",
                       code="org_change_refused")
    api = next((v.api_endpoint for v in validators_of(db, network_id)
                if v.status is NodeStatus.AVAILABLE and v.api_endpoint
                and v.member_id != leaving), None)
    if api is None:
        raise Unavailable("no validator of the network is AVAILABLE to take the "
                          "configuration change", code="chain_unavailable")
    return _Target(network.chain_id, api, approvers)


def _commit(control: Control, target: _Target, build: Callable[[int], SignedTx],
            what: str, *, done_when: str | None = None,
            refused: str = "org_change_refused") -> None:
    """Build the transaction against the sequence in force, submit it, wait for it.
    ``done_when``: the chain's refusal code meaning the change is made already;
    ``refused``: the code of the ``Conflict`` a refusal raises."""
    gateway = control.runtime.gateway
    try:
        sequence = int(gateway.chain_info(target.api_url)["config"]["sequence"])
        tx = build(sequence)
        receipt = gateway.commit(target.api_url, tx,
                                 timeout=control.settings.chain_timeout_seconds)
    except NodeError as exc:  # refused at admission (the node dry-runs the change)
        if done_when is not None and exc.code == done_when:
            return
        if 400 <= exc.status < 500 and exc.status != 429:
            raise Conflict(f"could not {what}: the chain refused it ({exc.code}: "
                           f"{exc.message})", code=refused) from None
        raise Unavailable(f"could not {what}: {why(exc)}", code="chain_unavailable") from None
    except CHAIN_ERRORS as exc:
        raise Unavailable(f"could not {what}: {why(exc)}", code="chain_unavailable") from None
    status, error = receipt.get("status"), receipt.get("error")
    if status == "committed" or (done_when is not None and error == done_when):
        return
    message = (f"could not {what}: transaction {tx.id_hex} {status}"
               + (f" ({error})" if error else ""))
    if status == "pending":
        raise Unavailable(message, code="chain_unavailable")
    raise Conflict(message, code=refused)


def commit_change(control: Control, chain_id: str, api_url: str, tx: SignedTx, what: str,
                  *, refused: str) -> None:
    """Submit a configuration transaction signed already (one that binds no sequence, such
    as an ``account_update``) to the validator at ``api_url`` and wait for it: ``Conflict``
    ``refused`` if the chain refuses it, ``Unavailable`` (``chain_unavailable``) if it
    cannot take it now."""
    _commit(control, _Target(chain_id, api_url, []), lambda _seq: tx, what, refused=refused)


def _admins(control: Control, approvers: list[Member]) -> list[Identity]:
    """One admin identity per approving member, issued from its CA for this change."""
    try:
        return [admin_identity(open_member_ca(control.box, m)) for m in approvers]
    except CHAIN_ERRORS as exc:
        raise Unavailable(f"could not open the approving members' CAs: {why(exc)}",
                          code="chain_unavailable") from None


def add_organization(control: Control, network_id: str, member_id: str,
                     approver_ids: list[str]) -> None:
    """Add member ``member_id``'s organization (its CA) to the chain, signed for the
    members ``approver_ids`` (those that voted YES)."""
    with control.transaction() as db:
        target = _target(db, network_id, approver_ids)
        member = db.get(Member, member_id)
        assert member is not None
        ca_der = member_ca_der(member)
        org_id = member.org_id
    admins = _admins(control, target.approvers)
    _commit(control, target,
            lambda seq: org_update(admins, target.chain_id,
                                   OrgUpdate("add", org_id, ca_der, seq)),
            f"add organization {org_id} to the chain", done_when="duplicate_org")


def remove_organization(control: Control, network_id: str, member_id: str,
                        approver_ids: list[str]) -> list[str]:
    """Remove member ``member_id``'s validators from the validator set, then its
    organization from the chain; the ids of its validators (to stop)."""
    with control.transaction() as db:
        target = _target(db, network_id, approver_ids, leaving=member_id)
        member = db.get(Member, member_id)
        assert member is not None
        org_id = member.org_id
        leaving: list[Node] = [v for v in validators_of(db, network_id)
                               if v.member_id == member_id]
        staying = [v for v in validators_of(db, network_id) if v.member_id != member_id]
        if leaving and not staying:
            raise Conflict(f"member {member_id} runs every validator of the chain: the "
                           "others must add validators before it can leave",
                           code="org_change_refused")
    admins = _admins(control, target.approvers)
    for node in leaving:
        if node.provisioner_ref is None:
            continue  # never joined the chain

        def removal(seq: int, node: Node = node) -> SignedTx:
            return validator_change(admins, target.chain_id, "remove", node, org_id, b"", seq)

        _commit(control, target, removal, f"remove validator {node.id} of {org_id}",
                done_when="unknown_validator")
    _commit(control, target,
            lambda seq: org_update(admins, target.chain_id, OrgUpdate("remove", org_id, b"",
                                                                      seq)),
            f"remove organization {org_id} from the chain", done_when="unknown_org")
    return [n.id for n in leaving]


def change_channel_organization(control: Control, chain_id: str, api_url: str,
                                approvers: list[Member], op: str, member: Member) -> None:
    """Add (``op="add"``, with its CA certificate) or remove ``member``'s organization on a
    channel's chain ``chain_id`` through the validator at ``api_url``, signed for
    ``approvers`` (channel members whose admins approve). A change the chain made already
    (an earlier attempt that committed) counts as done."""
    if not approvers:
        raise Conflict("no member of the channel can sign the change",
                       code="org_change_refused")
    ca_der = member_ca_der(member) if op == "add" else b""
    admins = _admins(control, approvers)
    org_id = member.org_id
    where = "to" if op == "add" else "from"
    _commit(control, _Target(chain_id, api_url, approvers),
            lambda seq: org_update(admins, chain_id, OrgUpdate(op, org_id, ca_der, seq)),
            f"{op} organization {org_id} {where} channel {chain_id}",
            done_when="duplicate_org" if op == "add" else "unknown_org")
