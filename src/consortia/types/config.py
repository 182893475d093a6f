"""Chain configuration: who is a member, who validates, under which limits.

The configuration is on chain: genesis (height 0) carries the first one as a
``CONFIG`` transaction, and every later change is a configuration transaction
ordered alone in its own block. Block headers name the height of the
configuration block in force, so a verifier can rebuild it from genesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import ConfigError, Malformed
from consortia.types.evm_config import EvmConfig

CONFIG_VERSION = 4
"""3 added ``policies.membership`` (the voting rule of organization changes); 4 added the
``evm`` section of quorum chains. A configuration without that section still encodes as
version 3, so the hashes of every chain made before it stay what they were."""
_NO_EVM_VERSION = 3
MAX_ORGS = 256
MAX_VALIDATORS = 256
MAX_ENDPOINT = 255
MAX_BLOCK_BYTES = 12 * 1024 * 1024
"""Upper bound of ``max_block_bytes``: below the 16 MiB a block decoder accepts."""


class Role(StrEnum):
    """Roles carried in a certificate's OU (Fabric's NodeOUs)."""

    ADMIN = "admin"
    CLIENT = "client"
    PEER = "peer"
    VALIDATOR = "validator"


class Profile(StrEnum):
    FABRIC = "fabric"
    ANT = "ant"
    QUORUM = "quorum"


class Comparator(StrEnum):
    """How the share of approving organizations is compared with ``percentage``."""

    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL_TO = "GREATER_THAN_OR_EQUAL_TO"


@dataclass(frozen=True, slots=True)
class MembershipPolicy:
    """The consortium's voting rule for adding or removing an organization (Amazon Managed
    Blockchain's approval threshold): the change passes when the organizations that
    approved it, as a percentage of the organizations in force, compare with
    ``percentage`` by ``comparator``. The default, 50 / GREATER_THAN, is a strict
    majority."""

    percentage: int = 50
    """0..100."""
    comparator: Comparator = Comparator.GREATER_THAN

    def satisfied(self, approving: int, organizations: int) -> bool:
        """Whether ``approving`` of ``organizations`` organizations pass the rule (exact
        integer arithmetic: approving / organizations * 100 compared with percentage)."""
        share, bar = approving * 100, self.percentage * organizations
        if self.comparator is Comparator.GREATER_THAN:
            return share > bar
        return share >= bar

    def describe(self) -> str:
        op = ">" if self.comparator is Comparator.GREATER_THAN else ">="
        return f"{op} {self.percentage}% of the organizations"


class ConsensusKind(StrEnum):
    SOLO = "solo"
    RAFT = "raft"
    PBFT = "pbft"


@dataclass(frozen=True, slots=True)
class OrgConfig:
    """A member organization and its certificate authority."""

    id: str
    """Short stable id (MSP id), also the O= of its certificates."""
    ca_cert: bytes
    """The organization's root CA certificate, DER."""
    crl: bytes = b""
    """The newest CRL the organization published on chain, DER (empty: none)."""


@dataclass(frozen=True, slots=True)
class ValidatorConfig:
    """A node allowed to sign commit certificates."""

    id: str
    org_id: str
    cert: bytes
    """The validator's certificate (role ``validator``), DER."""
    endpoint: str = ""
    """Where its peers reach it ("host:port" of its mutual-TLS transport; empty: only the
    node settings say). A node's own ``[p2p] peers`` setting overrides it."""


@dataclass(frozen=True, slots=True)
class Policies:
    writer_roles: tuple[Role, ...] = (Role.CLIENT, Role.ADMIN)
    """Roles allowed to submit notary transactions."""
    config_role: Role = Role.ADMIN
    """Role that may submit configuration transactions for its own organization."""
    membership: MembershipPolicy = field(default_factory=MembershipPolicy)
    """The vote that adds or removes an organization (``OrgUpdate``)."""


@dataclass(frozen=True, slots=True)
class BlockLimits:
    max_block_txs: int = 2000
    max_block_bytes: int = 8 * 1024 * 1024
    batch_timeout_ms: int = 200
    tx_window_ms: int = 10 * 60 * 1000
    """A transaction's timestamp must be within this distance of the node clock."""
    max_tx_bytes: int = 1_200_000


