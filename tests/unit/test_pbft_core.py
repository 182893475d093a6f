"""PBFT core, scripted step by step (consensus/pbft): messages and durable state on the
wire, the normal case, view change, catch-up, checkpoints — and the Byzantine cases:
an equivocating primary, forged messages, a restarted backup, a crashed primary."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from consortia.consensus.core import (
    Action,
    BatchReady,
    Broadcast,
    Commit,
    Event,
    Persist,
    Receive,
    Send,
    Tick,
    WakeAt,
)
from consortia.consensus.pbft import Params, PbftCore, make_core, mutate, viewchange
from consortia.consensus.pbft.messages import (
    BlockRequest,
    BlockResponse,
    Checkpoint,
    CommitVote,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    decode_message,
    encode_message,
    prepare_message,
    well_formed,
)
from consortia.consensus.pbft.state import Durable
from consortia.consensus.pbft.verify import choose, quorum_size
from consortia.identity.ca import cert_der
from consortia.ledger.certify import validator_key, verify_certificate
from consortia.testing import SimSupport
from consortia.types.block import Certificate, Vote, vote_message
from consortia.types.config import ChainConfig, ConsensusKind, Profile, Role, ValidatorConfig
from consortia.types.errors import ConsortiaError, Malformed
from tests.unit.conftest import SUITE, make_org

Keep = Callable[[str, str, Any], bool]
"""(to, from, message) -> deliver it?"""


class Net:
    """Validators v0..v{n-1}, each a PBFT core over a ``SimSupport`` chain. The test decides
    which queued message is delivered, dropped or forged, and when time passes."""

    def __init__(self, n: int = 4, supports: dict[str, SimSupport] | None = None,
                 params: Params | None = None) -> None:
        self.ids = tuple(f"v{i}" for i in range(n))
        keys = {v: bytes([i + 1]) * 32 for i, v in enumerate(self.ids)}
        self.supports = supports or {v: SimSupport(v, self.ids, keys) for v in self.ids}
        self.params = params or Params()
        self.cores = {v: make_core(v, self.supports[v], random.Random(v), None, self.params)
                      for v in self.ids}
        self.durable: dict[str, bytes | None] = dict.fromkeys(self.ids)
        self.queue: list[tuple[str, str, Any]] = []
        self.down: set[str] = set()
        self.now = 0
        self.tx = 0

    def step(self, v: str, event: Event) -> list[Action]:
        actions = self.cores[v].step(event)
        for a in actions:
            if isinstance(a, Persist):
                self.durable[v] = a.state
            elif isinstance(a, Send):
                self.queue.append((a.to, v, a.message))
            elif isinstance(a, Broadcast):
                self.queue += [(w, v, a.message) for w in self.ids if w != v]
            elif isinstance(a, Commit):
                self.supports[v].commit(a.block)
        return actions

    def submit(self, n: int = 3) -> None:
        for _ in range(n):
            self.tx += 1
            for s in self.supports.values():
                s.submit(f"tx:{self.tx}".encode())

    def deliver(self, keep: Keep | None = None, limit: int = 100_000) -> int:
        """Deliver queued messages (and those they cause) until none is left."""
        count = 0
        while self.queue and count < limit:
            to, frm, m = self.queue.pop(0)
            if to in self.down or frm in self.down or (keep and not keep(to, frm, m)):
                continue
            count += 1
            self.step(to, Receive(frm, m))
            self.step(to, Tick(self.now))  # let a core act on a commit it just made
        return count

    def advance(self, ms: int, keep: Keep | None = None) -> None:
        """Let ``ms`` pass in small steps: pending batches, timers and messages."""
        end = self.now + ms
        while self.now < end:
            self.now += 10
            for v in self.ids:
                if v in self.down:
                    continue
                if self.supports[v].pending:
                    self.step(v, BatchReady(self.now))
                self.step(v, Tick(self.now))
            self.deliver(keep)

    def restart(self, v: str) -> None:
        self.down.discard(v)
        self.cores[v] = make_core(v, self.supports[v], random.Random(v), self.durable[v],
                                  self.params)
        self.step(v, Tick(self.now))

    def heights(self) -> dict[str, int]:
        return {v: s.height for v, s in self.supports.items()}

    def block(self, v: str, h: int) -> Any:
        return self.supports[v].chain[h - 1].block


def sent(actions: list[Action], kind: type) -> list[Any]:
    out = []
    for a in actions:
        if isinstance(a, Send | Broadcast) and isinstance(a.message, kind):
            out.append(a.message)
    return out


def check_certificate(net: Net, block: Any) -> None:
    """The rules of ledger.certify, with the simulator's keys."""
    cert = block.certificate
    assert cert.height == block.header.height
    msg = vote_message("sim", cert.height, cert.round, cert.block_hash)
    voters = [v.validator_id for v in cert.votes]
    assert len(set(voters)) == len(voters) >= quorum_size(len(net.ids))
    for vote in cert.votes:
        assert net.supports["v0"].verify(vote.validator_id, msg, vote.signature)


