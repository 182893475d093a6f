"""Frames and the hello that opens every connection.

A frame is a 4-byte big-endian unsigned length followed by that many payload
bytes. Length 0 is a keepalive and carries nothing; the largest accepted length
is the receiver's cap, checked before a single payload byte is read, so an
announced 4 GiB costs the receiver nothing. The first frame each side sends on
a connection is its hello: ``b"consortia-p2p" || version (1 byte) || chain id
(UTF-8)``, at most ``MAX_HELLO_BYTES``.
"""

from __future__ import annotations

import asyncio
import struct

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
MAX_LENGTH = 2**32 - 1
KEEPALIVE = HEADER.pack(0)

HELLO_MAGIC = b"consortia-p2p"
PROTOCOL_VERSION = 1
MAX_HELLO_BYTES = 256


class FrameTooLarge(Exception):
    """A peer announced a frame longer than the cap (the payload was not read)."""

    def __init__(self, length: int, cap: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the cap of {cap}")
        self.length = length
        self.cap = cap


class BadHello(Exception):
    """The first frame of a connection is not a hello this node accepts."""

    def __init__(self, message: str, *, reason: str = "protocol") -> None:
        super().__init__(message)
        self.reason = reason


def header(length: int) -> bytes:
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"frame length {length} does not fit 32 bits")
    return HEADER.pack(length)


def frame(payload: bytes) -> bytes:
    """Header and payload in one buffer (small frames; the transport writes large ones
    as two buffers)."""
    return header(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int, *,
                     idle_timeout: float, body_timeout: float) -> bytes:
    """The next frame's payload (``b""`` for a keepalive).

    Waits at most ``idle_timeout`` for the header and ``body_timeout`` for the whole
    payload. Raises ``FrameTooLarge`` (payload unread), ``TimeoutError``, or
    ``asyncio.IncompleteReadError`` when the stream ends mid-frame.
    """
    async with asyncio.timeout(idle_timeout):
        head = await reader.readexactly(HEADER.size)
    (length,) = HEADER.unpack(head)
    if length == 0:
        return b""
    if length > max_bytes:
        raise FrameTooLarge(length, max_bytes)
    async with asyncio.timeout(body_timeout):
        return await reader.readexactly(length)


def hello(chain_id: str) -> bytes:
    payload = HELLO_MAGIC + bytes([PROTOCOL_VERSION]) + chain_id.encode()
    if len(payload) > MAX_HELLO_BYTES:
        raise ValueError("chain id too long for a hello")
    return payload


def check_hello(payload: bytes, chain_id: str) -> None:
    """Accept a peer's hello for ``chain_id`` or raise ``BadHello``."""
    if not payload.startswith(HELLO_MAGIC) or len(payload) < len(HELLO_MAGIC) + 1:
        raise BadHello("the first frame is not a consortia-p2p hello")
    version = payload[len(HELLO_MAGIC)]
    if version != PROTOCOL_VERSION:
        raise BadHello(f"peer speaks consortia-p2p version {version}, "
                       f"this node speaks {PROTOCOL_VERSION}")
    try:
        theirs = payload[len(HELLO_MAGIC) + 1:].decode()
    except UnicodeDecodeError:
        raise BadHello("the hello's chain id is not UTF-8") from None
    if theirs != chain_id:
        raise BadHello(f"peer serves chain {theirs!r}, not {chain_id!r}", reason="wrong_chain")
