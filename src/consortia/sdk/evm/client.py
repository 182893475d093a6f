"""Deploy, call and send over Ethereum JSON-RPC with web3.py, signing locally.

Any node that speaks standard Ethereum JSON-RPC works: a Consortia quorum node, Hardhat's
node, ganache, geth. Transactions are signed here with the caller's key (legacy EIP-155
transactions at the node's ``eth_gasPrice``, which is 0 on a gas-price-free network) and
sent with ``eth_sendRawTransaction``; nothing needs an unlocked account on the node.

Before sending, the gas is estimated: a transaction that would revert is refused with the
revert reason (:class:`TransactionReverted`, nothing sent).

With ``private_for`` (base64 public keys of transaction managers), ``deploy`` and ``send``
make a private transaction the GoQuorum way (ADR 0027, docs/spec/json-rpc.md): the data
(creation code or call data) is stored in the node's manager (``consortia_storeRaw``), the
signed transaction carries its 64-byte hash instead, and
``eth_sendRawPrivateTransaction(raw, {privateFor})`` has the payload delivered to those
managers before the node submits it. The gas is estimated on the real data (the node reads
its private state for a private contract); the receipt is the node's private receipt, with
the contract address and logs only participants see. A mined transaction that failed
anyway is replayed with ``eth_call`` to recover its reason. Every request has a timeout.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.providers.rpc import HTTPProvider

from consortia.sdk.evm._errors import BadArgument, RpcError, TransactionReverted
from consortia.sdk.evm.abi import (
    coerce_args,
    constructor,
    find_function,
    jsonable,
    signature,
)
from consortia.sdk.evm.artifact import Artifact

RPC_TIMEOUT = 30.0
RECEIPT_TIMEOUT = 120.0
GAS_MARGIN = 1.2
"""Gas limit = estimate x this (the estimate is exact for the state it ran on, which may
change before the transaction is mined)."""
MAX_PRIVATE_FOR = 64
"""Most recipients a node takes for one private transaction (``privateFor``)."""


@dataclass(frozen=True)
class DecodedLog:
    """A receipt log, decoded by the ABI when an event of it matches."""

    address: str
    event: str | None
    """The event's name; ``None`` when no ABI event matches (``args`` then holds topics
    and data)."""
    args: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A mined transaction as the receipt tells it."""

    tx_hash: str
    status: int
    """1 success, 0 reverted."""
    block_number: int
    gas_used: int
    contract_address: str | None
    logs: tuple[DecodedLog, ...] = field(default=())
    revert_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "status": self.status,
                "block_number": self.block_number, "gas_used": self.gas_used,
                "contract_address": self.contract_address, "revert_reason": self.revert_reason,
                "logs": [{"address": lg.address, "event": lg.event, "args": jsonable(lg.args)}
                         for lg in self.logs]}


def private_keys(keys: Sequence[str]) -> list[str]:
    """``keys`` checked as ``privateFor`` values: 1 to 64 distinct base64 32-byte public
    keys; :class:`BadArgument` (``bad_private_for``) otherwise, before anything is sent."""
    if not 1 <= len(keys) <= MAX_PRIVATE_FOR:
        raise BadArgument(f"a private transaction names 1 to {MAX_PRIVATE_FOR} recipient "
                          f"keys (got {len(keys)})", code="bad_private_for")
    for key in keys:
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise BadArgument(f"not a transaction manager public key (base64 of 32 bytes): "
                              f"{key!r}", code="bad_private_for")
    if len(set(keys)) != len(keys):
        raise BadArgument("a recipient key is named twice", code="bad_private_for")
    return list(keys)


def _address(text: str) -> ChecksumAddress:
    if not is_address(text):
        raise BadArgument(f"not an address: {text!r}")
    return to_checksum_address(text)


_ERROR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def _revert_data(exc: Exception) -> bytes | None:
    """The revert data an RPC error carries (nodes put it in different places)."""
    candidates: list[Any] = [getattr(exc, "data", None)]
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        candidates.append(response["error"].get("data"))
    for found in candidates:
        c = found.get("data") if isinstance(found, dict) else found
        if isinstance(c, str) and c.startswith("0x"):
            try:
                return bytes.fromhex(c[2:])
            except ValueError:
                continue
    return None


