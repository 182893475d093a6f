"""Bad input against a running node: the HTTP status, the stable error code, and nothing stored.

Every refusal must come back as ``{"error": {"code", "message"}}`` with the status
of ``consortia.types.errors``, and must leave the chain exactly as it was: same
height and tx_count in GET /v1/chain, and no receipt or transaction for the id.

The node of this module has a small request-body limit (2 MiB), a small batch
limit (50) and a long batch timeout (1 s), so a transaction submitted without
waiting stays pending long enough to be replayed while pending.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
from collections.abc import Iterator

import msgpack
import pytest

from consortia.crypto import get_suite
from consortia.identity.ca import cert_der
from consortia.sdk import Identity, LocalNetwork, NodeClient, SignedTx, notary, sign
from consortia.types.config import BlockLimits, Role
from consortia.types.tx import MAX_CONTENT, ConfigBody, ContentRecord, Envelope
from tests.integration.helpers import (
    assert_not_stored,
    assert_refused,
    chain_state,
    error_of,
    free_port,
    post_envelope,
)

pytestmark = pytest.mark.integration

CHAIN = "admission"
MAX_BODY = 2 * 1024 * 1024
MAX_BATCH = 50


@pytest.fixture(scope="module")
def net(module_farm) -> LocalNetwork:
    return module_farm.network(
        "adm", chain_id=CHAIN, orgs=["org1", "org2"],
        limits=BlockLimits(batch_timeout_ms=1000),
        api={"max_body_bytes": MAX_BODY, "max_batch": MAX_BATCH})






def record(tag: str = "adm") -> ContentRecord:
    return notary.content(f"{tag}-{os.urandom(6).hex()}", b"admission test")


def good_tx(ident: Identity, chain: str = CHAIN, **kw) -> SignedTx:
    return sign(ident, chain, record(), **kw)


# -- malformed ---------------------------------------------------------------------------------


def _non_canonical_int(env: bytes) -> bytes:
    """The same envelope with ``version=1`` spelled as a uint8 (0xcc 0x01), not a fixint."""
    assert env[:2] == b"\x94\x01"
    return b"\x94\xcc\x01" + env[2:]


def _non_canonical_array(env: bytes) -> bytes:
    """The same envelope with its 4-field array header spelled as array16."""
    assert env[0] == 0x94
    return b"\xdc\x00\x04" + env[1:]


def test_random_bytes_are_malformed(http):
    before = chain_state(http)
    rnd = random.Random(20240601)
    for size in (1, 17, 300, 4096):
        resp = post_envelope(http, rnd.randbytes(size))
        assert_refused(resp, 400, "malformed")
    assert_not_stored(http, before)


@pytest.mark.parametrize("spell", [_non_canonical_int, _non_canonical_array],
                         ids=["uint8-version", "array16-header"])
def test_non_canonical_msgpack_is_malformed(http, alice, spell):
    tx = good_tx(alice)
    raw = spell(tx.envelope)
    # The second spelling decodes to exactly the same value: only canonicity refuses it.
    assert msgpack.unpackb(raw) == msgpack.unpackb(tx.envelope)
    before = chain_state(http)
    err = assert_refused(post_envelope(http, raw), 400, "malformed")
    assert "canonical" in err["message"]
    assert_not_stored(http, before, [tx.id_hex])


def test_truncated_and_padded_envelopes_are_malformed(http, alice):
    tx = good_tx(alice)
    before = chain_state(http)
    for raw in (tx.envelope[:-1], tx.envelope + b"\x00", tx.envelope[: len(tx.envelope) // 2]):
        assert_refused(post_envelope(http, raw), 400, "malformed")
    assert_not_stored(http, before, [tx.id_hex])


@pytest.mark.parametrize("body", [
    b'{"envelope": "!!! not base64 !!!"}',
    b'{"envelope": "AAE"}',                      # missing padding
    b'{"envelope": 12345}',
    b'{"envelopes": "wrong key"}',
    b'["envelope"]',
    b'{"envelope": ',
], ids=["bad-chars", "bad-padding", "not-a-string", "wrong-key", "not-an-object", "bad-json"])
def test_json_submission_errors_are_malformed(http, body):
    before = chain_state(http)
    resp = http.post("/v1/transactions", content=body,
                     headers={"content-type": "application/json"})
    assert_refused(resp, 400, "malformed")
    assert_not_stored(http, before)


def test_json_with_valid_base64_of_a_bad_signature_is_not_malformed(http, alice):
    """The JSON path reaches admission: valid base64 of a tampered envelope is a 401."""
    tx = good_tx(alice)
    env = Envelope.decode(tx.envelope)
    bad = Envelope(env.payload, env.signer, env.signature[:-1] + bytes([env.signature[-1] ^ 1]))
    before = chain_state(http)
    resp = http.post("/v1/transactions",
                     json={"envelope": base64.b64encode(bad.encode()).decode()})
    assert_refused(resp, 401, "bad_signature")
    assert_not_stored(http, before, [tx.id_hex])


def test_empty_body_and_unsupported_media_type(http, alice):
    tx = good_tx(alice)
    before = chain_state(http)
    assert_refused(post_envelope(http, b""), 400, "malformed")
    resp = http.post("/v1/transactions", content=tx.envelope,
                     headers={"content-type": "text/plain"})
    assert_refused(resp, 415, "unsupported_media_type")
    resp = http.post("/v1/transactions/batch", content=tx.envelope,
                     headers={"content-type": "application/octet-stream"})
    assert_refused(resp, 415, "unsupported_media_type")
    assert_not_stored(http, before, [tx.id_hex])


def test_full_configuration_transaction_is_refused(http, net):
    admin = net.identity("org1/admin")
    tx = sign(admin, CHAIN, ConfigBody(b"\x90"))
    before = chain_state(http)
    assert_refused(post_envelope(http, tx.envelope), 400, "config_not_allowed")
    assert_not_stored(http, before, [tx.id_hex])


# -- identity ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_identities(tmp_path_factory) -> dict[str, Identity]:
    """Networks whose CAs this chain never heard of, with this chain's id (so the chain
    binding passes and the identity check is what refuses)."""
    from consortia.sdk import init_network
    root = tmp_path_factory.mktemp("foreign")
    # An organization id this chain does not have.
    unknown = init_network(root / "x", chain_id=CHAIN, orgs=["orgX"], port=free_port())
    # An impostor CA claiming to be org1: same subject name, another key.
    impostor = init_network(root / "i", chain_id=CHAIN, orgs=["org1"], port=free_port())
    return {"unknown-org": unknown.identity("orgX/alice"),
            "impostor-org1": impostor.identity("org1/alice"),
            "impostor-org1-admin": impostor.identity("org1/admin")}


@pytest.mark.parametrize("which", ["unknown-org", "impostor-org1", "impostor-org1-admin"])
def test_identity_from_a_foreign_ca_is_unknown(http, foreign_identities, which):
    tx = good_tx(foreign_identities[which])
    before = chain_state(http)
    assert_refused(post_envelope(http, tx.envelope), 403, "unknown_identity")
    assert_not_stored(http, before, [tx.id_hex])


@pytest.fixture(scope="module")
def revoked(net, node) -> tuple[Identity, SignedTx]:
    """org1/carol, with one transaction committed before her certificate was revoked."""
    carol = net.new_identity("org1", "carol", Role.CLIENT)
    with NodeClient(node.url, timeout=30) as c:
        before = good_tx(carol)
        assert c.submit(before, wait=True)["status"] == "committed"
        receipt = c.submit(net.revoke("org1", "carol"), wait=True)
        assert receipt["status"] == "committed", receipt
    return carol, before


def test_revoked_certificate(http, client, net, revoked):
    carol, _ = revoked
    tx = good_tx(carol)
    before = chain_state(http)
    err = assert_refused(post_envelope(http, tx.envelope), 403, "revoked_identity")
    assert "revoked" in err["message"]
    assert_not_stored(http, before, [tx.id_hex])
    # Revoking carol did not touch anybody else of org1.
    assert client.submit(good_tx(net.identity("org1/alice")), wait=True)["status"] == "committed"


def _expired(net: LocalNetwork, role: Role) -> Identity:
    now = dt.datetime.now(dt.UTC)
    ca = net.ca("org1")
    key = get_suite("p256-sha256").generate_key()
    cert = ca.issue(f"old-{role}", role, key.public_key(), not_before=now - dt.timedelta(days=30),
                    not_after=now - dt.timedelta(days=1))
    return Identity(key, cert_der(cert), ca.cert_der)


def _flipped(tx: SignedTx) -> bytes:
    env = Envelope.decode(tx.envelope)
    return Envelope(env.payload, env.signer,
                    env.signature[:-1] + bytes([env.signature[-1] ^ 0x01])).encode()


def test_admission_order_with_two_faults(http, net, alice, foreign_identities, revoked):
    """docs/spec/transactions.md § Admission order: the first failing check is the answer."""
    carol, carol_committed = revoked
    stranger = foreign_identities["unknown-org"]
    hour_ago = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 3_600_000
    cases = [
        ("wrong chain + stale", good_tx(alice, chain="other", timestamp_ms=hour_ago).envelope,
         422, "wrong_chain"),
        ("stale + unknown signer", good_tx(stranger, timestamp_ms=hour_ago).envelope,
         422, "stale_timestamp"),
        ("config body + unknown signer", sign(stranger, CHAIN, ConfigBody(b"x")).envelope,
         400, "config_not_allowed"),
        ("unknown signer + bad signature", _flipped(good_tx(stranger)), 403,
         "unknown_identity"),
        ("bad signature + revoked", _flipped(good_tx(carol)), 401, "bad_signature"),
        ("bad signature + wrong role", _flipped(good_tx(net.identity("org1/validator0"))),
         401, "bad_signature"),
        ("expired + wrong role", good_tx(_expired(net, Role.PEER)).envelope, 403,
         "expired_identity"),
        ("revoked + duplicate", carol_committed.envelope, 403, "revoked_identity"),
    ]
    before = chain_state(http)
    for name, raw, status, code in cases:
        resp = post_envelope(http, raw)
        err = error_of(resp)
        assert (resp.status_code, err["code"]) == (status, code), (name, resp.status_code, err)
    assert_not_stored(http, before)


@pytest.mark.parametrize("window", ["expired", "not-yet-valid"])
def test_certificate_outside_its_validity_window(http, net, window):
    if window == "expired":
        ident = _expired(net, Role.CLIENT)
    else:
        now = dt.datetime.now(dt.UTC)
        ca = net.ca("org1")
        key = get_suite("p256-sha256").generate_key()
        cert = ca.issue("dave-future", Role.CLIENT, key.public_key(),
                        not_before=now + dt.timedelta(days=1),
                        not_after=now + dt.timedelta(days=30))
        ident = Identity(key, cert_der(cert), ca.cert_der)
    tx = good_tx(ident)
    before = chain_state(http)
    assert_refused(post_envelope(http, tx.envelope), 403, "expired_identity")
    assert_not_stored(http, before, [tx.id_hex])


@pytest.mark.parametrize("who", ["validator", "peer", "ca"])
def test_role_that_may_not_write_notary_records(http, net, who):
    if who == "validator":
        ident = net.identity("org1/validator0")
    elif who == "peer":
        ident = net.new_identity("org1", "peer0", Role.PEER)
    else:  # the organization's CA key and certificate themselves
        ca = net.ca("org1")
        ident = Identity(ca.key, ca.cert_der, ca.cert_der)
    tx = good_tx(ident)
    before = chain_state(http)
    assert_refused(post_envelope(http, tx.envelope), 403, "wrong_role")
    assert_not_stored(http, before, [tx.id_hex])


# -- chain binding and time --------------------------------------------------------------------


def test_wrong_chain_id(http, alice):
    tx = good_tx(alice, chain="other")
    before = chain_state(http)
    err = assert_refused(post_envelope(http, tx.envelope), 422, "wrong_chain")
    assert "other" in err["message"]
    assert_not_stored(http, before, [tx.id_hex])


@pytest.mark.parametrize("offset_ms", [-3_600_000, 3_600_000], ids=["hour-ago", "hour-ahead"])
def test_stale_timestamp(http, alice, offset_ms):
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    tx = good_tx(alice, timestamp_ms=now_ms + offset_ms)
    before = chain_state(http)
    assert_refused(post_envelope(http, tx.envelope), 422, "stale_timestamp")
    assert_not_stored(http, before, [tx.id_hex])


# -- replay ------------------------------------------------------------------------------------


def test_replay_while_pending_and_after_commit(http, client, alice):
    tx = good_tx(alice)
    _, count0 = chain_state(http)
    first = post_envelope(http, tx.envelope)
    assert first.status_code == 202, first.text
    assert first.json() == {"tx_id": tx.id_hex, "status": "pending"}
    # Replayed while the first copy waits for its block (the batch timeout is 1 s).
    err = assert_refused(post_envelope(http, tx.envelope), 409, "duplicate_transaction")
    assert "pending" in err["message"]
    receipt = client.wait(tx.id, timeout=30)
    assert receipt["status"] == "committed", receipt
    after_commit = chain_state(http)
    assert after_commit[1] == count0 + 1
    # Replayed after commit: refused by the store, whatever the wait flag.
    for params in ({}, {"wait": "true", "timeout": 5}):
        err = assert_refused(post_envelope(http, tx.envelope, **params), 409,
                             "duplicate_transaction")
        assert "committed" in err["message"]
    # The same payload signed again (ECDSA signatures differ) is the same transaction.
    env = Envelope.decode(tx.envelope)
    resigned = Envelope(env.payload, env.signer, alice.key.sign(env.payload)).encode()
    assert resigned != tx.envelope
    assert_refused(post_envelope(http, resigned), 409, "duplicate_transaction")
    assert chain_state(http) == after_commit
    assert client.receipt(tx.id) == receipt


# -- sizes -------------------------------------------------------------------------------------


def test_content_one_byte_over_the_field_limit(http, client, alice):
    at_limit = sign(alice, CHAIN, notary.content(f"big-{os.urandom(4).hex()}", b"a" * MAX_CONTENT))
    over = sign(alice, CHAIN, notary.content(f"big-{os.urandom(4).hex()}",
                                             b"a" * (MAX_CONTENT + 1)))
    before = chain_state(http)
    err = assert_refused(post_envelope(http, over.envelope), 413, "too_large")
    assert "data" in err["message"]
    assert_not_stored(http, before, [over.id_hex])
    # The limit itself is allowed.
    assert client.submit(at_limit, wait=True)["status"] == "committed"


def test_transaction_over_the_chain_size_limit(http):
    before = chain_state(http)
    resp = post_envelope(http, os.urandom(1_200_001))
    assert_refused(resp, 413, "too_large")
    assert_not_stored(http, before)


def test_request_body_over_the_api_limit(http, alice):
    tx = good_tx(alice)
    before = chain_state(http)
    # Declared by Content-Length: refused before the body is read.
    body = tx.envelope + b"\x00" * (MAX_BODY + 1 - len(tx.envelope))
    assert len(body) == MAX_BODY + 1
    assert_refused(post_envelope(http, body), 413, "too_large")

    # Streamed (chunked, no Content-Length): refused once the limit is crossed.
    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent <= MAX_BODY:
            yield b"\x00" * 65536
            sent += 65536

    resp = http.post("/v1/transactions", content=chunks(),
                     headers={"content-type": "application/octet-stream"})
    assert_refused(resp, 413, "too_large")
    # The same for a batch.
    resp = http.post("/v1/transactions/batch", content=body,
                     headers={"content-type": "application/msgpack"})
    assert_refused(resp, 413, "too_large")
    assert_not_stored(http, before, [tx.id_hex])


def test_batch_over_the_count_limit(http, alice):
    txs = [good_tx(alice) for _ in range(MAX_BATCH + 2)]
    before = chain_state(http)
    # One over the limit, and more: the count is refused before any item is read.
    for items in (txs[:MAX_BATCH + 1], txs):
        resp = http.post("/v1/transactions/batch",
                         content=msgpack.packb([t.envelope for t in items], use_bin_type=True),
                         headers={"content-type": "application/msgpack"})
        assert_refused(resp, 413, "too_large")
        resp = http.post("/v1/transactions/batch", json={
            "envelopes": [base64.b64encode(t.envelope).decode() for t in items]})
        assert_refused(resp, 413, "too_large")
    assert_not_stored(http, before, [txs[0].id_hex, txs[-1].id_hex])


# -- signature ---------------------------------------------------------------------------------


def _with_signature(tx: SignedTx, signature: bytes) -> bytes:
    env = Envelope.decode(tx.envelope)
    return Envelope(env.payload, env.signer, signature).encode()


@pytest.mark.parametrize("how", ["flip-first", "flip-last", "other-key", "short", "zero"])
def test_bad_signature(http, net, alice, how):
    tx = good_tx(alice)
    sig = Envelope.decode(tx.envelope).signature
    if how == "flip-first":
        bad = bytes([sig[0] ^ 0x01]) + sig[1:]
    elif how == "flip-last":
        bad = sig[:-1] + bytes([sig[-1] ^ 0x80])
    elif how == "other-key":   # a valid signature, by org2/alice, under org1/alice's cert
        bad = net.identity("org2/alice").key.sign(Envelope.decode(tx.envelope).payload)
    elif how == "short":
        bad = sig[:-1]
    else:
        bad = bytes(64)
    before = chain_state(http)
    assert_refused(post_envelope(http, _with_signature(tx, bad)), 401, "bad_signature")
    assert_not_stored(http, before, [tx.id_hex])


# -- batch -------------------------------------------------------------------------------------


def test_batch_mixes_accepted_and_rejected_items(http, net, alice):
    ok1, ok2 = good_tx(alice), good_tx(net.identity("org2/alice"))
    wrong_chain = good_tx(alice, chain="other")
    sig = Envelope.decode(ok1.envelope).signature
    bad_sig = good_tx(alice)
    bad_sig_raw = _with_signature(bad_sig, sig)          # another payload's signature
    wrong_role = good_tx(net.identity("org1/validator0"))
    items = [ok1.envelope, wrong_chain.envelope, b"\x01\x02garbage", ok2.envelope,
             ok1.envelope, bad_sig_raw, wrong_role.envelope]
    expected = [None, (422, "wrong_chain"), (400, "malformed"), None,
                (409, "duplicate_transaction"), (401, "bad_signature"), (403, "wrong_role")]
    _, count0 = chain_state(http)
    resp = http.post("/v1/transactions/batch", params={"wait": "true", "timeout": 30},
                     content=msgpack.packb(items, use_bin_type=True),
                     headers={"content-type": "application/msgpack"})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert (doc["accepted"], doc["rejected"]) == (2, 5), doc
    assert len(doc["results"]) == len(items)
    for item, want in zip(doc["results"], expected, strict=True):
        if want is None:
            assert item["status"] == "committed", item
        else:
            assert item["status"] == "rejected", item
            assert (item["http_status"], item["error"]["code"]) == want, item
            assert item["error"]["message"]
    assert doc["results"][0]["tx_id"] == ok1.id_hex
    assert doc["results"][3]["tx_id"] == ok2.id_hex
    assert chain_state(http)[1] == count0 + 2
    for tx in (ok1, ok2):
        assert http.get(f"/v1/receipts/{tx.id_hex}").json()["status"] == "committed"
    for tx in (wrong_chain, bad_sig, wrong_role):
        assert_refused(http.get(f"/v1/receipts/{tx.id_hex}"), 404, "not_found")


def test_batch_as_json_without_wait(http, client, alice):
    txs = [good_tx(alice) for _ in range(3)]
    resp = http.post("/v1/transactions/batch", json={"envelopes": [
        base64.b64encode(t.envelope).decode() for t in txs] + ["%%%"]})
    # One bad item makes the whole JSON document unreadable: nothing is admitted.
    assert_refused(resp, 400, "malformed")
    resp = http.post("/v1/transactions/batch", json={"envelopes": [
        base64.b64encode(t.envelope).decode() for t in txs]})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["accepted"] == 3
    assert [r["status"] for r in doc["results"]] == ["pending"] * 3
    for t in txs:
        assert client.wait(t.id, timeout=30)["status"] == "committed"


@pytest.mark.parametrize("body", [b"", msgpack.packb([]), msgpack.packb({"a": 1}),
                                  msgpack.packb([1, 2]), b"\xc1"],
                         ids=["empty", "empty-array", "map", "ints", "invalid"])
def test_batch_body_that_is_not_a_list_of_envelopes(http, body):
    before = chain_state(http)
    resp = http.post("/v1/transactions/batch", content=body,
                     headers={"content-type": "application/msgpack"})
    assert_refused(resp, 400, "malformed")
    assert_not_stored(http, before)


# -- reads with bad arguments -----------------------------------------------------------------


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/v1/receipts/zz", 400, "malformed"),
    ("/v1/receipts/" + "ab" * 31, 400, "malformed"),
    ("/v1/receipts/" + "00" * 32, 404, "not_found"),
    ("/v1/transactions/" + "00" * 32, 404, "not_found"),
    ("/v1/proofs/" + "00" * 32, 404, "not_found"),
    ("/v1/blocks/999999", 404, "not_found"),
    ("/v1/blocks/" + "00" * 32, 404, "not_found"),
    ("/v1/blocks/" + "zz" * 32, 400, "malformed"),
    ("/v1/blocks/-1", 400, "malformed"),
    ("/v1/records", 400, "malformed"),
    ("/v1/records?business_id=a&category=b", 400, "malformed"),
    ("/v1/records?category=b&after=x:y", 400, "malformed"),
])
def test_reads_with_bad_arguments(http, path, status, code):
    assert_refused(http.get(path), status, code)


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v1/blocks?limit=0", 400, "malformed"),
    ("GET", "/v1/blocks?before=0", 400, "malformed"),
    ("GET", "/v1/records?category=x&limit=1001", 400, "malformed"),
    ("POST", "/v1/transactions?timeout=0", 400, "malformed"),
    ("POST", "/v1/transactions?timeout=100", 400, "malformed"),
    ("POST", "/v1/transactions/batch?wait=maybe", 400, "malformed"),
    ("GET", "/v1/no-such-endpoint", 404, "not_found"),
    ("DELETE", "/v1/chain", 405, "method_not_allowed"),
], ids=["limit-0", "before-0", "records-limit", "timeout-0", "timeout-100", "wait-maybe",
        "unknown-route", "wrong-method"])
def test_framework_refusals_use_the_error_envelope(http, alice, method, path, status, code):
    """Parameters FastAPI validates itself, unknown routes and wrong methods answer with
    the same ``{"error": {"code", "message"}}`` as every other refusal (rest-api.md)."""
    tx = good_tx(alice)
    before = chain_state(http)
    resp = http.request(method, path, content=tx.envelope if method == "POST" else None,
                        headers={"content-type": "application/octet-stream"})
    assert_refused(resp, status, code)
    assert_not_stored(http, before, [tx.id_hex])


def test_refusals_are_counted_and_the_node_still_serves(http, client, alice, node):
    hour_ago = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 3_600_000
    refusals = {
        "malformed": b"\x01garbage",
        "wrong_chain": good_tx(alice, chain="other").envelope,
        "stale_timestamp": good_tx(alice, timestamp_ms=hour_ago).envelope,
        "bad_signature": _flipped(good_tx(alice)),
        "too_large": os.urandom(1_200_001),
    }
    for raw in refusals.values():
        assert 400 <= post_envelope(http, raw).status_code < 500
    metrics = http.get("/metrics").text
    for code in refusals:
        assert f'consortia_tx_rejected_total{{code="{code}"}}' in metrics, code
    assert node.running
    assert client.submit(good_tx(alice), wait=True)["status"] == "committed"


def test_full_pool_answers_429(farm):
    """A node whose pool holds two transactions (and whose blocks wait ten minutes to be
    cut) refuses the third with 429 pool_full, and stores nothing for it."""
    net = farm.network("pool", chain_id=CHAIN,
                       limits=BlockLimits(batch_timeout_ms=600_000, max_block_txs=100),
                       pool={"max_txs": 2})
    node = farm.node(net)
    alice = net.identity("org1/alice")
    txs = [good_tx(alice) for _ in range(3)]
    with node.http() as http:
        before = chain_state(http)
        for tx in txs[:2]:
            assert post_envelope(http, tx.envelope).status_code == 202
        assert_refused(post_envelope(http, txs[2].envelope), 429, "pool_full")
        assert http.get("/v1/chain").json()["pool"]["transactions"] == 2
        assert chain_state(http) == before
        assert_refused(http.get(f"/v1/receipts/{txs[2].id_hex}"), 404, "not_found")
        assert http.get(f"/v1/receipts/{txs[0].id_hex}").json()["status"] == "pending"
