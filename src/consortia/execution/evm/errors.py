"""Why an Ethereum transaction is refused: one stable code per reason, geth's wording.

::

    InvalidTransaction (types.errors)          400
    └── EvmTxError                             400, ``code`` one of CODES below

Each code is what the JSON-RPC layer maps to an error object; the message is the
text Ethereum clients (geth, and the tools that match on its wording) already know.
Admission (decode) raises them; execution reports the same codes for transactions
it leaves out of a block (``BlockOutcome.rejected``).
"""

from __future__ import annotations

from consortia.types.errors import InvalidTransaction

#: code -> geth's message for it.
CODES: dict[str, str] = {
    "malformed": "rlp: invalid transaction encoding",
    "oversized_data": "oversized data",
    "tx_type_not_supported": "transaction type not supported",
    "invalid_sender": "invalid sender",
    "invalid_chain_id": "invalid chain id",
    "replay_unprotected": "only replay-protected (EIP-155) transactions allowed over RPC",
    "intrinsic_gas_too_low": "intrinsic gas too low",
    "exceeds_block_gas_limit": "exceeds block gas limit",
    "nonce_too_low": "nonce too low",
    "nonce_too_high": "nonce too high",
    "insufficient_funds": "insufficient funds for gas * price + value",
}


class EvmTxError(InvalidTransaction):
    """An Ethereum transaction refused at admission or left out of a block.

    ``code`` is a key of :data:`CODES`; ``message`` starts with geth's wording and may
    add detail after a colon (``"nonce too low: address 0x.., tx: 3 state: 5"``).
    """

    status = 400

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown EVM transaction error code {code!r}")
        base = CODES[code]
        super().__init__(f"{base}: {detail}" if detail else base, code=code)


class EvmCallError(InvalidTransaction):
    """``estimate_gas`` could not find a gas limit: the call reverts or needs more than the cap.

    ``code`` is ``execution_reverted`` (``reason`` and ``data`` say why, as geth's
    ``execution reverted: <reason>``) or ``gas_required_exceeds_allowance``.
    """

    status = 400

    def __init__(self, code: str, message: str, *, reason: str | None = None,
                 data: bytes = b"") -> None:
        super().__init__(message, code=code)
        self.reason = reason
        self.data = data
