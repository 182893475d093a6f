"""The server side of access keys: the used-nonce store, issuing keys, and sealing their
secrets at rest (docs/spec/api-signing.md, "Replay window" and "Secrets at rest")."""

from __future__ import annotations

import re
import threading

import pytest

from consortia.control.auth import MemoryNonceStore, SecretBox, generate_access_key, new_master_key
from consortia.crypto.suite import CryptoError
from consortia.types.errors import Unavailable

# -- the nonce store ---------------------------------------------------------------------------


def test_memory_store_claims_once_until_expiry_inclusive() -> None:
    store = MemoryNonceStore()
    assert store.claim("k", "n", expires_at=100, now=0)
    assert not store.claim("k", "n", expires_at=200, now=50)
    assert not store.claim("k", "n", expires_at=200, now=100)   # still live at expires_at
    assert store.claim("k", "n", expires_at=300, now=100.5)     # expired: free again
    store.purge(now=250)                                        # the old heap entry is gone,
    assert not store.claim("k", "n", expires_at=400, now=250)   # the new one is not
    assert store.claim("other", "n", expires_at=400, now=250)


def test_memory_store_is_bounded_and_never_evicts_live_entries() -> None:
    store = MemoryNonceStore(max_entries=3)
    for i in range(3):
        assert store.claim("k", f"n{i}", expires_at=100 + i, now=0)
    with pytest.raises(Unavailable) as info:
        store.claim("k", "n3", expires_at=200, now=50)
    assert info.value.code == "nonce_store_full" and info.value.status == 503
    assert not store.claim("k", "n0", expires_at=200, now=50)   # the live entries remain
    assert store.claim("k", "n3", expires_at=200, now=100.5)    # n0 expired, room again
    assert len(store) == 3
    with pytest.raises(ValueError):
        MemoryNonceStore(max_entries=0)


def test_memory_store_expired_entries_are_dropped() -> None:
    store = MemoryNonceStore()
    for i in range(1000):
        store.claim("k", str(i), expires_at=i, now=0)
    store.purge(now=499.5)
    assert len(store) == 500


def test_memory_store_is_thread_safe() -> None:
    store = MemoryNonceStore()
    wins: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(500):
            if store.claim("k", f"n{i}", expires_at=1000, now=0):
                with lock:
                    wins.append(f"n{i}")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == sorted(f"n{i}" for i in range(500))


# -- access keys and sealed secrets -------------------------------------------------------------


def test_generate_access_key() -> None:
    keys = [generate_access_key() for _ in range(50)]
    assert len({k.access_key_id for k in keys}) == len({k.secret for k in keys}) == 50
    for k in keys:
        assert re.fullmatch(r"CK[A-Z2-7]{16}", k.access_key_id)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", k.secret)


def test_secret_box_round_trip_and_binding() -> None:
    box = SecretBox(new_master_key())
    creds = generate_access_key()
    sealed = box.seal(creds.access_key_id, creds.secret)
    assert creds.secret.encode() not in sealed
    assert box.open(creds.access_key_id, sealed) == creds.secret
    assert box.seal(creds.access_key_id, creds.secret) != sealed  # fresh nonce each time
    with pytest.raises(CryptoError):
        box.open("CKSOMEOTHERKEY000", sealed)       # moved to another key's row
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(CryptoError):
        box.open(creds.access_key_id, bytes(tampered))
    with pytest.raises(CryptoError):
        SecretBox(new_master_key()).open(creds.access_key_id, sealed)
    with pytest.raises(CryptoError):
        box.open(creds.access_key_id, b"\x01short")


def test_secret_box_rotation() -> None:
    old, new = new_master_key(), new_master_key()
    sealed = SecretBox(old).seal("CK1", "s3cret")
    rotated = SecretBox(new, previous=[old])
    assert rotated.open("CK1", sealed) == "s3cret"
    assert rotated.needs_reseal(sealed)
    resealed = rotated.seal("CK1", "s3cret")
    assert not rotated.needs_reseal(resealed)
    assert SecretBox(new).open("CK1", resealed) == "s3cret"


@pytest.mark.parametrize("key", [b"", b"\x00" * 32, b"ab" * 16, bytes(range(31))])
def test_secret_box_refuses_weak_master_keys(key: bytes) -> None:
    with pytest.raises(ValueError):
        SecretBox(key)


def test_secret_box_domains_keep_secrets_apart() -> None:
    """A member CA key sealed for one member opens for that member only, and never as
    another kind of secret; the access-key AAD is the one of earlier releases."""
    from consortia.control.auth.keys import ACCESS_KEY_SECRET, MEMBER_CA_KEY
    from consortia.crypto import aead

    master = new_master_key()
    box = SecretBox(master)
    pem = b"-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n"
    sealed = box.seal_bytes(MEMBER_CA_KEY, "mem-1", pem)
    assert pem not in sealed
    assert box.open_bytes(MEMBER_CA_KEY, "mem-1", sealed) == pem
    with pytest.raises(CryptoError):
        box.open_bytes(MEMBER_CA_KEY, "mem-2", sealed)
    with pytest.raises(CryptoError):
        box.open_bytes(ACCESS_KEY_SECRET, "mem-1", sealed)
    with pytest.raises(CryptoError):
        box.open("mem-1", sealed)
    with pytest.raises(ValueError):
        box.seal_bytes("Bad Domain", "x", b"")
    # an access-key secret sealed before domains existed still opens
    header = sealed[:9]
    nonce, ct = aead.encrypt(master, b"s3cret",
                             header + b"consortia/access-key-secret/1\x00CK1")
    assert box.open("CK1", header + nonce + ct) == "s3cret"
