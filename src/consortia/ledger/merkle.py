"""Merkle trees after RFC 6962/9162, with length-prefixed leaves.

Leaves are hashed as ``H(0x00 || len(data):u32 || data)`` and inner nodes as
``H(0x01 || left || right)``. The domain bytes keep a leaf from passing for an
inner node; the length prefix keeps the boundaries between transactions part
of what is hashed (Fabric CVE-2023-46132: a tree over concatenated bytes let a
block's transactions be re-split without changing the root). An unpaired node is
promoted, never duplicated (Bitcoin's CVE-2012-2459 duplicated it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Hasher = Callable[[bytes], bytes]


def leaf_hash(h: Hasher, data: bytes) -> bytes:
    return h(b"\x00" + len(data).to_bytes(4, "big") + data)


def node_hash(h: Hasher, left: bytes, right: bytes) -> bytes:
    return h(b"\x01" + left + right)


def root_of_leaves(h: Hasher, leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves (the hash of the empty string for none)."""
    if not leaves:
        return h(b"")
    level = list(leaves)
    while len(level) > 1:
        nxt = [h(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(h: Hasher, items: Sequence[bytes]) -> bytes:
    return root_of_leaves(h, [leaf_hash(h, x) for x in items])


def path(h: Hasher, leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (siblings bottom-up; promoted levels add nothing)."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    out: list[bytes] = []
    level = list(leaves)
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            out.append(level[sibling])
        nxt = [h(b"\x01" + level[j] + level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        i //= 2
    return out


def verify_path(h: Hasher, leaf: bytes, index: int, size: int, audit_path: Sequence[bytes],
                expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 inclusion verification."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in audit_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
