"""A peer node: holds the ledger, serves reads and takes transactions, but does not order.

A peer (``[node] role = "peer"``, ADR 0015) follows the validators named in ``[follow]``
through their public HTTP API:

- **sync**: it asks the current validator for the blocks after its own height
  (``GET /v1/sync/blocks``, a long poll of up to ``poll_wait_ms``), verifies each exactly as
  a validator catching up would (``node.follow``) and commits it atomically on its single
  commit thread. A validator that fails, times out, lags behind the peer or serves a
  block that does not verify is left for the next one in the list (after ``retry_ms``);
  nothing of a refused block is stored.
- **submit**: transactions pass the same admission checks as on a validator (and the
  committed-duplicate check against the peer's own ledger), then are forwarded as one
  msgpack batch to a validator, the next one if it cannot be reached; the validator's
  per-transaction answer is passed on. ``wait`` waits until the *peer* has stored the block.
- **reads**: the same API as a validator's, from its own ledger.

``/healthz`` answers 200 once the peer has caught up with a validator since it started
(the control plane makes a peer AVAILABLE then), 503 ``syncing`` before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgpack

from consortia import __version__
from consortia.identity.keystore import FileKeystore
from consortia.ledger.genesis import load_genesis
from consortia.ledger.proof import build_proof
from consortia.ledger.store import LedgerStore
from consortia.node.bodies import split_bin_array
from consortia.node.chain import Chain
from consortia.node.follow import Applied, BlockVerifier, Outcome
from consortia.node.metrics import NodeMetrics
from consortia.node.parts import admission_for, attach_privacy, open_chain
from consortia.node.receipts import Receipt, ReceiptWaiters
from consortia.node.service import HeightWatch, now_ms
from consortia.node.settings import NodeSettings
from consortia.txpool.admission import Admission
from consortia.txpool.ethadmission import Entry, already_committed
from consortia.types.config import Role
from consortia.types.errors import (
    ConfigError,
    ConsortiaError,
    Duplicate,
    NotFound,
    Unavailable,
)

log = logging.getLogger("consortia.node.peer")

SYNC_PATH = "/v1/sync/blocks"
HEIGHT_HEADER = "x-consortia-height"
_FORWARDED_MAX = 200_000
"""Forwarded transaction ids remembered (answered ``pending``) until their block arrives."""


class Refused(ConsortiaError):
    """A validator's refusal of a forwarded transaction, passed on with its status and
    code (``pool_full``, ``duplicate_transaction``, …)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code)
        self.status = status


class SourceError(ConsortiaError):
    """A validator did not answer a sync request usefully (status, headers, body)."""

    status = 502
    code = "bad_gateway"


def decode_blocks(body: bytes, limit: int) -> list[bytes]:
    """The raw blocks of a sync answer: a msgpack array of ``bin`` (empty: ``0x90``)."""
    if body == b"\x90":
        return []
    return split_bin_array(body, limit)


