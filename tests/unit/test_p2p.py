"""Unit tests of the p2p package without sockets: framing, hello, counters, the identity
rule, backoff, credentials and TLS contexts, and the in-memory transport."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.identity.keystore import FileKeystore
from consortia.identity.membership import Membership
from consortia.p2p import (
    Counters,
    MemoryNetwork,
    MemoryTransport,
    NodeCredentials,
    PeerRefused,
    Transport,
    TransportClosed,
    TransportLimits,
    authorize,
    backoff_delay,
)
from consortia.p2p.framing import (
    KEEPALIVE,
    BadHello,
    FrameTooLarge,
    check_hello,
    frame,
    header,
    hello,
    read_frame,
)
from consortia.p2p.tls import client_context, server_context
from consortia.types.config import (
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import BadSignature, ConfigError, Malformed, TooLarge


def now_ms() -> int:
    """The clock now: certificates are issued during the session, so a time read once at
    import (collection) can predate them in a long run."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def run(make: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(make(), timeout)
    return asyncio.run(bounded())


async def until(pred: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# -- framing --------------------------------------------------------------------------------

def reader_of(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    if eof:
        r.feed_eof()
    return r


def test_frames_round_trip_and_keepalive() -> None:
    async def scenario() -> list[bytes]:
        r = reader_of(frame(b"abc") + KEEPALIVE + frame(b"x" * 70_000))
        return [await read_frame(r, 100_000, idle_timeout=1, body_timeout=1) for _ in range(3)]
    assert run(scenario) == [b"abc", b"", b"x" * 70_000]
    assert header(5) == b"\x00\x00\x00\x05"
    with pytest.raises(ValueError):
        header(2**32)


def test_oversized_length_is_refused_before_reading_the_payload() -> None:
    async def scenario() -> None:
        r = reader_of(b"\xff\xff\xff\xff", eof=False)  # announces 4 GiB, sends nothing more
        with pytest.raises(FrameTooLarge) as info:
            await read_frame(r, 1024, idle_timeout=1, body_timeout=1)
        assert info.value.length == 2**32 - 1
    run(scenario)


def test_reads_are_bounded_in_time() -> None:
    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await read_frame(reader_of(b"", eof=False), 10, idle_timeout=0.05, body_timeout=1)
        with pytest.raises(TimeoutError):  # header arrived, body never does
            await read_frame(reader_of(header(5) + b"ab", eof=False), 10, idle_timeout=1,
                             body_timeout=0.05)
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader_of(header(5) + b"ab"), 10, idle_timeout=1, body_timeout=1)
    run(scenario)


def test_hello_names_protocol_and_chain() -> None:
    check_hello(hello("chain-a"), "chain-a")
    with pytest.raises(BadHello) as info:
        check_hello(hello("chain-b"), "chain-a")
    assert info.value.reason == "wrong_chain"
    wrong_version = bytearray(hello("chain-a"))
    wrong_version[len(b"consortia-p2p")] = 9
    for bad in (b"", b"GET / HTTP/1.1", bytes(wrong_version), b"consortia-p2p\x01\xff\xfe"):
        with pytest.raises(BadHello) as info:
            check_hello(bad, "chain-a")
        assert info.value.reason == "protocol"


# -- counters -------------------------------------------------------------------------------

def test_counters_count_and_mirror_into_prometheus() -> None:
    registry = CollectorRegistry()
    c = Counters(registry)
    c.inc("frames.in")
    c.inc("frames.in", 2)
    c.inc("dropped.oversize")
    c.inc("refused.revoked")
    assert c["frames.in"] == 3 and c["frames.out"] == 0
    assert c.snapshot() == {"dropped.oversize": 1, "frames.in": 3, "refused.revoked": 1}
    assert registry.get_sample_value("consortia_p2p_frames_total", {"direction": "in"}) == 3
    assert registry.get_sample_value("consortia_p2p_dropped_total", {"reason": "oversize"}) == 1
    assert registry.get_sample_value("consortia_p2p_refused_total", {"reason": "revoked"}) == 1
    with pytest.raises(ValueError):
        c.inc("nonsense")
    with pytest.raises(ValueError):
        c.inc("frames")


# -- the identity rule ----------------------------------------------------------------------

class Pki:
    def __init__(self) -> None:
        self.org1 = CertificateAuthority.create("org1")
        self.org2 = CertificateAuthority.create("org2")
        self.outsider = CertificateAuthority.create("org9")
        self.keys: dict[str, Any] = {}
        self.certs: dict[str, x509.Certificate] = {}
        for name, ca in (("v1", self.org1), ("v2", self.org2), ("v3", self.org2)):
            self.keys[name], self.certs[name] = ca.issue_identity(name, Role.VALIDATOR)
        self.keys["alice"], self.certs["alice"] = self.org1.issue_identity("alice", Role.CLIENT)
        self.keys["spare"], self.certs["spare"] = self.org1.issue_identity("spare",
                                                                          Role.VALIDATOR)
        self.keys["evil"], self.certs["evil"] = self.outsider.issue_identity("v1",
                                                                            Role.VALIDATOR)
        self.config = ChainConfig(
            chain_id="unit-p2p", profile=Profile.ANT, suite="p256-sha256",
            consensus=ConsensusKind.PBFT,
            organizations=(OrgConfig("org1", self.org1.cert_der),
                           OrgConfig("org2", self.org2.cert_der)),
            validators=tuple(ValidatorConfig(v, org, self.der(v)) for v, org in
                             (("v1", "org1"), ("v2", "org2"), ("v3", "org2"))))

    def der(self, name: str) -> bytes:
        return cert_der(self.certs[name])

    def creds(self, name: str) -> NodeCredentials:
        return NodeCredentials.from_signing_key(self.der(name), self.keys[name])


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def refusal(pki: Pki, config: ChainConfig, name: str, *, at_ms: int | None = None,
            expected: str | None = None) -> str:
    with pytest.raises(PeerRefused) as info:
        authorize(pki.der(name), config, Membership(config), at_ms or now_ms(),
                  expected=expected)
    return info.value.reason


def test_identity_rule(pki: Pki) -> None:
    cfg = pki.config
    assert authorize(pki.der("v2"), cfg, Membership(cfg), now_ms()) == "v2"
    assert authorize(pki.der("v2"), cfg, Membership(cfg), now_ms(), expected="v2") == "v2"
    assert refusal(pki, cfg, "v2", expected="v3") == "unexpected_peer"
    assert refusal(pki, cfg, "evil") == "unknown"          # CA outside the configuration
    assert refusal(pki, cfg, "spare") == "unknown"         # valid validator, not listed
    assert refusal(pki, cfg, "alice") == "wrong_role"      # member, but a client
    later = now_ms() + 400 * 86_400_000
    assert refusal(pki, cfg, "v2", at_ms=later) == "expired"
    # A listed client certificate is still refused for its role.
    listed_client = replace(cfg, validators=(*cfg.validators,
                                             ValidatorConfig("v9", "org1", pki.der("alice"))))
    assert refusal(pki, listed_client, "alice") == "wrong_role"


def test_revoked_validator_is_refused_even_when_listed() -> None:
    p = Pki()
    p.org2.revoke(p.certs["v3"].serial_number)
    cfg = p.config.with_org(OrgConfig("org2", p.org2.cert_der, p.org2.crl()))
    assert refusal(p, cfg, "v3") == "revoked"
    assert authorize(p.der("v2"), cfg, Membership(cfg), now_ms()) == "v2"


def test_backoff_is_exponential_jittered_and_capped() -> None:
    rng = random.Random(7)
    for attempts in range(0, 40):
        d = min(5.0, 0.1 * 2**attempts)
        for _ in range(20):
            delay = backoff_delay(attempts, 0.1, 5.0, rng)
            assert d / 2 <= delay <= d
    delays = {round(backoff_delay(3, 0.1, 5.0, rng), 6) for _ in range(20)}
    assert len(delays) > 1  # jittered


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        TransportLimits(keepalive_interval=5, idle_timeout=5)
    with pytest.raises(ValueError):
        TransportLimits(max_frame_bytes=0)
    with pytest.raises(ValueError):
        TransportLimits(max_frame_bytes=2**20, queue_bytes=2**10)
    with pytest.raises(ValueError):
        TransportLimits(backoff_initial=2, backoff_max=1)


# -- credentials and TLS contexts -----------------------------------------------------------

def test_credentials_keep_the_key_encrypted(pki: Pki) -> None:
    creds = pki.creds("v1")
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in creds.key_pem
    assert b"BEGIN PRIVATE KEY" not in creds.chain_pem()
    assert creds.passphrase.decode() not in repr(creds)
    for ctx in (server_context(creds, [pki.org1.cert_der]),
                client_context(creds, [pki.org1.cert_der])):
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode is ssl.CERT_REQUIRED
        assert ctx.check_hostname is False
    with pytest.raises(ConfigError):  # key and certificate do not match
        server_context(NodeCredentials(pki.der("v2"), creds.key_pem, creds.passphrase),
                       [pki.org1.cert_der])
    with pytest.raises(ConfigError):
        server_context(creds, [])


def test_credentials_from_the_keystore(pki: Pki, tmp_path: Path) -> None:
    ks = FileKeystore(tmp_path / "ks")
    ks.save("v1", pki.keys["v1"], pki.certs["v1"], pki.org1.cert, b"pass phrase")
    creds = NodeCredentials.from_keystore(tmp_path / "ks", "v1", b"pass phrase")
    assert creds.cert_der == pki.der("v1")
    assert creds.key_pem == (tmp_path / "ks" / "v1" / "key.pem").read_bytes()
    server_context(creds, [pki.org1.cert_der])
    with pytest.raises(ConfigError):
        NodeCredentials.from_keystore(tmp_path / "ks", "v1", b"wrong")
    with pytest.raises(ConfigError):
        NodeCredentials.from_keystore(tmp_path / "ks", "nobody", b"pass phrase")


def test_transport_checks_its_own_identity(pki: Pki) -> None:
    addr = {"v1": ("127.0.0.1", 0)}
    with pytest.raises(ConfigError):
        Transport("v1", pki.creds("v2"), pki.config, addr)
    with pytest.raises(ConfigError):
        Transport("v7", pki.creds("v1"), pki.config, addr)
    with pytest.raises(ConfigError):
        Transport("v1", pki.creds("v1"), pki.config, {})
    t = Transport("v1", pki.creds("v1"), pki.config, addr)
    assert t.peers == {"v2", "v3"}
    with pytest.raises(RuntimeError):
        _ = t.port


# -- the in-memory transport ----------------------------------------------------------------

IDS = ["v1", "v2", "v3"]


def decode(payload: bytes) -> str:
    if payload.startswith(b"forged"):
        raise BadSignature("bad signature")
    if not payload.startswith(b"msg:"):
        raise Malformed("not a message")
    return payload[4:].decode()


async def memory_nodes(net: MemoryNetwork, **kw: Any) -> dict[str, MemoryTransport]:
    nodes = {i: MemoryTransport(net, i, IDS, **kw) for i in IDS}
    for n in nodes.values():
        await n.start()
    return nodes


async def stop_all(nodes: dict[str, MemoryTransport]) -> None:
    for n in nodes.values():
        await n.stop()


def test_memory_transport_delivers_and_decodes() -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        nodes = await memory_nodes(net, decode=decode)
        try:
            await nodes["v1"].wait_connected(timeout=2)
            nodes["v1"].broadcast(b"msg:hello")
            nodes["v2"].send("v1", b"msg:back")
            got = {i: await nodes[i].receive() for i in ("v2", "v3")}
            assert got == {"v2": ("v1", "hello"), "v3": ("v1", "hello")}
            assert await nodes["v1"].receive() == ("v2", "back")
            nodes["v1"].send("v2", b"garbage")
            nodes["v1"].send("v2", b"forged:x")
            nodes["v1"].send("v2", b"msg:after")
            assert await nodes["v2"].receive() == ("v1", "after")
            c = nodes["v2"].counters
            assert c["dropped.malformed"] == 1 and c["dropped.bad_signature"] == 1
            assert c["frames.in"] == 4 and nodes["v1"].counters["frames.out"] == 5
            with pytest.raises(ValueError):
                nodes["v1"].send("v2", b"")
            with pytest.raises(TooLarge):
                nodes["v1"].send("v2", b"x" * (nodes["v1"].limits.max_frame_bytes + 1))
            nodes["v1"].send("v9", b"msg:nobody")
            assert nodes["v1"].counters["dropped.unknown_peer"] == 1
        finally:
            await stop_all(nodes)
    run(scenario)


def test_memory_transport_handler_errors_are_contained() -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        seen: list[tuple[str, str]] = []

        async def handler(peer: str, msg: Any) -> None:
            if msg == "boom":
                raise RuntimeError("handler bug")
            seen.append((peer, msg))

        nodes = await memory_nodes(net, decode=decode, on_message=handler)
        try:
            for body in (b"msg:one", b"msg:boom", b"msg:two"):
                nodes["v2"].send("v1", body)
            await until(lambda: len(seen) == 2, "two messages")
            assert seen == [("v2", "one"), ("v2", "two")]
            assert nodes["v1"].counters["errors.handler"] == 1
        finally:
            await stop_all(nodes)
    run(scenario)


def test_memory_transport_queues_drop_oldest_and_partitions_heal() -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        limits = TransportLimits(queue_frames=3, queue_bytes=TransportLimits().max_frame_bytes)
        nodes = await memory_nodes(net, limits=limits)
        try:
            net.partition(["v1"], ["v2", "v3"])
            await until(lambda: nodes["v1"].connected_peers() == set(), "partition")
            for i in range(6):
                nodes["v1"].send("v2", b"m%d" % i)
            assert nodes["v1"].counters["dropped.queue_full"] == 3
            assert nodes["v1"].queued("v2") == 3
            nodes["v2"].send("v3", b"inside")
            assert await nodes["v3"].receive() == ("v2", b"inside")
            net.heal()
            got = [await nodes["v2"].receive() for _ in range(3)]
            assert got == [("v1", b"m3"), ("v1", b"m4"), ("v1", b"m5")]
        finally:
            await stop_all(nodes)
    run(scenario)


def test_memory_transport_refuses_strangers_and_oversize() -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        nodes = await memory_nodes(net, limits=TransportLimits(max_frame_bytes=8))
        try:
            await net.inject("mallory", "v1", b"hi")
            await net.inject("v2", "v1", b"x" * 9)
            await net.inject("v2", "v1", b"ok")
            assert await nodes["v1"].receive() == ("v2", b"ok")
            c = nodes["v1"].counters
            assert c["refused.unknown"] == 1 and c["dropped.oversize"] == 1
        finally:
            await stop_all(nodes)
    run(scenario)


def test_memory_transport_reconfigure_and_stop(pki: Pki) -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        nodes = {i: MemoryTransport(net, i, pki.config) for i in IDS}
        for n in nodes.values():
            await n.start()
        try:
            await nodes["v1"].wait_connected(timeout=2)
            smaller = replace(pki.config, validators=pki.config.validators[:2])
            nodes["v1"].reconfigure(smaller)
            assert nodes["v1"].connected_peers() == {"v2"}
            nodes["v1"].send("v3", b"gone")
            assert nodes["v1"].counters["dropped.unknown_peer"] == 1
            nodes["v3"].send("v1", b"from v3")
            await until(lambda: nodes["v1"].counters["refused.unknown"] == 1, "refusal")

            got: list[tuple[str, Any]] = []

            async def drain() -> None:
                async for item in nodes["v2"]:
                    got.append(item)

            task = asyncio.create_task(drain())
            nodes["v1"].send("v2", b"last")
            await until(lambda: len(got) == 1, "delivery")
            await nodes["v2"].stop()
            await asyncio.wait_for(task, 2)  # the iterator ends when the transport stops
            with pytest.raises(TransportClosed):
                await nodes["v2"].receive()
        finally:
            await stop_all(nodes)
    run(scenario)


def test_send_from_another_thread() -> None:
    async def scenario() -> None:
        net = MemoryNetwork()
        nodes = await memory_nodes(net)
        try:
            t = threading.Thread(target=nodes["v1"].send, args=("v2", b"threaded"))
            t.start()
            t.join(2)
            assert await nodes["v2"].receive() == ("v1", b"threaded")
        finally:
            await stop_all(nodes)
    run(scenario)
