"""Shared fixtures of the unit suite: organizations with CAs and identities, a chain
configuration, its genesis, and an in-process chain (store + Chain + Solo + Admission).

Certificates are issued by ``CertificateAuthority`` with its real-time validity window,
so the "fixed clock" of the suite is the wall clock read once at import (``NOW_MS``):
every admission, execution and genesis in the suite uses that constant.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from consortia.consensus.core import BatchReady, Commit
from consortia.consensus.solo import Solo
from consortia.consensus.support import PreparedBlock
from consortia.crypto import get_suite
from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.ledger.genesis import Genesis, make_genesis
from consortia.ledger.store import LedgerStore
from consortia.node.chain import Chain
from consortia.sdk import notary
from consortia.sdk.identity import Identity
from consortia.sdk.tx import SignedTx, sign
from consortia.txpool.admission import Admission
from consortia.types.block import Block, Result
from consortia.types.config import (
    BlockLimits,
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.tx import Body, Tx

settings.register_profile(
    "unit", deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("unit")

NOW_MS = time.time_ns() // 1_000_000
# Certificates of the test worlds are valid from a day before NOW_MS: fixtures built late
# in a long session (after the simulations, say) must still be valid at the fixed clock.
_VALID_FROM = dt.datetime.fromtimestamp(NOW_MS / 1000 - 86_400, dt.UTC)
"""The suite's fixed clock (ms since the epoch)."""

CHAIN_ID = "unit-chain"
SUITE = get_suite("p256-sha256")


@dataclass
class Org:
    ca: CertificateAuthority
    ids: dict[str, Identity] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.ca.org_id

    def __getitem__(self, name: str) -> Identity:
        return self.ids[name]

    def add(self, name: str, role: Role) -> Identity:
        key, cert = self.ca.issue_identity(name, role, not_before=_VALID_FROM)
        ident = Identity(key, cert_der(cert), self.ca.cert_der)
        self.ids[name] = ident
        return ident

    def org_config(self, crl: bytes = b"") -> OrgConfig:
        return OrgConfig(self.id, self.ca.cert_der, crl)


def make_org(org_id: str, *, validator: bool = False) -> Org:
    org = Org(CertificateAuthority.create(org_id, not_before=_VALID_FROM))
    org.add("admin", Role.ADMIN)
    org.add("alice", Role.CLIENT)
    org.add("bob", Role.CLIENT)
    org.add("peer0", Role.PEER)
    if validator:
        org.add("validator0", Role.VALIDATOR)
    return org


@dataclass
class World:
    """Two member organizations (org1 runs the solo validator), a config and its genesis."""

    org1: Org
    org2: Org
    config: ChainConfig
    genesis: Genesis

    @property
    def validator(self) -> Identity:
        return self.org1["validator0"]


def make_world(chain_id: str = CHAIN_ID, *, limits: BlockLimits | None = None,
               genesis_ms: int = NOW_MS) -> World:
    org1 = make_org("org1", validator=True)
    org2 = make_org("org2")
    config = ChainConfig(
        chain_id=chain_id, profile=Profile.ANT, suite="p256-sha256",
        consensus=ConsensusKind.SOLO,
        organizations=(org1.org_config(), org2.org_config()),
        validators=(ValidatorConfig("validator0", "org1", org1["validator0"].cert_der),),
        limits=limits or BlockLimits())
    admin = org1["admin"]
    genesis = make_genesis(config, admin.key, admin.cert_der, genesis_ms)
    return World(org1, org2, config, genesis)


@pytest.fixture(scope="session")
def world() -> World:
    """A shared, read-only world. Tests that revoke or publish CRLs build their own."""
    return make_world()


@pytest.fixture
def fresh_world() -> World:
    """A private world whose CAs a test may mutate (revocations, CRL numbers)."""
    return make_world()


def sign_tx(identity: Identity, body: Body, *, chain_id: str = CHAIN_ID,
            timestamp_ms: int = NOW_MS) -> SignedTx:
    return sign(identity, chain_id, body, timestamp_ms=timestamp_ms)


def digest_tx(identity: Identity, business_id: str, data: bytes = b"doc", *,
              category: str = "", business_time_ms: int = 1_000,
              chain_id: str = CHAIN_ID, timestamp_ms: int = NOW_MS) -> SignedTx:
    body = notary.digest(business_id, data, category=category,
                         business_time_ms=business_time_ms)
    return sign_tx(identity, body, chain_id=chain_id, timestamp_ms=timestamp_ms)