# -- wire format and durable state --------------------------------------------------------

def _samples() -> list[Any]:
    d, sig = bytes(range(32)), b"s" * 32
    cert = Certificate(4, 1, d, (Vote("v0", sig), Vote("v1", sig), Vote("v2", sig)))
    proof = PreparedProof(1, 5, d, (Vote("v0", sig),), b"hdr", (b"tx:1", b"tx:2"))
    vc = ViewChange(2, 5, cert, proof, "v1", sig)
    return [
        PrePrepare(1, 5, d, b"hdr", (b"tx:1",), "v1", sig),
        Prepare(1, 5, d, "v2", sig),
        CommitVote(1, 5, d, "v3", sig),
        vc, ViewChange(1, 1, None, None, "v0", sig),
        NewView(2, (vc, replace(vc, signer="v2")), "v2", sig),
        Checkpoint(2, 4, cert, "v0", sig),
        BlockRequest(5, b"", "v0", sig), BlockRequest(5, d, "v0", sig),
        BlockResponse(4, d, b"hdr", (b"tx:1",), cert, "v1", sig),
        BlockResponse(5, d, b"hdr", (), None, "v1", sig),
    ]


@pytest.mark.parametrize("message", _samples(), ids=lambda m: type(m).__name__)
def test_messages_round_trip_and_are_well_formed(message: Any) -> None:
    data = encode_message(message)
    assert decode_message(data) == message
    assert well_formed(message)


def test_message_decoding_is_strict() -> None:
    from consortia.types.codec import decode, encode

    good = encode_message(Prepare(1, 5, bytes(32), "v2", b"sig"))
    fields = decode(good)
    for bad in (good + b"\x00", encode([*fields, 1]), encode([99, *fields[1:]]),
                encode([True, *fields[1:]]), encode([2, 1, 5, b"short", "v2", b"sig"]),
                encode([2, -1, 5, bytes(32), "v2", b"sig"]), encode([]), encode(3),
                encode([2, 1, 5, bytes(32), "", b"sig"])):
        with pytest.raises(ConsortiaError):
            decode_message(bad)
    # A new-view may only nest view changes.
    nested = encode([5, 1, [encode_message(Prepare(1, 5, bytes(32), "v2", b"s"))], "v1", b"s"])
    with pytest.raises(Malformed):
        decode_message(nested)


def test_ill_typed_objects_are_not_well_formed() -> None:
    d = bytes(32)
    for bad in (None, b"raw", ("prepare", 1), Prepare(-1, 1, d, "v1", b"s"),
                Prepare(True, 1, d, "v1", b"s"), Prepare(1, 1, b"short", "v1", b"s"),
                Prepare(1, 1, d, "", b"s"), Prepare(1, 1, d, "v1", b""),
                Prepare(1, 1, d, 7, b"s"), PrePrepare(1, 1, d, b"h", [b"tx"], "v1", b"s"),
                Checkpoint(1, 1, "cert", "v1", b"s"),  # type: ignore[arg-type]
                NewView(1, (Prepare(1, 1, d, "v1", b"s"),), "v1", b"s")):  # type: ignore[arg-type]
        assert not well_formed(bad)


def test_durable_state_round_trips_and_is_strict() -> None:
    d = bytes(range(32))
    cert = Certificate(4, 1, d, (Vote("v0", b"s"),))
    proof = PreparedProof(1, 5, d, (Vote("v0", b"s"),), b"hdr", (b"tx:1",))
    for state in (Durable(0, True, 1, None, None, None, None),
                  Durable(3, False, 5, cert, (5, b""), (2, d), proof),
                  Durable(3, True, 5, cert, (5, d), (3, d), proof)):
        assert Durable.decode(state.encode()) == state
    with pytest.raises(ConsortiaError):
        Durable.decode(Durable(0, True, 1, None, None, None, None).encode() + b"\x00")


