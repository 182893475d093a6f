"""The Python SDK: identities, transactions, notary records, node clients, proofs.

::

    from consortia import sdk
    ident = sdk.Identity.load("orgs/org1/keystore", "alice", passphrase)
    tx = sdk.sign(ident, "dev", sdk.notary.digest("invoice-42", pdf_bytes))
    with sdk.NodeClient("http://127.0.0.1:7050") as node:
        node.submit(tx, wait=True)
        proof = node.proof(tx.id)
    sdk.verify_proof(proof, sdk.load_genesis(Path("genesis.json")))

Signed API requests (``docs/spec/api-signing.md``): ``sdk.SigningAuth(sdk.Credentials(id,
secret))`` is an ``httpx.Auth`` for any ``httpx.Client`` / ``AsyncClient``; the algorithm
itself is ``consortia.sdk.signing``.
"""

from consortia.ledger.genesis import Genesis, load_genesis
from consortia.ledger.proof import VerifiedProof, verify_proof
from consortia.sdk import notary
from consortia.sdk.auth import SigningAuth
from consortia.sdk.client import AsyncNodeClient, NodeClient, NodeError
from consortia.sdk.identity import Identity, Recipient
from consortia.sdk.network import LocalNetwork, init_network
from consortia.sdk.signing import Credentials
from consortia.sdk.tx import SignedTx, sign
from consortia.types.errors import ConsortiaError, InvalidProof

__all__ = [
    "AsyncNodeClient", "ConsortiaError", "Credentials", "Genesis", "Identity", "InvalidProof",
    "LocalNetwork", "NodeClient", "NodeError", "Recipient", "SignedTx", "SigningAuth",
    "VerifiedProof", "init_network", "load_genesis", "notary", "sign", "verify_proof",
]
