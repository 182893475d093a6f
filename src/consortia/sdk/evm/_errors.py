"""Errors of the contract tooling, each with a stable code (docs/contracts.md).

::

    ConsortiaError
    └── EvmError                      evm_error
        ├── ToolError                 node_missing | npm_failed | tool_missing
        ├── CompileError              compile_failed | unsupported_source
        │                             (``diagnostics``: file:line:column messages)
        ├── KeyFileError              bad_key_file | wrong_password | no_password
        ├── BadArgument               bad_argument | unknown_function | bad_artifact
        ├── RpcError                  rpc_unreachable | rpc_error
        └── TransactionReverted       reverted (``reason``, ``tx_hash`` when one was mined)
"""

from __future__ import annotations

from dataclasses import dataclass

from consortia.types.errors import ConsortiaError


class EvmError(ConsortiaError):
    """Base of the contract tooling's errors."""

    status = 400
    code = "evm_error"


class ToolError(EvmError):
    """Node.js, npm or a pinned npm tool is missing or failed to install."""

    status = 500
    code = "tool_missing"


@dataclass(frozen=True)
class Diagnostic:
    """One compiler message, located in its source file."""

    severity: str
    """``error`` or ``warning``."""
    file: str
    line: int
    """1-based; 0 when the compiler gave no location."""
    column: int
    """1-based; 0 when the compiler gave no location."""
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


class CompileError(EvmError):
    """The compiler refused the source: ``diagnostics`` says where and why."""

    code = "compile_failed"

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = (), *,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.diagnostics = diagnostics


class KeyFileError(EvmError):
    """A key file is unreadable, not a keystore, or its password is wrong."""

    code = "bad_key_file"


class BadArgument(EvmError):
    """A function name, argument or artifact does not fit the ABI: nothing was sent."""

    code = "bad_argument"


class RpcError(EvmError):
    """The JSON-RPC endpoint is unreachable or answered with an error."""

    status = 502
    code = "rpc_error"


class TransactionReverted(EvmError):
    """The EVM reverted the transaction (or would: estimation reverted, nothing was sent)."""

    status = 422
    code = "reverted"

    def __init__(self, reason: str, tx_hash: str | None = None) -> None:
        super().__init__(f"execution reverted: {reason}" if reason else "execution reverted")
        self.reason = reason
        self.tx_hash = tx_hash