def test_quorum_is_two_f_plus_one_of_three_f_plus_one() -> None:
    assert [quorum_size(n) for n in (1, 4, 7, 10)] == [1, 3, 5, 7]
    for n in range(1, 30):  # any two quorums share f+1 validators, and f faulty never block
        f, q = (n - 1) // 3, quorum_size(n)
        assert 2 * q - n >= f + 1 and q <= n - f


# -- normal case ------------------------------------------------------------------------------

def test_normal_case_commits_one_block_everywhere_with_a_certificate() -> None:
    net = Net()
    net.submit(3)
    actions = net.step("v0", BatchReady(5))
    (pp,) = sent(actions, PrePrepare)
    assert (pp.view, pp.height, pp.signer) == (0, 1, "v0")
    assert isinstance(actions[0], Persist), "the proposal is remembered before it is sent"
    net.deliver()
    assert net.heights() == dict.fromkeys(net.ids, 1)
    hashes = {net.supports[v].chain[0].hash for v in net.ids}
    assert hashes == {pp.digest}
    block = net.block("v2", 1)
    assert block.certificate.round == 0 and block.envelopes == (b"tx:1", b"tx:2", b"tx:3")
    check_certificate(net, block)
    # Heights follow one another, strictly in order, with the same primary.
    for _ in range(3):
        net.submit(2)
        net.advance(40)
    assert set(net.heights().values()) == {4}
    assert all(net.cores[v].status()["committed_height"] == 4 for v in net.ids)


def test_backups_ignore_a_batch_and_only_the_primary_proposes() -> None:
    net = Net()
    net.submit(1)
    for v in ("v1", "v2", "v3"):
        acts = net.step(v, BatchReady(5))
        assert not sent(acts, PrePrepare)
        assert any(isinstance(a, WakeAt) for a in acts), "a backup with work arms its timer"
    assert net.cores["v1"].status() == {
        "protocol": "pbft", "role": "backup", "leader": "v0", "view": 0, "round": 0,
        "normal": True, "committed_height": 0}


class P256Support(SimSupport):
    """The simulator's chain with real validator keys and certificates (P-256)."""

    def __init__(self, node_id: str, ids: tuple[str, ...], keys: dict[str, Any],
                 certs: dict[str, bytes]) -> None:
        super().__init__(node_id, ids, {})
        self.key = keys[node_id]
        self.pub = {v: validator_key(SUITE, c) for v, c in certs.items()}

    def sign(self, message: bytes) -> bytes:
        return bytes(self.key.sign(message))

    def verify(self, validator_id: str, message: bytes, signature: bytes) -> bool:
        key = self.pub.get(validator_id)
        return key is not None and SUITE.verify(key, message, signature)


def test_certificate_verifies_offline_with_the_ledger_verifier() -> None:
    org = make_org("org1")
    ids = tuple(f"v{i}" for i in range(4))
    keys, certs = {}, {}
    for v in ids:
        key, cert = org.ca.issue_identity(v, Role.VALIDATOR)
        keys[v], certs[v] = key, cert_der(cert)
    config = ChainConfig(chain_id="sim", profile=Profile.ANT, suite="p256-sha256",
                         consensus=ConsensusKind.PBFT, organizations=(org.org_config(),),
                         validators=tuple(ValidatorConfig(v, "org1", certs[v]) for v in ids))
    net = Net(supports={v: P256Support(v, ids, keys, certs) for v in ids})
    net.submit(2)
    net.step("v0", BatchReady(5))
    net.deliver()
    for v in ids:
        c = net.supports[v].chain[0]
        verify_certificate(SUITE, config, c.block.header, c.hash, c.block.certificate)
    forged = replace(c.block.certificate, votes=c.block.certificate.votes[:2])
    with pytest.raises(ConsortiaError, match="needs"):
        verify_certificate(SUITE, config, c.block.header, c.hash, forged)


# -- Byzantine primary --------------------------------------------------------------------

