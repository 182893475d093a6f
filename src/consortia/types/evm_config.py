"""The EVM section of a quorum chain's configuration: Ethereum chain id, block gas limit,
genesis balances, and which Ethereum accounts may transact for which organization.

It lives in the on-chain configuration (not in node settings) because every validator must
execute with the same chain id and gas limit, and because the account bindings are the
permissioning rule the validators enforce: an Ethereum transaction is admitted only when
its sender's address is bound to an organization in force (ADR 0025). Bindings change by
``AccountUpdate`` configuration transactions signed by the organization's admin, so who
may transact is decided by the same certified history as who is a member.

Wire layout (docs/spec/transactions.md, configuration version 4)::

    EvmConfig = [chain_id: int, gas_limit: int,
                 alloc: [[address: bin(20), balance: bin(32)] ...],
                 accounts: [[address: bin(20), org_id: str] ...]]

Balances are 32-byte big-endian (an EVM word), since msgpack integers stop at 64 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from consortia.types.codec import Reader
from consortia.types.errors import ConfigError

ADDRESS_BYTES = 20
MAX_EVM_CHAIN_ID = 2**53 - 1
"""Chain ids above this are not exactly representable in JavaScript numbers, which some
Ethereum clients still use for chain ids."""
MIN_GAS_LIMIT = 5_000_000
MAX_GAS_LIMIT = 2**62
MAX_ALLOC = 10_000
MAX_ACCOUNTS = 10_000
MAX_BALANCE = 2**256 - 1


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    """An account funded at genesis."""

    address: bytes
    balance: int
    """Wei."""


@dataclass(frozen=True, slots=True)
class AccountBinding:
    """An Ethereum address allowed to send transactions, on behalf of an organization."""

    address: bytes
    org_id: str


@dataclass(frozen=True, slots=True)
class EvmConfig:
    chain_id: int
    """The EIP-155 chain id signed into every Ethereum transaction of this chain."""
    gas_limit: int = 30_000_000
    """The gas limit of every block (a transaction asking for more is refused)."""
    alloc: tuple[GenesisAccount, ...] = ()
    """Balances at genesis. Part of the configuration so the genesis hash commits to them;
    configuration changes carry them unchanged."""
    accounts: tuple[AccountBinding, ...] = ()

    def org_of(self, address: bytes) -> str | None:
        """The organization ``address`` transacts for, or None if it is not bound."""
        for a in self.accounts:
            if a.address == address:
                return a.org_id
        return None

    def with_accounts(self, accounts: tuple[AccountBinding, ...]) -> EvmConfig:
        return replace(self, accounts=accounts)

    def validate(self, org_ids: set[str]) -> None:
        if not 1 <= self.chain_id <= MAX_EVM_CHAIN_ID:
            raise ConfigError(f"the EVM chain id must be 1..{MAX_EVM_CHAIN_ID}")
        if not MIN_GAS_LIMIT <= self.gas_limit <= MAX_GAS_LIMIT:
            raise ConfigError(f"the block gas limit must be {MIN_GAS_LIMIT}..{MAX_GAS_LIMIT}")
        if len(self.alloc) > MAX_ALLOC:
            raise ConfigError(f"genesis funds at most {MAX_ALLOC} accounts")
        if len(self.accounts) > MAX_ACCOUNTS:
            raise ConfigError(f"at most {MAX_ACCOUNTS} accounts may be bound")
        funded = [a.address for a in self.alloc]
        if len(set(funded)) != len(funded):
            raise ConfigError("genesis funds an account twice")
        bound = [a.address for a in self.accounts]
        if len(set(bound)) != len(bound):
            raise ConfigError("an account is bound twice")
        for a in self.alloc:
            _check_address(a.address)
            if not 0 <= a.balance <= MAX_BALANCE:
                raise ConfigError("a genesis balance must fit 256 bits")
        for b in self.accounts:
            _check_address(b.address)
            if b.org_id not in org_ids:
                raise ConfigError(f"account 0x{b.address.hex()} is bound to unknown "
                                  f"organization {b.org_id}")

    def encode_fields(self) -> list[Any]:
        return [self.chain_id, self.gas_limit,
                [[a.address, a.balance.to_bytes(32, "big")] for a in self.alloc],
                [[b.address, b.org_id] for b in self.accounts]]

    @staticmethod
    def read(value: Any, what: str) -> EvmConfig:
        r = Reader(value, what, length=4)
        chain_id = r.int_("chain_id", lo=1, hi=MAX_EVM_CHAIN_ID)
        gas_limit = r.int_("gas_limit", lo=1, hi=MAX_GAS_LIMIT)
        alloc = []
        for i, item in enumerate(r.list_("alloc", max_len=MAX_ALLOC)):
            a = Reader(item, f"{what}.alloc[{i}]", length=2)
            alloc.append(GenesisAccount(a.bytes_("address", max_len=20, exact=20),
                                        int.from_bytes(a.bytes_("balance", max_len=32,
                                                                exact=32), "big")))
        accounts = []
        for i, item in enumerate(r.list_("accounts", max_len=MAX_ACCOUNTS)):
            b = Reader(item, f"{what}.accounts[{i}]", length=2)
            accounts.append(AccountBinding(b.bytes_("address", max_len=20, exact=20),
                                           b.str_("org_id", max_len=64, min_len=1)))
        r.end()
        return EvmConfig(chain_id, gas_limit, tuple(alloc), tuple(accounts))

    def summary(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "gas_limit": self.gas_limit,
                "alloc": [{"address": checksum_free(a.address), "balance": str(a.balance)}
                          for a in self.alloc],
                "accounts": [{"address": checksum_free(b.address), "org_id": b.org_id}
                             for b in self.accounts]}


def checksum_free(address: bytes) -> str:
    """``0x``-prefixed lowercase hex (EIP-55 checksums are a presentation concern of the
    clients; the configuration compares bytes)."""
    return "0x" + address.hex()


def parse_address(text: str) -> bytes:
    """A 20-byte address from ``0x``-prefixed hex (any case); ``ConfigError`` otherwise."""
    body = text[2:] if text[:2] in ("0x", "0X") else ""
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != ADDRESS_BYTES:
        raise ConfigError(f"{text!r} is not an Ethereum address (0x and 40 hex digits)")
    return raw


def _check_address(address: bytes) -> None:
    if len(address) != ADDRESS_BYTES:
        raise ConfigError("an Ethereum address is 20 bytes")
