"""Commit certificates: who signs a block, and checking that enough of them did."""

from __future__ import annotations

from cryptography import x509

from consortia.crypto import PublicKey, SigningKey, Suite
from consortia.identity.membership import spki
from consortia.types.block import Certificate, Header, Vote, vote_message
from consortia.types.config import ChainConfig
from consortia.types.errors import InvalidBlock

_KEYS: dict[tuple[str, bytes], PublicKey] = {}


def validator_key(suite: Suite, cert_der: bytes) -> PublicKey:
    """The public key of a validator certificate (cached: validator sets are small)."""
    key = _KEYS.get((suite.name, cert_der))
    if key is None:
        key = suite.public_key_from_spki(spki(x509.load_der_x509_certificate(cert_der)))
        _KEYS[(suite.name, cert_der)] = key
    return key


def sign_vote(key: SigningKey, validator_id: str, chain_id: str, height: int, rnd: int,
              block_hash: bytes) -> Vote:
    return Vote(validator_id, key.sign(vote_message(chain_id, height, rnd, block_hash)))


def verify_certificate(suite: Suite, config: ChainConfig, header: Header, header_hash: bytes,
                       cert: Certificate) -> None:
    """Raise ``InvalidBlock`` unless ``cert`` finalizes ``header`` under ``config``."""
    if cert.height != header.height:
        raise InvalidBlock(f"certificate is for height {cert.height}, block is {header.height}")
    if cert.block_hash != header_hash:
        raise InvalidBlock(f"certificate at height {header.height} signs another block hash")
    seen: set[str] = set()
    msg = vote_message(header.chain_id, cert.height, cert.round, cert.block_hash)
    for vote in cert.votes:
        if vote.validator_id in seen:
            raise InvalidBlock(f"validator {vote.validator_id} voted twice at {header.height}")
        v = config.validator(vote.validator_id)
        if v is None:
            raise InvalidBlock(f"{vote.validator_id} is not a validator of configuration "
                               f"sequence {config.sequence}")
        if not suite.verify(validator_key(suite, v.cert), msg, vote.signature):
            raise InvalidBlock(f"vote of {vote.validator_id} at height {header.height} "
                               "has a bad signature")
        seen.add(vote.validator_id)
    need = config.commit_quorum()
    if len(seen) < need:
        raise InvalidBlock(f"block {header.height} has {len(seen)} valid votes, needs {need}")