def _signed_pp(net: Net, view: int, txs: tuple[bytes, ...], signer: str = "v0") -> PrePrepare:
    s = net.supports[signer]
    p = s.propose_with(txs, 5, signer)
    sig = s.sign(prepare_message("sim", view, p.header.height, p.hash))
    return PrePrepare(view, p.header.height, p.hash, p.header_bytes, p.envelopes, signer, sig)


def _votes_of(net: Net, signer: str, view: int, height: int, digest: bytes,
              ) -> tuple[Prepare, CommitVote]:
    s = net.supports[signer]
    return (Prepare(view, height, digest, signer,
                    s.sign(prepare_message("sim", view, height, digest))),
            CommitVote(view, height, digest, signer,
                       s.sign(vote_message("sim", height, view, digest))))


def test_an_equivocating_primary_cannot_get_two_blocks_committed_at_one_height() -> None:
    net = Net()
    net.down.add("v0")  # v0 is Byzantine: the test speaks for it
    a = _signed_pp(net, 0, (b"tx:a",))
    b = _signed_pp(net, 0, (b"tx:b",))
    for to, pp in (("v1", a), ("v2", a), ("v3", b)):
        net.step(to, Receive("v0", pp))
        for m in (*_votes_of(net, "v0", 0, 1, a.digest), *_votes_of(net, "v0", 0, 1, b.digest)):
            net.step(to, Receive("v0", m))  # and it votes for both, to everyone
    # v3 received b: it prepared b and will never prepare a in this view.
    assert net.cores["v3"].hs.prepare_sent == (0, b.digest)
    assert not sent(net.step("v3", Receive("v0", a)), Prepare)
    net.deliver()
    net.advance(2_000)
    committed = {net.supports[v].chain[0].hash for v in ("v1", "v2", "v3")
                 if net.supports[v].height}
    assert committed == {a.digest}, "only the block 2f+1 prepared commits"
    assert all(net.supports[v].height >= 1 for v in ("v1", "v2", "v3"))
    for v in ("v1", "v2", "v3"):
        check_certificate(net, net.block(v, 1))


def test_an_invalid_proposal_is_refused_and_the_next_primary_takes_over() -> None:
    net = Net()
    net.submit(2)
    bad = _signed_pp(net, 0, (b"bad:x",))
    net.down.add("v0")
    for v in ("v1", "v2", "v3"):
        assert not sent(net.step(v, Receive("v0", bad)), Prepare)
    net.advance(1_000)
    assert {net.cores[v].view for v in ("v1", "v2", "v3")} == {1}
    assert all(net.supports[v].height == 1 for v in ("v1", "v2", "v3"))
    assert b"bad:x" not in net.block("v1", 1).envelopes
    assert net.block("v1", 1).certificate.round == 1


# -- view change ------------------------------------------------------------------------------

def test_a_view_change_after_the_primary_crashes_keeps_the_prepared_block() -> None:
    net = Net()
    net.submit(2)
    (pp,) = sent(net.step("v0", BatchReady(5)), PrePrepare)
    # Everyone prepares, but every commit vote is lost and the primary crashes.
    net.deliver(keep=lambda to, frm, m: not isinstance(m, CommitVote))
    assert all(net.cores[v].hs.prepared is not None for v in net.ids)
    net.down.add("v0")
    net.submit(5)  # new transactions: a fresh proposal would differ
    net.advance(2_000, keep=lambda to, frm, m: not (isinstance(m, CommitVote) and m.view == 0))
    for v in ("v1", "v2", "v3"):
        assert net.supports[v].height >= 1
        assert net.supports[v].chain[0].hash == pp.digest, "the prepared block survives"
        assert net.block(v, 1).certificate.round == 1
        assert net.cores[v].view == 1 and net.cores[v].status()["leader"] == "v1"


def test_a_block_committed_by_one_backup_survives_a_view_change() -> None:
    net = Net()
    net.submit(2)
    (pp,) = sent(net.step("v0", BatchReady(5)), PrePrepare)
    # v1 hears nothing from v0; only v3 collects the commit votes and commits.
    net.deliver(keep=lambda to, frm, m: not (
        (to == "v1" and frm == "v0") or (isinstance(m, CommitVote) and to != "v3")))
    assert net.heights() == {"v0": 0, "v1": 0, "v2": 0, "v3": 1}
    assert net.cores["v1"].hs.prepared is None
    net.down.add("v0")
    net.submit(5)
    net.advance(2_000, keep=lambda to, frm, m: not (isinstance(m, CommitVote) and m.view == 0))
    for v in ("v1", "v2", "v3"):
        assert net.supports[v].chain[0].hash == pp.digest
        assert net.supports[v].height >= 2, "and the chain goes on in the new view"


