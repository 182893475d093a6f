"""PBFT messages: what validators sign, send and (later) carry over the real transport.

Every message names its ``signer`` and carries that validator's signature over
canonical bytes (``consortia.types.codec``) that start with a domain tag and the
chain id, so a signature can be carried neither to another message kind nor to
another chain. Two signatures are shared with other structures on purpose:

* a ``PrePrepare`` is signed over the same bytes as a ``Prepare`` (``prepare_message``):
  the primary's proposal doubles as its prepare vote, so a prepared certificate is a
  homogeneous list of prepare signatures. The block itself is bound by ``digest`` (its
  hash), which a backup checks when it validates the block.
* a ``CommitVote`` is signed over ``vote_message(chain_id, height, view, digest)``: the
  exact bytes a ``Certificate`` vote signs, so 2f+1 commit votes *are* the block's
  certificate, verifiable offline by ``ledger.certify``.

Wire form (docs/spec/pbft.md): ``[kind, field...]`` with the fields in declaration
order; a nested certificate or view change travels as its own canonical bytes.
``decode_message`` is strict: canonical bytes only, every field typed and bounded.
In the simulator messages travel as these Python objects; ``well_formed`` gives the
same type guarantees for objects that did not come through ``decode_message``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consortia.types.block import (
    MAX_BLOCK_TXS,
    MAX_CERTIFICATE,
    MAX_HEADER,
    MAX_VOTES,
    Certificate,
    Vote,
    vote_message,
)
from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

MAX_INT = 2**63 - 1
MAX_SIGNATURE = 132
MAX_ID = 64
MAX_CERT = MAX_CERTIFICATE
DIGEST_MIN, DIGEST_MAX = 32, 64


def prepare_message(chain_id: str, view: int, height: int, digest: bytes) -> bytes:
    """Bytes of a prepare vote (and of the primary's pre-prepare)."""
    return encode(["consortia/pbft/prepare/1", chain_id, view, height, digest])


# -- messages -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary of ``view`` proposes block ``digest`` at ``height``."""

    view: int
    height: int
    digest: bytes
    header_bytes: bytes
    envelopes: tuple[bytes, ...]
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return prepare_message(chain_id, self.view, self.height, self.digest)


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    height: int
    digest: bytes
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return prepare_message(chain_id, self.view, self.height, self.digest)


@dataclass(frozen=True, slots=True)
class CommitVote:
    """A commit vote; its signature is a certificate vote for (height, round=view)."""

    view: int
    height: int
    digest: bytes
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return vote_message(chain_id, self.height, self.view, self.digest)


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """A prepared certificate: 2f+1 prepare signatures for (view, height, digest), with the
    block, so a new primary can propose it again. Not signed by itself: the votes are."""

    view: int
    height: int
    digest: bytes
    votes: tuple[Vote, ...]
    header_bytes: bytes
    envelopes: tuple[bytes, ...]

    def fields(self) -> list[Any]:
        return [self.view, self.height, self.digest,
                [[v.validator_id, v.signature] for v in self.votes],
                self.header_bytes, list(self.envelopes)]


@dataclass(frozen=True, slots=True)
class ViewChange:
    """``signer`` moves to ``view``. ``height`` is its next height to commit, proven by
    ``last_cert`` (the certificate of ``height - 1``; None only at height 1), and
    ``prepared`` its highest prepared certificate at ``height``, if any."""

    view: int
    height: int
    last_cert: Certificate | None
    prepared: PreparedProof | None
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return encode(["consortia/pbft/view-change/1", chain_id, *self._fields()])

    def _fields(self) -> list[Any]:
        return [self.view, self.height,
                self.last_cert.encode() if self.last_cert else b"",
                self.prepared.fields() if self.prepared else [], self.signer]


@dataclass(frozen=True, slots=True)
class NewView:
    """The primary of ``view`` starts it, justified by 2f+1 view changes for ``view``.
    Signed over the view changes' signatures, which bind their content."""

    view: int
    view_changes: tuple[ViewChange, ...]
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return encode(["consortia/pbft/new-view/1", chain_id, self.view,
                       [vc.signature for vc in self.view_changes], self.signer])


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``signer`` has committed up to ``height``; ``cert`` is that block's certificate (a
    stable checkpoint: 2f+1 signatures). Lets peers behind catch up and peers ahead push."""

    view: int
    height: int
    cert: Certificate
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return encode(["consortia/pbft/checkpoint/1", chain_id, self.view, self.height,
                       self.cert.encode(), self.signer])


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Ask for the committed block at ``height`` (``digest`` empty), or for the content of
    the proposal ``digest`` at ``height``."""

    height: int
    digest: bytes
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return encode(["consortia/pbft/block-request/1", chain_id, self.height, self.digest,
                       self.signer])


