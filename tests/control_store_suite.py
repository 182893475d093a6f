"""One test suite for the control-plane store, run against every database backend.

``tests/unit/test_control_store.py`` runs it on a SQLite file and
``tests/integration/test_control_store_pg.py`` on a real PostgreSQL server (as Fabric's
``statedb/commontests`` do for its state databases). A subclass provides the ``url``
fixture: the URL of an empty database; ``engine`` migrates it to head.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.auth import NonceStore
from consortia.control.store import db
from consortia.control.store.base import Base
from consortia.control.store.enums import (
    AuditResult,
    Consensus,
    NodeType,
    Profile,
    ProposalAction,
    ThresholdComparator,
    UserRole,
    VoteValue,
)
from consortia.control.store.models import (
    AccessKey,
    AuditRecord,
    Member,
    Network,
    Node,
    Proposal,
    Tenant,
    User,
    Vote,
)
from consortia.control.store.nonces import SqlNonceStore
from consortia.control.store.passwords import hash_password

THREADS = 8
NOW = 1_800_000_000.0


@dataclass
class World:
    """Tenants acme and globex; network ``net`` (acme's) with one member of each."""

    acme: str
    globex: str
    net: str
    acme_member: str
    globex_member: str
    proposal: str


def seed(session: Session) -> World:
    acme, globex = Tenant(name="acme"), Tenant(name="globex")
    session.add_all([acme, globex])
    session.flush()
    net = Network(tenant_id=acme.id, name="trade", chain_id="trade-1", profile=Profile.FABRIC,
                  consensus=Consensus.RAFT, threshold_percentage=50,
                  threshold_comparator=ThresholdComparator.GREATER_THAN,
                  proposal_duration_hours=24)
    session.add(net)
    session.flush()
    m1 = Member(network_id=net.id, tenant_id=acme.id, name="acme", org_id="org1")
    m2 = Member(network_id=net.id, tenant_id=globex.id, name="globex", org_id="org2")
    session.add_all([m1, m2])
    session.flush()
    p = Proposal(network_id=net.id, tenant_id=acme.id, proposer_member_id=m1.id,
                 action=ProposalAction.REMOVE_MEMBER, target_member_id=m2.id,
                 threshold_percentage=50,
                 threshold_comparator=ThresholdComparator.GREATER_THAN,
                 expires_at=datetime.now(UTC) + timedelta(hours=24))
    session.add(p)
    session.flush()
    return World(acme.id, globex.id, net.id, m1.id, m2.id, p.id)


def check_signature(constraint_sql: str) -> tuple[list[str], list[str]]:
    """The quoted literals and the numbers of a CHECK: the same whatever way a
    database prints the expression back (SQLite keeps the text, PostgreSQL rewrites it)."""
    return (sorted(re.findall(r"'([^']*)'", constraint_sql)),
            sorted(re.findall(r"(?<![\w.])\d+(?![\w.])", constraint_sql)))


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released at once; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    if errors:
        raise errors[0]
    return results


class ControlStoreSuite:
    """The store's contract. Subclasses define the ``url`` fixture."""

    @pytest.fixture
    def engine(self, url: str) -> Iterator[Engine]:
        engine = db.create_engine(url)
        db.upgrade(engine)
        yield engine
        engine.dispose()

    @pytest.fixture
    def session(self, engine: Engine) -> Iterator[Session]:
        with db.session_factory(engine)() as s:
            yield s

    # --- migrations --------------------------------------------------------------------

    def test_migrations_reach_head_and_match_the_models(self, engine: Engine) -> None:
        assert db.current_revision(engine) == db.head_revision()
        assert db.schema_differences(engine) == []

    def test_check_constraints_match_the_models(self, engine: Engine) -> None:
        """Autogenerate does not compare CHECK constraints; enum values are in them."""
        inspector = sa.inspect(engine)
        for table in Base.metadata.sorted_tables:
            expected = {
                c.name: check_signature(str(c.sqltext.compile(
                    dialect=engine.dialect, compile_kwargs={"literal_binds": True})))
                for c in table.constraints if isinstance(c, sa.CheckConstraint)}
            actual = {c["name"]: check_signature(c["sqltext"])
                      for c in inspector.get_check_constraints(table.name)}
            assert actual == expected, table.name

    def test_drift_is_detected(self, engine: Engine) -> None:
        with engine.begin() as c:
            c.execute(sa.text("DROP INDEX ix_nodes_member_id"))
            c.execute(sa.text("ALTER TABLE nodes ADD COLUMN stray INTEGER"))
        kinds = sorted(d[0] for d in db.schema_differences(engine))
        assert kinds == ["add_index", "remove_column"]

    def test_downgrade_to_base_and_upgrade_again(self, engine: Engine) -> None:
        with engine.begin() as c:
            command.downgrade(db.alembic_config(c), "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        db.upgrade(engine)
        assert db.schema_differences(engine) == []

    # --- constraints -------------------------------------------------------------------

    def test_one_vote_per_member_and_proposal(self, session: Session) -> None:
        w = seed(session)
        session.add(Vote(proposal_id=w.proposal, network_id=w.net, member_id=w.globex_member,
                         tenant_id=w.globex, value=VoteValue.NO))
        session.commit()
        session.add(Vote(proposal_id=w.proposal, network_id=w.net, member_id=w.globex_member,
                         tenant_id=w.globex, value=VoteValue.YES))
        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            session.commit()

    def test_vote_must_come_from_a_member_of_the_proposals_network(
            self, session: Session) -> None:
        w = seed(session)
        other = Network(tenant_id=w.globex, name="other", chain_id="other-1",
                        profile=Profile.ANT, consensus=Consensus.PBFT, threshold_percentage=50,
                        threshold_comparator=ThresholdComparator.GREATER_THAN,
                        proposal_duration_hours=1)
        session.add(other)
        session.flush()
        outsider = Member(network_id=other.id, tenant_id=w.globex, name="g", org_id="g")
        session.add(outsider)
        session.commit()
        for network in (w.net, other.id):  # the member's network, then the proposal's
            session.add(Vote(proposal_id=w.proposal, network_id=network, member_id=outsider.id,
                             tenant_id=w.globex, value=VoteValue.YES))
            with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
                session.commit()
            session.rollback()

    def test_idempotency_token_is_unique_per_tenant(self, session: Session) -> None:
        w = seed(session)
        admin, viewer = UserRole.ADMIN, UserRole.VIEWER
        session.add(User(tenant_id=w.acme, username="ann", role=admin, client_token="t-1"))
        session.add(User(tenant_id=w.globex, username="ann", role=admin, client_token="t-1"))
        session.commit()  # the same token in another tenant is another request
        session.add(User(tenant_id=w.acme, username="bob", role=viewer, client_token="t-1"))
        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            session.commit()
        session.rollback()
        session.add_all([User(tenant_id=w.acme, username=f"u{i}", role=UserRole.VIEWER)
                         for i in range(3)])
        session.commit()  # creates without a token never collide (NULLs are distinct)

    def test_foreign_keys_are_enforced(self, session: Session) -> None:
        session.add(User(tenant_id="ten-nosuchtenant00", username="x", role=UserRole.VIEWER))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            session.commit()

    def test_a_node_belongs_to_its_members_tenant(self, session: Session) -> None:
        w = seed(session)
        session.commit()
        session.add(Node(network_id=w.net, member_id=w.globex_member, tenant_id=w.acme,
                         name="peer0", node_type=NodeType.PEER))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            session.commit()
        session.rollback()
        node = Node(network_id=w.net, member_id=w.globex_member, tenant_id=w.globex,
                    name="peer0", node_type=NodeType.PEER)
        session.add(node)
        session.commit()
        assert node.id.startswith("nd-") and node.status == "CREATING"

    def test_enum_and_range_checks_hold_in_the_database(self, engine: Engine,
                                                        session: Session) -> None:
        w = seed(session)
        session.commit()
        for statement in ("UPDATE networks SET status = 'BOGUS'",
                          "UPDATE networks SET profile = 'FABRIC'",
                          "UPDATE networks SET threshold_percentage = 101",
                          "UPDATE networks SET proposal_duration_hours = 0",
                          "UPDATE proposals SET target_tenant_id = "
                          f"'{w.globex}'"):
            with pytest.raises(IntegrityError, match=r"(?i)check"), engine.begin() as c:
                c.execute(sa.text(statement))

    def test_access_keys_go_with_their_user(self, session: Session) -> None:
        w = seed(session)
        user = User(tenant_id=w.acme, username="ann", role=UserRole.OWNER,
                    password_hash=hash_password("pw"))
        session.add(user)
        session.flush()
        session.add(AccessKey(id="CKAAAAAAAAAAAAAAAA", tenant_id=w.acme, user_id=user.id,
                              sealed_secret=b"\x01sealed"))
        session.commit()
        session.delete(user)
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(AccessKey)) == 0

    def test_access_key_tenant_is_its_users(self, session: Session) -> None:
        w = seed(session)
        user = User(tenant_id=w.acme, username="ann", role=UserRole.OWNER)
        session.add(user)
        session.commit()
        session.add(AccessKey(id="CKBBBBBBBBBBBBBBBB", tenant_id=w.globex, user_id=user.id,
                              sealed_secret=b"x"))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            session.commit()

    def test_timestamps_are_aware_utc(self, engine: Engine, session: Session) -> None:
        w = seed(session)
        session.commit()
        at = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=timezone(timedelta(hours=8)))
        session.add(AuditRecord(tenant_id=w.acme, action="network.create",
                                resource_type="network", resource_id=w.net, request_id="r1",
                                result=AuditResult.SUCCESS, created_at=at))
        session.commit()
        with db.session_factory(engine)() as fresh:
            record = fresh.scalars(sa.select(AuditRecord)).one()
            network = fresh.get(Network, w.net)
        assert record.created_at == at and record.created_at.tzinfo is UTC
        assert network is not None and network.created_at.tzinfo is UTC
        assert network.updated_at >= network.created_at

    def test_tenant_listing_uses_its_index(self, session: Session) -> None:
        w = seed(session)
        session.commit()
        rows = session.scalars(sa.select(Member).where(Member.tenant_id == w.globex)
                               .order_by(Member.created_at.desc())).all()
        assert [m.id for m in rows] == [w.globex_member]

    # --- the SQL nonce store -----------------------------------------------------------

    def test_nonce_store_implements_the_protocol(self, engine: Engine) -> None:
        store: NonceStore = SqlNonceStore(engine)
        assert store.claim("CK1", "n" * 16, expires_at=NOW + 900, now=NOW)
        assert not store.claim("CK1", "n" * 16, expires_at=NOW + 900, now=NOW + 900)
        assert store.claim("CK2", "n" * 16, expires_at=NOW + 900, now=NOW)  # per key
        # expired: the pair may be claimed again, and is then live until its new expiry
        assert store.claim("CK1", "n" * 16, expires_at=NOW + 1801, now=NOW + 901)
        assert not store.claim("CK1", "n" * 16, expires_at=NOW + 1801, now=NOW + 1801)

    def test_nonce_store_purges_expired_entries(self, engine: Engine) -> None:
        store = SqlNonceStore(engine, purge_interval=3600)
        for i in range(5):
            assert store.claim("CK1", f"nonce-{i:011d}", expires_at=NOW + i, now=NOW)
        assert store.purge(NOW + 3) == 3
        assert store.purge(NOW + 3) == 0
        with engine.connect() as c:
            left = c.execute(sa.text("SELECT nonce FROM api_nonces ORDER BY nonce")).scalars()
            assert list(left) == ["nonce-00000000003", "nonce-00000000004"]

    def test_claims_purge_at_most_once_an_interval(self, engine: Engine) -> None:
        store = SqlNonceStore(engine, purge_interval=100)
        store.claim("CK1", "a" * 16, expires_at=NOW, now=NOW)           # purges, next at +100
        store.claim("CK1", "b" * 16, expires_at=NOW + 200, now=NOW + 50)  # no purge
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM api_nonces")).scalar() == 2
        store.claim("CK1", "c" * 16, expires_at=NOW + 200, now=NOW + 100)  # purges "a"
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM api_nonces")).scalar() == 2

    def test_concurrent_claims_of_one_nonce_one_wins(self, engine: Engine) -> None:
        store = SqlNonceStore(engine)
        for round_ in range(3):
            nonce = f"race-{round_:012d}"
            results = run_together(THREADS, lambda _i, n=nonce: store.claim(
                "CK1", n, expires_at=NOW + 900, now=NOW))
            assert sorted(results) == [False] * (THREADS - 1) + [True]

    def test_concurrent_claims_of_an_expired_nonce_one_wins(self, engine: Engine) -> None:
        store = SqlNonceStore(engine, purge_interval=1e9)
        assert store.claim("CK1", "x" * 16, expires_at=NOW, now=NOW)
        results = run_together(THREADS, lambda _i: store.claim(
            "CK1", "x" * 16, expires_at=NOW + 1000, now=NOW + 100))
        assert sorted(results) == [False] * (THREADS - 1) + [True]

    def test_concurrent_claims_of_distinct_nonces_all_win(self, engine: Engine) -> None:
        store = SqlNonceStore(engine)
        results = run_together(THREADS, lambda i: store.claim(
            "CK1", f"distinct-{i:08d}", expires_at=NOW + 900, now=NOW))
        assert results == [True] * THREADS
