"""Decoding raw Ethereum transactions: each type, the EIP-155 vector, each refusal's code."""

from __future__ import annotations

import pytest
import rlp
from eth_utils.crypto import keccak

from consortia.execution.evm import CODES, EvmTxError, decode_transaction
from consortia.execution.evm.transactions import MAX_TX_BYTES
from tests.unit.evm_helpers import ADDR, CHAIN_ID, sign

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# EIP-155's own example (github.com/ethereum/EIPs, EIP-155 "Example"): chain id 1.
EIP155_RAW = bytes.fromhex(
    "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
    "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d899"
    "7f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")


def test_eip155_vector() -> None:
    tx = decode_transaction(EIP155_RAW, 1)
    assert tx.sender.hex() == "9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"
    assert (tx.type, tx.nonce, tx.gas, tx.value, tx.chain_id) == (0, 9, 21000, 10**18, 1)
    assert tx.to == bytes.fromhex("35" * 20)
    assert tx.hash == keccak(EIP155_RAW)


@pytest.mark.parametrize("tx_type", [0, 1, 2])
def test_each_type_decodes_with_sender_and_hash(tx_type: int) -> None:
    raw = sign(1, 4, ADDR[2], b"\x01\x02", value=9, gas=30_000, tx_type=tx_type)
    tx = decode_transaction(raw, CHAIN_ID)
    assert (tx.type, tx.sender, tx.nonce, tx.to, tx.value, tx.data) == (
        tx_type, ADDR[1], 4, ADDR[2], 9, b"\x01\x02")
    assert tx.hash == keccak(raw) and tx.raw == raw
    assert tx.intrinsic_gas == 21_000 + 2 * 16


def _code(raw: bytes, **kw: int) -> str:
    with pytest.raises(EvmTxError) as err:
        decode_transaction(raw, CHAIN_ID, **kw)
    assert err.value.message.startswith(CODES[err.value.code])
    return err.value.code


def test_refusals_each_have_their_code() -> None:
    good = sign(0, 0, ADDR[1], gas=21_000)
    assert _code(b"") == "malformed"
    assert _code(b"\xc3\x01\x02\x03") == "malformed"
    assert _code(b"\x02\xc0") == "malformed"
    assert _code(b"\x03" + good[1:]) == "tx_type_not_supported"
    assert _code(b"\x04" + good[1:]) == "tx_type_not_supported"
    assert _code(b"\xc0" + b"\x00" * MAX_TX_BYTES) == "oversized_data"
    assert _code(sign(0, 0, ADDR[1], chain_id=5)) == "invalid_chain_id"
    assert _code(EIP155_RAW) == "invalid_chain_id"
    assert _code(sign(0, 0, ADDR[1], gas=20_999)) == "intrinsic_gas_too_low"
    assert _code(sign(0, 0, ADDR[1], gas=50_000), block_gas_limit=40_000) == \
        "exceeds_block_gas_limit"


def test_unprotected_legacy_is_refused() -> None:
    fields = rlp.decode(EIP155_RAW)
    fields[6] = b"\x1b"  # v = 27: pre-EIP-155 signature
    assert _code(rlp.encode(fields)) == "replay_unprotected"


def test_bad_signature_is_invalid_sender() -> None:
    fields = rlp.decode(sign(0, 0, ADDR[1], gas=21_000, tx_type=0))
    high_s = SECP256K1_N - int.from_bytes(fields[8], "big")  # the malleated twin (EIP-2)
    fields[8] = high_s.to_bytes(32, "big")
    assert _code(rlp.encode(fields)) == "invalid_sender"
    fields[7], fields[8] = b"", b"\x01"  # r = 0: no public key recovers
    assert _code(rlp.encode(fields)) == "invalid_sender"


def test_error_codes_are_distinct_and_named_as_geth() -> None:
    assert len(set(CODES.values())) == len(CODES)
    with pytest.raises(ValueError):
        EvmTxError("no_such_code")
    assert EvmTxError("nonce_too_low", "x").message == "nonce too low: x"


def test_a_decoded_transaction_is_remembered_and_a_refused_one_is_not() -> None:
    from consortia.execution.evm.transactions import _decode
    raw = sign(0, 7, ADDR[1], gas=21_000, tx_type=2)
    first = decode_transaction(raw, CHAIN_ID)
    assert decode_transaction(bytearray(raw), CHAIN_ID) is first  # bytes-like alike
    with pytest.raises(EvmTxError) as exc:  # the cached tx still meets the gas limit check
        decode_transaction(raw, CHAIN_ID, block_gas_limit=20_000)
    assert exc.value.code == "exceeds_block_gas_limit"
    before = _decode.cache_info().currsize
    for _ in range(3):
        assert _code(raw[:-1]) in ("malformed", "invalid_sender")
    assert _decode.cache_info().currsize == before


def test_the_process_hashes_with_the_c_keccak_and_the_same_digests() -> None:
    import os

    from Crypto.Hash import keccak as pycryptodome_keccak

    from consortia.execution.evm import KECCAK_BACKEND
    assert KECCAK_BACKEND == "pysha3" or os.environ.get("ETH_HASH_BACKEND")
    for n in (0, 1, 32, 135, 136, 137, 4096):
        data = os.urandom(n)
        assert keccak(data) == pycryptodome_keccak.new(digest_bits=256, data=data).digest()
