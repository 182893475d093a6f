"""Why a call reverted, in words: Solidity's Error(string) and Panic(uint256) payloads."""

from __future__ import annotations

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")

#: Solidity's panic codes (docs.soliditylang.org, "Panic via assert and Error via require").
PANIC_CODES: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds pop on an empty array",
    0x32: "array out-of-bounds access",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


def revert_reason(data: bytes) -> str | None:
    """The reason in revert ``data``: the string of ``Error(string)``, ``"panic: <what>
    (0x12)"`` for ``Panic(uint256)``, ``None`` for custom errors and empty data (the
    raw bytes stay available to the caller)."""
    try:
        if data[:4] == ERROR_SELECTOR:
            (text,) = decode(["string"], data[4:])
            return str(text)
        if data[:4] == PANIC_SELECTOR:
            (code,) = decode(["uint256"], data[4:])
            what = PANIC_CODES.get(int(code), "unknown panic code")
            return f"panic: {what} (0x{int(code):02x})"
    except (DecodingError, UnicodeDecodeError, OverflowError):
        return None
    return None
