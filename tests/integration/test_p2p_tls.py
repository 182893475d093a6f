"""The mutual-TLS transport over real sockets on 127.0.0.1.

Identities come from a real network directory (``init_network`` with two
organizations; validators issued by the organizations' CAs into their keystores).
Every node listens on a port the kernel picks; every wait polls with a deadline;
every transport a test starts is stopped at its end (``AsyncExitStack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from cryptography import x509

from consortia.identity.ca import CertificateAuthority, cert_der
from consortia.p2p import NodeCredentials, Transport, TransportLimits
from consortia.p2p.framing import MAX_HELLO_BYTES, frame, header, hello, read_frame
from consortia.p2p.tls import client_context
from consortia.sdk import LocalNetwork, init_network
from consortia.types.config import (
    ChainConfig,
    ConsensusKind,
    OrgConfig,
    Profile,
    Role,
    ValidatorConfig,
)
from consortia.types.errors import BadSignature, Malformed, TooLarge

HOST = "127.0.0.1"
CHAIN = "p2p-chain"
LIMITS = TransportLimits(
    max_frame_bytes=1024 * 1024, connect_timeout=2, handshake_timeout=2, idle_timeout=5,
    keepalive_interval=1, body_timeout=5, write_timeout=5, backoff_initial=0.05,
    backoff_max=0.4, close_timeout=1)


@dataclass
class Pki:
    net: LocalNetwork
    creds: dict[str, NodeCredentials]
    config: ChainConfig
    outsider: CertificateAuthority

    def ca(self, org: str) -> CertificateAuthority:
        return self.net.ca(org)

    def serial(self, vid: str) -> int:
        return x509.load_der_x509_certificate(self.creds[vid].cert_der).serial_number

    @property
    def roots(self) -> list[bytes]:
        return [o.ca_cert for o in self.config.organizations]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    net = init_network(tmp_path_factory.mktemp("p2p-net"), chain_id=CHAIN,
                       orgs=["org1", "org2"])
    creds: dict[str, NodeCredentials] = {}
    members = [("v0", "org1"), ("v1", "org1"), ("v2", "org2"), ("v3", "org2")]
    for vid, org in members:
        net.new_identity(org, vid, Role.VALIDATOR)  # issued by the org CA, saved encrypted
        creds[vid] = NodeCredentials.from_keystore(net.org_dir(org) / "keystore", vid,
                                                   net.passphrase(org))
    alice = net.identity("org1/alice")  # a client of a member organization
    creds["alice"] = NodeCredentials.from_signing_key(alice.cert_der, alice.key)
    outsider = CertificateAuthority.create("org9")
    key, cert = outsider.issue_identity("v0", Role.VALIDATOR)
    creds["outsider"] = NodeCredentials.from_signing_key(cert_der(cert), key)
    config = ChainConfig(
        chain_id=CHAIN, profile=Profile.ANT, suite="p256-sha256", consensus=ConsensusKind.PBFT,
        organizations=(OrgConfig("org1", net.ca("org1").cert_der),
                       OrgConfig("org2", net.ca("org2").cert_der)),
        validators=tuple(ValidatorConfig(v, o, creds[v].cert_der) for v, o in members))
    config.validate()
    return Pki(net, creds, config, outsider)


# -- helpers --------------------------------------------------------------------------------

def run(make: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(make(), timeout)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not leftover, f"tasks left running after stop(): {leftover}"
    asyncio.run(bounded())


async def until(pred: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def start(stack: contextlib.AsyncExitStack, pki: Pki, vid: str, *,
                config: ChainConfig | None = None, creds: str | None = None, port: int = 0,
                limits: TransportLimits = LIMITS, **kw: Any) -> Transport:
    t = Transport(vid, pki.creds[creds or vid], config or pki.config, {vid: (HOST, port)},
                  limits=limits, **kw)
    await t.start()
    stack.push_async_callback(t.stop)
    return t


def wire(*nodes: Transport, extra: dict[str, tuple[str, int]] | None = None) -> None:
    book = {t.node_id: (HOST, t.port) for t in nodes} | (extra or {})
    for t in nodes:
        t.set_addresses(book)


async def receive(t: Transport, timeout: float = 5.0) -> tuple[str, Any]:
    return await asyncio.wait_for(t.receive(), timeout)


async def raw_peer(pki: Pki, port: int, as_: str) -> tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]:
    """A hand-driven TLS client with ``as_``'s certificate, past the hello exchange."""
    ctx = client_context(pki.creds[as_], pki.roots)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, ssl=ctx), 5)
    writer.write(frame(hello(CHAIN)))
    await writer.drain()
    assert (await read_frame(reader, MAX_HELLO_BYTES, idle_timeout=5, body_timeout=5)
            ).startswith(b"consortia-p2p")
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except (ConnectionError, OSError):
        pass
    return True


