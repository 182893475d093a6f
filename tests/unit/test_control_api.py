"""The control-plane API suite (tests/control_api_suite.py) on a SQLite file, and the
checks that need no second backend: error format details, body limit, explorer page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control_api_suite import ControlApiSuite, error_code
from tests.control_helpers import ControlWorld, make_world


class TestSqlite(ControlApiSuite):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'control.sqlite3'}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    try:
        yield w
    finally:
        w.close()


def test_unknown_paths_and_methods_use_the_error_format(world: ControlWorld) -> None:
    with world.client() as c:
        r = c.get("/v1/nothing-here")
        assert r.status_code == 404 and error_code(r) == "not_found"
        r = c.put("/v1/tenant")
        assert r.status_code == 405 and error_code(r) == "method_not_allowed"
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_validation_errors_are_422_with_details(world: ControlWorld) -> None:
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/users", json={"username": "", "role": "emperor", "extra": 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert {tuple(d["loc"]) for d in err["details"]} >= {("body", "role"), ("body", "extra")}


def test_bodies_over_the_limit_are_refused(world: ControlWorld) -> None:
    big = "x" * (world.settings.max_body_bytes + 1)
    with world.client(world.creds("acme")) as c:
        r = c.post("/v1/users", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and error_code(r) == "too_large"


def test_request_ids_are_made_when_missing_or_unusable(world: ControlWorld) -> None:
    with world.client() as c:
        made = c.get("/healthz").headers["x-request-id"]
        assert made.startswith("req-")
        bad = c.get("/healthz", headers={"X-Request-Id": "has spaces; and /" + "x" * 70})
        assert bad.headers["x-request-id"].startswith("req-")


def test_explorer_page_and_its_modules_are_served(world: ControlWorld) -> None:
    with world.client() as c:
        page = c.get("/explorer")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert '<script type="module" src="/static/explorer.js">' in page.text
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
        for name in ("explorer.js", "explorer-core.js", "signing.js"):
            r = c.get(f"/static/{name}")
            assert r.status_code == 200, name
            assert "javascript" in r.headers["content-type"], name
            assert "https://" not in r.text, name
            assert r.headers["content-security-policy"] == csp, name
        assert 'from "./signing.js"' in c.get("/static/explorer-core.js").text
        assert c.get("/static/explorer.css").status_code == 200
        assert c.get("/", follow_redirects=False).headers["location"] == "/explorer"