def revert_reason(exc: Exception) -> str | None:
    """The revert reason in an RPC error, ``None`` when it is not a revert.

    Decoded from the revert data (``Error(string)``, ``Panic(uint256)``) when the node sends
    it, as Hardhat, ganache and geth do; otherwise taken from the message.
    """
    data = _revert_data(exc)
    if data is not None and data[:4] == _ERROR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except (ValueError, TypeError, DecodingError):
            pass
    if data is not None and data[:4] == _PANIC and len(data) >= 36:
        return f"panic 0x{int.from_bytes(data[4:36], 'big'):02x}"
    if isinstance(exc, ContractLogicError):
        text = str(exc.message or exc).removeprefix("execution reverted").lstrip(": ")
        for prefix in ("Error: ", "VM Exception while processing transaction: ",
                       "reverted with reason string ", "revert "):
            text = text.removeprefix(prefix)
        return text.strip("'")
    if data is not None:
        return f"custom error 0x{data.hex()}" if data else ""
    return None


class EvmClient:
    """One JSON-RPC endpoint. ``with EvmClient(url) as c: c.deploy(...)``."""

    def __init__(self, url: str, *, timeout: float = RPC_TIMEOUT) -> None:
        self.url = url
        self._session = requests.Session()
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout},
                                    session=self._session, exception_retry_configuration=None))
        self._chain_id: int | None = None

    def __enter__(self) -> EvmClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def _rpc(self, what: str, fn: Any, *args: Any) -> Any:
        """Call ``fn`` turning transport and RPC failures into :class:`RpcError`."""
        try:
            return fn(*args)
        except requests.RequestException as exc:
            raise RpcError(f"cannot reach {self.url} ({what}): {exc.__class__.__name__}",
                           code="rpc_unreachable") from exc
        except (Web3Exception, ValueError) as exc:
            reason = revert_reason(exc)
            if reason is not None:
                raise TransactionReverted(reason) from exc
            raise RpcError(f"{what} failed at {self.url}: {exc}") from exc

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._rpc("eth_chainId", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def balance(self, address: str) -> int:
        return int(self._rpc("eth_getBalance", self.w3.eth.get_balance, _address(address)))

    # --- the three operations ------------------------------------------------------------

    def deploy(self, artifact: Artifact, args: list[str], account: LocalAccount, *,
               gas: int | None = None, receipt_timeout: float = RECEIPT_TIMEOUT,
               private_for: Sequence[str] | None = None) -> Outcome:
        """Deploy ``artifact`` with constructor ``args`` (text, converted by the ABI);
        with ``private_for``, privately for those managers' organizations and the
        sender's own."""
        keys = None if private_for is None else private_keys(private_for)
        if artifact.bytecode in ("", "0x"):
            raise BadArgument(f"{artifact.contract_name} has no bytecode (an interface or "
                              "abstract contract)", code="bad_artifact")
        values = coerce_args(constructor(artifact.abi), args)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = self._rpc("build", lambda: factory.constructor(*values).build_transaction(
            self._base(account, gas)))
        return self._submit(tx, account, artifact.abi, receipt_timeout, gas is None, keys)

    def call(self, address: str, abi: list[dict[str, Any]], function: str, args: list[str], *,
             sender: str | None = None) -> Any:
        """Run a function with ``eth_call`` (no transaction); the decoded result, a single
        value for one output, a list for several."""
        entry = find_function(abi, function, len(args))
        values = coerce_args(entry, args)
        contract = self.w3.eth.contract(address=_address(address), abi=[entry])
        fn = contract.get_function_by_signature(signature(entry))(*values)
        opts = {"from": _address(sender)} if sender else {}
        return self._rpc("eth_call", lambda: fn.call(opts))

    def send(self, address: str, abi: list[dict[str, Any]], function: str, args: list[str],
             account: LocalAccount, *, value: int = 0, gas: int | None = None,
             receipt_timeout: float = RECEIPT_TIMEOUT,
             private_for: Sequence[str] | None = None) -> Outcome:
        """Send a transaction calling ``function``; wait for its receipt. With
        ``private_for``, a private transaction (``value`` must be 0: a private transaction
        moves no public ether)."""
        keys = None if private_for is None else private_keys(private_for)
        if keys is not None and value:
            raise BadArgument("a private transaction carries no value", code="bad_argument")
        entry = find_function(abi, function, len(args))
        values = coerce_args(entry, args)
        contract = self.w3.eth.contract(address=_address(address), abi=abi)
        fn = contract.get_function_by_signature(signature(entry))(*values)
        tx = self._rpc("build", lambda: fn.build_transaction(
            {**self._base(account, gas), "value": value}))
        return self._submit(tx, account, abi, receipt_timeout, gas is None, keys)

    # --- private transactions ------------------------------------------------------------

    def store_raw(self, payload: bytes) -> bytes:
        """Store ``payload`` in the node's transaction manager; its 64-byte hash (what the
        signed transaction's data must be)."""
        found = self._rpc("consortia_storeRaw", self.w3.manager.request_blocking,
                          "consortia_storeRaw", ["0x" + payload.hex()])
        digest = bytes(HexBytes(found))
        if len(digest) != 64:
            raise RpcError(f"consortia_storeRaw at {self.url} answered {len(digest)} bytes, "
                           "not a 64-byte payload hash")
        return digest

    def send_raw_private(self, raw: bytes, private_for: Sequence[str]) -> bytes:
        """Send a signed transaction whose data is a stored payload's hash, the payload
        delivered to ``private_for`` first; the transaction hash."""
        found = self._rpc("eth_sendRawPrivateTransaction", self.w3.manager.request_blocking,
                          "eth_sendRawPrivateTransaction",
                          ["0x" + raw.hex(), {"privateFor": private_keys(private_for)}])
        return bytes(HexBytes(found))

    # --- internals -----------------------------------------------------------------------

    def _base(self, account: LocalAccount, gas: int | None) -> dict[str, Any]:
        base: dict[str, Any] = {
            "from": account.address, "chainId": self.chain_id,
            "nonce": self._rpc("eth_getTransactionCount", self.w3.eth.get_transaction_count,
                               account.address, "pending"),
            "gasPrice": self._rpc("eth_gasPrice", lambda: self.w3.eth.gas_price)}
        if gas is not None:
            base["gas"] = gas
        return base

    def _submit(self, tx: dict[str, Any], account: LocalAccount, abi: list[dict[str, Any]],
                receipt_timeout: float, estimated: bool,
                private_for: list[str] | None = None) -> Outcome:
        if estimated:  # build_transaction estimated the gas for the state of now
            tx["gas"] = int(tx["gas"] * GAS_MARGIN)
        if private_for is None:
            signed = account.sign_transaction(tx)
            tx_hash = self._rpc("eth_sendRawTransaction", self.w3.eth.send_raw_transaction,
                                signed.raw_transaction)
        else:  # the chain carries the payload's hash; the managers carry the payload
            marker = {**tx, "data": self.store_raw(bytes(HexBytes(tx["data"])))}
            signed = account.sign_transaction(marker)
            tx_hash = self.send_raw_private(bytes(signed.raw_transaction), private_for)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=receipt_timeout, poll_latency=0.1)
        except TimeExhausted as exc:
            raise RpcError(f"no receipt for 0x{tx_hash.hex()} after {receipt_timeout:.0f} s",
                           code="rpc_error") from exc
        except requests.RequestException as exc:
            raise RpcError(f"cannot reach {self.url} (receipt)",
                           code="rpc_unreachable") from exc
        reason = None
        if receipt["status"] != 1:
            reason = self._replay(tx, receipt["blockNumber"])
        created = receipt.get("contractAddress")
        return Outcome(
            tx_hash="0x" + bytes(tx_hash).hex(), status=int(receipt["status"]),
            block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]),
            contract_address=str(created) if created else None,
            logs=tuple(self._decode(log, abi) for log in receipt["logs"]),
            revert_reason=reason)

    def _replay(self, tx: dict[str, Any], block: int) -> str:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block - 1)  # type: ignore[arg-type]
        except (Web3Exception, ValueError) as exc:
            reason = revert_reason(exc)
            if reason is not None:
                return reason
        except requests.RequestException:
            pass
        return "unknown (the replay did not revert)"

    def _decode(self, log: Any, abi: list[dict[str, Any]]) -> DecodedLog:
        contract = self.w3.eth.contract(address=log["address"], abi=abi)
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            topic = Web3.keccak(text=signature(entry))
            if log["topics"] and bytes(log["topics"][0]) == bytes(topic):
                event = contract.events[entry["name"]]()
                decoded = event.process_log(log)
                return DecodedLog(str(log["address"]), entry["name"], dict(decoded["args"]))
        return DecodedLog(str(log["address"]), None, {
            "topics": ["0x" + bytes(t).hex() for t in log["topics"]],
            "data": "0x" + bytes(log["data"]).hex()})
