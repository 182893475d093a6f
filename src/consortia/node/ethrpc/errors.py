"""JSON-RPC errors: the codes clients rely on, and the one mapping from backend errors to
them (docs/spec/json-rpc.md, "Errors", holds the same table).

======  ==========================  =====================================================
code    meaning                     when
======  ==========================  =====================================================
-32700  parse error                 the body is not JSON
-32600  invalid request             not a request object, empty/oversized batch, body size
-32601  method not found            unknown method (or eth_subscribe over HTTP)
-32602  invalid params              a parameter fails validation; message names it
-32603  internal error              a bug or a backend failure (details in the node log)
-32000  server error                header not found, filter not found, tx rejected,
                                    execution failed (geth's messages)
-32005  limit exceeded              log range / result limits, filter / subscription caps
3       execution reverted          eth_call / eth_estimateGas hit REVERT; data = payload
======  ==========================  =====================================================
"""

from __future__ import annotations

from typing import Any

from consortia.node.ethrpc.backend import (
    EthBackendError,
    ExecutionFailed,
    ExecutionReverted,
    TxRejected,
    UnknownBlock,
)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
LIMIT_EXCEEDED = -32005
EXECUTION_REVERTED = 3

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANIC_REASONS = {  # geth accounts/abi: panicReasons
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


class RpcError(Exception):
    """An error answer: ``{"code", "message"[, "data"]}`` in the response's ``error``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def invalid_params(param: str, why: str) -> RpcError:
    """-32602 naming the parameter, e.g. ``invalid argument 0 (address): hex string of odd
    length`` — geth's ``invalid argument N: …`` with the parameter's name added."""
    return RpcError(INVALID_PARAMS, f"invalid argument {param}: {why}")


def revert_reason(data: bytes) -> str | None:
    """The human reason in a revert payload, as geth decodes it: the string of
    ``Error(string)``, the meaning of ``Panic(uint256)``; ``None`` for anything else."""
    if data[:4] == _ERROR_SELECTOR and len(data) >= 4 + 64:
        body = data[4:]
        offset = int.from_bytes(body[:32], "big")
        if offset + 32 > len(body):
            return None
        length = int.from_bytes(body[offset:offset + 32], "big")
        raw = body[offset + 32:offset + 32 + length]
        if len(raw) != length:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if data[:4] == _PANIC_SELECTOR and len(data) == 4 + 32:
        code = int.from_bytes(data[4:], "big")
        known = _PANIC_REASONS.get(code)
        return known if known is not None else f"unknown panic code: {code:#x}"
    return None


def from_backend(exc: EthBackendError) -> RpcError:
    """The JSON-RPC error a client sees for a backend error (the table above)."""
    if isinstance(exc, ExecutionReverted):
        reason = revert_reason(exc.data)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        return RpcError(EXECUTION_REVERTED, message, "0x" + exc.data.hex())
    if isinstance(exc, UnknownBlock):
        return RpcError(SERVER_ERROR, "header not found")
    if isinstance(exc, TxRejected | ExecutionFailed):
        return RpcError(SERVER_ERROR, str(exc))
    return RpcError(SERVER_ERROR, str(exc) or type(exc).__name__)
