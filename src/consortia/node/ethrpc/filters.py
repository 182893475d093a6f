"""eth_getLogs and the polled filters (eth_newFilter, eth_newBlockFilter,
eth_getFilterChanges, eth_getFilterLogs, eth_uninstallFilter).

A filter remembers the first block it has not reported yet; each poll reads the blocks
committed since (at most ``max_log_range`` of them — the next poll continues), so nothing
is buffered between polls and a forgotten filter costs a few bytes until it expires
(``filter_timeout_s`` without a poll, geth's 5 minutes). Filter ids are 128 random bits:
a filter is reachable only by whoever installed it (or was told its id); one installed over
a WebSocket is also removed when that connection closes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consortia.node.ethrpc.backend import EthBackend
from consortia.node.ethrpc.codec import (
    LATEST,
    BlockRef,
    data,
    parse_addresses,
    parse_block_ref,
    parse_hash,
    parse_topics,
)
from consortia.node.ethrpc.encode import log_json
from consortia.node.ethrpc.errors import (
    LIMIT_EXCEEDED,
    SERVER_ERROR,
    RpcError,
    invalid_params,
)
from consortia.node.ethrpc.limits import RpcLimits
from consortia.node.ethrpc.methods import Handler, Resolver
from consortia.node.ethrpc.params import Args
from consortia.node.ethrpc.types import Address, EthLog, LogFilter, TopicFilter

_FILTER_FIELDS = {"fromBlock", "toBlock", "address", "topics", "blockHash"}


@dataclass(frozen=True, slots=True)
class LogCriteria:
    """A decoded filter object: the range as requested (unresolved) or one block hash."""

    from_ref: BlockRef = LATEST
    to_ref: BlockRef = LATEST
    block_hash: bytes | None = None
    addresses: tuple[Address, ...] = ()
    topics: TopicFilter = ()


def parse_filter(value: Any, param: str, allow_hash: bool = True) -> LogCriteria:
    """A filter object; unknown fields and ``blockHash`` together with a range refused."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise invalid_params(param, "expected a filter object")
    unknown = set(value) - _FILTER_FIELDS
    if unknown:
        raise invalid_params(param, f"unknown field {sorted(unknown)[0]!r}")
    addresses = parse_addresses(value.get("address"), param + ".address")
    topics = parse_topics(value.get("topics"), param + ".topics")
    if value.get("blockHash") is not None:
        if not allow_hash:
            raise invalid_params(param, "blockHash is not allowed in a polled filter")
        if value.get("fromBlock") is not None or value.get("toBlock") is not None:
            raise invalid_params(param, "cannot specify both BlockHash and FromBlock/ToBlock, "
                                        "choose one or the other")
        return LogCriteria(block_hash=parse_hash(value["blockHash"], param + ".blockHash"),
                           addresses=addresses, topics=topics)

    def ref(name: str) -> BlockRef:
        raw = value.get(name)
        return LATEST if raw is None else parse_block_ref(raw, f"{param}.{name}")

    return LogCriteria(from_ref=ref("fromBlock"), to_ref=ref("toBlock"),
                       addresses=addresses, topics=topics)


