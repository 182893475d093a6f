"""The control-plane API suite (tests/control_api_suite.py) against a real PostgreSQL
server: authentication, roles, tenant isolation, idempotency, sessions, audit.

The server is started once per session by the ``postgres`` fixture (conftest.py); each
test gets a fresh database. Skipped when the binaries are missing, unless
``CONSORTIA_REQUIRE_PG`` is set (CI), which makes that a failure.
"""

from __future__ import annotations

import pytest

from tests.control_api_suite import ControlApiSuite

pytestmark = pytest.mark.integration


class TestPostgres(ControlApiSuite):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url