@dataclass(frozen=True, slots=True)
class ChainConfig:
    chain_id: str
    profile: Profile
    suite: str
    consensus: ConsensusKind
    organizations: tuple[OrgConfig, ...]
    validators: tuple[ValidatorConfig, ...]
    policies: Policies = field(default_factory=Policies)
    limits: BlockLimits = field(default_factory=BlockLimits)
    sequence: int = 0
    """Incremented by every configuration change."""
    evm: EvmConfig | None = None
    """The EVM section: present exactly on quorum chains."""

    def org(self, org_id: str) -> OrgConfig | None:
        for o in self.organizations:
            if o.id == org_id:
                return o
        return None

    def validator(self, validator_id: str) -> ValidatorConfig | None:
        for v in self.validators:
            if v.id == validator_id:
                return v
        return None

    def commit_quorum(self) -> int:
        """How many distinct validator votes make a block final.

        solo: its only validator; raft: a majority (n//2+1), each vote signed by an
        orderer once it has durably stored the block, so the certificate proves the block
        survives any f = (n-1)//2 crashes; pbft: floor((n+f)/2)+1 commit votes with
        f = (n-1)//3, which is 2f+1 when n = 3f+1 and, for any other n, still makes two
        quorums share at least f+1 validators, so at least one honest one (n = 5: 4, not 3).
        """
        n = len(self.validators)
        if self.consensus is ConsensusKind.PBFT:
            f = (n - 1) // 3
            return (n + f) // 2 + 1
        if self.consensus is ConsensusKind.RAFT:
            return n // 2 + 1
        return 1

    def with_org(self, org: OrgConfig) -> ChainConfig:
        orgs = tuple(org if o.id == org.id else o for o in self.organizations)
        return replace(self, organizations=orgs, sequence=self.sequence + 1)

    def with_organizations(self, organizations: tuple[OrgConfig, ...]) -> ChainConfig:
        return replace(self, organizations=organizations, sequence=self.sequence + 1)

    def with_validators(self, validators: tuple[ValidatorConfig, ...]) -> ChainConfig:
        return replace(self, validators=validators, sequence=self.sequence + 1)

    def with_evm(self, evm: EvmConfig) -> ChainConfig:
        return replace(self, evm=evm, sequence=self.sequence + 1)

    def validate(self) -> None:
        """Structural rules a configuration must satisfy before it is used."""
        if not self.organizations:
            raise ConfigError("a chain needs at least one organization")
        ids = [o.id for o in self.organizations]
        if len(set(ids)) != len(ids):
            raise ConfigError("organization ids must be unique")
        if len(ids) > MAX_ORGS:
            raise ConfigError(f"a chain has at most {MAX_ORGS} organizations")
        if not self.validators:
            raise ConfigError("a chain needs at least one validator")
        vids = [v.id for v in self.validators]
        if len(set(vids)) != len(vids):
            raise ConfigError("validator ids must be unique")
        for v in self.validators:
            if v.org_id not in ids:
                raise ConfigError(f"validator {v.id} belongs to unknown organization {v.org_id}")
            if v.endpoint and not valid_endpoint(v.endpoint):
                raise ConfigError(f"validator {v.id}: endpoint {v.endpoint!r} is not host:port")
        if len({v.cert for v in self.validators}) != len(self.validators):
            raise ConfigError("two validators share a certificate")
        if self.consensus is ConsensusKind.SOLO and len(self.validators) != 1:
            raise ConfigError("solo consensus takes exactly one validator")
        mp = self.policies.membership
        if not 0 <= mp.percentage <= 100:
            raise ConfigError("the membership policy's percentage is 0 to 100")
        if mp.percentage == 100 and mp.comparator is Comparator.GREATER_THAN:
            raise ConfigError("a membership policy of more than 100% can never pass; "
                              "unanimity is 100 GREATER_THAN_OR_EQUAL_TO")
        lim = self.limits
        if lim.max_block_txs < 1 or lim.max_block_bytes < 1024 or lim.batch_timeout_ms < 1:
            raise ConfigError("block limits must be positive")
        if lim.max_tx_bytes > lim.max_block_bytes:
            raise ConfigError("max_tx_bytes must not exceed max_block_bytes")
        if lim.max_block_bytes > MAX_BLOCK_BYTES:
            raise ConfigError(f"max_block_bytes is at most {MAX_BLOCK_BYTES}")
        if lim.tx_window_ms < 1000:
            raise ConfigError("the transaction acceptance window must be at least 1 s")
        if (self.profile is Profile.QUORUM) != (self.evm is not None):
            raise ConfigError("a quorum chain needs an evm section; other profiles have none")
        if self.evm is not None:
            self.evm.validate(set(ids))

    def encode(self) -> bytes:
        p, lim = self.policies, self.limits
        evm = [] if self.evm is None else [self.evm.encode_fields()]
        version = _NO_EVM_VERSION if self.evm is None else CONFIG_VERSION
        return encode([
            version, self.chain_id, str(self.profile), self.suite, str(self.consensus),
            [[o.id, o.ca_cert, o.crl] for o in self.organizations],
            [[v.id, v.org_id, v.cert, v.endpoint] for v in self.validators],
            [[str(r) for r in p.writer_roles], str(p.config_role),
             [p.membership.percentage, str(p.membership.comparator)]],
            [lim.max_block_txs, lim.max_block_bytes, lim.batch_timeout_ms, lim.tx_window_ms,
             lim.max_tx_bytes],
            self.sequence, *evm,
        ])

    @staticmethod
    def decode(data: bytes) -> ChainConfig:
        fields = decode(data, what="config")
        version = fields[0] if isinstance(fields, list) and fields else None
        if version not in (_NO_EVM_VERSION, CONFIG_VERSION):
            raise Malformed("config.version: unsupported")
        r = Reader(fields, "config", length=10 if version == _NO_EVM_VERSION else 11)
        r.int_("version")
        chain_id = r.str_("chain_id", max_len=64, min_len=1)
        try:
            profile = Profile(r.str_("profile", max_len=16))
            suite = r.str_("suite", max_len=32, min_len=1)
            consensus = ConsensusKind(r.str_("consensus", max_len=16))
        except ValueError as exc:
            raise Malformed(f"config: {exc}") from exc
        orgs = []
        for i, item in enumerate(r.list_("organizations", max_len=MAX_ORGS)):
            o = Reader(item, f"config.organizations[{i}]", length=3)
            orgs.append(OrgConfig(o.str_("id", max_len=64, min_len=1),
                                  o.bytes_("ca_cert", max_len=8192, min_len=1),
                                  o.bytes_("crl", max_len=1024 * 1024)))
        vals = []
        for i, item in enumerate(r.list_("validators", max_len=MAX_VALIDATORS)):
            v = Reader(item, f"config.validators[{i}]", length=4)
            vals.append(ValidatorConfig(v.str_("id", max_len=64, min_len=1),
                                        v.str_("org_id", max_len=64, min_len=1),
                                        v.bytes_("cert", max_len=8192, min_len=1),
                                        v.str_("endpoint", max_len=MAX_ENDPOINT)))
        pr = Reader(r.any_("policies"), "config.policies", length=3)
        try:
            writer_roles = tuple(Role(x) for x in pr.list_("writer_roles", max_len=8))
            config_role = Role(pr.str_("config_role", max_len=16))
        except ValueError as exc:
            raise Malformed(f"config.policies: {exc}") from exc
        mr = Reader(pr.any_("membership"), "config.policies.membership", length=2)
        percentage = mr.int_("percentage", lo=0, hi=100)
        try:
            comparator = Comparator(mr.str_("comparator", max_len=32))
        except ValueError as exc:
            raise Malformed(f"config.policies.membership: {exc}") from exc
        mr.end()
        pr.end()
        lr = Reader(r.any_("limits"), "config.limits", length=5)
        limits = BlockLimits(lr.int_("max_block_txs", lo=1), lr.int_("max_block_bytes", lo=1),
                             lr.int_("batch_timeout_ms", lo=1), lr.int_("tx_window_ms", lo=1),
                             lr.int_("max_tx_bytes", lo=1))
        sequence = r.int_("sequence")
        evm = EvmConfig.read(r.any_("evm"), "config.evm") if version == CONFIG_VERSION else None
        r.end()
        return ChainConfig(chain_id, profile, suite, consensus, tuple(orgs), tuple(vals),
                           Policies(writer_roles, config_role,
                                    MembershipPolicy(percentage, comparator)),
                           limits, sequence, evm)

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for APIs and the CLI (certificates left out)."""
        return {
            "chain_id": self.chain_id,
            "profile": str(self.profile),
            "suite": self.suite,
            "consensus": str(self.consensus),
            "sequence": self.sequence,
            "organizations": [{"id": o.id, "has_crl": bool(o.crl)} for o in self.organizations],
            "validators": [{"id": v.id, "org_id": v.org_id, "endpoint": v.endpoint or None}
                           for v in self.validators],
            "policies": {"writer_roles": [str(r) for r in self.policies.writer_roles],
                         "config_role": str(self.policies.config_role),
                         "membership": {
                             "percentage": self.policies.membership.percentage,
                             "comparator": str(self.policies.membership.comparator)}},
            "limits": {
                "max_block_txs": self.limits.max_block_txs,
                "max_block_bytes": self.limits.max_block_bytes,
                "batch_timeout_ms": self.limits.batch_timeout_ms,
                "tx_window_ms": self.limits.tx_window_ms,
                "max_tx_bytes": self.limits.max_tx_bytes,
            },
            **({"evm": self.evm.summary()} if self.evm is not None else {}),
        }


def valid_endpoint(value: str) -> bool:
    """Whether ``value`` is "host:port" with a port in 1..65535."""
    host, sep, port = value.rpartition(":")
    return (bool(sep and host) and port.isdigit() and 0 < int(port) < 65536
            and len(value) <= MAX_ENDPOINT)