def test_view_change_messages_carry_the_prepared_certificate() -> None:
    net = Net()
    net.submit(1)
    (pp,) = sent(net.step("v0", BatchReady(5)), PrePrepare)
    net.deliver(keep=lambda to, frm, m: not isinstance(m, CommitVote))
    core = net.cores["v2"]
    core.step(Tick(10))
    acts = net.step("v2", Tick(10 + core.params.view_timeout_ms))
    (vc,) = sent(acts, ViewChange)
    assert vc.view == 1 and vc.height == 1 and vc.prepared is not None
    assert vc.prepared.digest == pp.digest and len(vc.prepared.votes) >= 3
    assert core.verifier.view_change(vc)
    assert core.status()["role"] == "view-change"


def test_f_plus_one_view_changes_pull_a_validator_along_but_f_do_not() -> None:
    net = Net()
    cores = net.cores
    vcs = {}
    for v in ("v2", "v3"):
        c = cores[v]
        viewchange.start_view_change(c, 5)
        vcs[v] = c.my_vc
    net.queue.clear()
    net.step("v1", Receive("v2", vcs["v2"]))
    assert cores["v1"].view == 0, "f = 1 view change could be a Byzantine one"
    acts = net.step("v1", Receive("v3", vcs["v3"]))
    assert cores["v1"].view == 5 and sent(acts, ViewChange)


# -- forged and malformed messages ----------------------------------------------------------

def test_forged_unsigned_and_foreign_messages_are_ignored() -> None:
    net = Net()
    core = net.cores["v1"]
    d = bytes(range(32))
    fake = b"\x01" * 32
    forged: list[Any] = [
        _signed_pp(net, 0, (b"tx:1",), signer="v2"),  # not the primary of view 0
        replace(_signed_pp(net, 0, (b"tx:1",)), signature=fake),
        Prepare(0, 1, d, "v2", fake), Prepare(0, 1, d, "mallory", fake),
        *[CommitVote(0, 1, d, v, fake) for v in ("v0", "v2", "v3")],
        Checkpoint(0, 5, Certificate(5, 0, d, tuple(Vote(v, fake) for v in net.ids)), "v2",
                   fake),
        ViewChange(9, 1, None, PreparedProof(0, 1, d, (Vote("v0", fake),) * 3, b"h", ()),
                   "v2", fake),
        NewView(1, (), "v1", fake), BlockRequest(1, b"", "v3", fake),
        BlockResponse(1, d, b"hdr", (), Certificate(1, 0, d, ()), "v3", fake),
        None, b"garbage", 42, ("prepare",), Prepare(0, 1, d, "v2", b""),
    ]
    acts: list[Action] = []
    for m in forged:
        acts += net.step("v1", Receive("v2", m))
        assert core.view == 0 and core.normal and core.height == 1
    # (The only action: the timer of the periodic block probe, which any first step sets.)
    assert [a for a in acts if not isinstance(a, WakeAt)] == [], \
        "nothing forged is answered, stored or acted on"
    # Commit votes signed properly by *one* validator, however many, never make a block.
    s = net.supports["v2"]
    for view in range(10):
        m = CommitVote(view, 1, d, "v2", s.sign(vote_message("sim", 1, view, d)))
        net.step("v1", Receive("v2", m))
    assert core.height == 1 and net.supports["v1"].height == 0


