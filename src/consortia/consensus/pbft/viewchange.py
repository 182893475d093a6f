"""View change (docs/spec/pbft.md §5): leaving a view, joining f+1 validators that
left, the new primary's new-view, and the obligation it carries (re-propose the
highest prepared block, so a block that may have committed is never replaced).

Functions over the core's state, like ``sync``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from consortia.consensus.pbft import sync
from consortia.consensus.pbft.messages import NewView, ViewChange
from consortia.consensus.pbft.verify import Choice, choose

if TYPE_CHECKING:
    from consortia.consensus.pbft.core import PbftCore


def my_vc(core: PbftCore) -> ViewChange:
    """This validator's view change for its view, rebuilt when its height moved (a
    view change reports the current height and what is prepared there)."""
    vc = core.my_vc
    if vc is None or vc.view != core.view or vc.height != core.height:
        vc = ViewChange(core.view, core.height, core.last_cert, core.hs.prepared,
                        core.node_id, b"")
        vc = replace(vc, signature=core._sign(vc.signing_bytes(core.chain_id)))
        core.my_vc = vc
        core.vcs.setdefault(core.view, {})[core.node_id] = vc
    return vc


def enter_view(core: PbftCore, view: int) -> None:
    """Votes of the old view stop counting; its new-view and obligation no longer apply."""
    if view != core.view:
        core.view = view
        core.hs.reset_view(view)
    core.new_view = None
    core.constraint = None
    core.my_vc = None
    core._dirty = True


def start_view_change(core: PbftCore, view: int) -> None:
    """Leave the current view for ``view``: from now on send nothing in lower views."""
    if view <= core.view:
        return
    enter_view(core, view)
    core.normal = False
    core.attempts += 1
    core.deadline = None  # armed once a quorum has moved to this view or beyond
    for old in [x for x in core.vcs if x < view]:
        del core.vcs[old]
    core._broadcast(my_vc(core))
    core.resend_at = core.now + core.params.resend_ms
    progress(core)


def on_view_change(core: PbftCore, sender: str, m: ViewChange) -> None:
    """A verified view change: learn the height it proves, help its sender if it is
    behind, and count it towards joining, the new-view timer and the new-view."""
    if m.last_cert is not None:
        sync.learn(core, m.last_cert, sender)
    if m.height < core.height:
        sync.push(core, sender, m.height)
    if m.view < core.view or (m.view == core.view and core.normal):
        sync.forward_new_view(core, sender)
        return
    per = core.vcs.setdefault(m.view, {})
    old = per.get(m.signer)
    if old is not None and old.height >= m.height:
        return
    if old is None and sum(1 for d in core.vcs.values() if m.signer in d) \
            >= core.params.max_views_per_signer:
        return
    per[m.signer] = m
    if m.view > core.vc_high.get(m.signer, -1):
        core.vc_high[m.signer] = m.view
    progress(core)


def progress(core: PbftCore) -> None:
    """Join f+1 validators that left; arm the new-view timer once a quorum has moved
    on; as the new primary, send the new-view once a quorum of view changes is in."""
    me = core.node_id
    higher = sorted((v for s, v in core.vc_high.items() if s != me and v > core.view),
                    reverse=True)
    if len(higher) > core.f:
        # f+1 validators are past us, so at least one honest one is: follow them.
        start_view_change(core, higher[core.f])
        return
    if core.normal:
        return
    if core.deadline is None:
        moved = 1 + sum(1 for s, v in core.vc_high.items() if s != me and v >= core.view)
        if moved >= core.q:
            core.deadline = core.now + core._timeout()
    if core.verifier.primary(core.view) == me and core.new_view is None:
        my_vc(core)
        per = core.vcs.get(core.view, {})
        if len(per) >= core.q:
            vcs = tuple(per[s] for s in core.validators if s in per)
            choice = choose(vcs)
            if choice is None:
                return
            nv = NewView(core.view, vcs, me, b"")
            nv = replace(nv, signature=core._sign(nv.signing_bytes(core.chain_id)))
            core._broadcast(nv)
            accept_new_view(core, nv, choice)


def on_new_view(core: PbftCore, sender: str, m: NewView) -> None:
    """A new-view for a view we have not started yet: check it, then enter its view."""
    if m.view < core.view or (m.view == core.view and core.normal):
        return
    choice = core.verifier.new_view(m)
    if choice is not None:
        accept_new_view(core, m, choice, sender)


def accept_new_view(core: PbftCore, nv: NewView, choice: Choice, sender: str | None = None,
                    ) -> None:
    """Start the new view, bound by its obligation (persisted with the view)."""
    enter_view(core, nv.view)
    core.normal = True
    core.new_view = nv
    core.constraint = (choice.height, choice.digest)
    for old in [x for x in core.vcs if x <= nv.view]:
        del core.vcs[old]
    core.deadline = core.now + core._timeout()
    if core.resend_at is None:
        core.resend_at = core.now + core.params.resend_ms
    if choice.cert is not None:
        sync.learn(core, choice.cert, sender or nv.signer)
    if choice.height == core.height and choice.digest:
        for content in choice.contents:
            core._add_candidate(choice.digest, content)
    core._advance()
