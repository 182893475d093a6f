"""Validator set changes as configuration transactions (``identity.config_update``): who
must approve, and what is refused. The same ``apply`` runs in admission, execution and
offline proof verification."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from consortia.identity.config_update import apply
from consortia.identity.membership import Membership
from consortia.ledger.genesis import load_genesis
from consortia.sdk import init_network
from consortia.sdk.network import LocalNetwork
from consortia.sdk.tx import SignedTx, approve, sign, validator_update
from consortia.types.config import ChainConfig, Role
from consortia.types.errors import ConfigError, Unauthorized
from consortia.types.tx import Envelope, Payload, ValidatorUpdate


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    root = Path(tmp_path_factory.mktemp("net"))
    return init_network(root, chain_id="vu", orgs=["org1", "org2", "org3"],
                        consensus="pbft", validators=4, port=21000, p2p_port=21100)


def _config(net: LocalNetwork) -> ChainConfig:
    return load_genesis(net.genesis_path).config


def _apply(net: LocalNetwork, tx: SignedTx) -> ChainConfig:
    config = _config(net)
    env = Envelope.decode(tx.envelope)
    return apply(config, Membership(config), env.signer, Payload.decode(env.payload))


def _add(net: LocalNetwork, name: str, org: str = "org2", sequence: int = 0) -> ValidatorUpdate:
    ident = net.new_identity(org, name, Role.VALIDATOR)
    return ValidatorUpdate("add", name, org, ident.cert_der, "127.0.0.1:21200", sequence)


def _admins(net: LocalNetwork, *orgs: str) -> list:
    return [net.identity(f"{o}/admin") for o in orgs]


def test_a_majority_of_organizations_adds_and_removes_a_validator(net: LocalNetwork) -> None:
    body = _add(net, "v-new")
    after = _apply(net, validator_update(_admins(net, "org2", "org1"), net.chain_id, body))
    assert after.validator("v-new") is not None and after.sequence == 1
    assert after.validator("v-new").endpoint == "127.0.0.1:21200"
    removal = ValidatorUpdate("remove", "validator0", "org1", b"", "", 0)
    after = _apply(net, validator_update(_admins(net, "org3", "org1"), net.chain_id, removal))
    assert after.validator("validator0") is None and len(after.validators) == 3


def test_one_organization_alone_cannot_change_the_set(net: LocalNetwork) -> None:
    body = _add(net, "v-alone")
    with pytest.raises(Unauthorized, match="needs the admins of 2 of 3") as err:
        _apply(net, validator_update(_admins(net, "org2"), net.chain_id, body))
    assert err.value.code == "not_enough_approvals"
    # Two approvals from the same organization still count once.
    twice = replace(body, approvals=(approve(net.identity("org2/admin"), net.chain_id, body),))
    with pytest.raises(Unauthorized):
        _apply(net, validator_update(_admins(net, "org2"), net.chain_id, twice))


def test_refusals(net: LocalNetwork) -> None:
    admins = _admins(net, "org1", "org2")
    body = _add(net, "v-x", org="org2")
    cases = [
        (replace(body, sequence=5), ConfigError, "stale_config"),
        (replace(body, org_id="org1"), ConfigError, "wrong_org"),
        (replace(body, validator_id="validator1"), ConfigError, "duplicate_validator"),
        (ValidatorUpdate("remove", "nobody", "org1", b"", "", 0), ConfigError,
         "unknown_validator"),
        (replace(body, cert=net.identity("org2/alice").cert_der), Unauthorized, "wrong_role"),
    ]
    for update, exc, code in cases:
        with pytest.raises(exc) as err:
            _apply(net, validator_update(admins, net.chain_id, update))
        assert err.value.code == code, update
    # An approval whose signature does not cover this change.
    other = replace(body, endpoint="10.0.0.1:1")
    forged = replace(body, approvals=(approve(net.identity("org2/admin"), net.chain_id,
                                              other),))
    with pytest.raises(Unauthorized) as err:
        _apply(net, sign(net.identity("org1/admin"), net.chain_id, forged))
    assert err.value.code == "bad_signature"
    # A client may not sign a configuration change.
    with pytest.raises(Unauthorized):
        _apply(net, validator_update([net.identity("org1/alice"), *admins[1:]],
                                     net.chain_id, body))
