"""The control-plane store's suite against a real PostgreSQL server (Debian's package).

The server is started once per session by the ``postgres`` fixture (conftest.py,
postgres.py); each test gets a fresh database. Skipped when the binaries are missing,
unless ``CONSORTIA_REQUIRE_PG`` is set (CI), which makes that a failure.
"""

from __future__ import annotations

import pytest

from tests.control_store_suite import ControlStoreSuite

pytestmark = pytest.mark.integration


class TestPostgres(ControlStoreSuite):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url