def test_valid_signatures_in_a_forged_view_change_do_not_help() -> None:
    net = Net()
    s = net.supports["v2"]
    d = bytes(range(32))
    # Signed by v2 itself, but the prepared proof's votes are v2's alone, three times.
    vote = Vote("v2", s.sign(prepare_message("sim", 0, 1, d)))
    vc = ViewChange(1, 1, None, PreparedProof(0, 1, d, (vote, vote, vote), b"h", ()), "v2",
                    b"")
    vc = replace(vc, signature=s.sign(vc.signing_bytes("sim")))
    assert not net.cores["v1"].verifier.view_change(vc)
    # A height claimed without proof (no certificate of the height below, no prepared
    # certificate) counts in a quorum but moves nothing: the new-view keeps height 1.
    vc2 = ViewChange(1, 7, None, None, "v2", b"")
    vc2 = replace(vc2, signature=s.sign(vc2.signing_bytes("sim")))
    assert net.cores["v1"].verifier.view_change(vc2)
    honest = []
    for v in ("v1", "v3"):
        x = ViewChange(1, 1, None, None, v, b"")
        honest.append(replace(x, signature=net.supports[v].sign(x.signing_bytes("sim"))))
    choice = choose((vc2, *honest))
    assert choice is not None and (choice.height, choice.digest) == (1, b"")
    # A certificate that is not of the height below is refused outright.
    bad = replace(vc2, last_cert=Certificate(3, 0, d, ()))
    assert not net.cores["v1"].verifier.view_change(
        replace(bad, signature=s.sign(bad.signing_bytes("sim"))))


def test_mutate_never_breaks_a_network_of_honest_majority() -> None:
    """The simulator's Byzantine behaviour, scripted: v3 lies in every message it sends."""
    net = Net()
    rng = random.Random(1)
    original = net.step

    def step(v: str, event: Event) -> list[Action]:
        actions = original(v, event)
        if v == "v3":
            for i, (to, frm, m) in enumerate(net.queue):
                if frm == "v3":
                    net.queue[i] = (to, frm, mutate(m, rng))
        return actions

    net.step = step  # type: ignore[method-assign]
    for _ in range(20):
        net.submit(2)
        net.advance(60)
    heights = net.heights()
    assert min(heights[v] for v in ("v0", "v1", "v2")) >= 10
    for h in range(1, 11):
        assert len({net.supports[v].chain[h - 1].hash for v in ("v0", "v1", "v2")}) == 1


# -- restart ----------------------------------------------------------------------------------

def test_a_restarted_backup_does_not_sign_a_conflicting_vote() -> None:
    net = Net()
    net.down.add("v0")  # the primary equivocates, one proposal before and one after the crash
    a = _signed_pp(net, 0, (b"tx:a",))
    b = _signed_pp(net, 0, (b"tx:b",))
    (prep,) = sent(net.step("v1", Receive("v0", a)), Prepare)
    assert prep.digest == a.digest
    net.restart("v1")
    core = net.cores["v1"]
    assert core.hs.prepare_sent == (0, a.digest)
    acts = net.step("v1", Receive("v0", b))
    assert not sent(acts, Prepare), "one prepare per view and height, across restarts"
    # What it does repeat is its own vote, unchanged.
    acts = net.step("v1", Tick(net.now + 1_000))
    assert {p.digest for p in sent(acts, Prepare)} <= {a.digest}


def test_a_restarted_validator_keeps_its_view_and_prepared_certificate() -> None:
    net = Net()
    net.submit(1)
    (pp,) = sent(net.step("v0", BatchReady(5)), PrePrepare)
    net.deliver(keep=lambda to, frm, m: not isinstance(m, CommitVote))
    (vc,) = sent(net.step("v2", Tick(10_000)), ViewChange)  # its timer expires
    assert vc.view == 1
    net.queue.clear()
    net.restart("v2")
    core = net.cores["v2"]
    assert (core.view, core.normal) == (1, False)
    assert core.hs.prepared is not None and core.hs.prepared.digest == pp.digest
    acts = net.step("v2", Tick(10_500))
    (vc,) = sent(acts, ViewChange)
    assert vc.view == 1 and vc.prepared == core.hs.prepared
    # Its commit vote is the one it cast before, not a new one.
    assert {c.digest for c in sent(acts, CommitVote)} <= {pp.digest}


def test_a_restarted_node_that_missed_blocks_catches_up_from_certificates() -> None:
    net = Net()
    net.down.add("v3")
    for _ in range(6):
        net.submit(2)
        net.advance(60)
    assert net.supports["v3"].height == 0 and net.supports["v0"].height >= 5
    net.restart("v3")
    net.submit(2)
    net.advance(600)
    top = net.supports["v0"].height
    assert net.supports["v3"].height >= top - 1
    for h in range(1, net.supports["v3"].height + 1):
        assert net.supports["v3"].chain[h - 1].hash == net.supports["v0"].chain[h - 1].hash
        check_certificate(net, net.block("v3", h))


