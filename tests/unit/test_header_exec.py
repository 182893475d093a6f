"""Header version 3 (``exec_hash``, ADR 0026): quorum chains certify their Ethereum block
hash; a header without it keeps version 2's bytes so notary chains are unchanged."""

from __future__ import annotations

import pytest

from consortia.types.block import Header
from consortia.types.codec import decode, encode
from consortia.types.errors import Malformed, TooLarge
from consortia.types.tx import TxType

BASE = Header("dev", 7, bytes(32), bytes(32), bytes(32), 0, 5, "v0", 0, bytes(32))


def test_empty_exec_hash_encodes_as_version_2() -> None:
    data = BASE.encode()
    assert decode(data)[0] == 2
    assert len(decode(data)) == 12
    assert Header.decode(data) == BASE


def test_exec_hash_encodes_as_version_3_and_round_trips() -> None:
    h = Header(**{**{f: getattr(BASE, f) for f in BASE.__slots__}, "exec_hash": b"\xab" * 32})
    data = h.encode()
    fields = decode(data)
    assert fields[0] == 3 and len(fields) == 13 and fields[12] == b"\xab" * 32
    assert fields[1:12] == decode(BASE.encode())[1:]
    back = Header.decode(data)
    assert back == h and back.encode() == data
    assert h.encode() != BASE.encode()


@pytest.mark.parametrize("exec_hash", [b"", b"\x01" * 31, b"\x01" * 33, "x", 5])
def test_version_3_needs_exactly_32_bytes(exec_hash: object) -> None:
    fields = decode(BASE.encode())
    fields[0] = 3
    with pytest.raises((Malformed, TooLarge)):
        Header.decode(encode([*fields, exec_hash]))


def test_version_and_length_must_agree() -> None:
    fields = decode(BASE.encode())
    with pytest.raises(Malformed):
        Header.decode(encode([3, *fields[1:]]))          # version 3 without exec_hash
    with pytest.raises(Malformed):
        Header.decode(encode([*fields, b"\x01" * 32]))   # version 2 with one
    for version in (1, 4, True, "3"):
        with pytest.raises(Malformed):
            Header.decode(encode([version, *fields[1:]]))


def test_evm_tx_type_is_neither_config_nor_notary() -> None:
    assert TxType.EVM == 20
    assert not TxType.EVM.is_config and not TxType.EVM.is_notary
