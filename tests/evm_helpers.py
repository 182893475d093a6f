"""The pinned npm tool set (solc-js, Hardhat, ganache) for tests, and a ganache fixture.

Without Node.js the tests that need it are skipped with the reason — or FAIL when
``CONSORTIA_REQUIRE_NODE`` is set, as ``.ci/run`` sets it (it installs Node.js and the
tool set first), so a CI machine cannot silently skip them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortia.sdk import evm
from consortia.sdk.evm.devnodes import DevNode, start_ganache
from tests.integration.helpers import free_port

REQUIRE_ENV = "CONSORTIA_REQUIRE_NODE"


def require_tools() -> evm.Tools:
    """The installed tool set (``npm ci`` on first use), or skip/fail with the reason."""
    try:
        return evm.ensure_tools()
    except evm.ToolError as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"the npm tool set is required ({REQUIRE_ENV}) but: {exc.message}")
        pytest.skip(f"the npm tool set is unavailable: {exc.message}")


@pytest.fixture(scope="module")
def evm_tools() -> evm.Tools:
    return require_tools()


@pytest.fixture(scope="module")
def ganache(evm_tools: evm.Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    """A real ganache (instamine) on a free port for the module; its log attached on
    failure is in the node's ``log_path``."""
    node = start_ganache(free_port(), tmp_path_factory.mktemp("ganache"), tools=evm_tools)
    try:
        yield node
    finally:
        node.stop()


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "contracts"