def decode(payload: bytes) -> str:
    if payload.startswith(b"forged"):
        raise BadSignature("signature does not verify")
    if not payload.startswith(b"msg:"):
        raise Malformed("not a message")
    return payload[4:].decode()


# -- tests ----------------------------------------------------------------------------------

def test_messages_flow_both_ways_between_three_nodes(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            nodes = {v: await start(stack, pki, v) for v in ("v1", "v2", "v3")}
            wire(*nodes.values())
            for t in nodes.values():
                await t.wait_connected({"v1", "v2", "v3"} - {t.node_id}, timeout=5)
            for src in nodes.values():
                for dst in nodes:
                    if dst != src.node_id:
                        src.send(dst, f"{src.node_id}->{dst}".encode())
            nodes["v2"].broadcast(b"all from v2")
            for dst, t in nodes.items():
                got = {await receive(t) for _ in range(3 if dst != "v2" else 2)}
                want = {(s, f"{s}->{dst}".encode()) for s in nodes if s != dst}
                if dst != "v2":
                    want.add(("v2", b"all from v2"))
                assert got == want
            # direction: the lower id dialed, one connection per pair
            st = nodes["v1"].status()["peers"]
            assert st["v2"]["direction"] == "out" and st["v3"]["direction"] == "out"
            assert nodes["v3"].status()["peers"]["v1"]["direction"] == "in"
            assert nodes["v1"].counters["conn.connects"] == 2
            # a 1 MiB payload (the cap here) goes through; the sender refuses larger ones
            big = b"msg:" + b"z" * (LIMITS.max_frame_bytes - 4)
            nodes["v3"].send("v1", big)
            assert await receive(nodes["v1"]) == ("v3", big)
            with pytest.raises(TooLarge):
                nodes["v3"].send("v1", big + b"!")
            # send() from another thread hops onto the loop
            th = threading.Thread(target=nodes["v3"].send, args=("v2", b"threaded"))
            th.start()
            th.join(2)
            assert await receive(nodes["v2"]) == ("v3", b"threaded")
            c = nodes["v1"].counters
            assert c["frames.out"] == 2 and c["frames.in"] == 4
            assert not any(k.startswith(("refused.", "dropped.")) for t in nodes.values()
                           for k in t.counters.snapshot())
            # stopping ends receive() and the peers notice
            await nodes["v3"].stop()
            await until(lambda: "v3" not in nodes["v1"].connected_peers(), "v1 sees v3 go")
            items = [x async for x in nodes["v3"]]
            assert items == []
    run(scenario)


def test_certificate_from_a_ca_outside_the_configuration_is_refused(pki: Pki) -> None:
    """An outsider that believes itself a validator (its own config lists its CA) dials
    v1 and v2; and v1 dials an address where the outsider pretends to be v3."""
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            v1 = await start(stack, pki, "v1")
            v2 = await start(stack, pki, "v2")
            evil_cfg = replace(
                pki.config,
                organizations=(*pki.config.organizations,
                               OrgConfig("org9", pki.outsider.cert_der)),
                validators=(ValidatorConfig("v0", "org9", pki.creds["outsider"].cert_der),
                            *pki.config.validators[1:]))
            evil = await start(stack, pki, "v0", config=evil_cfg, creds="outsider")
            wire(v1, v2, extra={"v3": (HOST, evil.port)})
            evil.set_addresses({"v1": (HOST, v1.port), "v2": (HOST, v2.port)})
            await until(lambda: v1.counters["refused.unknown"] >= 2
                        and v2.counters["refused.unknown"] >= 1, "refusals")
            # the inbound ones failed in the TLS handshake; v1 -> "v3" failed verifying
            # the server certificate: both are 'unknown'
            await v1.wait_connected(["v2"], timeout=5)
            assert v1.connected_peers() == {"v2"} and evil.connected_peers() == set()
            v1.send("v2", b"still fine")
            assert await receive(v2) == ("v1", b"still fine")
    run(scenario)


def test_revoked_validator_is_evicted_and_refused(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            nodes = {v: await start(stack, pki, v) for v in ("v0", "v1", "v2")}
            wire(*nodes.values())
            for v in ("v1", "v2"):
                await nodes[v].wait_connected(["v0"], timeout=5)
            ca = pki.ca("org1")
            ca.revoke(pki.serial("v0"))
            revoked_cfg = pki.config.with_org(OrgConfig("org1", ca.cert_der, ca.crl()))
            for v in ("v1", "v2"):
                nodes[v].reconfigure(revoked_cfg)
            for v in ("v1", "v2"):
                assert nodes[v].counters["conn.evicted"] == 1
            # v0 (still on the old configuration) redials with backoff and is refused
            await until(lambda: all(nodes[v].counters["refused.revoked"] >= 2
                                    for v in ("v1", "v2")), "refusals of the revoked v0")
            assert "v0" not in nodes["v1"].connected_peers() | nodes["v2"].connected_peers()
            assert nodes["v0"].counters["conn.reconnects"] >= 2
            nodes["v2"].send("v1", b"after revocation")
            assert await receive(nodes["v1"]) == ("v2", b"after revocation")
    run(scenario)


def test_client_certificate_of_a_member_is_refused(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            v1 = await start(stack, pki, "v1")
            # alice (org1 client) runs a node whose own configuration lists her as v0
            her_cfg = replace(pki.config, validators=(
                ValidatorConfig("v0", "org1", pki.creds["alice"].cert_der),
                *pki.config.validators[1:]))
            alice = await start(stack, pki, "v0", config=her_cfg, creds="alice")
            alice.set_addresses({"v1": (HOST, v1.port)})
            await until(lambda: v1.counters["refused.wrong_role"] >= 1, "wrong_role refusal")
            assert v1.connected_peers() == set()
            await until(lambda: alice.counters["conn.dial_failures"] >= 1, "her failed dial")
    run(scenario)


def test_malformed_oversized_and_non_tls_input_is_dropped_and_counted(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            fast = replace(LIMITS, handshake_timeout=0.5)
            v1 = await start(stack, pki, "v1", decode=decode, limits=fast)
            v2 = await start(stack, pki, "v2", decode=decode)
            wire(v1, v2)
            await v1.wait_connected(["v2"], timeout=5)

            # v0 is a listed validator speaking by hand
            reader, writer = await raw_peer(pki, v1.port, "v0")
            for payload in (b"\x93\x01garbage", b"forged:vote", b"msg:valid"):
                writer.write(frame(payload))
            await writer.drain()
            assert await receive(v1) == ("v0", "valid")  # the connection survived
            assert v1.counters["dropped.malformed"] == 1
            assert v1.counters["dropped.bad_signature"] == 1
            writer.write(header(LIMITS.max_frame_bytes + 1) + b"x" * 100)
            await writer.drain()
            assert await closed_by_peer(reader)
            await until(lambda: v1.counters["dropped.oversize"] == 1, "oversize counted")
            writer.close()

            # raw bytes that are not TLS, and a connection that never says anything
            r, w = await asyncio.open_connection(HOST, v1.port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
            await w.drain()
            assert await closed_by_peer(r)
            w.close()
            r2, w2 = await asyncio.open_connection(HOST, v1.port)
            assert await closed_by_peer(r2)  # handshake timeout
            w2.close()
            await until(lambda: v1.counters["refused.tls"] == 2, "non-TLS refusals")

            # TLS with a listed certificate, but a wrong first frame / another chain
            ctx = client_context(pki.creds["v0"], pki.roots)
            for first, reason in ((frame(b"hi"), "protocol"),
                                  (frame(hello("other-chain")), "wrong_chain"),
                                  (header(2**31), "protocol")):
                r3, w3 = await asyncio.open_connection(HOST, v1.port, ssl=ctx)
                w3.write(first)
                await w3.drain()
                assert await closed_by_peer(r3)
                w3.close()
                await until(lambda r=reason: v1.counters[f"refused.{r}"] >= 1, reason)

            # v3 may not dial v1 (lower ids dial): refused, not a second connection
            r4, w4 = await asyncio.open_connection(
                HOST, v1.port, ssl=client_context(pki.creds["v3"], pki.roots))
            assert await closed_by_peer(r4)
            w4.close()
            await until(lambda: v1.counters["refused.direction"] == 1, "direction refusal")

            # through all of it v1 kept serving v2
            assert v1.connected_peers() == {"v2"}
            v2.send("v1", b"msg:still here")
            assert await receive(v1) == ("v2", "still here")
            v1.send("v2", b"msg:and back")
            assert await receive(v2) == ("v1", "and back")
    run(scenario)


def test_stopped_peer_is_redialed_with_backoff_after_it_restarts(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            small_queue = replace(LIMITS, queue_frames=5)
            v1 = await start(stack, pki, "v1", limits=small_queue)
            v3 = await start(stack, pki, "v3")
            port = v3.port
            wire(v1, v3)
            await v1.wait_connected(["v3"], timeout=5)
            await v3.stop()
            await until(lambda: v1.connected_peers() == set(), "v1 sees v3 go")
            for i in range(8):  # queued while v3 is away; the oldest 3 are dropped
                v1.send("v3", b"m%d" % i)
            assert v1.counters["dropped.queue_full"] == 3
            await until(lambda: v1.counters["conn.reconnects"] >= 3, "redial attempts")
            assert v1.counters["conn.dial_failures"] >= 2
            v3b = await start(stack, pki, "v3", port=port)
            await v1.wait_connected(["v3"], timeout=5)
            got = [await receive(v3b) for _ in range(5)]
            assert got == [("v1", b"m%d" % i) for i in range(3, 8)]
            v3b.send("v1", b"hello again")
            assert await receive(v1) == ("v3", b"hello again")
    run(scenario)


def test_a_restarted_peer_knocks_and_is_redialed_at_once(pki: Pki) -> None:
    """v1 dials v3. v3 restarts while v1 waits out a redial delay of 4-8 s: at start, v3
    knocks on v1 (a connection v1 refuses by the direction rule, after the identity rule)
    and v1 dials it at once. A knock while connected changes nothing."""
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            slow = replace(LIMITS, backoff_initial=8, backoff_max=8)
            v1 = await start(stack, pki, "v1", limits=slow)
            v3 = await start(stack, pki, "v3")
            port = v3.port
            wire(v1, v3)
            await v1.wait_connected(["v3"], timeout=5)
            await v3.stop()
            await until(lambda: v1.connected_peers() == set(), "v1 sees v3 go")
            v3b = Transport("v3", pki.creds["v3"], pki.config,
                            {"v3": (HOST, port), "v1": (HOST, v1.port)}, limits=LIMITS)
            await v3b.start()
            stack.push_async_callback(v3b.stop)
            await v1.wait_connected(["v3"], timeout=3)  # well before v1's backoff ends
            assert v3b.counters["conn.knocks"] == 1
            assert v1.counters["refused.direction"] == 1
            assert v1.counters["conn.connects"] == 2
            assert v1.counters["conn.dial_failures"] == 0
            # a knock on a connected peer (v3 by hand) is refused and changes nothing
            r, w = await asyncio.open_connection(
                HOST, v1.port, ssl=client_context(pki.creds["v3"], pki.roots))
            assert await closed_by_peer(r)
            w.close()
            await until(lambda: v1.counters["refused.direction"] == 2, "second knock")
            await asyncio.sleep(0.2)
            assert v1.counters["conn.connects"] == 2 and v1.connected_peers() == {"v3"}
            v1.send("v3", b"still one connection")
            assert await receive(v3b) == ("v1", b"still one connection")
    run(scenario)


def test_reconfigure_drops_a_removed_validator(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            nodes = {v: await start(stack, pki, v) for v in ("v1", "v2", "v3")}
            wire(*nodes.values())
            await nodes["v1"].wait_connected(["v2", "v3"], timeout=5)
            await nodes["v2"].wait_connected(["v1", "v3"], timeout=5)
            smaller = replace(pki.config, validators=pki.config.validators[:3],
                              sequence=pki.config.sequence + 1)
            for v in ("v1", "v2"):
                nodes[v].reconfigure(smaller)
            for v in ("v1", "v2"):
                await until(lambda v=v: nodes[v].connected_peers() == ({"v1", "v2"} - {v}),
                            f"{v} drops v3")
            await until(lambda: nodes["v3"].connected_peers() == set(), "v3 is cut off")
            nodes["v1"].send("v3", b"to the removed")
            assert nodes["v1"].counters["dropped.unknown_peer"] == 1
            assert nodes["v1"].peers == {"v0", "v2"}
            # v3 comes back on its own: refused as unknown
            r, w = await asyncio.open_connection(
                HOST, nodes["v2"].port, ssl=client_context(pki.creds["v3"], pki.roots))
            assert await closed_by_peer(r)
            w.close()
            await until(lambda: nodes["v2"].counters["refused.unknown"] == 1, "refusal")
            nodes["v1"].send("v2", b"pair intact")
            assert await receive(nodes["v2"]) == ("v1", b"pair intact")
    run(scenario)


def test_keepalives_hold_idle_links_and_silent_or_expired_peers_are_dropped(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            brisk = replace(LIMITS, keepalive_interval=0.1, idle_timeout=0.6)
            now = {"ms": 0}

            def clock() -> int:  # wall clock plus a skew the test controls
                return time.time_ns() // 1_000_000 + now["ms"]

            v1 = await start(stack, pki, "v1", limits=brisk, clock=clock)
            v2 = await start(stack, pki, "v2", limits=brisk)
            wire(v1, v2)
            await v1.wait_connected(["v2"], timeout=5)
            # a silent peer (no keepalives) is closed after idle_timeout ...
            reader, writer = await raw_peer(pki, v1.port, "v0")
            assert await closed_by_peer(reader, timeout=3)
            writer.close()
            # ... while the v1-v2 link, idle for longer than that, stayed up
            await until(lambda: v1.counters["conn.disconnects"] == 1, "v0's disconnect")
            assert v1.connected_peers() == {"v2"}
            # v2's certificate "expires" on v1's clock: evicted at the next check and
            # refused on redial
            now["ms"] = 400 * 86_400_000
            await until(lambda: v1.counters["conn.evicted"] == 1, "eviction")
            await until(lambda: v1.counters["refused.expired"] >= 1, "expired refusal")
            assert "v2" not in v1.connected_peers()
    run(scenario)


def test_inbound_handshakes_are_bounded(pki: Pki) -> None:
    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            tight = replace(LIMITS, max_pending_handshakes=2, handshake_timeout=1)
            v1 = await start(stack, pki, "v1", limits=tight)
            idle = [await asyncio.open_connection(HOST, v1.port) for _ in range(4)]
            await until(lambda: v1.counters["refused.busy"] == 2, "busy refusals")
            for r, w in idle:
                assert await closed_by_peer(r, timeout=3)
                w.close()
            assert v1.counters["refused.tls"] == 2
    run(scenario)
