"""Receipts, and the clients waiting for them (``POST /v1/transactions?wait=true``).

Validators and peers answer waits the same way: a transaction already stored answers at
once; otherwise the waiter is parked until a committed block names the transaction
(``committed``), the node fails (``fail``: every waiter gets ``Unavailable``), or the
timeout passes (the receipt as it stands then: ``pending`` or unknown). Event-loop thread
only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consortia.ledger.store import StoredTx
from consortia.txpool.ethadmission import Entry
from consortia.types.block import Result
from consortia.types.errors import Unavailable


@dataclass(frozen=True)
class Receipt:
    tx_id: bytes
    status: str
    """pending | committed | invalid | dropped (a quorum chain's Ethereum transaction
    that execution left out of the block: ``code`` says why, its nonce is unused)"""
    height: int | None = None
    index: int | None = None
    code: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"tx_id": self.tx_id.hex(), "status": self.status, "height": self.height,
                "index": self.index, "error": self.code or None}

    @staticmethod
    def of(row: StoredTx) -> Receipt:
        return Receipt(row.txid, "committed" if row.result.code == "" else "invalid",
                       row.height, row.index, row.result.code)


class ReceiptWaiters:
    """The futures of clients waiting for transactions to commit, by transaction id."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[Receipt]]] = {}

    async def wait(self, txids: Sequence[bytes], timeout: float,
                   stored: Callable[[bytes], Receipt | None],
                   current: Callable[[bytes], Receipt]) -> list[Receipt]:
        """The receipts of ``txids``: ``stored`` answers for those committed already; the
        others are awaited until ``timeout``, then answered by ``current``."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Receipt]] = []
        for txid in txids:
            fut: asyncio.Future[Receipt] = loop.create_future()
            receipt = stored(txid)
            if receipt is not None:
                fut.set_result(receipt)
            else:
                self._waiters.setdefault(txid, []).append(fut)
            futs.append(fut)
        if futs:
            await asyncio.wait(futs, timeout=timeout)
        out = []
        for txid, fut in zip(txids, futs, strict=True):
            if fut.done():
                out.append(fut.result())  # raises the failure ``fail`` set
                continue
            fut.cancel()
            waiters = self._waiters.get(txid)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[txid]
            out.append(current(txid))
        return out

    def committed(self, height: int, txs: Sequence[Entry], results: Sequence[Result]) -> None:
        """Answer the waiters of the transactions of the block at ``height``."""
        for i, tx in enumerate(txs):
            waiters = self._waiters.pop(tx.id, None)
            if waiters:
                r = results[i]
                receipt = Receipt(tx.id, "committed" if not r.code else "invalid", height, i,
                                  r.code)
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(receipt)

    def dropped(self, txid: bytes, code: str) -> None:
        """A transaction left out of the block that was to carry it (module doc)."""
        for fut in self._waiters.pop(txid, []):
            if not fut.done():
                fut.set_result(Receipt(txid, "dropped", code=code))

    def fail(self, message: str) -> None:
        """The node cannot commit any more: every waiter gets ``Unavailable(message)``."""
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(Unavailable(message))
        self._waiters.clear()
