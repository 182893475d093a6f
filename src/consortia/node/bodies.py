"""Request bodies of the node API, parsed without trusting their shape.

A batch body is a msgpack array of byte strings. It is *sliced*, not unpacked: each
item's header must be a msgpack ``bin`` header, so a hostile body (say, millions of
nested empty arrays) cannot make the node allocate a Python object per input byte.
"""

from __future__ import annotations

from consortia.types.errors import Malformed, TooLarge

_ARRAY_HEADERS = {0xDC: 2, 0xDD: 4}
_BIN_HEADERS = {0xC4: 1, 0xC5: 2, 0xC6: 4}


def split_bin_array(body: bytes, max_items: int) -> list[bytes]:
    """The items of a msgpack array of ``bin`` values, as slices of ``body``."""
    if not body:
        raise Malformed("empty request body")
    view = memoryview(body)
    first = body[0]
    if 0x90 <= first <= 0x9F:
        count, pos = first & 0x0F, 1
    elif first in _ARRAY_HEADERS:
        size = _ARRAY_HEADERS[first]
        if len(body) < 1 + size:
            raise Malformed("truncated msgpack array header")
        count, pos = int.from_bytes(body[1:1 + size], "big"), 1 + size
    else:
        raise Malformed("body is not a msgpack array")
    if count > max_items:
        raise TooLarge(f"a batch holds at most {max_items} transactions")
    if count == 0:
        raise Malformed("empty batch")
    items: list[bytes] = []
    for i in range(count):
        if pos >= len(body):
            raise Malformed(f"batch item {i}: truncated")
        width = _BIN_HEADERS.get(body[pos])
        if width is None:
            raise Malformed(f"batch item {i}: expected a msgpack byte string (bin)")
        start = pos + 1 + width
        if start > len(body):
            raise Malformed(f"batch item {i}: truncated header")
        length = int.from_bytes(body[pos + 1:start], "big")
        end = start + length
        if end > len(body):
            raise Malformed(f"batch item {i}: truncated, {length} bytes declared")
        items.append(bytes(view[start:end]))
        pos = end
    if pos != len(body):
        raise Malformed("trailing bytes after the batch array")
    return items
