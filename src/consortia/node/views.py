"""JSON views of chain objects for the HTTP API (bytes as hex, content as base64)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from consortia.identity.membership import Membership
from consortia.ledger.store import RecordRow, StoredBlock, StoredTx
from consortia.types.block import Certificate, Header
from consortia.types.errors import ConsortiaError
from consortia.types.tx import (
    AccountUpdate,
    CiphertextRecord,
    ContentRecord,
    CrlUpdate,
    Envelope,
    HashRecord,
    LinkRecord,
    OrgUpdate,
    Payload,
    PrivacyRecord,
    TxType,
    ValidatorUpdate,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _votes(cert: Certificate | None) -> dict[str, Any] | None:
    return None if cert is None else {"round": cert.round,
                                      "votes": [v.validator_id for v in cert.votes]}


def block_view(blk: StoredBlock, txs: list[StoredTx] | None = None) -> dict[str, Any]:
    h = Header.decode(blk.header)
    cert = Certificate.decode(blk.certificate)
    out: dict[str, Any] = {
        "height": h.height, "hash": blk.hash.hex(), "prev_hash": h.prev_hash.hex(),
        "tx_root": h.tx_root.hex(), "results_root": h.results_root.hex(),
        "tx_count": h.tx_count, "timestamp_ms": h.timestamp_ms, "proposer": h.proposer,
        "config_height": h.config_height, "config_hash": h.config_hash.hex(),
        "is_config": h.is_config,
        "certificate": _votes(cert),
        "last_commit": _votes(h.last_certificate()),
    }
    if txs is not None:
        out["transactions"] = [{"tx_id": t.txid.hex(), "type": t.type.name.lower(),
                                "status": "invalid" if t.result.code else "valid",
                                "error": t.result.code or None} for t in txs]
    return out


def body_view(payload: Payload) -> dict[str, Any]:
    body = payload.body
    out: dict[str, Any] = {}
    if isinstance(body, ContentRecord | HashRecord | LinkRecord | CiphertextRecord |
                  PrivacyRecord):
        out.update(business_id=body.meta.business_id, category=body.meta.category,
                   business_time_ms=body.meta.business_time_ms)
    match body:
        case ContentRecord(_, media_type, data):
            out.update(media_type=media_type, size=len(data), data_base64=b64(data))
        case HashRecord(_, algorithm, digest):
            out.update(algorithm=algorithm, digest=digest.hex())
        case LinkRecord(_, uri, algorithm, digest):
            out.update(uri=uri, algorithm=algorithm, digest=digest.hex())
        case CiphertextRecord(_, algorithm, nonce, ciphertext, key_id):
            out.update(algorithm=algorithm, nonce=nonce.hex(), key_id=key_id,
                       ciphertext_base64=b64(ciphertext))
        case PrivacyRecord(_, env):
            out.update(scheme=env.scheme, nonce=env.nonce.hex(),
                       ciphertext_base64=b64(env.ciphertext),
                       recipients=[{"recipient": w.recipient.hex(),
                                    "ephemeral_public_key": w.ephemeral_public_key.hex(),
                                    "nonce": w.nonce.hex(), "wrapped_key": w.wrapped_key.hex()}
                                   for w in env.recipients])
        case CrlUpdate(org_id, crl_der):
            out.update(org_id=org_id, crl_size=len(crl_der))
        case ValidatorUpdate(op, vid, org_id, _, endpoint, sequence, approvals):
            out.update(op=op, validator_id=vid, org_id=org_id, endpoint=endpoint or None,
                       config_sequence=sequence, approvals=len(approvals))
        case AccountUpdate(op, org_id, addresses):
            out.update(op=op, org_id=org_id, addresses=["0x" + a.hex() for a in addresses])
        case OrgUpdate(op, org_id, ca_cert, sequence, approvals):
            out.update(op=op, org_id=org_id, ca_cert_base64=b64(ca_cert) if ca_cert else None,
                       ca_cert_sha256=hashlib.sha256(ca_cert).hexdigest() if ca_cert else None,
                       config_sequence=sequence, approvals=len(approvals))
    return out


def _receipt(row: StoredTx) -> dict[str, Any]:
    return {"status": "invalid" if row.result.code else "committed", "height": row.height,
            "index": row.index, "error": row.result.code or None}


def tx_view(row: StoredTx, membership: Membership) -> dict[str, Any]:
    if row.type is TxType.EVM:
        # A raw Ethereum transaction of a quorum chain: its fields are the JSON-RPC's
        # (eth_getTransactionByHash); here its bytes and where it committed.
        return {"tx_id": row.txid.hex(), "type": "evm", "raw_base64": b64(row.envelope),
                "receipt": _receipt(row)}
    env = Envelope.decode(row.envelope)
    payload = Payload.decode(env.payload)
    try:
        m = membership.identify(env.signer)
        signer: dict[str, Any] = {"org_id": m.org_id, "name": m.name, "role": str(m.role),
                                  "serial": f"{m.serial:x}"}
    except ConsortiaError:
        signer = {"org_id": None, "name": None, "role": None}
    return {
        "tx_id": row.txid.hex(), "type": payload.type.name.lower(),
        "chain_id": payload.chain_id, "nonce": payload.nonce.hex(),
        "timestamp_ms": payload.timestamp_ms, "signer": signer,
        "body": body_view(payload), "envelope_base64": b64(row.envelope),
        "receipt": _receipt(row),
    }


def record_view(r: RecordRow) -> dict[str, Any]:
    return {"tx_id": r.txid.hex(), "type": r.type.name.lower(), "business_id": r.business_id,
            "category": r.category, "business_time_ms": r.business_time_ms, "height": r.height,
            "index": r.index}
