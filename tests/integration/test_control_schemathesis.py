"""Schemathesis over the control plane's OpenAPI document: no generated request, valid or
not, gets a 5xx, and every answer matches the documented status codes, content type and
response schema.

The app runs under uvicorn on a loopback port; every generated request is signed with
the SDK's ``SigningAuth`` as tenant acme's owner (an adapter hands requests' prepared
request to it), so the generated data reaches the handlers instead of stopping at 401.
Bounded: 15 examples per operation and mode (``CONSORTIA_FUZZ_EXAMPLES`` raises it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from requests.auth import AuthBase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consortia.sdk import Credentials, SigningAuth
from tests.control_helpers import ControlWorld, LiveServer, live_server, make_world

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("CONSORTIA_FUZZ_EXAMPLES", "15"))
"""Per operation and mode; about 15 s here. Raise it for a longer hunt."""
_SIGNED = ("x-consortia-date", "x-consortia-nonce", "x-consortia-content-sha256",
           "authorization")


class SigningHook(AuthBase):
    """A requests auth hook that signs with the SDK's httpx ``SigningAuth``."""

    def __init__(self, creds: Credentials) -> None:
        self.signer = SigningAuth(creds)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body if r.body is not None else b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        assert r.method is not None and r.url is not None
        request = httpx.Request(r.method, r.url, headers=dict(r.headers), content=body)
        signed = next(self.signer.auth_flow(request))
        for name in _SIGNED:
            r.headers[name] = signed.headers[name]
        return r


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlWorld,
                                                                         LiveServer]]:
    path = tmp_path_factory.mktemp("schemathesis") / "control.sqlite3"
    world = make_world(f"sqlite:///{path}")
    try:
        with live_server(world.app) as server:
            yield world, server
    finally:
        world.close()


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_no_server_errors(mode: schemathesis.GenerationMode,
                          running: tuple[ControlWorld, LiveServer]) -> None:
    """Every operation, with generated valid (positive) or invalid (negative) data."""
    world, server = running
    spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    with requests.Session() as session:
        session.auth = SigningHook(world.creds("acme"))
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            doc = spec["paths"][operation.path][operation.method.lower()]
            if mode is schemathesis.GenerationMode.NEGATIVE and not (
                    doc.get("parameters") or doc.get("requestBody")):
                continue  # nothing in it can be made invalid

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.url, session=session, timeout=30)
                case.validate_response(response, checks=checks)

            call()
    assert operations == len(_operation_ids(spec)) >= 16


def _operation_ids(spec: dict[str, Any]) -> set[str]:
    return {op["operationId"] for item in spec["paths"].values() for op in item.values()}