@dataclass(frozen=True, slots=True)
class BlockResponse:
    """A block at ``height``: committed (with ``cert``) or a proposal's content (no cert).
    Either way the receiver trusts nothing until the hash of the validated header matches
    the certificate or the digest it asked for."""

    height: int
    digest: bytes
    header_bytes: bytes
    envelopes: tuple[bytes, ...]
    cert: Certificate | None
    signer: str
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return encode(["consortia/pbft/block-response/1", chain_id, self.height, self.digest,
                       self.header_bytes, list(self.envelopes),
                       self.cert.encode() if self.cert else b"", self.signer])


Message = (PrePrepare | Prepare | CommitVote | ViewChange | NewView | Checkpoint
           | BlockRequest | BlockResponse)
MESSAGE_TYPES = (PrePrepare, Prepare, CommitVote, ViewChange, NewView, Checkpoint,
                 BlockRequest, BlockResponse)

_KIND = {PrePrepare: 1, Prepare: 2, CommitVote: 3, ViewChange: 4, NewView: 5, Checkpoint: 6,
         BlockRequest: 7, BlockResponse: 8}


# -- structural checks for in-memory objects -------------------------------------------------

def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_INT


def _bin(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, bytes) and lo <= len(v) <= hi


def _id(v: object) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= MAX_ID


def _envelopes(v: object) -> bool:
    return (isinstance(v, tuple) and len(v) <= MAX_BLOCK_TXS
            and all(isinstance(e, bytes) for e in v))


def _votes(v: object) -> bool:
    return (isinstance(v, tuple) and len(v) <= MAX_VOTES
            and all(isinstance(x, Vote) and _id(x.validator_id)
                    and _bin(x.signature, 1, MAX_SIGNATURE) for x in v))


def cert_well_formed(c: object) -> bool:
    return (isinstance(c, Certificate) and _int(c.height) and _int(c.round)
            and _bin(c.block_hash, DIGEST_MIN, DIGEST_MAX) and _votes(c.votes))


def _proof(p: object) -> bool:
    return (isinstance(p, PreparedProof) and _int(p.view) and _int(p.height)
            and _bin(p.digest, DIGEST_MIN, DIGEST_MAX) and _votes(p.votes)
            and _bin(p.header_bytes, 1, MAX_HEADER) and _envelopes(p.envelopes))


def _wf_vote(m: Any) -> bool:
    return _int(m.view) and _int(m.height) and _bin(m.digest, DIGEST_MIN, DIGEST_MAX)


def _wf_preprepare(m: Any) -> bool:
    return (_wf_vote(m) and _bin(m.header_bytes, 1, MAX_HEADER) and _envelopes(m.envelopes))


def _wf_view_change(m: Any) -> bool:
    return (_int(m.view) and _int(m.height)
            and (m.last_cert is None or cert_well_formed(m.last_cert))
            and (m.prepared is None or _proof(m.prepared)))


def _wf_new_view(m: Any) -> bool:
    return (_int(m.view) and isinstance(m.view_changes, tuple)
            and len(m.view_changes) <= MAX_VOTES
            and all(type(vc) is ViewChange and well_formed(vc) for vc in m.view_changes))


def _wf_checkpoint(m: Any) -> bool:
    return _int(m.view) and _int(m.height) and cert_well_formed(m.cert)


def _wf_request(m: Any) -> bool:
    return _int(m.height) and _bin(m.digest, 0, DIGEST_MAX)


def _wf_response(m: Any) -> bool:
    return (_int(m.height) and _bin(m.digest, 0, DIGEST_MAX)
            and _bin(m.header_bytes, 1, MAX_HEADER) and _envelopes(m.envelopes)
            and (m.cert is None or cert_well_formed(m.cert)))


_CHECKS: dict[type, Callable[[Any], bool]] = {
    PrePrepare: _wf_preprepare, Prepare: _wf_vote, CommitVote: _wf_vote,
    ViewChange: _wf_view_change, NewView: _wf_new_view, Checkpoint: _wf_checkpoint,
    BlockRequest: _wf_request, BlockResponse: _wf_response,
}


def well_formed(m: object) -> bool:
    """Whether ``m`` is a message whose every field has the type and bounds the wire
    decoder would enforce (so handlers never meet a surprise type)."""
    check = _CHECKS.get(type(m))
    if check is None:
        return False
    a: Any = m
    return (isinstance(a.signer, str) and 1 <= len(a.signer) <= MAX_ID
            and _bin(a.signature, 1, MAX_SIGNATURE) and check(a))


# -- wire encoding ---------------------------------------------------------------------------

def _cert_bytes(c: Certificate | None) -> bytes:
    return c.encode() if c is not None else b""


