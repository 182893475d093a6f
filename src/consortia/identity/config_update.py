"""Configuration transitions: a configuration transaction applied to the configuration in force.

The node's executor and the offline proof verifier both call ``apply``, so a
verifier rebuilds exactly the configuration the validators used.
"""

from __future__ import annotations

from consortia.identity.membership import Membership, load_crl
from consortia.types.config import ChainConfig, OrgConfig
from consortia.types.errors import ConfigError, Unauthorized
from consortia.types.tx import ConfigBody, CrlUpdate, Payload


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
    if isinstance(body, ConfigBody):
        raise ConfigError("full configuration replacement is only valid at genesis",
                          code="config_not_allowed")
    raise ConfigError("not a configuration transaction")