# -- checkpoints and garbage collection -----------------------------------------------------

def test_checkpoints_are_announced_and_old_state_is_collected() -> None:
    params = Params(checkpoint_interval=4, retain_blocks=5)
    net = Net(params=params)
    checkpoints: list[Checkpoint] = []
    original = net.step

    def step(v: str, event: Event) -> list[Action]:
        acts = original(v, event)
        checkpoints.extend(sent(acts, Checkpoint))
        return acts

    net.step = step  # type: ignore[method-assign]
    for _ in range(10):
        net.submit(1)
        net.advance(40)
    core = net.cores["v1"]
    assert core.height == 11
    assert sorted({c.height for c in checkpoints}) == [4, 8]
    assert all(c.cert.height == c.height for c in checkpoints)
    assert sorted(core.ring) == [6, 7, 8, 9, 10], "only the last retain_blocks blocks stay"
    assert core.hs.height == 11 and not core.hs.commits and not core.hs.prepares
    assert not core.certified and not core.known and not core.ahead


def test_a_peer_behind_is_served_blocks_and_far_future_messages_are_not_kept() -> None:
    net = Net()
    for _ in range(3):
        net.submit(1)
        net.advance(40)
    core = net.cores["v1"]
    s = net.supports["v2"]
    d = bytes(32)
    # A vote three heights ahead is not buffered: it only makes v1 ask its sender.
    ahead = Prepare(0, core.height + 3, d, "v2", s.sign(prepare_message("sim", 0,
                                                                       core.height + 3, d)))
    acts = net.step("v1", Receive("v2", ahead))
    assert sent(acts, BlockRequest) and not core.ahead
    req = BlockRequest(1, b"", "v2", b"")
    req = replace(req, signature=s.sign(req.signing_bytes("sim")))
    acts = net.step("v1", Receive("v2", req))
    blocks = sent(acts, BlockResponse)
    assert [b.height for b in blocks] == [1, 2, 3]
    assert all(b.cert is not None and b.cert.height == b.height for b in blocks)


def test_make_core_refuses_corrupt_durable_state() -> None:
    net = Net()
    with pytest.raises(ConsortiaError):
        PbftCore("v1", net.supports["v1"], random.Random(1), b"\x93garbage")


def test_a_validator_whose_ledger_lost_its_last_commit_recovers_that_block() -> None:
    """Durable state is written before the commit is stored; a crash in between leaves the
    core's state a height ahead of the ledger."""
    net = Net()
    net.submit(2)
    net.step("v0", BatchReady(5))
    net.deliver()
    assert net.supports["v3"].height == 1
    lost = SimSupport("v3", net.ids, net.supports["v3"]._keys)
    net.supports["v3"] = lost
    net.restart("v3")
    core = net.cores["v3"]
    assert core.height == 1 and core.sync_target == 2 and 1 in core.known
    net.submit(1)
    net.advance(300)
    assert lost.height >= 1 and lost.chain[0].hash == net.supports["v0"].chain[0].hash


def test_a_validator_that_lost_its_durable_state_still_completes_a_view_change() -> None:
    """Its view changes cannot prove its height, yet the quorum needs them: they count,
    and the new-view takes its height from those that prove theirs."""
    net = Net()
    for _ in range(3):
        net.submit(1)
        net.advance(40)
    assert set(net.heights().values()) == {3}
    net.down.add("v0")  # the primary is gone for good
    net.durable["v3"] = None
    net.restart("v3")
    assert net.cores["v3"].last_cert is None
    net.submit(2)
    net.advance(2_000)
    assert all(net.supports[v].height > 3 for v in ("v1", "v2", "v3"))
    assert {net.cores[v].view for v in ("v1", "v2", "v3")} == {1}