def encode_message(m: Message) -> bytes:
    """Canonical bytes of a message: ``[kind, field...]``."""
    kind = _KIND[type(m)]
    fields: list[Any]
    if isinstance(m, PrePrepare):
        fields = [m.view, m.height, m.digest, m.header_bytes, list(m.envelopes)]
    elif isinstance(m, Prepare | CommitVote):
        fields = [m.view, m.height, m.digest]
    elif isinstance(m, ViewChange):
        fields = [m.view, m.height, _cert_bytes(m.last_cert),
                  m.prepared.fields() if m.prepared else []]
    elif isinstance(m, NewView):
        fields = [m.view, [encode_message(vc) for vc in m.view_changes]]
    elif isinstance(m, Checkpoint):
        fields = [m.view, m.height, m.cert.encode()]
    elif isinstance(m, BlockRequest):
        fields = [m.height, m.digest]
    else:
        fields = [m.height, m.digest, m.header_bytes, list(m.envelopes), _cert_bytes(m.cert)]
    return encode([kind, *fields, m.signer, m.signature])


def _r_envelopes(r: Reader, name: str) -> tuple[bytes, ...]:
    items = r.list_(name, max_len=MAX_BLOCK_TXS)
    if not all(isinstance(x, bytes) for x in items):
        raise Malformed(f"pbft.{name}: expected byte strings")
    return tuple(items)


def _r_votes(r: Reader, name: str) -> tuple[Vote, ...]:
    out = []
    for i, item in enumerate(r.list_(name, max_len=MAX_VOTES)):
        v = Reader(item, f"pbft.{name}[{i}]", length=2)
        out.append(Vote(v.str_("validator_id", max_len=MAX_ID, min_len=1),
                        v.bytes_("signature", max_len=MAX_SIGNATURE, min_len=1)))
    return tuple(out)


def _r_cert(r: Reader, name: str, *, optional: bool) -> Certificate | None:
    raw = r.bytes_(name, max_len=MAX_CERT, min_len=0 if optional else 1)
    if not raw:
        return None
    return Certificate.decode(raw)


def read_digest(r: Reader, *, optional: bool = False) -> bytes:
    d = r.bytes_("digest", max_len=DIGEST_MAX)
    if not (optional and not d) and len(d) < DIGEST_MIN:
        raise Malformed(f"pbft.digest: shorter than {DIGEST_MIN} bytes")
    return d


def read_proof(r: Reader) -> PreparedProof | None:
    raw = r.list_("prepared", max_len=6)
    if not raw:
        return None
    p = Reader(raw, "pbft.prepared", length=6)
    return PreparedProof(p.int_("view"), p.int_("height"), read_digest(p), _r_votes(p, "votes"),
                         p.bytes_("header", max_len=MAX_HEADER, min_len=1),
                         _r_envelopes(p, "envelopes"))


def decode_message(data: bytes) -> Message:
    """Strictly decode canonical message bytes; raise ``Malformed``/``TooLarge`` otherwise.
    (Signatures are checked by the core, which knows the chain and the validators.)"""
    value = decode(data, what="pbft message")
    if not isinstance(value, list) or not value:
        raise Malformed("pbft message: expected a non-empty array")
    kind = value[0]
    if type(kind) is not int:
        raise Malformed("pbft message: kind must be an integer")
    r = Reader(value[1:], "pbft message")
    m: Message
    if kind == 1:
        m = PrePrepare(r.int_("view"), r.int_("height"), read_digest(r),
                       r.bytes_("header", max_len=MAX_HEADER, min_len=1),
                       _r_envelopes(r, "envelopes"), *_r_sig(r))
    elif kind in (2, 3):
        cls = Prepare if kind == 2 else CommitVote
        m = cls(r.int_("view"), r.int_("height"), read_digest(r), *_r_sig(r))
    elif kind == 4:
        m = ViewChange(r.int_("view"), r.int_("height"), _r_cert(r, "last_cert", optional=True),
                       read_proof(r), *_r_sig(r))
    elif kind == 5:
        view = r.int_("view")
        vcs = []
        for raw in r.list_("view_changes", max_len=MAX_VOTES):
            if not isinstance(raw, bytes):
                raise Malformed("pbft.view_changes: expected byte strings")
            vc = decode_message(raw)
            if not isinstance(vc, ViewChange):
                raise Malformed("pbft.view_changes: expected view changes")
            vcs.append(vc)
        m = NewView(view, tuple(vcs), *_r_sig(r))
    elif kind == 6:
        view, height = r.int_("view"), r.int_("height")
        cert = _r_cert(r, "cert", optional=False)
        assert cert is not None
        m = Checkpoint(view, height, cert, *_r_sig(r))
    elif kind == 7:
        m = BlockRequest(r.int_("height"), read_digest(r, optional=True), *_r_sig(r))
    elif kind == 8:
        m = BlockResponse(r.int_("height"), read_digest(r, optional=True),
                          r.bytes_("header", max_len=MAX_HEADER, min_len=1),
                          _r_envelopes(r, "envelopes"), _r_cert(r, "cert", optional=True),
                          *_r_sig(r))
    else:
        raise Malformed(f"pbft message: unknown kind {kind!r}")
    r.end()
    return m


def _r_sig(r: Reader) -> tuple[str, bytes]:
    return (r.str_("signer", max_len=MAX_ID, min_len=1),
            r.bytes_("signature", max_len=MAX_SIGNATURE, min_len=1))
