"""Fixtures of the integration suite (helpers live in ``helpers.py``).

``farm`` (per test) and ``module_farm`` (per module) create networks and own the
node processes started from them; both stop every node at teardown (SIGTERM,
then SIGKILL). A failing test's report carries the output of every node that
was alive for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import ACTIVE, NodeFarm


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for node in list(ACTIVE):
            report.sections.append((f"node {node.label} ({node.url}) output",
                                    node.log_text()))
