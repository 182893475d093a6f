"""The state a PBFT validator keeps: its parameters, the record of the one height in
flight (dropped as a whole when that height commits), and what it must remember across
a crash, with its canonical bytes (``Durable``).

A restarted validator must never sign a vote that conflicts with one it signed
before, and its view changes must still report what it prepared. So the core
persists (``Persist``) before sending any vote:

* ``view`` and ``normal``: never go back to a view it left, and never treat a view it
  is changing to as started;
* ``constraint``: what the accepted new-view obliges it to prepare at a height
  (so a restart in the middle of catching up cannot accept another proposal);
* ``prepare_sent``: the (view, digest) it prepared at ``height`` — one per view;
* ``prepared``: its highest prepared certificate at ``height``, with the block
  (its commit vote is implied by it);
* ``last_cert``: the certificate of ``height - 1``, which proves its height in view
  changes and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia.consensus.pbft.messages import (
    MAX_CERT,
    CommitVote,
    Prepare,
    PreparedProof,
    PrePrepare,
    read_digest,
    read_proof,
)
from consortia.consensus.support import PreparedBlock
from consortia.types.block import Certificate
from consortia.types.codec import Reader, decode, encode
from consortia.types.errors import Malformed

STATE_VERSION = 1
Content = tuple[bytes, tuple[bytes, ...]]
"""A block's header bytes and envelopes, as a peer sent them."""


@dataclass(frozen=True, slots=True)
class Params:
    """Timers (driver milliseconds) and memory bounds."""

    view_timeout_ms: int = 300
    """No commit this long while work is pending: suspect the primary. Doubles with each
    further view change without a commit, up to ``2**max_backoff`` times."""
    max_backoff: int = 2
    resend_ms: int = 150
    """Retransmit this validator's current messages while its height is stuck."""
    checkpoint_interval: int = 16
    """Announce a checkpoint (the commit certificate) every this many heights."""
    retain_blocks: int = 128
    """Committed blocks kept in memory to serve peers that are behind."""
    sync_batch: int = 8
    """Blocks sent at once to a peer that is behind."""
    max_ahead: int = 64
    """Certified blocks accepted this far above the next height."""
    probe_ms: int = 2_000
    """Ask a peer for blocks above our height this often, also when nothing happens: a
    validator that starts behind an idle network (restarted, or just added) catches up."""
    max_views_per_signer: int = 4


class HeightState:
    """The state of the one height in flight; dropped as a whole when it commits."""

    __slots__ = ("candidates", "commit_of", "commit_views", "commits", "contents", "height",
                 "my_commit", "my_pp", "my_prepare", "pp", "prepare_of", "prepare_sent",
                 "prepared", "prepares", "view")

    def __init__(self, height: int, view: int) -> None:
        self.height = height
        self.view = view
        """The view that ``pp``, ``prepares`` and ``prepare_of`` refer to."""
        self.contents: dict[bytes, PreparedBlock] = {}
        """Validated blocks by hash."""
        self.candidates: dict[bytes, list[Content]] = {}
        """Unvalidated block contents by claimed hash."""
        self.pp: bytes | None = None
        self.prepares: dict[bytes, dict[str, bytes]] = {}
        self.prepare_of: dict[str, bytes] = {}
        self.commits: dict[tuple[int, bytes], dict[str, bytes]] = {}
        self.commit_of: dict[tuple[str, int], bytes] = {}
        self.commit_views: dict[str, int] = {}
        self.prepare_sent: tuple[int, bytes] | None = None
        self.prepared: PreparedProof | None = None
        self.my_pp: PrePrepare | None = None
        self.my_prepare: Prepare | None = None
        self.my_commit: CommitVote | None = None

    def reset_view(self, view: int) -> None:
        self.view = view
        self.pp = None
        self.prepares = {}
        self.prepare_of = {}
        self.my_pp = None
        self.my_prepare = None




@dataclass(frozen=True, slots=True)
class Durable:
    view: int
    normal: bool
    height: int
    last_cert: Certificate | None
    constraint: tuple[int, bytes] | None
    """(height, digest) the new-view of ``view`` obliges; empty digest: a free proposal."""
    prepare_sent: tuple[int, bytes] | None
    prepared: PreparedProof | None

    def encode(self) -> bytes:
        return encode([
            STATE_VERSION, self.view, self.normal, self.height,
            self.last_cert.encode() if self.last_cert else b"",
            list(self.constraint) if self.constraint else [],
            list(self.prepare_sent) if self.prepare_sent else [],
            self.prepared.fields() if self.prepared else [],
        ])

    @staticmethod
    def decode(data: bytes) -> Durable:
        r = Reader(decode(data, what="pbft state"), "pbft state", length=8)
        if r.int_("version") != STATE_VERSION:
            raise Malformed("pbft state.version: unsupported")
        view, normal, height = r.int_("view"), r.bool_("normal"), r.int_("height")
        raw_cert = r.bytes_("last_cert", max_len=MAX_CERT)
        cert = Certificate.decode(raw_cert) if raw_cert else None
        constraint = _pair(r.list_("constraint", max_len=2), "constraint", empty_ok=True)
        prepare_sent = _pair(r.list_("prepare_sent", max_len=2), "prepare_sent",
                             empty_ok=False)
        prepared = read_proof(r)
        r.end()
        return Durable(view, normal, height, cert, constraint, prepare_sent, prepared)


def _pair(raw: list[object], what: str, *, empty_ok: bool) -> tuple[int, bytes] | None:
    if not raw:
        return None
    p = Reader(raw, f"pbft state.{what}", length=2)
    return p.int_("first"), read_digest(p, optional=empty_ok)
