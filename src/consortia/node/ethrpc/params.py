"""Positional parameters of one call: count checks and per-parameter names for errors."""

from __future__ import annotations

from typing import Any

from consortia.node.ethrpc.errors import INVALID_PARAMS, RpcError


class Args:
    """``params`` of a method whose parameters are called ``names``, the first
    ``required`` of them mandatory (geth's messages for too many / missing arguments).
    A trailing ``null`` counts as absent, as in geth."""

    def __init__(self, params: list[Any], names: tuple[str, ...], required: int) -> None:
        if len(params) > len(names):
            raise RpcError(INVALID_PARAMS, f"too many arguments, want at most {len(names)}")
        present = len(params)
        while present > 0 and params[present - 1] is None:
            present -= 1
        if present < required:
            raise RpcError(INVALID_PARAMS, f"missing value for required argument {present} "
                                           f"({names[present]})")
        self._params = params
        self._names = names

    def label(self, index: int) -> str:
        """``"0 (address)"``: the position and the name, for error messages."""
        return f"{index} ({self._names[index]})"

    def get(self, index: int) -> Any:
        """The raw value at ``index``, ``None`` when absent."""
        return self._params[index] if index < len(self._params) else None
