"""Compile Solidity (solc-js, from npm) and Vyper (from PyPI) into :class:`Artifact` s.

Solidity goes through solc-js's standard-JSON interface in a ``node`` process
(``npm/compile.js``; imports resolve inside the source's directory and the ``--include``
directories only). Vyper compiles in-process with the ``vyper`` package. Both report errors
as :class:`Diagnostic` s with file, line and column; warnings come back beside the artifacts.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia.sdk.evm._errors import CompileError, Diagnostic, ToolError
from consortia.sdk.evm.artifact import Artifact
from consortia.sdk.evm.tools import Progress, ensure_tools

DEFAULT_EVM_VERSION = "shanghai"
"""ganache's newest fork and supported by Hardhat and py-evm: bytecode that runs on all."""
COMPILE_TIMEOUT = 180.0
"""Seconds a solc-js run may take (solc-js is solc in WebAssembly: seconds, not minutes)."""


@dataclass(frozen=True)
class Compiled:
    """A compilation's result: one artifact per contract of the source file, and warnings."""

    artifacts: tuple[Artifact, ...]
    warnings: tuple[Diagnostic, ...]


def compile_file(path: Path, *, evm_version: str = DEFAULT_EVM_VERSION, optimize: bool = True,
                 include: tuple[Path, ...] = (), progress: Progress | None = None) -> Compiled:
    """Compile ``path`` by its suffix (``.sol`` or ``.vy``); :class:`CompileError` if it
    does not compile, ``unsupported_source`` for any other suffix."""
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(f"cannot read {path}: {exc}", code="unsupported_source") from exc
    if path.suffix == ".sol":
        return compile_solidity(path, source, evm_version=evm_version, optimize=optimize,
                                include=include, progress=progress)
    if path.suffix == ".vy":
        return compile_vyper(path, source, evm_version=evm_version, optimize=optimize)
    raise CompileError(f"{path}: not a .sol or .vy file", code="unsupported_source")


def _sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


# --- Solidity ------------------------------------------------------------------------------


def compile_solidity(path: Path, source: str, *, evm_version: str = DEFAULT_EVM_VERSION,
                     optimize: bool = True, include: tuple[Path, ...] = (),
                     progress: Progress | None = None) -> Compiled:
    tools = ensure_tools(progress)
    name = path.name
    request = {
        "language": "Solidity",
        "sources": {name: {"content": source}},
        "settings": {
            "evmVersion": evm_version,
            "optimizer": {"enabled": optimize, "runs": 200},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                            "evm.deployedBytecode.object", "metadata"]}},
        },
    }
    bases = [str(path.parent.resolve()), *(str(p.resolve()) for p in include)]
    if progress:
        progress(f"compiling {name} with solc-js")
    try:
        run = subprocess.run([tools.node, str(tools.compile_js), *bases],
                             input=json.dumps(request), capture_output=True, text=True,
                             timeout=COMPILE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"solc-js did not finish in {COMPILE_TIMEOUT:.0f} s") from exc
    if run.returncode != 0:
        raise ToolError(f"solc-js failed (exit {run.returncode}): {run.stderr.strip()[-2000:]}")
    reply = json.loads(run.stdout)
    version: str = reply["solcVersion"]
    out: dict[str, Any] = reply["output"]
    diags = tuple(_solc_diagnostic(e, path.parent, include) for e in out.get("errors", []))
    errors = tuple(d for d in diags if d.severity == "error")
    if errors:
        raise CompileError(f"{name} does not compile: {len(errors)} error(s)\n"
                           + "\n".join(map(str, errors)), errors)
    artifacts = []
    for cname, c in out.get("contracts", {}).get(name, {}).items():
        artifacts.append(Artifact(
            contract_name=cname, source_name=name, language="Solidity",
            compiler=f"solc-js {version}", evm_version=evm_version, abi=c["abi"],
            bytecode="0x" + c["evm"]["bytecode"]["object"],
            deployed_bytecode="0x" + c["evm"]["deployedBytecode"]["object"],
            metadata=c["metadata"], source_sha256=_sha256(source)))
    return Compiled(tuple(artifacts), tuple(d for d in diags if d.severity != "error"))


def _solc_diagnostic(err: dict[str, Any], base: Path, include: tuple[Path, ...]) -> Diagnostic:
    severity = "error" if err.get("severity") == "error" else "warning"
    message = f"{err.get('type', 'Error')}: {err.get('message', '')}"
    loc = err.get("sourceLocation")
    if not loc:
        return Diagnostic(severity, "<input>", 0, 0, message)
    file = loc.get("file", "<input>")
    line = column = 0
    for root in (base, *include):  # solc gives byte offsets: count lines in the file itself
        candidate = root / file
        if candidate.is_file() and loc.get("start", -1) >= 0:
            head = candidate.read_bytes()[: loc["start"]]
            line = head.count(b"\n") + 1
            column = len(head) - (head.rfind(b"\n") + 1) + 1
            break
    return Diagnostic(severity, file, line, column, message)


# --- Vyper ---------------------------------------------------------------------------------


def compile_vyper(path: Path, source: str, *, evm_version: str = DEFAULT_EVM_VERSION,
                  optimize: bool = True) -> Compiled:
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import OptimizationLevel, Settings
    from vyper.exceptions import VyperException

    settings = Settings(evm_version=evm_version,
                        optimize=OptimizationLevel.GAS if optimize else OptimizationLevel.NONE)
    try:
        out = vyper.compile_code(
            source, contract_path=path.name, settings=settings,
            input_bundle=FilesystemInputBundle([path.parent.resolve()]),
            output_formats=["abi", "bytecode", "bytecode_runtime", "integrity"])
    except VyperException as exc:
        node = (exc.annotations or [None])[0]
        line = exc.lineno or getattr(node, "lineno", 0) or 0
        column = (exc.col_offset if exc.col_offset is not None
                  else getattr(node, "col_offset", -1)) + 1
        diag = Diagnostic("error", path.name, line, max(column, 0),
                          f"{type(exc).__name__}: {exc.message}")
        raise CompileError(f"{path.name} does not compile:\n{diag}", (diag,)) from exc
    version = vyper.__version__
    metadata = json.dumps({"compiler": f"vyper {version}", "integrity": out["integrity"],
                           "evmVersion": evm_version, "optimize": optimize})
    return Compiled((Artifact(
        contract_name=path.stem, source_name=path.name, language="Vyper",
        compiler=f"vyper {version}", evm_version=evm_version, abi=list(out["abi"]),
        bytecode=out["bytecode"], deployed_bytecode=out["bytecode_runtime"],
        metadata=metadata, source_sha256=_sha256(source)),), ())
