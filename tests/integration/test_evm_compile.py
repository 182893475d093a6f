"""Compiling with the real compilers: solc-js from the pinned npm set, vyper from PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from consortia.sdk import evm
from tests.evm_helpers import EXAMPLES, REQUIRE_ENV, require_tools


def test_token_compiles_to_a_complete_artifact(evm_tools: evm.Tools, tmp_path: Path) -> None:
    result = evm.compile_file(EXAMPLES / "Token.sol")
    assert [a.contract_name for a in result.artifacts] == ["Token"]
    token = result.artifacts[0]
    assert token.language == "Solidity" and token.compiler.startswith("solc-js 0.8.30")
    assert token.evm_version == "shanghai"
    names = {e.get("name") for e in token.abi}
    assert {"transfer", "approve", "transferFrom", "balanceOf", "Transfer",
            "Approval"} <= names
    assert len(token.bytecode) > len(token.deployed_bytecode) > 1000
    assert json.loads(token.metadata)["language"] == "Solidity"
    # The runtime code carries the function selectors of the ABI.
    assert Web3.keccak(text="transfer(address,uint256)")[:4].hex() in token.deployed_bytecode
    path = token.save(tmp_path)
    assert evm.Artifact.load(path) == token
    assert evm.load_abi(path) == token.abi


def test_vyper_example_compiles(tmp_path: Path) -> None:
    (counter,) = evm.compile_file(EXAMPLES / "Counter.vy").artifacts
    assert counter.language == "Vyper" and counter.compiler.startswith("vyper 0.4")
    assert {e.get("name") for e in counter.abi} >= {"increment", "value", "Incremented"}
    assert counter.bytecode.startswith("0x") and len(counter.deployed_bytecode) > 100


def test_solidity_error_names_file_line_and_column(evm_tools: evm.Tools, tmp_path: Path) -> None:
    bad = tmp_path / "Bad.sol"
    bad.write_text("pragma solidity ^0.8.0;\ncontract Bad {\n"
                   "    function f() public { undeclared = 1; }\n}\n")
    with pytest.raises(evm.CompileError) as info:
        evm.compile_file(bad)
    assert info.value.code == "compile_failed"
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.column, d.severity) == ("Bad.sol", 3, 27, "error")
    assert "Undeclared identifier" in d.message


def test_solidity_imports_stay_inside_the_source_directory(evm_tools: evm.Tools,
                                                           tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Base.sol").write_text(
        "pragma solidity ^0.8.0;\ncontract Base { uint256 public x = 7; }\n")
    (tmp_path / "Child.sol").write_text(
        'pragma solidity ^0.8.0;\nimport "lib/Base.sol";\ncontract Child is Base {}\n')
    (child,) = evm.compile_file(tmp_path / "Child.sol").artifacts
    assert any(e.get("name") == "x" for e in child.abi)
    (tmp_path / "Escape.sol").write_text(
        'pragma solidity ^0.8.0;\nimport "../../etc/passwd";\ncontract E {}\n')
    with pytest.raises(evm.CompileError) as info:
        evm.compile_file(tmp_path / "Escape.sol")
    assert "not found" in str(info.value.diagnostics[0])


def test_vyper_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vy"
    bad.write_text("x: uint256\n\n@external\ndef f():\n    self.y = 1\n")
    with pytest.raises(evm.CompileError) as info:
        evm.compile_file(bad)
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.column) == ("bad.vy", 5, 5)
    assert "UndeclaredDefinition" in d.message


def test_other_suffix_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(evm.CompileError) as info:
        evm.compile_file(tmp_path / "x.txt")
    assert info.value.code == "unsupported_source"


def test_missing_node_fails_under_require_node(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Without Node.js on PATH and no installed set, the SDK says node_missing, and the
    test helper fails (not skips) when CONSORTIA_REQUIRE_NODE is set."""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no node, no npm
    monkeypatch.setenv("CONSORTIA_EVM_TOOLS", str(tmp_path / "tools"))
    with pytest.raises(evm.ToolError) as info:
        evm.ensure_tools()
    assert info.value.code == "node_missing"
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="required"):
        require_tools()
    monkeypatch.delenv(REQUIRE_ENV)
    with pytest.raises(pytest.skip.Exception):
        require_tools()
