"""The Ethereum accounts of a local ``quorum`` network (``init_network(profile="quorum")``).

A quorum chain admits an Ethereum transaction only from an address bound to an
organization in its configuration (ADR 0025). So that a new development network can
transact at once, ``init_network`` gives every organization ``accounts_per_org`` accounts,
bound to it and funded in the genesis ``alloc``, their keys written as encrypted key files
(Web3 Secret Storage v3, ``consortia.sdk.evm.keys``)::

    orgs/<org>/accounts/UTC--<time>--<address>     one key file per account (mode 0600)
    orgs/<org>/account-password                    random, mode 0600; encrypts those files

The key files get a password of their own, not the organization's ``passphrase``: they are
handed to Ethereum tooling (``consortia contract --password-file``, Hardhat, Foundry,
web3 scripts), and handing out their password must not also hand out the key of the
organization's CA and admin identity. ``network.json`` records each account
(``accounts: {address: {org, key_file}}``) so ``LocalNetwork.accounts`` finds them without
reading every directory; the chain's configuration, not this record, decides what is bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from consortia.sdk.evm.keys import new_key
from consortia.types.errors import ConfigError
from consortia.types.evm_config import (
    MAX_ACCOUNTS,
    MAX_BALANCE,
    AccountBinding,
    EvmConfig,
    GenesisAccount,
    parse_address,
)

ACCOUNTS_DIR = "accounts"
"""Directory of an organization's key files, under ``orgs/<org>/``."""
PASSWORD_FILE = "account-password"  # noqa: S105 - the file's name, not a password
"""File of the password of an organization's key files, under ``orgs/<org>/``."""
DEFAULT_EVM_CHAIN_ID = 1337
"""The chain id development tools (Hardhat, ganache, MetaMask's localhost) expect."""
DEFAULT_GAS_LIMIT = 30_000_000
DEFAULT_ACCOUNTS_PER_ORG = 1
DEFAULT_BALANCE = 10**24
"""Wei each genesis account holds (a million ether): gas is free on a quorum chain, but a
transaction's ``value`` still moves balance."""
MAX_ACCOUNTS_PER_ORG = 100
"""More is a load test, not a development network; each key file costs a scrypt run."""


@dataclass(frozen=True)
class NetworkAccount:
    """An Ethereum account whose key file a local network keeps."""

    address: str
    """EIP-55 checksummed address."""
    org: str
    """The organization it was made for (and, at genesis, bound to)."""
    key_file: Path
    """Its encrypted key file; the password is ``orgs/<org>/account-password``."""


@dataclass(frozen=True)
class EvmPlan:
    """The quorum-only arguments of ``init_network``, checked before anything is written."""

    chain_id: int
    gas_limit: int
    accounts_per_org: int
    balance: int


def evm_plan(orgs: Sequence[str], *, chain_id: int | None, gas_limit: int | None,
             accounts_per_org: int | None, balance: int | None) -> EvmPlan:
    """The EVM settings ``init_network`` uses (defaults filled in); ``ConfigError`` for a
    value the chain would refuse, so a bad argument writes nothing."""
    plan = EvmPlan(DEFAULT_EVM_CHAIN_ID if chain_id is None else chain_id,
                   DEFAULT_GAS_LIMIT if gas_limit is None else gas_limit,
                   DEFAULT_ACCOUNTS_PER_ORG if accounts_per_org is None else accounts_per_org,
                   DEFAULT_BALANCE if balance is None else balance)
    if not 0 <= plan.accounts_per_org <= MAX_ACCOUNTS_PER_ORG:
        raise ConfigError(f"accounts per organization must be 0..{MAX_ACCOUNTS_PER_ORG} "
                          f"(asked for {plan.accounts_per_org})")
    if plan.accounts_per_org * len(orgs) > MAX_ACCOUNTS:
        raise ConfigError(f"a chain binds at most {MAX_ACCOUNTS} accounts")
    if not 0 <= plan.balance <= MAX_BALANCE:
        raise ConfigError("the genesis balance must be 0..2**256-1 wei")
    EvmConfig(plan.chain_id, plan.gas_limit).validate(set(orgs))  # chain id, gas limit
    return plan


def evm_config(plan: EvmPlan, accounts: Sequence[NetworkAccount]) -> EvmConfig:
    """The ``evm`` section of the genesis configuration: every account funded with
    ``plan.balance`` and bound to its organization (in the order given)."""
    raw = [(parse_address(a.address), a.org) for a in accounts]
    return EvmConfig(plan.chain_id, plan.gas_limit,
                     alloc=tuple(GenesisAccount(addr, plan.balance) for addr, _ in raw),
                     accounts=tuple(AccountBinding(addr, org) for addr, org in raw))


def account_password(org_dir: Path) -> str:
    """The password of the organization's key files (``ConfigError`` if it has none: the
    network is not a quorum network, or the file was removed)."""
    path = org_dir / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: this organization keeps no Ethereum "
                          "accounts") from None


def create_accounts(root: Path, org_id: str, count: int, password: str) -> list[NetworkAccount]:
    """``count`` new accounts for ``org_id``, their key files under
    ``root/orgs/<org>/accounts`` encrypted with ``password``; not yet recorded in
    network.json."""
    made = []
    for _ in range(count):
        key = new_key(root / "orgs" / org_id / ACCOUNTS_DIR, password)
        made.append(NetworkAccount(key.address, org_id, key.path))
    return made


def record(doc: dict[str, Any], root: Path, accounts: Sequence[NetworkAccount]) -> None:
    """Add ``accounts`` to network.json's ``accounts`` (paths relative to ``root``)."""
    table = doc.setdefault("accounts", {})
    for a in accounts:
        table[a.address] = {"org": a.org, "key_file": str(a.key_file.relative_to(root))}


def recorded(doc: Mapping[str, Any], root: Path) -> list[NetworkAccount]:
    """The accounts network.json records, in the order they were made."""
    return [NetworkAccount(address, str(e["org"]), root / str(e["key_file"]))
            for address, e in doc.get("accounts", {}).items()]


def find(accounts: Sequence[NetworkAccount], ref: str) -> NetworkAccount:
    """The account ``ref`` names: an address, an address prefix (``0x`` optional, any case)
    matching exactly one account, or an organization id (its first account)."""
    of_org = [a for a in accounts if a.org == ref]
    if of_org:
        return of_org[0]
    text = ref.lower().removeprefix("0x")
    matches = [a for a in accounts if text and a.address.lower()[2:].startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"no account {ref!r} in this network (accounts: "
                          f"{', '.join(a.address for a in accounts) or 'none'})")
    raise ConfigError(f"{ref!r} matches {len(matches)} accounts: give more of the address")


def addresses_of(values: Sequence[str | bytes]) -> tuple[bytes, ...]:
    """20-byte addresses from ``0x`` hex or bytes; ``ConfigError`` for anything else, for
    none, and for one given twice."""
    out = tuple(v if isinstance(v, bytes) else parse_address(v) for v in values)
    if not out:
        raise ConfigError("name at least one address")
    for raw in out:
        if len(raw) != 20:
            raise ConfigError("an Ethereum address is 20 bytes")
    if len(set(out)) != len(out):
        raise ConfigError("an address is named twice")
    return out


def checksummed(raw: bytes) -> str:
    return str(to_checksum_address(raw))
