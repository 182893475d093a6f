"""Configuration transitions: a configuration transaction applied to the configuration in force.

The node's executor and the offline proof verifier both call ``apply``, so a
verifier rebuilds exactly the configuration the validators used.
"""

from __future__ import annotations

from dataclasses import replace

from consortia.identity.membership import Membership, check_ca_certificate, load_crl
from consortia.types.config import (
    MAX_ORGS,
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import ConfigError, Unauthorized
from consortia.types.evm_config import AccountBinding
from consortia.types.tx import (
    AccountUpdate,
    ConfigBody,
    CrlUpdate,
    OrgUpdate,
    Payload,
    ValidatorUpdate,
)


def apply(config: ChainConfig, membership: Membership, signer_cert: bytes,
          payload: Payload) -> ChainConfig:
    """The configuration after ``payload``; raises ``ConfigError``/``Unauthorized`` if refused."""
    body = payload.body
    if isinstance(body, CrlUpdate):
        signer = membership.validate(signer_cert, (config.policies.config_role,),
                                     payload.timestamp_ms)
        if signer.org_id != body.org_id:
            raise Unauthorized(f"an admin of {signer.org_id} cannot publish {body.org_id}'s CRL",
                               code="wrong_role")
        org_cert = membership.org_certificate(body.org_id)
        _, number = load_crl(org_cert, body.crl_der)
        current = membership.org_crl_number(body.org_id)
        if number <= current:
            raise ConfigError(f"CRL number {number} is not newer than the one in force ({current})",
                              code="stale_crl")
        org = config.org(body.org_id)
        assert org is not None  # org_certificate above proved it exists
        return config.with_org(OrgConfig(org.id, org.ca_cert, body.crl_der))
    if isinstance(body, ValidatorUpdate):
        return _validator_update(config, membership, signer_cert, payload, body)
    if isinstance(body, OrgUpdate):
        return _org_update(config, membership, signer_cert, payload, body)
    if isinstance(body, AccountUpdate):
        return _account_update(config, membership, signer_cert, payload, body)
    if isinstance(body, ConfigBody):
        raise ConfigError("full configuration replacement is only valid at genesis",
                          code="config_not_allowed")
    raise ConfigError("not a configuration transaction")


def approving_orgs(config: ChainConfig, membership: Membership, signer_cert: bytes,
                   payload: Payload, body: ValidatorUpdate | OrgUpdate) -> set[str]:
    """The organizations whose admins approved ``body``: the signer's, and one per valid
    approval (an admin of the configuration's role, of an organization in force, unrevoked
    and valid at the payload's time, signature over ``body.approval_message``). An invalid
    approval is refused, not skipped: whoever assembled the transaction should learn which
    one is wrong. Several approvals of one organization count once."""
    roles = (config.policies.config_role,)
    at = payload.timestamp_ms
    orgs = {membership.validate(signer_cert, roles, at).org_id}
    message = body.approval_message(config.chain_id)
    for i, a in enumerate(body.approvals):
        try:
            member = membership.validate(a.cert, roles, at)
        except Unauthorized as exc:
            raise Unauthorized(f"approval {i}: {exc.message}", code=exc.code) from None
        if not membership.suite.verify(member.public_key, message, a.signature):
            raise Unauthorized(f"approval {i} (an admin of {member.org_id}) has a bad "
                               "signature", code="bad_signature")
        orgs.add(member.org_id)
    return orgs


def _validator_update(config: ChainConfig, membership: Membership, signer_cert: bytes,
                      payload: Payload, body: ValidatorUpdate) -> ChainConfig:
    if config.consensus is ConsensusKind.SOLO:
        raise ConfigError("a solo chain has exactly one validator; its set cannot change",
                          code="config_not_allowed")
    if body.sequence != config.sequence:
        raise ConfigError(f"the change was approved against configuration {body.sequence}, "
                          f"the one in force is {config.sequence}", code="stale_config")
    orgs = approving_orgs(config, membership, signer_cert, payload, body)
    need = len(config.organizations) // 2 + 1
    if len(orgs) < need:
        raise Unauthorized(f"changing the validators needs the admins of {need} of "
                           f"{len(config.organizations)} organizations; "
                           f"{len(orgs)} approved ({', '.join(sorted(orgs))})",
                           code="not_enough_approvals")
    current = config.validator(body.validator_id)
    if body.op == "remove":
        if current is None:
            raise ConfigError(f"{body.validator_id} is not a validator", code="unknown_validator")
        if len(config.validators) == 1:
            raise ConfigError("the last validator cannot be removed", code="config_not_allowed")
        return config.with_validators(tuple(v for v in config.validators
                                            if v.id != body.validator_id))
    if current is not None:
        raise ConfigError(f"{body.validator_id} is a validator already",
                          code="duplicate_validator")
    member = membership.validate(body.cert, (Role.VALIDATOR,), payload.timestamp_ms)
    if member.org_id != body.org_id:
        raise ConfigError(f"the certificate of {body.validator_id} belongs to "
                          f"{member.org_id}, not {body.org_id}", code="wrong_org")
    new = ValidatorConfig(body.validator_id, body.org_id, body.cert, body.endpoint)
    updated = config.with_validators((*config.validators, new))
    updated.validate()
    return updated


def _org_update(config: ChainConfig, membership: Membership, signer_cert: bytes,
                payload: Payload, body: OrgUpdate) -> ChainConfig:
    """Add or remove an organization, voted under ``policies.membership``."""
    if body.sequence != config.sequence:
        raise ConfigError(f"the change was approved against configuration {body.sequence}, "
                          f"the one in force is {config.sequence}", code="stale_config")
    orgs = approving_orgs(config, membership, signer_cert, payload, body)
    policy = config.policies.membership
    total = len(config.organizations)
    if not policy.satisfied(len(orgs), total):
        raise Unauthorized(f"changing the organizations needs the approval of "
                           f"{policy.describe()} in force ({total}); {len(orgs)} approved "
                           f"({', '.join(sorted(orgs))})", code="not_enough_approvals")
    if body.op == "remove":
        if config.org(body.org_id) is None:
            raise ConfigError(f"{body.org_id} is not an organization of this chain",
                              code="unknown_org")
        if total == 1:
            raise ConfigError("the last organization cannot be removed", code="last_org")
        held = [v.id for v in config.validators if v.org_id == body.org_id]
        if held:
            raise ConfigError(f"{body.org_id} still runs validators ({', '.join(held)}); "
                              "remove them first", code="org_has_validators")
        without = config.with_organizations(tuple(o for o in config.organizations
                                                  if o.id != body.org_id))
        if without.evm is not None:  # a removed organization's accounts go with it
            without = replace(without, evm=without.evm.with_accounts(tuple(
                a for a in without.evm.accounts if a.org_id != body.org_id)))
        return without
    if config.org(body.org_id) is not None:
        raise ConfigError(f"{body.org_id} is an organization already", code="duplicate_org")
    if total >= MAX_ORGS:
        raise ConfigError(f"a chain has at most {MAX_ORGS} organizations", code="too_many_orgs")
    check_ca_certificate(body.ca_cert, body.org_id, membership.suite, payload.timestamp_ms)
    updated = config.with_organizations((*config.organizations,
                                         OrgConfig(body.org_id, body.ca_cert)))
    updated.validate()
    try:
        Membership(updated, membership.suite)  # the new root must load beside the others
    except ConfigError as exc:
        raise ConfigError(exc.message, code="invalid_ca_cert") from exc
    return updated


def _account_update(config: ChainConfig, membership: Membership, signer_cert: bytes,
                    payload: Payload, body: AccountUpdate) -> ChainConfig:
    """Bind or unbind an organization's own Ethereum accounts (ADR 0025)."""
    if config.evm is None:
        raise ConfigError("only quorum chains bind Ethereum accounts", code="config_not_allowed")
    signer = membership.validate(signer_cert, (config.policies.config_role,),
                                 payload.timestamp_ms)
    if signer.org_id != body.org_id:
        raise Unauthorized(f"an admin of {signer.org_id} cannot bind {body.org_id}'s accounts",
                           code="wrong_role")
    accounts = config.evm.accounts
    for address in body.addresses:
        owner = config.evm.org_of(address)
        if body.op == "add" and owner is not None:
            raise ConfigError(f"account 0x{address.hex()} is bound to {owner} already",
                              code="account_bound")
        if body.op == "remove" and owner != body.org_id:
            raise ConfigError(f"account 0x{address.hex()} is not bound to {body.org_id}",
                              code="unknown_account")
    if body.op == "add":
        accounts = (*accounts, *(AccountBinding(a, body.org_id) for a in body.addresses))
    else:
        gone = set(body.addresses)
        accounts = tuple(a for a in accounts if a.address not in gone)
    updated = config.with_evm(config.evm.with_accounts(accounts))
    updated.validate()
    return updated
