"""The API explorer in a real browser: Debian's Chromium, headless, driven over the
DevTools protocol (``websockets``, which uvicorn[standard] brings), against the app
served by uvicorn.

The page loads /openapi.json, an access key typed into it signs a GET and a POST that the
server accepts, the key stays in sessionStorage, and a console login (cookie + CSRF
token) makes a change; the session cookie is invisible to the page's scripts. Skipped
without Chromium unless ``CONSORTIA_REQUIRE_BROWSER`` is set (CI installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.control_helpers import PASSWORD, ControlWorld, live_server, make_world
from tests.integration.helpers import free_port

pytestmark = pytest.mark.integration

_TIMEOUT = 20.0


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CONSORTIA_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required (CONSORTIA_REQUIRE_BROWSER) but not installed")
    pytest.skip("Chromium is not installed (apt-get install chromium; CI installs it)")


class Page:
    """One browser tab, evaluated into over the DevTools protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        self._ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=_TIMEOUT))
            if message.get("id") == self._next:
                assert "error" not in message, message
                return message["result"]

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        deadline = time.monotonic() + _TIMEOUT
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}")

    def set_value(self, selector: str, value: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).value = "
                  f"{json.dumps(value)}")

    def click(self, selector: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).click()")


@pytest.fixture
def browser() -> Iterator[Callable[[str], Page]]:
    binary = _chromium()
    port = free_port()
    profile = tempfile.mkdtemp(prefix="consortia-chromium-")
    proc = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
         "--remote-debugging-address=127.0.0.1", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack = contextlib.ExitStack()
    try:
        deadline = time.monotonic() + _TIMEOUT
        targets: list[dict[str, Any]] = []
        while not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json",
                                            timeout=2) as r:
                    targets = [t for t in json.load(r) if t["type"] == "page"]
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("Chromium did not start its DevTools endpoint")
                time.sleep(0.1)

        def open_page(url: str) -> Page:
            ws = stack.enter_context(connect(targets[0]["webSocketDebuggerUrl"],
                                             max_size=None, close_timeout=1))
            page = Page(ws)
            page.call("Page.enable")
            page.call("Page.navigate", url=url)
            return page

        yield open_page
    finally:
        proc.kill()
        proc.wait(timeout=10)
        stack.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    w = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    try:
        yield w
    finally:
        w.close()


def _result(page: Page) -> str:
    return str(page.wait_for("document.querySelector('.result p')?.textContent",
                             "a call's result"))


def _send(page: Page, op_id: str, body: dict[str, Any] | None = None) -> str:
    page.eval(f"[...document.querySelectorAll('nav a')]"
              f".find(a => a.getAttribute('href') === '#{op_id}').click()")
    if body is not None:
        page.set_value("#call-form textarea", json.dumps(body))
    page.click("#call-form button")
    return _result(page)


def test_the_explorer_signs_and_logs_in_from_a_real_browser(
        world: ControlWorld, browser: Callable[[str], Page]) -> None:
    creds = world.creds("acme")
    with live_server(world.app) as server:
        page = browser(f"{server.url}/explorer")
        page.wait_for("document.querySelectorAll('nav a').length >= 16", "the operations")
        assert page.eval("document.querySelector('nav h3').textContent") == "tenant"

        page.set_value("#key-id", creds.access_key_id)
        page.set_value("#key-secret", creds.secret)
        page.click("#key-form button[type=submit]")
        who = page.wait_for("document.getElementById('who').textContent.includes('acme')"
                            " && document.getElementById('who').textContent", "whoami")
        assert who == "acme-owner (owner) in acme, by signature"
        assert page.eval("document.getElementById('key-secret').value") == ""
        assert json.loads(page.eval("sessionStorage.getItem('consortia.explorer.key')")) == {
            "accessKeyId": creds.access_key_id, "secret": creds.secret}

        assert _send(page, "create_user", {"username": "from-browser",
                                           "role": "viewer"}).startswith("HTTP 201")
        with world.client(creds) as c:
            names = [u["username"] for u in c.get("/v1/users").json()["items"]]
        assert "from-browser" in names

        page.set_value("#login-tenant", "acme")
        page.set_value("#login-user", "acme-owner")
        page.set_value("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for("document.getElementById('who').textContent.endsWith('by session')",
                      "the session")
        assert page.eval("document.cookie") == ""  # HttpOnly
        assert _send(page, "create_user", {"username": "by-session",
                                           "role": "viewer"}).startswith("HTTP 201")
        with world.client(creds) as c:
            rows = c.get("/v1/audit", params={"action": "user.create"}).json()["items"]
        newest = rows[0]
        assert newest["access_key_id"] is None and newest["result"] == "SUCCESS"
