"""Text to ABI values, function choice, artifacts and key files: no node, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consortia.sdk import evm
from consortia.sdk.evm.abi import coerce_args, find_function, jsonable, signature
from consortia.sdk.evm.client import revert_reason

ABI = [
    {"type": "function", "name": "transfer", "inputs": [
        {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]},
    {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "int8"}]},
    {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "bytes32"},
                                                 {"name": "b", "type": "bool"}]},
    {"type": "function", "name": "g", "inputs": [
        {"name": "xs", "type": "uint16[]"}, {"name": "t", "type": "tuple", "components": [
            {"name": "s", "type": "string"}, {"name": "b", "type": "bytes"}]}]},
]
ADDR = "0x000000000000000000000000000000000000dead"


def test_arguments_convert_by_type() -> None:
    t = find_function(ABI, "transfer", 2)
    assert coerce_args(t, [ADDR, "1_000"]) == ["0x000000000000000000000000000000000000dEaD",
                                               1000]
    assert coerce_args(t, [ADDR, "0x10"])[1] == 16
    g = find_function(ABI, "g", 2)
    assert coerce_args(g, ["[1,2]", '["hi", "0x0102"]']) == [[1, 2], ("hi", b"\x01\x02")]
    f2 = find_function(ABI, "f(bytes32,bool)", 2)
    assert coerce_args(f2, ["0x" + "ab" * 32, "true"]) == [b"\xab" * 32, True]
    assert signature(g) == "g(uint16[],(string,bytes))"


@pytest.mark.parametrize(("ref", "args", "code", "needle"), [
    ("transfer", ["nope", "1"], "bad_argument", "to (address)"),
    ("transfer", [ADDR, "-1"], "bad_argument", "out of range"),
    ("transfer", [ADDR, str(2**256)], "bad_argument", "out of range"),
    ("transfer", [ADDR, "1.5"], "bad_argument", "not an integer"),
    ("transfer", [ADDR], "bad_argument", "other arguments"),
    ("f", ["128"], "bad_argument", "out of range"),
    ("f(bytes32,bool)", ["0xab", "true"], "bad_argument", "32 bytes"),
    ("f(bytes32,bool)", ["0x" + "00" * 32, "yes"], "bad_argument", "true or false"),
    ("g", ["[1,", '["a","0x"]'], "bad_argument", "not JSON"),
    ("mint", [ADDR], "unknown_function", "no function"),
])
def test_bad_arguments_are_named(ref: str, args: list[str], code: str, needle: str) -> None:
    with pytest.raises(evm.BadArgument) as info:
        coerce_args(find_function(ABI, ref, len(args)), args)
    assert info.value.code == code and needle in info.value.message


def test_overloads_resolve_by_count_or_signature() -> None:
    assert find_function(ABI, "f", 1)["inputs"][0]["type"] == "int8"
    assert len(find_function(ABI, "f", 2)["inputs"]) == 2
    assert coerce_args(find_function(ABI, "f", 1), ["-128"]) == [-128]


def test_jsonable() -> None:
    assert jsonable({"a": (b"\x01", [b"\x02"])}) == {"a": ["0x01", ["0x02"]]}


def test_revert_reason_decoded_from_error_data() -> None:
    data = ("0x08c379a0" + "20".rjust(64, "0") + "14".rjust(64, "0")
            + b"insufficient balance".hex().ljust(64, "0"))

    class Fake(Exception):  # the shape web3 gives an RPC error; only data matters here
        def __init__(self) -> None:
            self.rpc_response = {"error": {"message": "whatever a node says", "data": data}}

    assert revert_reason(Fake()) == "insufficient balance"
    assert revert_reason(ValueError("no data")) is None


def test_artifact_validation(tmp_path: Path) -> None:
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"_format": "hh-sol-artifact-1", "abi": []}))
    with pytest.raises(evm.BadArgument) as info:
        evm.Artifact.load(bad)
    assert info.value.code == "bad_artifact"
    assert evm.load_abi(bad) == []  # a foreign artifact still gives its ABI
    (tmp_path / "n.json").write_text("{not json")
    with pytest.raises(evm.BadArgument):
        evm.load_abi(tmp_path / "n.json")


def test_key_file_roundtrip_and_wrong_password(tmp_path: Path) -> None:
    made = evm.import_key(tmp_path, "0x" + "11" * 32, "pw")
    assert made.path.stat().st_mode & 0o777 == 0o600
    assert "11" * 32 not in made.path.read_text()
    assert [k.address for k in evm.list_keys(tmp_path)] == [made.address]
    assert evm.resolve_key(made.address[2:10], tmp_path) == made.path
    assert evm.load_key(made.path, "pw").address == made.address
    with pytest.raises(evm.KeyFileError) as info:
        evm.load_key(made.path, "not it")
    assert info.value.code == "wrong_password"
    with pytest.raises(evm.KeyFileError) as info:
        evm.new_key(tmp_path, "")
    assert info.value.code == "no_password"
    with pytest.raises(evm.KeyFileError):
        evm.resolve_key("0xffff", tmp_path)
