"""Hex encoding of the execution-apis spec, both ways, strictly.

Encode: a *quantity* is ``0x`` + lowercase hex without leading zeros (``0x0`` for zero); *data*
is ``0x`` + an even number of lowercase hex digits (``0x`` for empty). Decode refuses what geth
refuses (with geth's words): a missing prefix, leading zeros, ``0x`` as a number, odd-length
data, non-hex digits, and values wider than their type. Uppercase hex digits are accepted
on input (geth does) and never produced.

Also here: block selectors (tags, numbers, EIP-1898 ``{blockHash}``/``{blockNumber}``) and the
address / topic parameters of filters, each failing with -32602 naming its parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from consortia.node.ethrpc.errors import invalid_params
from consortia.node.ethrpc.types import Address, Hash32, TopicFilter

_HEX = re.compile(r"[0-9a-fA-F]*")
BlockTag = Literal["latest", "earliest", "pending", "safe", "finalized"]
BLOCK_TAGS: tuple[BlockTag, ...] = ("latest", "earliest", "pending", "safe", "finalized")
MAX_FILTER_ADDRESSES = 1_000
"""Addresses one log filter may name (geth has no cap; a cap keeps matching bounded)."""


def quantity(value: int) -> str:
    """``value`` as a spec quantity (``0x0``, ``0x1a``)."""
    if value < 0:
        raise ValueError(f"a quantity is never negative: {value}")
    return hex(value)


def data(value: bytes) -> str:
    """``value`` as spec data (``0x``, ``0x00ff``)."""
    return "0x" + value.hex()


def parse_quantity(value: Any, param: str, bits: int = 256) -> int:
    """A spec quantity of at most ``bits`` bits; -32602 naming ``param`` otherwise."""
    if not isinstance(value, str):
        raise invalid_params(param, "expected a hex string quantity")
    if value == "":
        raise invalid_params(param, "empty hex string")
    if not value.startswith(("0x", "0X")):
        raise invalid_params(param, "hex string without 0x prefix")
    digits = value[2:]
    if digits == "":
        raise invalid_params(param, 'hex string "0x"')
    if not _HEX.fullmatch(digits):
        raise invalid_params(param, "invalid hex string")
    if len(digits) > 1 and digits[0] == "0":
        raise invalid_params(param, "hex number with leading zero digits")
    number = int(digits, 16)
    if number >= 1 << bits:
        raise invalid_params(param, f"hex number > {bits} bits")
    return number


def parse_data(value: Any, param: str, size: int | None = None,
               max_size: int | None = None) -> bytes:
    """Spec data: exactly ``size`` bytes when given, at most ``max_size`` when given."""
    if not isinstance(value, str):
        raise invalid_params(param, "expected a hex string")
    if value == "":
        raise invalid_params(param, "empty hex string")
    if not value.startswith(("0x", "0X")):
        raise invalid_params(param, "hex string without 0x prefix")
    digits = value[2:]
    if len(digits) % 2:
        raise invalid_params(param, "hex string of odd length")
    if not _HEX.fullmatch(digits):
        raise invalid_params(param, "invalid hex string")
    raw = bytes.fromhex(digits)
    if size is not None and len(raw) != size:
        raise invalid_params(param, f"hex string has length {len(digits)}, want {size * 2}")
    if max_size is not None and len(raw) > max_size:
        raise invalid_params(param, f"data of {len(raw)} bytes exceeds {max_size}")
    return raw


def parse_address(value: Any, param: str) -> Address:
    """A 20-byte address (any letter case; the EIP-55 checksum is not enforced, as geth)."""
    return parse_data(value, param, size=20)


def parse_hash(value: Any, param: str) -> Hash32:
    """A 32-byte hash."""
    return parse_data(value, param, size=32)


def parse_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_params(param, "expected a boolean")
    return value


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as a request names it: exactly one of ``tag``, ``number``, ``block_hash``."""

    tag: BlockTag | None = None
    number: int | None = None
    block_hash: Hash32 | None = None


LATEST = BlockRef(tag="latest")


def parse_block_ref(value: Any, param: str, allow_hash: bool = False) -> BlockRef:
    """A block tag or number; with ``allow_hash`` (the methods EIP-1898 lists) also
    ``{"blockHash": h[, "requireCanonical": b]}`` or ``{"blockNumber": n}``."""
    if isinstance(value, str):
        if value in BLOCK_TAGS:
            return BlockRef(tag=value)
        return BlockRef(number=parse_quantity(value, param, bits=64))
    if allow_hash and isinstance(value, dict):
        extra = set(value) - {"blockHash", "blockNumber", "requireCanonical"}
        if extra:
            raise invalid_params(param, f"unknown field {sorted(extra)[0]!r} in block selector")
        if "blockHash" in value and "blockNumber" in value:
            raise invalid_params(param, "cannot specify both BlockHash and BlockNumber, "
                                        "choose one or the other")
        if "requireCanonical" in value:
            parse_bool(value["requireCanonical"], param + ".requireCanonical")
        if "blockHash" in value:
            return BlockRef(block_hash=parse_hash(value["blockHash"], param + ".blockHash"))
        if "blockNumber" in value:
            return parse_block_ref(value["blockNumber"], param + ".blockNumber")
        raise invalid_params(param, "block selector needs blockHash or blockNumber")
    wanted = "a block tag, number or {blockHash}" if allow_hash else "a block tag or number"
    raise invalid_params(param, f"expected {wanted}")


def parse_addresses(value: Any, param: str) -> tuple[Address, ...]:
    """A filter's ``address``: absent/null (any), one address, or a list of them (OR)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (parse_address(value, param),)
    if isinstance(value, list):
        if len(value) > MAX_FILTER_ADDRESSES:
            raise invalid_params(param, f"more than {MAX_FILTER_ADDRESSES} addresses")
        return tuple(parse_address(v, f"{param}[{i}]") for i, v in enumerate(value))
    raise invalid_params(param, "expected an address or a list of addresses")


def parse_topics(value: Any, param: str) -> TopicFilter:
    """A filter's ``topics``: up to 4 positions, each null (wildcard), a topic, or a list of
    topics (OR; an empty or null-holding list is a wildcard, as geth)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_params(param, "expected a list of topics")
    if len(value) > 4:
        raise invalid_params(param, "more than 4 topic positions")
    out: list[tuple[Hash32, ...] | None] = []
    for i, position in enumerate(value):
        where = f"{param}[{i}]"
        if position is None:
            out.append(None)
        elif isinstance(position, str):
            out.append((parse_hash(position, where),))
        elif isinstance(position, list):
            if any(t is None for t in position) or not position:
                out.append(None)
            else:
                out.append(tuple(parse_hash(t, f"{where}[{j}]") for j, t in enumerate(position)))
        else:
            raise invalid_params(where, "expected null, a topic or a list of topics")
    return tuple(out)  # trailing wildcards kept: they still ask for that many topics (geth)
