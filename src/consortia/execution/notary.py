"""The notary executor: records to index, configuration updates to apply.

Admission already verified every signature. Execution re-checks what can
change between admission and ordering — membership under the configuration
in force (a certificate revoked meanwhile makes its transaction INVALID with
``revoked_identity``) — and applies configuration transactions. Results are
committed under the block's ``results_root``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consortia.crypto import Suite
from consortia.identity import config_update
from consortia.identity.membership import Membership
from consortia.ledger.rules import roles_for
from consortia.types.block import VALID, Result, TxStatus
from consortia.types.config import ChainConfig
from consortia.types.errors import ConsortiaError
from consortia.types.tx import NotaryMeta, Tx, notary_meta


@dataclass(frozen=True)
class Execution:
    results: list[Result]
    records: list[tuple[int, NotaryMeta]]
    new_config: ChainConfig | None


def execute(suite: Suite, config: ChainConfig, membership: Membership,
            txs: Sequence[Tx]) -> Execution:
    results: list[Result] = []
    records: list[tuple[int, NotaryMeta]] = []
    new_config: ChainConfig | None = None
    for i, tx in enumerate(txs):
        p = tx.payload
        try:
            if p.type.is_config:
                if len(txs) != 1:
                    raise ConsortiaError("configuration transactions are ordered alone",
                                         code="config_not_alone")
                new_config = config_update.apply(config, membership, tx.envelope.signer, p)
            else:
                membership.validate(tx.envelope.signer, roles_for(config, p.type),
                                    p.timestamp_ms)
                meta = notary_meta(p.body)
                if meta is not None:
                    records.append((i, meta))
            results.append(VALID)
        except ConsortiaError as exc:
            results.append(Result(TxStatus.INVALID, exc.code))
    return Execution(results, records, new_config)
