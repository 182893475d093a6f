"""Happy paths of the node API against a running node, through raw HTTP and the SDK clients.

Submission with wait, receipts, decoded transactions, blocks by height and by hash,
the latest blocks, notary records by business id and by category and business time
(with paging), offline proofs, metrics, the OpenAPI document, privacy and ciphertext
records, and the async client.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import threading
import uuid

import msgpack
import orjson
import pytest

from consortia.crypto import CryptoError
from consortia.sdk import (
    AsyncNodeClient,
    Identity,
    InvalidProof,
    LocalNetwork,
    NodeClient,
    NodeError,
    Recipient,
    init_network,
    load_genesis,
    notary,
    sign,
    verify_proof,
)
from consortia.types.block import Block
from consortia.types.config import BlockLimits, Role
from consortia.types.tx import CiphertextRecord, Envelope, Payload, PrivacyRecord, TxType
from tests.integration.helpers import assert_refused, chain_state, free_port

pytestmark = pytest.mark.integration

CHAIN = "happy"


@pytest.fixture(scope="module")
def net(module_farm) -> LocalNetwork:
    return module_farm.network("happy", chain_id=CHAIN, orgs=["org1", "org2"],
                               limits=BlockLimits(batch_timeout_ms=50))






@pytest.fixture(scope="module")
def genesis(net):
    return load_genesis(net.genesis_path)


@pytest.fixture(scope="module")
def other_genesis(tmp_path_factory):
    """The genesis of another network that happens to use the same chain id."""
    other = init_network(tmp_path_factory.mktemp("other"), chain_id=CHAIN, orgs=["org1"],
                         port=free_port())
    return load_genesis(other.genesis_path)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def payload_of(tx_doc: dict) -> Payload:
    return Payload.decode(Envelope.decode(base64.b64decode(tx_doc["envelope_base64"])).payload)


# -- submit, receipt, transaction -------------------------------------------------------------


def test_submit_with_wait_returns_the_committed_receipt(client, http, alice):
    h0, n0 = chain_state(http)
    tx = sign(alice, CHAIN, notary.content(uid("inv"), b"invoice 42", category="invoice",
                                           media_type="text/plain"))
    r = client.submit(tx, wait=True)
    assert r["status"] == "committed", r
    assert r["tx_id"] == tx.id_hex
    assert isinstance(r["height"], int) and r["height"] > h0
    assert isinstance(r["index"], int) and r["index"] >= 0
    assert r["error"] is None
    assert client.receipt(tx.id) == r
    assert chain_state(http)[1] >= n0 + 1

    doc = client.transaction(tx.id_hex)
    assert doc["tx_id"] == tx.id_hex
    assert doc["type"] == "notary_content"
    assert doc["chain_id"] == CHAIN
    assert doc["signer"]["org_id"] == "org1"
    assert doc["signer"]["name"] == "alice"
    assert doc["signer"]["role"] == "client"
    assert doc["receipt"] == {"status": "committed", "height": r["height"],
                              "index": r["index"], "error": None}
    assert doc["body"]["business_id"] == tx.payload.body.meta.business_id
    assert doc["body"]["category"] == "invoice"
    assert doc["body"]["media_type"] == "text/plain"
    assert base64.b64decode(doc["body"]["data_base64"]) == b"invoice 42"
    assert base64.b64decode(doc["envelope_base64"]) == tx.envelope
    assert doc["nonce"] == tx.payload.nonce.hex()
    assert doc["timestamp_ms"] == tx.payload.timestamp_ms


def test_submit_without_wait_then_poll(client, alice):
    tx = sign(alice, CHAIN, notary.digest(uid("doc"), b"some document"))
    r = client.submit(tx)
    assert r == {"tx_id": tx.id_hex, "status": "pending"}
    final = client.wait(tx.id, timeout=30)
    assert final["status"] == "committed"


def test_submit_as_json_base64(http, alice):
    tx = sign(alice, CHAIN, notary.content(uid("json"), b"{}"))
    resp = http.post("/v1/transactions", params={"wait": "true", "timeout": 30},
                     json={"envelope": base64.b64encode(tx.envelope).decode()})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "committed"
    assert resp.json()["tx_id"] == tx.id_hex


def test_batch_with_wait_commits_every_record_type(client, net, alice):
    bid = uid("kinds")
    data = b"quarterly report"
    ct_record, key = notary.ciphertext(bid, b"secret terms", key_id="k1")
    bodies = [
        notary.content(bid, data, media_type="text/plain"),
        notary.digest(bid, data),
        notary.known_digest(bid, bytes(range(32)), algorithm="sha256"),
        notary.digest(bid, data, algorithm="sha512"),
        notary.link(bid, "https://example.com/report.pdf", bytes(32)),
        ct_record,
    ]
    txs = [sign(alice, CHAIN, b) for b in bodies]
    out = client.submit_batch(txs, wait=True)
    assert (out["accepted"], out["rejected"]) == (len(txs), 0), out
    assert [r["status"] for r in out["results"]] == ["committed"] * len(txs)
    assert [r["tx_id"] for r in out["results"]] == [t.id_hex for t in txs]

    types = [client.transaction(t.id)["type"] for t in txs]
    assert types == ["notary_content", "notary_hash", "notary_hash", "notary_hash",
                     "notary_link", "notary_ciphertext"]
    link = client.transaction(txs[4].id)["body"]
    assert link["uri"] == "https://example.com/report.pdf"
    ct_doc = client.transaction(txs[5].id)
    assert b"secret terms" not in base64.b64decode(ct_doc["envelope_base64"])
    body = payload_of(ct_doc).body
    assert isinstance(body, CiphertextRecord)
    assert notary.decrypt_ciphertext(body, key) == b"secret terms"
    with pytest.raises(CryptoError):
        notary.decrypt_ciphertext(body, os.urandom(32))


# -- blocks ------------------------------------------------------------------------------------


def test_blocks_by_height_by_hash_and_latest(client, http, alice):
    tx = sign(alice, CHAIN, notary.content(uid("blk"), b"block test"))
    r = client.submit(tx, wait=True)
    by_height = client.block(r["height"])
    assert by_height["height"] == r["height"]
    assert by_height["tx_count"] == len(by_height["transactions"])
    assert by_height["transactions"][r["index"]] == {
        "tx_id": tx.id_hex, "type": "notary_content", "status": "valid", "error": None}
    assert by_height["proposer"] == "validator0"
    assert by_height["certificate"]["votes"] == ["validator0"]
    assert client.block(by_height["hash"]) == by_height
    assert client.block(by_height["hash"].upper()) == by_height

    raw = http.get(f"/v1/blocks/{r['height']}", params={"raw": "true"})
    assert raw.status_code == 200
    block = Block.decode(raw.content)
    assert block.header.height == r["height"]
    assert tx.envelope in block.envelopes

    # The latest blocks, newest first, linked by prev_hash.
    height = chain_state(http)[0]
    latest = client.blocks(limit=3)
    assert latest["height"] == height
    heights = [b["height"] for b in latest["blocks"]]
    assert heights == list(range(height, height - len(heights), -1))
    assert len(heights) == min(3, height + 1)
    for newer, older in zip(latest["blocks"], latest["blocks"][1:], strict=False):
        assert newer["prev_hash"] == older["hash"]
    # Paging backwards with ?before=.
    page = http.get("/v1/blocks", params={"limit": 2, "before": heights[-1]}).json()
    assert [b["height"] for b in page["blocks"]] == [
        h for h in (heights[-1] - 1, heights[-1] - 2) if h >= 0]


def test_genesis_block_and_chain_info(client, http, net):
    info = client.chain_info()
    assert info["chain_id"] == CHAIN
    assert info["genesis_hash"] == net.doc["genesis_hash"]
    assert info["consensus"] == "solo"
    assert info["node"]["id"] == "validator0"
    assert info["node"]["role"] == "validator"
    assert info["validators"] == [{"id": "validator0", "org_id": "org1"}]
    g = client.block(0)
    assert g["hash"] == net.doc["genesis_hash"]
    assert g["is_config"] is True
    assert g["transactions"][0]["type"] == "config"
    assert client.genesis() == net.genesis_path.read_bytes()
    latest = client.block(info["height"])
    assert latest["hash"] == info["latest_hash"]
    health = http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


# -- records -----------------------------------------------------------------------------------


def _pages(client: NodeClient, limit: int, **query) -> list[list[dict]]:
    pages, after = [], None
    for _ in range(100):
        page = client.records(limit=limit, after=after, **query)
        pages.append(page["records"])
        after = page["next"]
        if after is None:
            return pages
    pytest.fail("records paging never ended")


def test_records_by_business_id_with_paging(client, alice, net):
    bid = uid("order")
    bob = net.identity("org2/alice")
    txs = [sign(alice if i % 2 else bob, CHAIN, notary.content(bid, f"v{i}".encode()))
           for i in range(5)]
    out = client.submit_batch(txs, wait=True)
    assert out["accepted"] == 5
    # Unrelated records never show up.
    client.submit(sign(alice, CHAIN, notary.content(uid("other"), b"x")), wait=True)

    everything = client.records(business_id=bid)
    assert everything["next"] is None
    assert [r["tx_id"] for r in everything["records"]] == [t.id_hex for t in txs]
    for r in everything["records"]:
        assert r["business_id"] == bid
        assert r["type"] == "notary_content"
        assert isinstance(r["height"], int) and isinstance(r["index"], int)

    pages = _pages(client, 2, business_id=bid)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r["tx_id"] for p in pages for r in p] == [t.id_hex for t in txs]
    assert client.records(business_id=uid("nothing"))["records"] == []


def test_records_by_category_and_business_time_with_paging(client, alice):
    cat = uid("cat")
    base = 1_700_000_000_000
    times = [base + i * 1000 for i in range(7)]
    order = list(range(7))
    random.Random(7).shuffle(order)          # submitted out of business-time order
    txs = {i: sign(alice, CHAIN, notary.digest(uid("rec"), bytes([i]), category=cat,
                                               business_time_ms=times[i])) for i in order}
    # Two records at the same business time, told apart by their order on chain.
    twin = sign(alice, CHAIN, notary.digest(uid("rec"), b"twin", category=cat,
                                            business_time_ms=times[3]))
    out = client.submit_batch([txs[i] for i in order] + [twin], wait=True)
    assert out["accepted"] == 8, out

    # The window [times[1], times[5]] is inclusive at both ends.
    window = dict(category=cat, from_ms=times[1], to_ms=times[5])
    full = client.records(**window)["records"]
    got_times = [r["business_time_ms"] for r in full]
    assert got_times == sorted(got_times)
    assert got_times == [times[1], times[2], times[3], times[3], times[4], times[5]]
    assert {r["category"] for r in full} == {cat}

    for limit in (1, 2, 4, 6):
        pages = _pages(client, limit, **window)
        flat = [r for p in pages for r in p]
        assert [r["tx_id"] for r in flat] == [r["tx_id"] for r in full], limit
        assert all(len(p) <= limit for p in pages)
        assert all(len(p) == limit for p in pages[:-1])

    # Outside the window, or another category: nothing.
    assert client.records(category=cat, from_ms=0, to_ms=base - 1)["records"] == []
    assert client.records(category=cat, from_ms=times[6] + 1)["records"] == []
    assert client.records(category=uid("cat"))["records"] == []


def test_records_over_raw_http(http, client, alice):
    cat = uid("raw")
    tx = sign(alice, CHAIN, notary.content(uid("r"), b"x", category=cat, business_time_ms=5))
    client.submit(tx, wait=True)
    resp = http.get("/v1/records", params={"category": cat, "from_ms": 5, "to_ms": 5})
    assert resp.status_code == 200
    assert [r["tx_id"] for r in resp.json()["records"]] == [tx.id_hex]


# -- proofs ------------------------------------------------------------------------------------


def test_proof_verifies_offline_against_the_genesis_file(client, alice, genesis):
    tx = sign(alice, CHAIN, notary.content(uid("proof"), b"prove me"))
    r = client.submit(tx, wait=True)
    proof = client.proof(tx.id)
    v = verify_proof(proof, genesis)
    assert v.tx_id == tx.id
    assert v.chain_id == CHAIN
    assert (v.height, v.index) == (r["height"], r["index"])
    assert v.block_hash.hex() == client.block(r["height"])["hash"]
    assert (v.signer_org, v.signer_name, v.signer_role) == ("org1", "alice", "client")
    assert v.payload == tx.payload
    assert v.validators == ("validator0",)


def test_changed_proof_bytes_never_verify(client, alice, genesis, other_genesis):
    tx = sign(alice, CHAIN, notary.digest(uid("tamper"), b"doc"))
    client.submit(tx, wait=True)
    proof = client.proof(tx.id)
    verify_proof(proof, genesis)
    rnd = random.Random(11)
    positions = rnd.sample(range(len(proof)), min(400, len(proof)))
    for pos in positions:
        b = proof[pos]
        other = ord("0") if b != ord("0") else ord("1")
        for nb in (b ^ 0x01, other):
            changed = proof[:pos] + bytes([nb]) + proof[pos + 1:]
            with pytest.raises(InvalidProof):
                verify_proof(changed, genesis)
    # The same proof against another genesis of a chain with the same id is refused.
    with pytest.raises(InvalidProof):
        verify_proof(proof, other_genesis)


def test_proof_of_unknown_or_pending_transaction_is_404(client, alice):
    tx = sign(alice, CHAIN, notary.digest(uid("never"), b"x"))
    with pytest.raises(NodeError) as exc:
        client.proof(tx.id)
    assert (exc.value.status, exc.value.code) == (404, "not_found")


def test_proofs_across_a_configuration_change(client, http, net, alice, genesis):
    """After a CRL update (a configuration block), proofs carry the configuration blocks
    and still verify offline; so does the proof of the CRL update itself."""
    net.new_identity("org2", "dave", Role.CLIENT)
    before = sign(alice, CHAIN, notary.digest(uid("pre"), b"before"))
    r_before = client.submit(before, wait=True)
    crl = net.revoke("org2", "dave")
    r_crl = client.submit(crl, wait=True)
    assert r_crl["status"] == "committed", r_crl
    crl_block = client.block(r_crl["height"])
    assert crl_block["is_config"] is True
    assert crl_block["tx_count"] == 1
    assert crl_block["transactions"][0]["type"] == "crl_update"
    info = client.chain_info()
    assert info["config_height"] == r_crl["height"]
    assert {o["id"]: o["has_crl"] for o in info["config"]["organizations"]}["org2"] is True

    after = sign(alice, CHAIN, notary.digest(uid("post"), b"after"))
    r_after = client.submit(after, wait=True)
    assert r_after["height"] > r_crl["height"]

    for tx, r in ((before, r_before), (crl, r_crl), (after, r_after)):
        proof = client.proof(tx.id)
        doc = orjson.loads(proof)
        v = verify_proof(proof, genesis)
        assert (v.height, v.index) == (r["height"], r["index"])
        if tx is after:
            assert len(doc["config_blocks"]) >= 1
        if tx is crl:
            assert v.payload.type is TxType.CRL_UPDATE
            assert (v.signer_org, v.signer_name) == ("org2", "admin")
    assert chain_state(http)[0] >= r_after["height"]


# -- privacy -----------------------------------------------------------------------------------


def test_privacy_record_is_readable_by_its_recipients_only(client, net, alice):
    reader = net.identity("org2/alice")
    outsider = net.new_identity("org1", f"eve{uuid.uuid4().hex[:6]}", Role.CLIENT)
    secret = b"merger terms: 42"
    record = notary.privacy(uid("deal"), secret,
                            [Recipient.from_cert(reader.cert_der),
                             Recipient.from_cert(alice.cert_der)], category="deal")
    tx = sign(alice, CHAIN, record)
    assert client.submit(tx, wait=True)["status"] == "committed"

    doc = client.transaction(tx.id)
    assert doc["type"] == "notary_privacy"
    assert len(doc["body"]["recipients"]) == 2
    raw = base64.b64decode(doc["envelope_base64"])
    assert secret not in raw
    body = payload_of(doc).body
    assert isinstance(body, PrivacyRecord)
    assert notary.open_privacy(body, reader) == secret
    assert notary.open_privacy(body, alice) == secret
    with pytest.raises(CryptoError):
        notary.open_privacy(body, outsider)
    # Claiming a recipient's fingerprint without its key does not open it either.
    pretender = Identity(outsider.key, reader.cert_der)
    with pytest.raises(CryptoError):
        notary.open_privacy(body, pretender)


# -- metrics and OpenAPI -----------------------------------------------------------------------


def test_metrics(http, client, alice):
    client.submit(sign(alice, CHAIN, notary.digest(uid("m"), b"m")), wait=True)
    resp = http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "consortia_tx_committed_total" in text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values['consortia_tx_committed_total{status="valid"}'] >= 1
    assert values["consortia_chain_height"] == chain_state(http)[0]
    assert values["consortia_blocks_committed_total"] >= 1
    assert values["consortia_tx_admitted_total"] >= 1


def test_openapi_lists_the_endpoints(http):
    resp = http.get("/openapi.json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    expected = {
        "/v1/transactions": "post", "/v1/transactions/batch": "post",
        "/v1/transactions/{tx_id}": "get", "/v1/receipts/{tx_id}": "get",
        "/v1/proofs/{tx_id}": "get", "/v1/blocks": "get", "/v1/blocks/{block_id}": "get",
        "/v1/chain": "get", "/v1/genesis": "get", "/v1/records": "get",
        "/metrics": "get", "/healthz": "get", "/v1/sync/blocks": "get",
    }
    for path, method in expected.items():
        assert path in paths, path
        assert method in paths[path], (path, paths[path].keys())
    body = paths["/v1/transactions"]["post"]["requestBody"]["content"]
    assert {"application/octet-stream", "application/json"} <= set(body)
    assert "application/msgpack" in paths["/v1/transactions/batch"]["post"]["requestBody"][
        "content"]


def test_sync_blocks_serves_canonical_bytes_and_long_polls(client, http, alice):
    """What peers follow the chain with: consecutive blocks as canonical bytes, the node's
    height in a header, an empty list above it, a long poll answered by the next block."""
    client.submit(sign(alice, CHAIN, notary.digest(uid("sync"), b"x")), wait=True)
    top = chain_state(http)[0]
    r = http.get("/v1/sync/blocks", params={"from": 1, "limit": 1000})
    assert r.status_code == 200 and r.headers["content-type"] == "application/msgpack"
    assert int(r.headers["x-consortia-height"]) >= top
    raws = msgpack.unpackb(r.content)
    assert len(raws) >= top and all(isinstance(x, bytes) for x in raws)
    for h in (1, top):
        raw = http.get(f"/v1/blocks/{h}", params={"raw": "true"}).content
        if h < top:  # (the newest block's certificate may be replaced meanwhile)
            assert raws[h - 1] == raw
        assert Block.decode(raws[h - 1]).header.height == h
    assert msgpack.unpackb(http.get("/v1/sync/blocks", params={"from": 2, "limit": 1}
                                    ).content)[0] == raws[1]
    empty = http.get("/v1/sync/blocks", params={"from": 10**9})
    assert empty.status_code == 200 and empty.content == b"\x90"
    for bad in ({"from": 0}, {}, {"from": 1, "limit": 0}, {"from": 1, "limit": 1001},
                {"from": 1, "wait_ms": -1}, {"from": "x"}):
        assert_refused(http.get("/v1/sync/blocks", params=bad), 400, "malformed")

    # A long poll for the next block returns with it once it commits.
    nxt = chain_state(http)[0] + 1
    answer: dict = {}

    def poll() -> None:
        answer["r"] = http.get("/v1/sync/blocks", params={"from": nxt, "wait_ms": 30_000},
                               timeout=40)
    t = threading.Thread(target=poll)
    t.start()
    client.submit(sign(alice, CHAIN, notary.digest(uid("poll"), b"y")), wait=True)
    t.join(timeout=45)
    (raw,) = msgpack.unpackb(answer["r"].content)[:1]
    assert Block.decode(raw).header.height == nxt


# -- async client ------------------------------------------------------------------------------


def test_async_client(node, net, alice, genesis):
    async def scenario() -> None:
        async with AsyncNodeClient(node.url, timeout=30) as c:
            bid = uid("async")
            txs = [sign(alice, CHAIN, notary.content(bid, f"a{i}".encode())) for i in range(6)]
            receipts = await asyncio.gather(*[c.submit(t, wait=True) for t in txs])
            assert [r["status"] for r in receipts] == ["committed"] * 6
            assert [r["tx_id"] for r in receipts] == [t.id_hex for t in txs]
            batch = [sign(alice, CHAIN, notary.content(bid, b"b")) for _ in range(3)]
            out = await c.submit_batch(batch, wait=True)
            assert out["accepted"] == 3
            pending = sign(alice, CHAIN, notary.content(bid, b"c"))
            assert (await c.submit(pending))["status"] == "pending"
            assert (await c.wait(pending.id, timeout=30))["status"] == "committed"

            assert (await c.receipt(txs[0].id)) == receipts[0]
            doc = await c.transaction(txs[0].id_hex)
            assert doc["receipt"]["height"] == receipts[0]["height"]
            v = verify_proof(await c.proof(txs[0].id), genesis)
            assert v.tx_id == txs[0].id
            blk = await c.block(receipts[0]["height"])
            assert txs[0].id_hex in [t["tx_id"] for t in blk["transactions"]]
            info = await c.chain_info()
            assert info["chain_id"] == CHAIN
            recs = await c.records(business_id=bid, limit=4)
            assert len(recs["records"]) == 4 and recs["next"] is not None
            rest = await c.records(business_id=bid, after=recs["next"])
            assert len(recs["records"]) + len(rest["records"]) == 10
            with pytest.raises(NodeError) as exc:
                await c.submit(txs[0])
            assert (exc.value.status, exc.value.code) == (409, "duplicate_transaction")

    asyncio.run(scenario())


def test_async_client_has_the_sync_clients_reads(node, net):
    """``AsyncNodeClient`` is documented as having the same methods as ``NodeClient``:
    the latest blocks and the genesis file are reads every explorer needs."""
    async def scenario() -> None:
        async with AsyncNodeClient(node.url, timeout=30) as c:
            latest = await c.blocks(limit=2)
            assert latest["blocks"][0]["height"] == latest["height"]
            assert await c.genesis() == net.genesis_path.read_bytes()

    sync_methods = {m for m in dir(NodeClient) if not m.startswith("_")} - {"close"}
    async_methods = {m for m in dir(AsyncNodeClient) if not m.startswith("_")} - {"aclose"}
    assert sync_methods - async_methods == set()
    asyncio.run(scenario())


def test_batch_over_raw_msgpack(http, alice):
    txs = [sign(alice, CHAIN, notary.digest(uid("mp"), os.urandom(8))) for _ in range(4)]
    resp = http.post("/v1/transactions/batch", params={"wait": "true", "timeout": 30},
                     content=msgpack.packb([t.envelope for t in txs], use_bin_type=True),
                     headers={"content-type": "application/msgpack"})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["accepted"] == 4 and doc["rejected"] == 0
    heights = {r["height"] for r in doc["results"]}
    for r in doc["results"]:
        assert r["status"] == "committed"
    # Committed together: every result names a block that holds it at that index.
    for h in heights:
        blk = http.get(f"/v1/blocks/{h}").json()
        for r in doc["results"]:
            if r["height"] == h:
                assert blk["transactions"][r["index"]]["tx_id"] == r["tx_id"]
    assert_refused(http.get(f"/v1/blocks/{max(heights) + 1000}"), 404, "not_found")
