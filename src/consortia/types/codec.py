"""Canonical encoding: msgpack arrays, decoded strictly (ADR 0001).

Every structure on the wire or on disk is a msgpack *array* of fields in a fixed
order. ``encode`` is deterministic (msgpack always picks the shortest form of an
integer, string or byte-string header). ``decode`` accepts only bytes that
``encode`` would produce for the decoded value: after unpacking, the value is
packed again and must equal the input byte for byte. That one rule rejects
non-minimal integers, maps with duplicate keys, trailing bytes and every other
second spelling of the same value, so a hash of the bytes identifies the value.
The unpacker itself still accepts maps, floats and extension values; no schema
field does (``Reader`` admits only arrays, integers, strings, byte strings and
booleans), so no accepted structure can contain them.

``Reader`` walks a decoded array field by field with type and size checks, so
schema decoders stay short and every rejection names the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from consortia.types.errors import Malformed, TooLarge

# Generous hard caps for the unpacker itself; schema limits are tighter.
_MAX_BIN = 16 * 1024 * 1024
_MAX_ARRAY = 1_000_000


def encode(value: Any) -> bytes:
    """Pack ``value`` (nested lists/tuples of int, str, bytes, bool, None)."""
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def decode(data: bytes, *, what: str = "value", max_size: int = _MAX_BIN) -> Any:
    """Unpack canonical bytes; raise ``Malformed`` for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Malformed(f"{what}: expected bytes")
    if len(data) > max_size:
        raise TooLarge(f"{what}: {len(data)} bytes exceeds the limit of {max_size}")
    try:
        value = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=_MAX_BIN,
            max_str_len=_MAX_BIN,
            max_array_len=_MAX_ARRAY,
            max_map_len=_MAX_ARRAY,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError) as exc:
        raise Malformed(f"{what}: not valid msgpack ({exc.__class__.__name__})") from exc
    if encode(value) != bytes(data):
        raise Malformed(f"{what}: not in canonical encoding")
    return value


class Reader:
    """Sequential, typed access to the fields of a decoded array."""

    __slots__ = ("_fields", "_pos", "_what")

    def __init__(self, value: Any, what: str, *, length: int | None = None) -> None:
        if not isinstance(value, list):
            raise Malformed(f"{what}: expected an array")
        if length is not None and len(value) != length:
            raise Malformed(f"{what}: expected {length} fields, got {len(value)}")
        self._fields: list[Any] = value
        self._pos = 0
        self._what = what

    def _next(self, name: str) -> Any:
        if self._pos >= len(self._fields):
            raise Malformed(f"{self._what}.{name}: missing")
        v = self._fields[self._pos]
        self._pos += 1
        return v

    def bytes_(self, name: str, *, max_len: int, exact: int | None = None,
               min_len: int = 0) -> bytes:
        v = self._next(name)
        if not isinstance(v, bytes):
            raise Malformed(f"{self._what}.{name}: expected bytes")
        if exact is not None and len(v) != exact:
            raise Malformed(f"{self._what}.{name}: expected exactly {exact} bytes")
        if len(v) > max_len:
            raise TooLarge(f"{self._what}.{name}: {len(v)} bytes exceeds the limit of {max_len}")
        if len(v) < min_len:
            raise Malformed(f"{self._what}.{name}: shorter than {min_len} bytes")
        return v

    def str_(self, name: str, *, max_len: int, min_len: int = 0) -> str:
        v = self._next(name)
        if not isinstance(v, str):
            raise Malformed(f"{self._what}.{name}: expected a string")
        n = len(v.encode())
        if n > max_len:
            raise TooLarge(f"{self._what}.{name}: {n} bytes exceeds the limit of {max_len}")
        if n < min_len:
            raise Malformed(f"{self._what}.{name}: must not be empty")
        return v

    def int_(self, name: str, *, lo: int = 0, hi: int = 2**63 - 1) -> int:
        v = self._next(name)
        if not isinstance(v, int) or isinstance(v, bool):
            raise Malformed(f"{self._what}.{name}: expected an integer")
        if not lo <= v <= hi:
            raise Malformed(f"{self._what}.{name}: {v} outside [{lo}, {hi}]")
        return v

    def bool_(self, name: str) -> bool:
        v = self._next(name)
        if not isinstance(v, bool):
            raise Malformed(f"{self._what}.{name}: expected a boolean")
        return v

    def list_(self, name: str, *, max_len: int) -> list[Any]:
        v = self._next(name)
        if not isinstance(v, list):
            raise Malformed(f"{self._what}.{name}: expected an array")
        if len(v) > max_len:
            raise TooLarge(f"{self._what}.{name}: {len(v)} items exceeds the limit of {max_len}")
        return v

    def any_(self, name: str) -> Any:
        return self._next(name)

    def end(self) -> None:
        if self._pos != len(self._fields):
            extra = len(self._fields) - self._pos
            raise Malformed(f"{self._what}: {extra} unexpected extra fields")


def as_list(items: Sequence[Any]) -> list[Any]:
    """Helper for encoders: tuples and lists pack identically, keep it explicit."""
    return list(items)