class Sources:
    """The validators a peer follows, in order; the current one until it fails."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ConfigError("a peer follows at least one validator")
        self.urls = list(urls)
        self._i = 0
        self.failures: dict[str, str] = {}
        """Last failure seen from each validator (shown in chain info)."""

    @property
    def current(self) -> str:
        return self.urls[self._i]

    def failed(self, url: str, why: str) -> None:
        """``url`` failed: note why and move on to the next validator if it was current."""
        self.failures[url] = why[:300]
        if self.urls[self._i] == url:
            self._i = (self._i + 1) % len(self.urls)

    def ok(self, url: str) -> None:
        self.failures.pop(url, None)

    def in_order(self) -> list[str]:
        """Every validator, the current one first."""
        return self.urls[self._i:] + self.urls[:self._i]


class PeerNode:
    """A peer's node process: same API surface as ``service.Node`` (``node.api``)."""

    def __init__(self, settings: NodeSettings) -> None:
        if settings.follow is None:
            raise ConfigError("a peer needs a [follow] section")
        self.settings = settings
        self.follow = settings.follow
        self.node_id = settings.node.id
        self.metrics = NodeMetrics()
        self.genesis = load_genesis(settings.resolve(settings.node.genesis))
        ident = FileKeystore(settings.resolve(settings.identity.keystore)).load(
            settings.identity.name, settings.passphrase())
        self.cert_der = ident.cert_der
        self.store = LedgerStore(settings.resolve(settings.node.data_dir) / "ledger.sqlite3")
        self.chain = open_chain(self.store, self.genesis, ident.key)
        self.identity_pending: str | None = None
        """Why the peer's identity is not valid yet: its organization joined the chain above
        this ledger's height (re-checked once caught up)."""
        try:
            check_peer_identity(self.chain, self.node_id, ident.cert_der)
        except ConfigError as exc:
            if exc.__cause__ is None or getattr(exc.__cause__, "code", None) \
                    != "unknown_identity":
                raise
            self.identity_pending = exc.message
            log.info("peer %s: its identity is not of the configuration at height %d (%s); "
                     "checking again once caught up", self.node_id, self.store.height,
                     exc.message)
        self.admission = admission_for(
            self.chain, Admission(self.chain.suite, self.chain.config, now_ms))
        self.verifier = BlockVerifier(self.chain, self.admission)
        self.sources = Sources(self.follow.urls())
        self.heights = HeightWatch()
        self._verify = ThreadPoolExecutor(settings.pool.verify_threads,
                                          thread_name_prefix="verify")
        self._commit = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._receipts = ReceiptWaiters()
        self._forwarded: OrderedDict[bytes, float] = OrderedDict()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.started_ms = now_ms()
        self.failed = False
        self.caught_up = False
        self.remote_height = -1
        self.refused_blocks = 0
        self.metrics.height.set(self.store.height)
        self.privacy = attach_privacy(self.chain, settings)
        """The member's transaction manager (quorum chains with ``[privacy]``)."""
        self.commit_listeners: list[Callable[[int], None]] = []
        """Called on the event-loop thread with each stored height, in order."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.follow.timeout_s)
        self._task = asyncio.create_task(self._sync_loop(), name="peer-sync")
        log.info("peer %s following chain %s from height %d (validators: %s)", self.node_id,
                 self.chain.chain_id, self.store.height, ", ".join(self.sources.urls))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        self._verify.shutdown(wait=True)
        self._commit.shutdown(wait=True)
        if self.privacy is not None:
            self.privacy.close()
        self.store.close()

    # -- sync --------------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        retry = self.follow.retry_ms / 1000
        while True:
            url = self.sources.current
            try:
                raws, remote = await self._fetch(url, self.store.height + 1)
            except (httpx.HTTPError, ConsortiaError) as exc:
                why = exc.message if isinstance(exc, ConsortiaError) else repr(exc)
                log.warning("sync from %s failed: %s", url, why)
                self.sources.failed(url, why)
                await asyncio.sleep(retry)
                continue
            self.remote_height = remote
            if remote < self.store.height:
                # A validator behind this peer (down a while, partitioned) has nothing to
                # give it: follow one that is ahead.
                self.sources.failed(url, f"is behind this peer (height {remote} < "
                                         f"{self.store.height})")
                await asyncio.sleep(retry)
                continue
            outcome = await self._apply(raws) if raws else Outcome([])
            if outcome.refused is not None:
                self.refused_blocks += 1
                log.error("refused a block served by %s: %s", url, outcome.refused.message)
                self.sources.failed(url, f"served an invalid block: {outcome.refused.message}")
                await asyncio.sleep(retry)
                continue
            self.sources.ok(url)
            if self.store.height >= remote:
                if not self.caught_up:
                    log.info("caught up with %s at height %d", url, self.store.height)
                    self._recheck_identity()
                self.caught_up = True
            elif not raws:
                # It holds blocks above ours yet served none: ask another.
                self.sources.failed(url, f"at height {remote} served no block after "
                                         f"{self.store.height}")
                await asyncio.sleep(retry)

    def _recheck_identity(self) -> None:
        """A peer whose organization joined after genesis starts from a ledger that does
        not know it yet; once caught up, its identity must be valid, or the peer fails."""
        if self.identity_pending is None:
            return
        try:
            check_peer_identity(self.chain, self.node_id, self.cert_der)
        except ConfigError as exc:
            self.failed = True
            log.error("peer %s: caught up, and its identity still cannot run a peer: %s",
                      self.node_id, exc.message)
            return
        self.identity_pending = None

    async def _fetch(self, url: str, start: int) -> tuple[list[bytes], int]:
        """Blocks from ``start`` on held by ``url`` (long-polling when it has none yet) and
        its height."""
        assert self._client is not None
        f = self.follow
        r = await self._client.get(
            f"{url}{SYNC_PATH}",
            params={"from": start, "limit": f.batch_blocks, "wait_ms": f.poll_wait_ms},
            timeout=f.timeout_s + f.poll_wait_ms / 1000)
        if r.status_code != 200:
            raise SourceError(f"{url} answered {r.status_code} to a sync request")
        height = r.headers.get(HEIGHT_HEADER, "")
        if not height.isdigit():
            raise SourceError(f"{url} did not say its height")
        try:
            raws = decode_blocks(r.content, f.batch_blocks)
        except ConsortiaError as exc:
            raise SourceError(f"{url} sent a malformed block list: {exc.message}") from exc
        return raws, int(height)

    async def _apply(self, raws: list[bytes]) -> Outcome:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            outcome = await loop.run_in_executor(self._commit, self.verifier.apply_many, raws)
        except Exception:
            # The ledger could not be written (disk full, I/O error): stop, so a supervisor
            # restarts the peer and its start-up chain check runs.
            log.critical("failed to store a block; the peer stops", exc_info=True)
            self._fail()
            raise
        for a in outcome.applied:
            self._settle(a)
            for listener in self.commit_listeners:
                listener(a.height)
        if outcome.applied:
            m = self.metrics
            m.block_seconds.observe((time.perf_counter() - t0) / len(outcome.applied))
            m.height.set(self.store.height)
            self.heights.bump()
        return outcome

    def _settle(self, a: Applied) -> None:
        m = self.metrics
        m.blocks.inc()
        m.block_txs.observe(len(a.txs))
        invalid = sum(1 for r in a.results if r.code)
        m.tx_committed.labels("valid").inc(len(a.txs) - invalid)
        if invalid:
            m.tx_committed.labels("invalid").inc(invalid)
        for tx in a.txs:
            self._forwarded.pop(tx.id, None)
        self._receipts.committed(a.height, a.txs, a.results)

    def _fail(self) -> None:
        self.failed = True
        self._receipts.fail("the peer failed and is stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    # -- submission --------------------------------------------------------------------------

    async def submit(self, raws: Sequence[bytes]) -> list[Entry | ConsortiaError]:
        """Admit each raw envelope as a validator would, then forward the admitted ones to
        a validator; each item is its ``Tx`` (taken) or why not."""
        if self.failed:
            raise Unavailable("this peer can no longer store blocks and is stopping")
        loop = asyncio.get_running_loop()
        chunk = max(1, -(-len(raws) // self.settings.pool.verify_threads))
        parts = [raws[i:i + chunk] for i in range(0, len(raws), chunk)]
        checked = await asyncio.gather(*[
            loop.run_in_executor(self._verify, self._check_many, part) for part in parts])
        results: list[Entry | ConsortiaError] = [r for part in checked for r in part]
        fresh = [r for r in results if not isinstance(r, ConsortiaError)]
        known = self.store.known_txids([t.id for t in fresh]) if fresh else set()
        seen: set[bytes] = set()
        for i, r in enumerate(results):
            if not isinstance(r, ConsortiaError):
                if r.id in known:
                    results[i] = already_committed(r)
                elif r.id in seen:
                    results[i] = Duplicate(f"transaction {r.id.hex()} appears twice")
                seen.add(r.id)
        to_send = [(i, r) for i, r in enumerate(results) if not isinstance(r, ConsortiaError)]
        if to_send:
            answers = await self._forward([t for _, t in to_send])
            for (i, tx), answer in zip(to_send, answers, strict=True):
                if answer is None:
                    self._remember(tx.id)
                else:
                    results[i] = answer
        for r in results:
            if isinstance(r, ConsortiaError):
                self.metrics.tx_rejected.labels(r.code).inc()
        taken = sum(not isinstance(r, ConsortiaError) for r in results)
        if taken:
            self.metrics.tx_admitted.inc(taken)
        return results

    def _check_many(self, raws: Sequence[bytes]) -> list[Entry | ConsortiaError]:
        out: list[Entry | ConsortiaError] = []
        for raw in raws:
            try:
                out.append(self.admission.check(raw))
            except ConsortiaError as exc:
                out.append(exc)
        return out

    async def _forward(self, txs: list[Entry]) -> list[ConsortiaError | None]:
        """Hand ``txs`` to a validator, the next one when one cannot be reached or answers
        5xx; per transaction None (taken) or the validator's refusal. After an attempt
        whose outcome is unknown (a timeout once the request was sent), a later validator's
        ``duplicate_transaction`` means the first one took it (it gossiped it on)."""
        assert self._client is not None
        body = msgpack.packb([t.raw for t in txs], use_bin_type=True)
        ambiguous = False
        tried: list[str] = []
        for url in self.sources.in_order():
            tried.append(url)
            try:
                r = await self._client.post(
                    f"{url}/v1/transactions/batch", content=body,
                    headers={"content-type": "application/msgpack"},
                    timeout=self.follow.timeout_s)
            except httpx.HTTPError as exc:
                ambiguous = ambiguous or not isinstance(exc, httpx.ConnectError)
                log.warning("forwarding %d transaction(s) to %s failed: %r", len(txs), url,
                            exc)
                continue
            if r.status_code >= 500:
                ambiguous = True
                continue
            try:
                return self._answers(r, len(txs), ambiguous)
            except (ValueError, KeyError, TypeError):
                ambiguous = True
                log.warning("%s answered a forwarded batch with an unreadable body", url)
                continue
        err = Unavailable(f"no validator took the transaction (tried {', '.join(tried)})")
        return [err] * len(txs)

    @staticmethod
    def _answers(r: httpx.Response, n: int, ambiguous: bool) -> list[ConsortiaError | None]:
        doc = r.json()
        if r.status_code != 200:
            err = doc["error"]
            refused = Refused(str(err["message"]), status=r.status_code, code=str(err["code"]))
            return [refused] * n
        items = doc["results"]
        if not isinstance(items, list) or len(items) != n:
            raise ValueError("the batch answer does not hold one result per transaction")
        out: list[ConsortiaError | None] = []
        for item in items:
            if item["status"] != "rejected":
                out.append(None)
                continue
            err = item["error"]
            code = str(err["code"])
            if ambiguous and code == "duplicate_transaction":
                out.append(None)
            else:
                out.append(Refused(str(err["message"]), status=int(item["http_status"]),
                                   code=code))
        return out

    def _remember(self, txid: bytes) -> None:
        """A forwarded transaction: ``pending`` until its block arrives, for as long as it
        could still be admitted (the acceptance window, twice)."""
        now = time.monotonic()
        self._forwarded[txid] = now + 2 * self.chain.config.limits.tx_window_ms / 1000
        self._forwarded.move_to_end(txid)
        while self._forwarded:
            first, expiry = next(iter(self._forwarded.items()))
            if expiry > now and len(self._forwarded) <= _FORWARDED_MAX:
                break
            del self._forwarded[first]

    def _pending(self, txid: bytes) -> bool:
        expiry = self._forwarded.get(txid)
        return expiry is not None and expiry > time.monotonic()

    async def wait_for(self, txids: Sequence[bytes], timeout: float) -> list[Receipt]:
        """Receipts of ``txids`` once this peer stored them, or as they stand at ``timeout``."""
        receipts = await self._receipts.wait(txids, timeout, self._stored, self.receipt)
        if self.failed:
            raise Unavailable("the peer failed and is stopping; ask again after it restarts")
        return receipts

    def _stored(self, txid: bytes) -> Receipt | None:
        row = self.store.tx(txid)
        return None if row is None else Receipt.of(row)

    def receipt(self, txid: bytes) -> Receipt:
        row = self.store.tx(txid)
        if row is not None:
            return Receipt.of(row)
        if self._pending(txid):
            return Receipt(txid, "pending")
        raise NotFound(f"transaction {txid.hex()} is unknown to this node")

    def proof(self, txid: bytes) -> bytes:
        return build_proof(self.store, self.chain.suite, self.genesis.hash, txid)

    # -- views -------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: 200 once caught up with a validator since start, 503 before."""
        height = self.store.height
        if self.failed:
            return 503, {"status": "failed", "height": height}
        if not self.caught_up:
            return 503, {"status": "syncing", "height": height,
                         "remote_height": self.remote_height}
        return 200, {"status": "ok", "height": height}

    def info(self) -> dict[str, Any]:
        cfg = self.chain.config
        try:
            member = self.chain.membership.identify(self.cert_der)
            org_id, role = member.org_id, str(member.role)
        except ConsortiaError:  # (its organization left the configuration since it started)
            org_id, role = None, "peer"
        return {
            "chain_id": cfg.chain_id,
            "profile": str(cfg.profile),
            "consensus": str(cfg.consensus),
            "height": self.store.height,
            "tx_count": self.store.tx_total,
            "genesis_hash": self.genesis.hash.hex(),
            "latest_hash": self.chain.last_hash.hex(),
            "config_height": self.chain.config_height,
            "validators": [{"id": v.id, "org_id": v.org_id} for v in cfg.validators],
            "node": {"id": self.node_id, "org_id": org_id, "version": __version__,
                     "role": role, "started_ms": self.started_ms},
            "pool": {"transactions": 0, "bytes": 0, "in_flight": 0},
            "config": cfg.summary(),
            "consensus_status": {"role": "peer", "caught_up": self.caught_up},
            "follow": {"source": self.sources.current, "validators": self.sources.urls,
                       "remote_height": self.remote_height, "caught_up": self.caught_up,
                       "refused_blocks": self.refused_blocks,
                       "failures": dict(self.sources.failures)},
        }


def check_peer_identity(chain: Chain, node_id: str, cert_der: bytes) -> None:
    """A peer signs nothing on chain, but it is someone: its certificate must be a ``peer``
    identity of an organization of the configuration in force, and its id no validator's."""
    if chain.config.validator(node_id) is not None:
        raise ConfigError(f"{node_id} is a validator of this chain; a peer needs an id of "
                          "its own")
    try:
        member = chain.membership.validate(cert_der, (Role.PEER,), now_ms())
    except ConsortiaError as exc:
        raise ConfigError(f"the keystore identity cannot run a peer: {exc.message}") from exc
    if member.role is not Role.PEER:  # (validate checked it; a broken invariant is loud)
        raise ConfigError(f"the keystore identity has role {member.role}, not peer")
