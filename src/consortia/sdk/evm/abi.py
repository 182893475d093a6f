"""From command-line text to ABI values: choose the function, convert each argument.

A function is named by its name (``transfer``) or, when overloaded, by its signature
(``transfer(address,uint256)``). Arguments are text converted by the parameter's ABI type:
integers in decimal or ``0x`` hex (``_`` separators allowed), addresses checksummed,
``true``/``false``, bytes as ``0x`` hex, strings as given, arrays and tuples as JSON. A value
that does not fit is :class:`BadArgument` naming the parameter, before anything is sent.
"""

from __future__ import annotations

import json
import re
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from consortia.sdk.evm._errors import BadArgument

_INT = re.compile(r"^(u?)int(\d*)$")
_BYTES = re.compile(r"^bytes(\d+)$")


def signature(entry: dict[str, Any]) -> str:
    """``name(type1,type2)`` of an ABI function or event entry."""
    return f"{entry.get('name', '')}({','.join(_canonical(p) for p in entry.get('inputs', []))})"


def _canonical(param: dict[str, Any]) -> str:
    t: str = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in param.get("components", [])) + ")" + t[5:]
    return t


def find_function(abi: list[dict[str, Any]], ref: str, nargs: int) -> dict[str, Any]:
    """The ABI entry of function ``ref`` (a name or a full signature) taking ``nargs``."""
    functions = [e for e in abi if e.get("type") == "function"]
    if "(" in ref:
        wanted = ref.replace(" ", "")
        found = [f for f in functions if signature(f) == wanted]
    else:
        found = [f for f in functions if f.get("name") == ref]
    if not found:
        known = ", ".join(sorted({signature(f) for f in functions})) or "none"
        raise BadArgument(f"no function {ref!r} in the ABI (functions: {known})",
                          code="unknown_function")
    fitting = [f for f in found if len(f.get("inputs", [])) == nargs]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        sigs = ", ".join(signature(f) for f in found)
        raise BadArgument(f"{ref} takes other arguments than the {nargs} given ({sigs})")
    raise BadArgument(f"{ref} is overloaded: name it by signature "
                      f"({', '.join(signature(f) for f in fitting)})", code="unknown_function")


def constructor(abi: list[dict[str, Any]]) -> dict[str, Any]:
    """The constructor's ABI entry (an empty one when the contract declares none)."""
    return next((e for e in abi if e.get("type") == "constructor"),
                {"type": "constructor", "inputs": []})


def coerce_args(entry: dict[str, Any], args: list[str]) -> list[Any]:
    """Convert ``args`` (text) to the Python values ``entry``'s parameters take."""
    params = entry.get("inputs", [])
    if len(params) != len(args):
        raise BadArgument(f"{signature(entry)} takes {len(params)} argument(s), "
                          f"{len(args)} given")
    return [_coerce(p, a, p.get("name") or f"#{i + 1}") for i, (p, a) in
            enumerate(zip(params, args, strict=True))]


def _coerce(param: dict[str, Any], raw: Any, name: str) -> Any:
    t: str = param["type"]
    if t.endswith("]") or t.startswith("tuple"):
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise BadArgument(f"argument {name} ({t}) is not JSON: {raw!r}") from exc
        if not isinstance(value, list):
            raise BadArgument(f"argument {name} ({t}) must be a JSON list")
        if t.endswith("]"):
            inner = {**param, "type": t[: t.rindex("[")]}
            return [_coerce(inner, v, f"{name}[{i}]") for i, v in enumerate(value)]
        comps = param.get("components", [])
        if len(comps) != len(value):
            raise BadArgument(f"argument {name} is a tuple of {len(comps)}")
        return tuple(_coerce(c, v, f"{name}.{c.get('name', i)}")
                     for i, (c, v) in enumerate(zip(comps, value, strict=True)))
    text = raw if isinstance(raw, str) else json.dumps(raw)
    m = _INT.match(t)
    if m:
        try:
            value = int(text.replace("_", ""), 0)
        except ValueError as exc:
            raise BadArgument(f"argument {name} ({t}) is not an integer: {text!r}") from exc
        bits = int(m.group(2) or 256)
        lo, hi = (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not lo <= value <= hi:
            raise BadArgument(f"argument {name} ({t}) out of range: {value}")
        return value
    if t == "address":
        if not is_address(text):
            raise BadArgument(f"argument {name} (address) is not an address: {text!r}")
        return to_checksum_address(text)
    if t == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise BadArgument(f"argument {name} (bool) must be true or false: {text!r}")
        return text.lower() in ("true", "1")
    if t == "string":
        return text
    if t == "bytes" or _BYTES.match(t):
        try:
            data = bytes.fromhex(text.removeprefix("0x"))
        except ValueError as exc:
            raise BadArgument(f"argument {name} ({t}) is not 0x-hex: {text!r}") from exc
        b = _BYTES.match(t)
        if b and len(data) != int(b.group(1)):
            raise BadArgument(f"argument {name} ({t}) must be {b.group(1)} bytes")
        return data
    raise BadArgument(f"argument {name}: unsupported ABI type {t}")


def jsonable(value: Any) -> Any:
    """A decoded ABI value as JSON can carry it (bytes as 0x-hex, tuples as lists)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value