@dataclass(slots=True)
class _Filter:
    kind: str
    """``logs`` or ``blocks``."""
    next_block: int
    """The first block this filter has not reported."""
    last_poll: float
    owner: object | None
    criteria: LogCriteria = field(default_factory=LogCriteria)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Filters:
    """The installed filters of one server, and the log queries they share with
    eth_getLogs."""

    def __init__(self, backend: EthBackend, limits: RpcLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.limits = limits
        self.clock = clock
        self.resolve = Resolver(backend)
        self._filters: dict[str, _Filter] = {}

    def __len__(self) -> int:
        return len(self._filters)

    def handlers(self, owner: object | None = None) -> dict[str, Handler]:
        """The log and filter methods; filters installed through these belong to
        ``owner`` (a WebSocket connection, or ``None`` for HTTP)."""

        async def new_filter(params: list[Any]) -> str:
            args = Args(params, ("filter",), 1)
            return await self.install_logs(parse_filter(args.get(0), args.label(0),
                                                        allow_hash=False), owner)

        async def new_block_filter(params: list[Any]) -> str:
            Args(params, (), 0)
            return await self._install("blocks", LogCriteria(), owner)

        return {"eth_getLogs": self.get_logs, "eth_newFilter": new_filter,
                "eth_newBlockFilter": new_block_filter,
                "eth_getFilterChanges": self.get_filter_changes,
                "eth_getFilterLogs": self.get_filter_logs,
                "eth_uninstallFilter": self.uninstall_filter}

    # --- eth_getLogs ----------------------------------------------------------------------

    async def get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        args = Args(params, ("filter",), 1)
        criteria = parse_filter(args.get(0), args.label(0))
        return [log_json(log) for log in await self.query(criteria)]

    async def query(self, criteria: LogCriteria, floor: int = 0) -> list[EthLog]:
        """The logs ``criteria`` selects, from no lower than block ``floor``; refuses a
        range wider than ``max_log_range`` and answers beyond ``max_logs``."""
        head = await self.backend.head_number()
        if criteria.block_hash is not None:
            block = await self.backend.block_by_hash(criteria.block_hash)
            if block is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            first = last = block.header.number
        else:
            first_n = await self.resolve.number(criteria.from_ref)
            last_n = await self.resolve.number(criteria.to_ref)
            assert first_n is not None and last_n is not None  # tags and numbers only
            first, last = max(first_n, floor), min(last_n, head)
            if first_n > last_n and criteria.to_ref.number is not None:
                # two explicit numbers in the wrong order; a range running past the head
                # (fromBlock beyond "latest", as a polling client asks) is simply empty
                raise RpcError(SERVER_ERROR, "invalid block range params")
        if first > last:
            return []
        span = last - first + 1
        if span > self.limits.max_log_range:
            raise RpcError(LIMIT_EXCEEDED, f"block range of {span} blocks exceeds the limit "
                                           f"of {self.limits.max_log_range}")
        return await self._fetch(LogFilter(first, last, criteria.addresses, criteria.topics))

    async def _fetch(self, query: LogFilter) -> list[EthLog]:
        logs = await self.backend.logs(query)
        if len(logs) > self.limits.max_logs:
            raise RpcError(LIMIT_EXCEEDED, f"query returned more than "
                                           f"{self.limits.max_logs} results")
        return logs

    # --- installed filters ----------------------------------------------------------------

    async def install_logs(self, criteria: LogCriteria, owner: object | None) -> str:
        return await self._install("logs", criteria, owner)

    async def _install(self, kind: str, criteria: LogCriteria, owner: object | None) -> str:
        self.expire()
        if len(self._filters) >= self.limits.max_filters:
            raise RpcError(LIMIT_EXCEEDED, f"too many filters installed (limit "
                                           f"{self.limits.max_filters})")
        head = await self.backend.head_number()
        filter_id = data(secrets.token_bytes(16))
        self._filters[filter_id] = _Filter(kind, head + 1, self.clock(), owner, criteria)
        return filter_id

    def expire(self) -> None:
        """Remove filters not polled for ``filter_timeout_s``."""
        cutoff = self.clock() - self.limits.filter_timeout_s
        for filter_id in [k for k, f in self._filters.items() if f.last_poll < cutoff]:
            del self._filters[filter_id]

    def drop_owner(self, owner: object) -> None:
        """Remove the filters a closed WebSocket connection installed."""
        for filter_id in [k for k, f in self._filters.items() if f.owner is owner]:
            del self._filters[filter_id]

    def _get(self, args: Args) -> _Filter:
        self.expire()
        raw = args.get(0)
        if not isinstance(raw, str):
            raise invalid_params(args.label(0), "expected a filter id")
        found = self._filters.get(raw.lower())
        if found is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        found.last_poll = self.clock()
        return found

    async def get_filter_changes(self, params: list[Any]) -> list[Any]:
        args = Args(params, ("id",), 1)
        flt = self._get(args)
        async with flt.lock:  # two concurrent polls must not both report the same blocks
            head = await self.backend.head_number()
            last = min(head, flt.next_block + self.limits.max_log_range - 1)
            if last < flt.next_block:
                return []
            if flt.kind == "blocks":
                hashes = []
                for number in range(flt.next_block, last + 1):
                    block = await self.backend.block_by_number(number)
                    if block is None:
                        raise RpcError(SERVER_ERROR, f"block {number} not found")
                    hashes.append(data(block.header.hash))
                flt.next_block = last + 1
                return hashes
            # A tag in the range means "as the chain grows": only numbers bound the polls.
            criteria = flt.criteria
            start = max(criteria.from_ref.number or 0, flt.next_block)
            if criteria.to_ref.number is not None:
                last = min(last, criteria.to_ref.number)
            logs = [] if start > last else await self._fetch(
                LogFilter(start, last, criteria.addresses, criteria.topics))
            flt.next_block = max(flt.next_block, last + 1)
            return [log_json(log) for log in logs]

    async def get_filter_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        args = Args(params, ("id",), 1)
        flt = self._get(args)
        if flt.kind != "logs":
            raise RpcError(SERVER_ERROR, "filter not found")
        return [log_json(log) for log in await self.query(flt.criteria)]

    async def uninstall_filter(self, params: list[Any]) -> bool:
        args = Args(params, ("id",), 1)
        raw = args.get(0)
        if not isinstance(raw, str):
            raise invalid_params(args.label(0), "expected a filter id")
        self.expire()
        return self._filters.pop(raw.lower(), None) is not None