def test_a_node_down_longer_than_peers_keep_blocks_catches_up_from_their_ledgers() -> None:
    """Peers keep 4 blocks in memory; a validator down for 30 heights is served the rest
    from their ledgers (re-signed responses), and one peer forging what it serves
    (another block under a real certificate) neither stalls nor misleads it."""
    net = Net(params=Params(retain_blocks=4))
    net.down.add("v3")
    for _ in range(30):
        net.submit(2)
        net.advance(60)
    top = net.supports["v0"].height
    assert net.supports["v3"].height == 0 and top >= 25
    assert len(net.cores["v0"].ring) == 4

    forged_count = 0

    def forge(to: str, frm: str, m: Any) -> bool:
        nonlocal forged_count
        if frm == "v1" and isinstance(m, BlockResponse) and m.cert is not None \
                and m.envelopes != (b"tx:forged",):
            forged = replace(m, envelopes=(b"tx:forged",))  # v1 is Byzantine: signs it
            forged = replace(forged, signature=net.supports["v1"].sign(
                forged.signing_bytes("sim")))
            net.queue.append((to, frm, forged))
            forged_count += 1
            return False
        return True

    net.restart("v3")
    net.advance(3_000, keep=forge)
    assert forged_count > 0
    assert net.supports["v3"].height >= top
    for h in range(1, net.supports["v3"].height + 1):
        assert net.supports["v3"].chain[h - 1].hash == net.supports["v0"].chain[h - 1].hash
        assert b"tx:forged" not in net.block("v3", h).envelopes
        check_certificate(net, net.block("v3", h))


def test_validators_join_and_leave_by_configuration_blocks() -> None:
    """v4 starts outside the set of four and joins through a configuration block (n = 5,
    quorum 4); then the primary v0 is removed (n = 4, quorum 3): every later certificate
    is a quorum of the set in force at its height, and the chain goes on without v0."""
    ids = tuple(f"v{i}" for i in range(5))
    keys = {v: bytes([i + 1]) * 32 for i, v in enumerate(ids)}
    supports = {v: SimSupport(v, ids[:4], keys) for v in ids}
    net = Net(5, supports=supports)

    def run(blocks: int) -> None:
        for _ in range(blocks):
            net.submit(1)
            net.advance(100)

    def configure(tx: bytes) -> int:
        for s in supports.values():
            s.submit(tx)
        net.advance(400)
        return next(h for h in range(1, supports["v1"].height + 1)
                    if supports["v1"].chain[h - 1].block.envelopes == (tx,))

    run(3)
    assert all(s.validators() == ids[:4] for s in supports.values())  # v4 not yet in
    added = configure(b"cfg:add:v4")
    run(4)
    assert all(s.validators() == ids for s in supports.values())
    assert supports["v4"].height == supports["v1"].height > added
    for h in range(added + 1, supports["v1"].height + 1):
        signers = {v.validator_id for v in net.block("v1", h).certificate.votes}
        assert len(signers) >= quorum_size(5) == 4

    removed = configure(b"cfg:remove:v0")
    run(4)
    rest = ["v1", "v2", "v3", "v4"]
    top = supports["v1"].height
    assert top >= removed + 3
    assert {supports[v].height for v in rest} == {top}
    assert len({supports[v].chain[-1].hash for v in rest}) == 1
    for h in range(removed + 1, top + 1):
        block = net.block("v2", h)
        signers = {v.validator_id for v in block.certificate.votes}
        assert "v0" not in signers and len(signers) >= quorum_size(4)
        assert block.header.proposer != "v0"


def test_a_validator_restarted_right_after_a_configuration_block_verifies_its_certificate(
        ) -> None:
    """v4 joins at height c; v1 restarts before height c + 1 commits. The certificate of
    block c (signed under the old set, carried in every view change, new-view and
    checkpoint at height c + 1) must still verify at v1, as it does at validators that
    switched sets without restarting. (Found by the simulator: a core rebuilt from durable
    state had no previous set, refused every view change at c + 1, and with more than f
    such validators the network never changed views again; the support's
    ``previous_validators`` now gives it the set.)"""
    ids = tuple(f"v{i}" for i in range(5))
    keys = {v: bytes([i + 1]) * 32 for i, v in enumerate(ids)}
    supports = {v: SimSupport(v, ids[:4], keys) for v in ids}
    net = Net(5, supports=supports)
    for _ in range(2):
        net.submit(1)
        net.advance(100)
    for s in supports.values():
        s.submit(b"cfg:add:v4")
    net.advance(400)
    c = supports["v1"].height
    assert supports["v1"].chain[c - 1].block.envelopes == (b"cfg:add:v4",)
    cert = net.block("v1", c).certificate
    assert net.cores["v1"].verifier.cert(cert)  # switched sets without a restart: fine
    net.restart("v1")
    assert supports["v1"].height == c
    assert net.cores["v1"].verifier.cert(cert)
