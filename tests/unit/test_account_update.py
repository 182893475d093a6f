"""The EVM section of a quorum chain's configuration and ``AccountUpdate``, the
configuration transaction that binds Ethereum accounts to an organization (ADR 0025): who
may bind what, what is refused with which code, and that chains without an EVM section keep
their configuration bytes (and so their hashes) exactly as before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consortia.identity.config_update import apply
from consortia.identity.membership import Membership
from consortia.node.views import body_view
from consortia.sdk.tx import SignedTx, approve, sign
from consortia.types.codec import decode, encode
from consortia.types.config import ChainConfig, ConsensusKind, Profile, ValidatorConfig
from consortia.types.errors import ConfigError, Malformed, Unauthorized
from consortia.types.evm_config import (
    AccountBinding,
    EvmConfig,
    GenesisAccount,
    parse_address,
)
from consortia.types.tx import (
    AccountUpdate,
    Envelope,
    OrgUpdate,
    Payload,
    TxType,
    decode_body,
    encode_body,
)
from tests.unit.conftest import CHAIN_ID, NOW_MS, Org, make_org

A1, A2, A3 = (bytes([i]) * 20 for i in (1, 2, 3))


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    return {o: make_org(o, validator=o == "org1") for o in ("org1", "org2", "org3")}


def _config(orgs: dict[str, Org], evm: EvmConfig | None = None,
            profile: Profile = Profile.QUORUM) -> ChainConfig:
    return ChainConfig(
        chain_id=CHAIN_ID, profile=profile, suite="p256-sha256", consensus=ConsensusKind.RAFT,
        organizations=tuple(o.org_config() for o in orgs.values()),
        validators=(ValidatorConfig("validator0", "org1", orgs["org1"]["validator0"].cert_der),),
        evm=evm)


def _evm(**kw: object) -> EvmConfig:
    base = EvmConfig(chain_id=1337, gas_limit=30_000_000,
                     alloc=(GenesisAccount(A1, 10**24), GenesisAccount(A2, 2**256 - 1)),
                     accounts=(AccountBinding(A1, "org1"),))
    return replace(base, **kw)  # type: ignore[arg-type]


def _apply(config: ChainConfig, tx: SignedTx) -> ChainConfig:
    env = Envelope.decode(tx.envelope)
    return apply(config, Membership(config), env.signer, Payload.decode(env.payload))


def _bind(orgs: dict[str, Org], signer: str, update: AccountUpdate) -> SignedTx:
    return sign(orgs[signer]["admin"], CHAIN_ID, update, timestamp_ms=NOW_MS)


def test_the_evm_section_round_trips_and_old_configurations_keep_their_bytes(
        orgs: dict[str, Org]) -> None:
    config = _config(orgs, _evm())
    config.validate()
    assert ChainConfig.decode(config.encode()) == config
    fields = decode(config.encode())
    assert fields[0] == 4 and len(fields) == 11
    assert fields[10][2][1] == [A2, b"\xff" * 32]  # balances are 32-byte words
    plain = _config(orgs, None, Profile.ANT)
    assert decode(plain.encode())[0] == 3 and len(decode(plain.encode())) == 10
    assert ChainConfig.decode(plain.encode()) == plain
    assert config.summary()["evm"]["accounts"] == [{"address": "0x" + "01" * 20,
                                                    "org_id": "org1"}]


def test_the_evm_section_is_checked(orgs: dict[str, Org]) -> None:
    with pytest.raises(ConfigError, match="quorum chain needs an evm section"):
        _config(orgs, None).validate()
    with pytest.raises(ConfigError, match="other profiles have none"):
        _config(orgs, _evm(), Profile.ANT).validate()
    for bad, message in ((_evm(chain_id=0), "chain id"),
                         (_evm(gas_limit=21_000), "gas limit"),
                         (_evm(alloc=(GenesisAccount(A1, 1), GenesisAccount(A1, 2))), "twice"),
                         (_evm(alloc=(GenesisAccount(A1, 2**256),)), "256 bits"),
                         (_evm(accounts=(AccountBinding(A3, "org9"),)), "unknown organization"),
                         (_evm(accounts=(AccountBinding(b"\x01" * 19, "org1"),)), "20 bytes"),
                         (_evm(accounts=(AccountBinding(A3, "org1"),
                                         AccountBinding(A3, "org2"))), "bound twice")):
        with pytest.raises(ConfigError, match=message):
            _config(orgs, bad).validate()


def test_decoding_the_evm_section_is_strict(orgs: dict[str, Org]) -> None:
    good = decode(_config(orgs, _evm()).encode())
    for mutate in (lambda f: f[10].pop(),                       # a field missing
                   lambda f: f[10][2][0].__setitem__(1, b"\x01"),  # a balance not 32 bytes
                   lambda f: f[10][3][0].__setitem__(0, b"\x01" * 21),  # a long address
                   lambda f: f[10].__setitem__(0, 2**60),        # chain id past 2**53 - 1
                   lambda f: f.__setitem__(0, 5)):               # an unknown version
        f = decode(encode(good))
        mutate(f)
        with pytest.raises(Malformed):
            ChainConfig.decode(encode(f))


def test_an_admin_binds_and_unbinds_its_own_accounts(orgs: dict[str, Org]) -> None:
    config = _config(orgs, _evm())
    after = _apply(config, _bind(orgs, "org2", AccountUpdate("add", "org2", (A2, A3))))
    assert after.evm is not None and after.sequence == config.sequence + 1
    assert (after.evm.org_of(A1), after.evm.org_of(A2), after.evm.org_of(A3)) == \
        ("org1", "org2", "org2")
    assert after.evm.alloc == config.evm.alloc  # type: ignore[union-attr]
    back = _apply(after, _bind(orgs, "org2", AccountUpdate("remove", "org2", (A3,))))
    assert back.evm is not None and back.evm.org_of(A3) is None and back.evm.org_of(A2) == "org2"


def test_refusals_name_their_reason(orgs: dict[str, Org]) -> None:
    config = _config(orgs, _evm())
    cases: list[tuple[str, AccountUpdate, type[Exception], str]] = [
        ("org2", AccountUpdate("add", "org1", (A3,)), Unauthorized, "wrong_role"),
        ("org2", AccountUpdate("add", "org2", (A1,)), ConfigError, "account_bound"),
        ("org1", AccountUpdate("add", "org1", (A1,)), ConfigError, "account_bound"),
        ("org2", AccountUpdate("remove", "org2", (A1,)), ConfigError, "unknown_account"),
        ("org1", AccountUpdate("remove", "org1", (A3,)), ConfigError, "unknown_account"),
    ]
    for signer, update, exc, code in cases:
        with pytest.raises(exc) as err:
            _apply(config, _bind(orgs, signer, update))
        assert err.value.code == code, (update, err.value)  # type: ignore[attr-defined]
    # A client (not an admin) of the organization cannot bind its accounts either.
    with pytest.raises(Unauthorized):
        _apply(config, sign(orgs["org2"]["alice"], CHAIN_ID,
                            AccountUpdate("add", "org2", (A3,)), timestamp_ms=NOW_MS))
    # Chains of other profiles have no accounts to bind.
    ant = _config(orgs, None, Profile.ANT)
    with pytest.raises(ConfigError) as err:
        _apply(ant, _bind(orgs, "org2", AccountUpdate("add", "org2", (A3,))))
    assert err.value.code == "config_not_allowed"


def test_removing_an_organization_unbinds_its_accounts(orgs: dict[str, Org]) -> None:
    config = _config(orgs, _evm(accounts=(AccountBinding(A1, "org1"),
                                          AccountBinding(A3, "org3"))))
    update = OrgUpdate("remove", "org3", b"", config.sequence)
    tx = sign(orgs["org1"]["admin"], CHAIN_ID,
              replace(update, approvals=(approve(orgs["org2"]["admin"], CHAIN_ID, update),)),
              timestamp_ms=NOW_MS)
    after = _apply(config, tx)
    assert after.evm is not None and after.evm.accounts == (AccountBinding(A1, "org1"),)


def test_the_body_codec_is_strict_and_viewable() -> None:
    body = AccountUpdate("add", "org2", (A2, A3))
    assert decode_body(TxType.ACCOUNT_UPDATE, encode_body(body)) == body
    assert TxType.ACCOUNT_UPDATE.is_config
    for bad in (["add", "org2", []], ["bind", "org2", [A2]], ["add", "org2", [A2, A2]],
                ["add", "org2", [b"\x02" * 19]], ["add", "", [A2]], ["add", "org2"]):
        with pytest.raises(Malformed):
            decode_body(TxType.ACCOUNT_UPDATE, bad)
    view = body_view(Payload(CHAIN_ID, TxType.ACCOUNT_UPDATE, b"\0" * 16, NOW_MS, body))
    assert view["addresses"] == ["0x" + "02" * 20, "0x" + "03" * 20]


def test_parse_address() -> None:
    assert parse_address("0x" + "Ab" * 20) == bytes([0xAB]) * 20
    for bad in ("ab" * 20, "0x" + "ab" * 19, "0x" + "zz" * 20, ""):
        with pytest.raises(ConfigError):
            parse_address(bad)
