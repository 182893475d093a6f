"""Regressions of an adversarial review: hostile input a member or a stranger can send.

Each case once crashed the node, answered 500, or made it allocate without bound;
each must now be refused with its code, leave the chain as it was, and leave the
node serving.
"""

from __future__ import annotations

import os

import pytest

from consortia.sdk import LocalNetwork, notary, sign
from consortia.types.tx import CrlUpdate, Envelope
from tests.integration.helpers import (
    NodeProcess,
    assert_not_stored,
    assert_refused,
    chain_state,
    post_envelope,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(module_farm) -> LocalNetwork:
    return module_farm.network("hostile", chain_id="hostile", orgs=["org1", "org2"])




def _garble_issuer(crl: bytes, org: str) -> bytes:
    b = bytearray(crl)
    i = b.find(f"{org} CA".encode())
    assert b[i - 2] == 0x0C, "UTF8String tag before the issuer CN"
    b[i - 2] = 0x02  # now an INTEGER: the issuer no longer parses
    return bytes(b)


def test_a_garbled_crl_from_an_org_admin_is_refused_and_the_node_keeps_committing(
        net, http) -> None:
    before = chain_state(http)
    bad = sign(net.identity("org2/admin"), net.chain_id,
               CrlUpdate("org2", _garble_issuer(net.ca("org2").crl(), "org2")))
    assert_refused(post_envelope(http, bad.envelope), 400, "invalid_config")
    assert_not_stored(http, before, [bad.id_hex])
    ok = sign(net.identity("org1/alice"), net.chain_id, notary.content("after-crl", b"x"))
    r = post_envelope(http, ok.envelope, wait="true")
    assert r.status_code == 200 and r.json()["status"] == "committed", r.text
    assert http.get("/healthz").json()["status"] == "ok"


def _with_signer(env_bytes: bytes, signer: bytes) -> bytes:
    env = Envelope.decode(env_bytes)
    return Envelope(env.payload, signer, env.signature).encode()


def test_a_garbled_signer_certificate_is_403_and_spares_the_rest_of_its_batch(
        net, http) -> None:
    alice = net.identity("org1/alice")
    good = sign(alice, net.chain_id, notary.content("batch-good", os.urandom(8)))
    bad_cert = bytearray(alice.cert_der)
    bad_cert[bad_cert.find(b"\xa0\x03\x02\x01\x02") + 4] = 0x07  # X.509 version 8
    bad = _with_signer(sign(alice, net.chain_id, notary.content("b", b"y")).envelope,
                       bytes(bad_cert))
    assert_refused(post_envelope(http, bad), 403, "unknown_identity")
    import msgpack
    r = http.post("/v1/transactions/batch", params={"wait": "true"},
                  content=msgpack.packb([good.envelope, bad], use_bin_type=True),
                  headers={"content-type": "application/msgpack"})
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["status"] == "committed" and first["tx_id"] == good.id_hex
    assert second["status"] == "rejected" and second["error"]["code"] == "unknown_identity"


def test_a_batch_of_nested_arrays_is_refused_without_unpacking_it(node, http) -> None:
    before_rss = node_rss_kb(node)
    body = b"\xdd" + (10_000).to_bytes(4, "big") + b"\x90" * 8_000_000
    r = http.post("/v1/transactions/batch", content=body,
                  headers={"content-type": "application/msgpack"})
    assert_refused(r, 400, "malformed")
    assert "byte string" in r.json()["error"]["message"]
    # A Python list per input byte would be gigabytes; slicing allocates nothing per item.
    assert node_rss_kb(node) - before_rss < 100_000


def test_an_oversized_json_body_is_refused_before_parsing(http) -> None:
    body = b'{"envelopes":[' + b"[]," * 2_000_000 + b"[]]}"
    assert_refused(http.post("/v1/transactions/batch", content=body,
                             headers={"content-type": "application/json"}), 413, "too_large")


@pytest.mark.parametrize("params, path", [
    ({"business_id": "x", "after": "9" * 30}, "/v1/records"),
    ({"category": "x", "to_ms": str(2**70)}, "/v1/records"),
    ({"category": "x", "after": "1:" + "9" * 30}, "/v1/records"),
    ({"before": str(2**70)}, "/v1/blocks"),
])
def test_huge_integers_in_queries_are_400_not_500(http, params, path) -> None:
    assert_refused(http.get(path, params=params), 400, "malformed")


def node_rss_kb(node: NodeProcess) -> int:
    for line in open(f"/proc/{node.proc.pid}/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
