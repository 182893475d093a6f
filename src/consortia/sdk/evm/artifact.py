"""The artifact: one compiled contract as one JSON file, whatever the source language.

Modelled on Hardhat's ``hh-sol-artifact-1`` (same field names where they overlap, so tools
that read those read ours), plus the compiler, settings and the source's hash, so that an
artifact says what produced it. Specified in docs/contracts.md ("Artifact format").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortia.sdk.evm._errors import BadArgument

FORMAT = "consortia-evm-artifact-1"
_HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: what a deploy, call or send needs, and where it came from."""

    contract_name: str
    source_name: str
    """The source file's name, as given to the compiler (relative to its directory)."""
    language: str
    """``Solidity`` or ``Vyper``."""
    compiler: str
    """``solc-js <version>`` or ``vyper <version>``."""
    evm_version: str
    """The EVM version the bytecode targets (``shanghai`` by default: ganache's newest)."""
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation code, ``0x``-hex; ``0x`` for an interface or abstract contract."""
    deployed_bytecode: str
    """Runtime code, ``0x``-hex (what ``eth_getCode`` returns once deployed)."""
    metadata: str
    """The compiler's metadata JSON (Solidity's metadata; Vyper's integrity and settings)."""
    source_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"_format": FORMAT, "contractName": self.contract_name,
                "sourceName": self.source_name, "language": self.language,
                "compiler": self.compiler, "evmVersion": self.evm_version, "abi": self.abi,
                "bytecode": self.bytecode, "deployedBytecode": self.deployed_bytecode,
                "metadata": self.metadata, "sourceSha256": self.source_sha256}

    @classmethod
    def from_json(cls, doc: Any) -> Artifact:
        """Validate a parsed artifact; :class:`BadArgument` ``bad_artifact`` says what is
        wrong."""
        if not isinstance(doc, dict) or doc.get("_format") != FORMAT:
            raise BadArgument(f"not a Consortia artifact (expected _format {FORMAT!r})",
                              code="bad_artifact")
        text = ("contractName", "sourceName", "language", "compiler", "evmVersion",
                "bytecode", "deployedBytecode", "metadata", "sourceSha256")
        for key in text:
            if not isinstance(doc.get(key), str):
                raise BadArgument(f"artifact field {key!r} missing or not a string",
                                  code="bad_artifact")
        for key in ("bytecode", "deployedBytecode"):
            if not _HEX.match(doc[key]):
                raise BadArgument(f"artifact field {key!r} is not 0x-hex", code="bad_artifact")
        abi = doc.get("abi")
        if not isinstance(abi, list) or not all(isinstance(e, dict) for e in abi):
            raise BadArgument("artifact field 'abi' is not a list of objects",
                              code="bad_artifact")
        return cls(doc["contractName"], doc["sourceName"], doc["language"], doc["compiler"],
                   doc["evmVersion"], abi, doc["bytecode"], doc["deployedBytecode"],
                   doc["metadata"], doc["sourceSha256"])

    def save(self, out_dir: Path) -> Path:
        """Write ``<out_dir>/<contractName>.json`` and return its path."""
        if not _NAME.match(self.contract_name):
            raise BadArgument(f"contract name {self.contract_name!r} is not an identifier",
                              code="bad_artifact")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.contract_name}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Artifact:
        return cls.from_json(_read_json(path))


def load_abi(path: Path) -> list[dict[str, Any]]:
    """An ABI from an artifact, a Hardhat/Truffle artifact or a bare ABI JSON list."""
    doc = _read_json(path)
    abi = doc.get("abi") if isinstance(doc, dict) else doc
    if not isinstance(abi, list) or not all(isinstance(e, dict) for e in abi):
        raise BadArgument(f"{path}: no ABI (a JSON list, or an object with 'abi')",
                          code="bad_artifact")
    return abi


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise BadArgument(f"cannot read {path}: {exc.strerror}", code="bad_artifact") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadArgument(f"{path} is not JSON: {exc}", code="bad_artifact") from exc