class FixedBatchSupport:
    """A consensus Support that hands solo exactly the batch a test chose (even empty)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.batch: list[Tx] = []

    def next_height(self) -> int:
        return self.chain.next_height()

    def propose(self, now_ms: int, proposer: str) -> PreparedBlock:
        return self.chain.prepare(self.batch, now_ms, proposer)

    def sign(self, message: bytes) -> bytes:
        return self.chain.sign(message)


class Harness:
    """An in-process node: ledger store, Chain, Solo over a fixed-batch Support, Admission."""

    def __init__(self, path: Path, world: World, clock: Callable[[], int] = lambda: NOW_MS
                 ) -> None:
        self.path = path
        self.world = world
        self.store = LedgerStore(path)
        self.chain = Chain(self.store, world.genesis, world.validator.key)
        self.support = FixedBatchSupport(self.chain)
        self.solo = Solo(self.support, "validator0")
        self.admission = Admission(SUITE, self.chain.config, clock)
        self.block_time = NOW_MS

    def admit(self, *signed: SignedTx) -> list[Tx]:
        return [self.admission.check(s.envelope) for s in signed]

    def solo_order(self, txs: Sequence[Tx], now_ms: int) -> tuple[Block, PreparedBlock]:
        """Let solo build and certify a block of ``txs`` (not stored)."""
        self.support.batch = list(txs)
        (action,) = self.solo.step(BatchReady(now_ms))
        assert isinstance(action, Commit) and action.prepared is not None
        return action.block, action.prepared

    def order(self, txs: Sequence[Tx]) -> tuple[Block, list[Result]]:
        """Order and commit one block of already admitted transactions."""
        self.block_time += 1
        block, proposal = self.solo_order(txs, self.block_time)
        new_config = self.chain.commit(block, proposal)
        if new_config is not None:
            self.admission.reconfigure(new_config)
        return block, list(proposal.artifacts.execution.results)

    def commit(self, *signed: SignedTx) -> tuple[Block, list[Result]]:
        return self.order(self.admit(*signed))

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path, fresh_world: World):
    h = Harness(tmp_path / "ledger.db", fresh_world)
    yield h
    h.close()


@dataclass
class Sample:
    """A committed chain of five blocks (see ``build_sample``)."""

    harness: Harness
    world: World
    ids: dict[str, bytes]

    @property
    def store(self) -> LedgerStore:
        return self.harness.store


def build_sample(path: Path, world: World | None = None) -> Sample:
    """Commit, through admission, Solo and Chain::

        1  org1/alice hash  inv-1  invoice  t=100     org2/alice hash inv-2 invoice t=200
           org1/alice content c-1  contract t=150
        2  org2/bob   hash  inv-1  invoice  t=150     org1/bob  hash  inv-3 invoice t=200
           org1/alice link  l-1    invoice  t=50
        3  CRL update by org1/admin revoking org1/bob            (configuration block)
        4  org1/bob "late" (admitted before the CRL: INVALID revoked_identity)
           org1/alice hash after  invoice t=400
        5  org2/alice hash inv-4  invoice t=300
    """
    from cryptography import x509

    from consortia.types.tx import CrlUpdate

    w = world or make_world()
    h = Harness(path, w)
    o1, o2 = w.org1, w.org2
    ids: dict[str, bytes] = {"genesis": h.store.block_txs(0)[0].txid}

    def tx(label: str, s: SignedTx) -> SignedTx:
        ids[label] = s.id
        return s

    h.commit(tx("inv-1", digest_tx(o1["alice"], "inv-1", category="invoice",
                                   business_time_ms=100)),
             tx("inv-2", digest_tx(o2["alice"], "inv-2", category="invoice",
                                   business_time_ms=200)),
             tx("c-1", sign_tx(o1["alice"], notary.content(
                 "c-1", b"contract text", category="contract", media_type="text/plain",
                 business_time_ms=150))))
    h.commit(tx("inv-1b", digest_tx(o2["bob"], "inv-1", b"v2", category="invoice",
                                    business_time_ms=150)),
             tx("inv-3", digest_tx(o1["bob"], "inv-3", category="invoice",
                                   business_time_ms=200)),
             tx("l-1", sign_tx(o1["alice"], notary.link(
                 "l-1", "https://example.com/l-1", bytes(32), category="invoice",
                 business_time_ms=50))))
    late = h.admit(tx("late", digest_tx(o1["bob"], "late", category="invoice",
                                        business_time_ms=350)))
    o1.ca.revoke(x509.load_der_x509_certificate(o1["bob"].cert_der).serial_number)
    h.commit(tx("crl", sign_tx(o1["admin"], CrlUpdate("org1", o1.ca.crl()))))
    h.order(late + h.admit(tx("after", digest_tx(o1["alice"], "after", category="invoice",
                                                 business_time_ms=400))))
    h.commit(tx("inv-4", digest_tx(o2["alice"], "inv-4", category="invoice",
                                   business_time_ms=300)))
    return Sample(h, w, ids)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    """A read-only sample chain shared by the tests of one module."""
    s = build_sample(tmp_path_factory.mktemp("sample") / "ledger.db")
    yield s
    s.harness.close()
