"""The canonical codec and the wire schemas (types/codec.py, types/tx.py, types/block.py,
types/config.py): round trips, strict rejection of every second spelling, and size limits."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.types.block import (
    MAX_BLOCK_TXS,
    Block,
    Certificate,
    Header,
    Result,
    TxStatus,
    Vote,
)
from consortia.types.codec import Reader, decode, encode
from consortia.types.config import (
    BlockLimits,
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Policies,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import ConsortiaError, InvalidTransaction, Malformed, TooLarge
from consortia.types.tx import (
    HASH_ALGORITHMS,
    MAX_CONTENT,
    MAX_ENVELOPE_BYTES,
    MAX_RECIPIENTS,
    CiphertextRecord,
    ConfigBody,
    ContentRecord,
    CrlUpdate,
    Envelope,
    HashRecord,
    LinkRecord,
    NotaryMeta,
    OrgUpdate,
    Payload,
    PrivacyRecord,
    SealedEnvelope,
    TxType,
    WrappedKey,
    body_type,
    encode_body,
    notary_meta,
)

U63 = st.integers(min_value=0, max_value=2**63 - 1)


def _fit(s: str, max_bytes: int) -> str:
    out = []
    n = 0
    for c in s:
        k = len(c.encode())
        if n + k > max_bytes:
            break
        out.append(c)
        n += k
    return "".join(out)


def text(max_bytes: int, min_bytes: int = 0) -> st.SearchStrategy[str]:
    """Unicode text whose UTF-8 form is within [min_bytes, max_bytes] (limits count bytes)."""
    return (st.text(max_size=max_bytes).map(lambda s: _fit(s, max_bytes))
            .filter(lambda s: len(s.encode()) >= min_bytes))


metas = st.builds(NotaryMeta, text(128, 1), text(64), U63)
contents = st.builds(ContentRecord, metas, text(128), st.binary(max_size=1024))
hashes = st.sampled_from(sorted(HASH_ALGORITHMS.items())).flatmap(
    lambda kv: st.builds(HashRecord, metas, st.just(kv[0]),
                         st.binary(min_size=kv[1], max_size=kv[1])))
schemes = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,12}", fullmatch=True)
uri_rest = st.text(st.characters(min_codepoint=0x21, exclude_categories=("Cs",)),
                   min_size=1, max_size=80)
uris = st.builds(lambda s, r: f"{s}:{r}", schemes, uri_rest)
links = st.sampled_from(sorted(HASH_ALGORITHMS.items())).flatmap(
    lambda kv: st.builds(LinkRecord, metas, uris, st.just(kv[0]),
                         st.binary(min_size=kv[1], max_size=kv[1])))
ciphertexts = st.builds(CiphertextRecord, metas, st.just("aes-256-gcm"),
                        st.binary(min_size=12, max_size=12),
                        st.binary(min_size=16, max_size=600), text(128))
wrapped = st.builds(WrappedKey, st.binary(min_size=16, max_size=64),
                    st.binary(min_size=32, max_size=133), st.binary(min_size=12, max_size=12),
                    st.binary(min_size=32, max_size=64))
privacies = st.builds(
    PrivacyRecord, metas,
    st.builds(SealedEnvelope, text(32, 1), st.binary(min_size=12, max_size=12),
              st.binary(min_size=16, max_size=600),
              st.lists(wrapped, min_size=1, max_size=6,
                       unique_by=lambda w: w.recipient).map(tuple)))
crl_updates = st.builds(CrlUpdate, text(64, 1), st.binary(min_size=1, max_size=600))
config_bodies = st.builds(ConfigBody, st.binary(min_size=1, max_size=600))
notary_bodies = st.one_of(contents, hashes, links, ciphertexts, privacies)
bodies = st.one_of(notary_bodies, crl_updates, config_bodies)


@st.composite
def payloads(draw: st.DrawFn, body: st.SearchStrategy = bodies) -> Payload:
    b = draw(body)
    return Payload(draw(text(64, 1)), body_type(b), draw(st.binary(min_size=16, max_size=16)),
                   draw(U63), b)


digests = st.binary(min_size=32, max_size=64)
headers = st.builds(Header, text(64, 1), U63, digests, digests, digests,
                    st.integers(0, MAX_BLOCK_TXS), U63, text(64), U63, digests)
votes = st.builds(Vote, text(64, 1), st.binary(min_size=1, max_size=132))
certificates = st.builds(Certificate, U63, U63, digests,
                         st.lists(votes, max_size=8).map(tuple))
results = st.builds(Result, st.sampled_from(list(TxStatus)), text(64))
org_configs = st.builds(OrgConfig, text(64, 1), st.binary(min_size=1, max_size=200),
                        st.binary(max_size=200))
validator_configs = st.builds(ValidatorConfig, text(64, 1), text(64, 1),
                              st.binary(min_size=1, max_size=200))
POS = st.integers(min_value=1, max_value=2**63 - 1)
configs = st.builds(
    ChainConfig, text(64, 1), st.sampled_from(list(Profile)), text(32, 1),
    st.sampled_from(list(ConsensusKind)), st.lists(org_configs, max_size=4).map(tuple),
    st.lists(validator_configs, max_size=4).map(tuple),
    st.builds(Policies, st.lists(st.sampled_from(list(Role)), max_size=8).map(tuple),
              st.sampled_from(list(Role))),
    st.builds(BlockLimits, POS, POS, POS, POS, POS), U63)


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [contents, hashes, links, ciphertexts, privacies,
                                      crl_updates, config_bodies],
                         ids=["content", "hash", "link", "ciphertext", "privacy", "crl",
                              "config"])
def test_payload_round_trip_for_every_body_type(strategy: st.SearchStrategy) -> None:
    @given(payloads(strategy))
    def check(p: Payload) -> None:
        data = p.encode()
        back = Payload.decode(data)
        assert back == p
        assert back.encode() == data
        assert back.type is body_type(p.body)

    check()


@given(st.binary(min_size=1, max_size=2000), st.binary(min_size=1, max_size=4096),
       st.binary(min_size=1, max_size=132))
def test_envelope_round_trip(payload: bytes, signer: bytes, signature: bytes) -> None:
    env = Envelope(payload, signer, signature)
    data = env.encode()
    assert Envelope.decode(data) == env
    assert Envelope.decode(data).encode() == data


@given(payloads())
def test_envelope_carrying_a_payload_round_trips_both_layers(p: Payload) -> None:
    env = Envelope(p.encode(), b"cert", b"s" * 64)
    back = Envelope.decode(env.encode())
    assert Payload.decode(back.payload) == p


@given(headers)
def test_header_round_trip(h: Header) -> None:
    data = h.encode()
    back = Header.decode(data)
    assert back == h
    assert back.encode() == data
    assert back.is_config == (h.config_height == h.height)


@given(certificates)
def test_certificate_round_trip(c: Certificate) -> None:
    data = c.encode()
    assert Certificate.decode(data) == c
    assert Certificate.decode(data).encode() == data


@given(headers, certificates, st.lists(st.binary(max_size=300), max_size=10))
def test_block_round_trip(h: Header, c: Certificate, envs: list[bytes]) -> None:
    block = Block(h, h.encode(), c, tuple(envs))
    data = block.encode()
    back = Block.decode(data)
    assert back == block
    assert back.encode() == data


@given(results)
def test_result_round_trip(r: Result) -> None:
    assert Result.decode(r.encode()) == r


@given(configs)
def test_chain_config_round_trip(c: ChainConfig) -> None:
    data = c.encode()
    back = ChainConfig.decode(data)
    assert back == c
    assert back.encode() == data


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5), max_leaves=30))
def test_decode_accepts_exactly_what_encode_produces(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    # one extra byte is never another spelling of the same value
    with pytest.raises(Malformed):
        decode(data + b"\x00")


def test_notary_meta_and_body_type_helpers() -> None:
    meta = NotaryMeta("b", "c", 1)
    assert notary_meta(HashRecord(meta, "sha256", bytes(32))) == meta
    assert notary_meta(CrlUpdate("org1", b"x")) is None
    assert notary_meta(ConfigBody(b"x")) is None
    assert body_type(CrlUpdate("o", b"x")) is TxType.CRL_UPDATE
    assert TxType.CRL_UPDATE.is_config and not TxType.CRL_UPDATE.is_notary
    assert notary_meta(OrgUpdate("add", "o", b"x", 0)) is None
    assert body_type(OrgUpdate("remove", "o", b"", 0)) is TxType.ORG_UPDATE
    assert TxType.ORG_UPDATE.is_config and not TxType.ORG_UPDATE.is_notary
    assert TxType.NOTARY_PRIVACY.is_notary and not TxType.NOTARY_PRIVACY.is_config
    with pytest.raises(TypeError):
        encode_body("not a body")  # type: ignore[arg-type]


# -- non-canonical encodings ---------------------------------------------------------------

META = NotaryMeta("inv-1", "invoice", 5)
HASH_BODY = HashRecord(META, "sha256", bytes(range(32)))


def _payload_bytes(*, version: bytes = b"\x01", chain: bytes | None = None,
                   tx_type: bytes | None = None, nonce: bytes | None = None,
                   ts: bytes = b"\x05", body: bytes | None = None,
                   header: bytes = b"\x96", extra: bytes = b"") -> bytes:
    """A payload spelled field by field, so single fields can be mis-spelled."""
    return (header + version
            + (chain if chain is not None else msgpack.packb("dev"))
            + (tx_type if tx_type is not None else msgpack.packb(int(TxType.NOTARY_HASH)))
            + (nonce if nonce is not None else msgpack.packb(bytes(16), use_bin_type=True))
            + ts
            + (body if body is not None else encode(encode_body(HASH_BODY)))
            + extra)


def test_hand_spelled_payload_is_the_canonical_one() -> None:
    reference = Payload("dev", TxType.NOTARY_HASH, bytes(16), 5, HASH_BODY)
    assert _payload_bytes() == reference.encode()
    assert Payload.decode(_payload_bytes()) == reference


@pytest.mark.parametrize("data", [
    _payload_bytes(version=b"\xcc\x01"),                 # uint8 for a fixint
    _payload_bytes(version=b"\xcd\x00\x01"),             # uint16
    _payload_bytes(version=b"\xce\x00\x00\x00\x01"),     # uint32
    _payload_bytes(version=b"\xcf" + (1).to_bytes(8, "big")),  # uint64
    _payload_bytes(version=b"\xd0\x01"),                 # int8
    _payload_bytes(ts=b"\xcd\x00\x05"),                  # timestamp in uint16
    _payload_bytes(ts=b"\xd3" + (5).to_bytes(8, "big")),  # timestamp in int64
    _payload_bytes(tx_type=b"\xcc\x0b"),                 # type in uint8
    _payload_bytes(chain=b"\xd9\x03dev"),                # str8 for a fixstr
    _payload_bytes(chain=b"\xda\x00\x03dev"),            # str16
    _payload_bytes(nonce=b"\xc5\x00\x10" + bytes(16)),   # bin16 for bin8
    _payload_bytes(header=b"\xdc\x00\x06"),              # array16 header for 6 fields
    _payload_bytes(ts=b"\xcb" + msgpack.packb(5.0)[1:]),  # float64 timestamp
    _payload_bytes(ts=b"\xca\x40\xa0\x00\x00"),          # float32 timestamp
], ids=["ver-u8", "ver-u16", "ver-u32", "ver-u64", "ver-i8", "ts-u16", "ts-i64", "type-u8",
        "str8", "str16", "bin16", "array16", "float64", "float32"])
def test_non_canonical_payload_is_malformed(data: bytes) -> None:
    with pytest.raises(Malformed):
        Payload.decode(data)


@pytest.mark.parametrize("data", [
    _payload_bytes(extra=b"\x00"),                              # trailing byte
    _payload_bytes() + _payload_bytes(),                       # two values
    _payload_bytes()[:-1],                                     # truncated
    b"",
    _payload_bytes(header=b"\x95", body=b""),                 # 5 fields
    _payload_bytes(header=b"\x97", extra=b"\xc0"),            # 7 fields
    encode({"version": 1, "chain_id": "dev"}),                 # a map instead of an array
    encode("just a string"),
    _payload_bytes(version=b"\x02"),                          # unsupported version
    _payload_bytes(version=b"\xc3"),                          # bool for an int
    _payload_bytes(chain=msgpack.packb(b"dev", use_bin_type=True)),  # bytes for str
    _payload_bytes(chain=b"\xa0"),                            # empty chain id
    _payload_bytes(chain=b"\xa2\xff\xfe"),                    # invalid UTF-8
    _payload_bytes(nonce=msgpack.packb("x" * 16)),            # str for bytes
    _payload_bytes(nonce=msgpack.packb(bytes(15), use_bin_type=True)),  # short nonce
    _payload_bytes(ts=msgpack.packb("5")),                    # str for int
    _payload_bytes(ts=b"\xff"),                               # negative timestamp
    _payload_bytes(body=msgpack.packb(b"body", use_bin_type=True)),  # body not an array
    _payload_bytes(body=encode([*encode_body(HASH_BODY), 1])),      # body with 6 fields
    _payload_bytes(tx_type=b"\xc7\x01\x05\x00"),              # ext type
], ids=["trailing", "two-values", "truncated", "empty", "5-fields", "7-fields", "map",
        "string", "version-2", "bool-version", "bytes-chain", "empty-chain", "bad-utf8",
        "str-nonce", "short-nonce", "str-ts", "negative-ts", "body-bytes", "body-6-fields",
        "ext"])
def test_malformed_payload_is_rejected(data: bytes) -> None:
    with pytest.raises(Malformed):
        Payload.decode(data)


@pytest.mark.parametrize("data", [
    encode([1, b"p", b"s"]),
    encode([1, b"p", b"s", b"sig", b"x"]),
    encode([2, b"p", b"s", b"sig"]),
    encode([1, "p", b"s", b"sig"]),
    encode([1, b"", b"s", b"sig"]),
    encode([1, b"p", b"s", b""]),
    b"\x94\x01\xc5\x00\x01p\xc4\x01s\xc4\x03sig",     # bin16 for a 1-byte payload
    encode([1, b"p", b"s", b"sig"]) + b"\xc0",
    encode({1: b"p"}),
], ids=["3-fields", "5-fields", "version", "str-payload", "empty-payload", "empty-sig",
        "bin16", "trailing", "map"])
def test_malformed_envelope_is_rejected(data: bytes) -> None:
    with pytest.raises(Malformed):
        Envelope.decode(data)


def test_envelope_over_the_size_limit_is_too_large() -> None:
    with pytest.raises(TooLarge):
        Envelope.decode(encode([1, b"p", b"s", bytes(133)]))
    with pytest.raises(TooLarge):
        Envelope.decode(encode([1, b"p", bytes(4097), b"sig"]))
    env = Envelope(bytes(MAX_ENVELOPE_BYTES), b"s", b"x")
    with pytest.raises(TooLarge):
        Envelope.decode(env.encode())


def _header_fields() -> list[object]:
    last = Certificate(6, 0, bytes(32), (Vote("v0", b"s"),)).encode()
    return [2, "dev", 7, bytes(32), bytes(32), bytes(32), 0, 5, "v0", 0, bytes(32), last]


def test_header_rejections() -> None:
    assert Header.decode(encode(_header_fields())).height == 7
    canonical = encode(_header_fields())
    wide = canonical.replace(b"\xa3dev\x07", b"\xa3dev\xcc\x07", 1)
    assert wide != canonical
    cases = [wide, canonical + b"\x00"]
    last = Certificate(6, 0, bytes(32), (Vote("v0", b"s"),)).encode()
    not_canonical = last.replace(b"\x06", b"\xcc\x06", 1)
    assert not_canonical != last
    for i, bad in [(0, 1), (0, 3), (1, ""), (11, not_canonical), (11, b"\x90"),
                   (11, bytes(64 * 1024 + 1)), (2, -1), (3, bytes(31)), (4, bytes(65)),
                   (6, MAX_BLOCK_TXS + 1),
                   (2, "7"), (8, b"v0"), (9, True)]:
        f = _header_fields()
        f[i] = bad
        cases.append(encode(f))
    cases.append(encode(_header_fields()[:-1]))
    for data in cases:
        with pytest.raises((Malformed, TooLarge)):
            Header.decode(data)


def test_result_and_certificate_rejections() -> None:
    for data in [encode([2, ""]), encode([0]), encode([0, "", 1]), encode([0, b""]),
                 encode([-1, ""]), encode([0, "x" * 65])]:
        with pytest.raises((Malformed, TooLarge)):
            Result.decode(data)
    ok = [3, 0, bytes(32), [["v0", b"s"]]]
    assert Certificate.decode(encode(ok)).votes == (Vote("v0", b"s"),)
    for data in [encode([3, 0, bytes(32), [["v0"]]]), encode([3, 0, bytes(32), [["", b"s"]]]),
                 encode([3, 0, bytes(32), [["v0", b""]]]), encode([3, 0, bytes(31), []]),
                 encode([3, 0, bytes(32), [["v0", b"s"]] * 257]), encode([3, 0, bytes(32)])]:
        with pytest.raises((Malformed, TooLarge)):
            Certificate.decode(data)


def test_block_rejects_non_bytes_transactions_and_bad_parts() -> None:
    h = Header("dev", 1, bytes(32), bytes(32), bytes(32), 0, 0, "", 0, bytes(32))
    c = Certificate(1, 0, bytes(32), ())
    good = encode([h.encode(), c.encode(), [b"tx"]])
    assert Block.decode(good).envelopes == (b"tx",)
    for data in [encode([h.encode(), c.encode(), ["tx"]]),
                 encode([h.encode(), c.encode()]),
                 encode([b"", c.encode(), []]),
                 encode([h.encode() + b"\x00", c.encode(), []]),
                 encode([h.encode(), b"\x00", []])]:
        with pytest.raises(Malformed):
            Block.decode(data)


def test_config_rejections() -> None:
    limits = BlockLimits()
    base = [3, "dev", "ant", "p256-sha256", "solo", [["o", b"c", b""]],
            [["v", "o", b"c", "127.0.0.1:7150"]],
            [["client"], "admin", [50, "GREATER_THAN"]],
            [limits.max_block_txs, limits.max_block_bytes, limits.batch_timeout_ms,
             limits.tx_window_ms, limits.max_tx_bytes], 0]
    assert ChainConfig.decode(encode(base)).chain_id == "dev"
    for i, bad in [(0, 1), (0, 2), (0, 4), (2, "bitcoin"), (6, [["v", "o", b"c"]]), (4, "pow"),
                   (7, [["root"], "admin", [50, "GREATER_THAN"]]),
                   (7, [["client"], "god", [50, "GREATER_THAN"]]),
                   (7, [["client"], "admin"]),
                   (7, [["client"], "admin", [101, "GREATER_THAN"]]),
                   (7, [["client"], "admin", [50, "MORE"]]),
                   (7, [["client"], "admin", [50]]),
                   (8, [0, 1, 1, 1, 1]), (9, -1), (5, [["o", b""]])]:
        f = list(base)
        f[i] = bad
        with pytest.raises(Malformed):
            ChainConfig.decode(encode(f))


# -- size limits ---------------------------------------------------------------------------


def _roundtrip(body: object) -> Payload:
    p = Payload("dev", body_type(body), bytes(16), 5, body)  # type: ignore[arg-type]
    return Payload.decode(p.encode())


def test_content_limit_is_512_kib() -> None:
    assert len(_roundtrip(ContentRecord(META, "", bytes(MAX_CONTENT))).body.data) == MAX_CONTENT
    with pytest.raises(TooLarge):
        _roundtrip(ContentRecord(META, "", bytes(MAX_CONTENT + 1)))


def test_business_id_limit_counts_utf8_bytes() -> None:
    assert _roundtrip(HashRecord(NotaryMeta("€" * 42 + "ab", "", 0), "sha256", bytes(32)))
    with pytest.raises(TooLarge):  # 43 characters, 129 bytes
        _roundtrip(HashRecord(NotaryMeta("€" * 43, "", 0), "sha256", bytes(32)))
    with pytest.raises(TooLarge):
        _roundtrip(HashRecord(NotaryMeta("x" * 129, "", 0), "sha256", bytes(32)))
    with pytest.raises(Malformed):
        _roundtrip(HashRecord(NotaryMeta("", "", 0), "sha256", bytes(32)))
    with pytest.raises(TooLarge):
        _roundtrip(HashRecord(NotaryMeta("b", "c" * 65, 0), "sha256", bytes(32)))


def _privacy(n: int, *, same: bool = False) -> PrivacyRecord:
    keys = tuple(WrappedKey((bytes(32) if same else i.to_bytes(32, "big")), bytes(65),
                            bytes(12), bytes(48)) for i in range(n))
    return PrivacyRecord(META, SealedEnvelope("ecies", bytes(12), bytes(32), keys))


def test_recipient_limits() -> None:
    assert len(_roundtrip(_privacy(MAX_RECIPIENTS)).body.envelope.recipients) == MAX_RECIPIENTS
    with pytest.raises(TooLarge):
        _roundtrip(_privacy(MAX_RECIPIENTS + 1))
    with pytest.raises(Malformed):
        _roundtrip(_privacy(0))
    with pytest.raises(Malformed):
        _roundtrip(_privacy(2, same=True))


def test_payload_over_its_limit_is_too_large_before_parsing() -> None:
    with pytest.raises(TooLarge):
        Payload.decode(bytes(1_100_001))


# -- body validation -----------------------------------------------------------------------


def test_unknown_transaction_types_are_rejected() -> None:
    for t in (5, 9, 15, 20, 99, 255):  # 4 is account_update (ADR 0025)
        with pytest.raises(Malformed, match="unknown transaction type"):
            Payload.decode(_payload_bytes(tx_type=msgpack.packb(t)))
    with pytest.raises(Malformed):
        Payload.decode(_payload_bytes(tx_type=msgpack.packb(256)))


@pytest.mark.parametrize(("algorithm", "size"), [
    ("sha256", 31), ("sha256", 33), ("sha256", 48), ("sha512", 32), ("sha384", 64),
    ("sha3-256", 0), ("sm3", 64), ("md5", 16), ("SHA256", 32), ("", 32)])
def test_digest_must_match_its_algorithm(algorithm: str, size: int) -> None:
    with pytest.raises(Malformed):
        _roundtrip(HashRecord(META, algorithm, bytes(size)))
    with pytest.raises(Malformed):
        _roundtrip(LinkRecord(META, "https://example.com/doc", algorithm, bytes(size)))


@pytest.mark.parametrize("algorithm", sorted(HASH_ALGORITHMS))
def test_every_supported_algorithm_accepts_its_digest_size(algorithm: str) -> None:
    size = HASH_ALGORITHMS[algorithm]
    assert _roundtrip(HashRecord(META, algorithm, bytes(size))).body.digest == bytes(size)


@pytest.mark.parametrize("uri", [
    "example.com/doc", "//example.com/doc", ":nothing", "https:", "1http://x", "ht tp://x",
    "h_t://x", "https://exa mple.com", "https://example.com/\n", "https://x\tx", "-a:b", "",
    "https://example.com/\x00"])
def test_invalid_link_uri_is_rejected(uri: str) -> None:
    with pytest.raises(Malformed):
        _roundtrip(LinkRecord(META, uri, "sha256", bytes(32)))


@pytest.mark.parametrize("uri", ["https://example.com/a?b=c#d", "urn:isbn:0451450523",
                                 "s3://bucket/key", "ipfs:QmHash", "x+y-z.w:opaque"])
def test_valid_link_uris_are_accepted(uri: str) -> None:
    assert _roundtrip(LinkRecord(META, uri, "sha256", bytes(32))).body.uri == uri


def test_ciphertext_body_rules() -> None:
    good = CiphertextRecord(META, "aes-256-gcm", bytes(12), bytes(16), "")
    assert _roundtrip(good).body == good
    for bad in [CiphertextRecord(META, "aes-128-gcm", bytes(12), bytes(16), ""),
                CiphertextRecord(META, "aes-256-gcm", bytes(11), bytes(16), ""),
                CiphertextRecord(META, "aes-256-gcm", bytes(12), bytes(15), "")]:
        with pytest.raises(Malformed):
            _roundtrip(bad)
    with pytest.raises(TooLarge):
        _roundtrip(CiphertextRecord(META, "aes-256-gcm", bytes(12), bytes(16), "k" * 129))
    with pytest.raises(TooLarge):
        _roundtrip(CiphertextRecord(META, "aes-256-gcm", bytes(12), bytes(MAX_CONTENT + 17), ""))


def test_configuration_bodies_need_content() -> None:
    with pytest.raises(Malformed):
        _roundtrip(CrlUpdate("", b"x"))
    with pytest.raises(Malformed):
        _roundtrip(CrlUpdate("org1", b""))
    with pytest.raises(Malformed):
        _roundtrip(ConfigBody(b""))


def test_error_tree_codes_and_statuses() -> None:
    assert issubclass(Malformed, InvalidTransaction)
    assert issubclass(TooLarge, ConsortiaError)
    assert TooLarge("x").to_dict() == {"code": "too_large", "message": "x"}
    assert TooLarge.status == 413
    assert Malformed("x", code="config_not_allowed").code == "config_not_allowed"
    assert Malformed("y").code == "malformed"


def test_reader_reports_missing_and_extra_fields() -> None:
    r = Reader([1, 2], "thing")
    assert r.int_("a") == 1
    with pytest.raises(Malformed, match="unexpected extra"):
        r.end()
    assert r.int_("b") == 2
    with pytest.raises(Malformed, match=r"thing\.c: missing"):
        r.int_("c")
    with pytest.raises(Malformed):
        Reader([True], "t").int_("x")
    assert Reader([True], "t").bool_("x") is True
    with pytest.raises(Malformed):
        Reader([1], "t").bool_("x")
