"""Fixtures of the integration suite (helpers live in ``helpers.py``).

``farm`` (per test) and ``module_farm`` (per module) create networks and own the
node processes started from them; both stop every node at teardown (SIGTERM,
then SIGKILL). A module that defines a ``net`` fixture (its network) gets ``node``
(one process serving it for the module), ``http``, ``client`` and ``alice`` from here.
A failing test's report carries the output of every node that was alive for it.

``postgres`` (per session) is a real PostgreSQL server started from Debian's package
(``postgres.py``); ``pg_url`` (per test) is a fresh empty database on it. Without the
binaries the tests that use them are skipped, or fail when ``CONSORTIA_REQUIRE_PG`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consortia.sdk import Identity, LocalNetwork, NodeClient
from tests.evm_helpers import evm_tools, ganache  # noqa: F401 - fixtures of the EVM tests
from tests.integration.helpers import ACTIVE, NodeFarm, NodeProcess
from tests.integration.postgres import REQUIRE_ENV, PostgresServer, find_bindir, required


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[NodeFarm]:
    f = NodeFarm(tmp_path)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def module_farm(tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[NodeFarm]:
    f = NodeFarm(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def node(module_farm: NodeFarm, net: LocalNetwork) -> NodeProcess:
    return module_farm.node(net)


@pytest.fixture
def http(node: NodeProcess) -> Iterator[httpx.Client]:
    with node.http() as c:
        yield c


@pytest.fixture
def client(node: NodeProcess) -> Iterator[NodeClient]:
    with NodeClient(node.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def alice(net: LocalNetwork) -> Identity:
    return net.identity("org1/alice")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        reason = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under "
                  "/usr/lib/postgresql/*/bin or on PATH: apt-get install -y postgresql")
        if required():
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this is a failure)", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for node in list(ACTIVE):
            report.sections.append((f"node {node.label} ({node.url}) output",
                                    node.log_text()))
