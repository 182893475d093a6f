"""RFC 6962/9162 Merkle trees with length-prefixed leaves (ledger/merkle.py)."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.ledger import merkle


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc6962_root(items: list[bytes]) -> bytes:
    """MTH from RFC 6962 §2.1, written independently (split at the largest power of two),
    with this project's length-prefixed leaves."""
    if not items:
        return H(b"")
    if len(items) == 1:
        return H(b"\x00" + len(items[0]).to_bytes(4, "big") + items[0])
    k = 1
    while k * 2 < len(items):
        k *= 2
    return H(b"\x01" + rfc6962_root(items[:k]) + rfc6962_root(items[k:]))


def shape(index: int, size: int) -> list[bool]:
    """Bottom-up, for each level where leaf ``index`` has a sibling: is the sibling left?
    Two (index, size) pairs with the same shape hash a path identically."""
    out = []
    while size > 1:
        sibling = index ^ 1
        if sibling < size:
            out.append(sibling < index)
        size = (size + 1) // 2
        index //= 2
    return out


leaf_lists = st.lists(st.binary(max_size=48), min_size=1, max_size=70)
distinct_leaf_lists = st.lists(st.binary(max_size=48), min_size=1, max_size=70, unique=True)
"""Equal items make equal leaves, which really are at several indices: use distinct ones
where a check relies on a leaf having one position."""


@given(leaf_lists)
def test_root_matches_rfc6962_definition(items: list[bytes]) -> None:
    assert merkle.root(H, items) == rfc6962_root(items)


@given(leaf_lists)
def test_every_index_has_a_verifying_path(items: list[bytes]) -> None:
    leaves = [merkle.leaf_hash(H, x) for x in items]
    root = merkle.root_of_leaves(H, leaves)
    n = len(leaves)
    for i in range(n):
        p = merkle.path(H, leaves, i)
        assert len(p) == len(shape(i, n))
        assert merkle.verify_path(H, leaves[i], i, n, p, root)


@given(distinct_leaf_lists, st.data())
def test_wrong_index_fails(items: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(H, x) for x in items]
    root = merkle.root_of_leaves(H, leaves)
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1))
    p = merkle.path(H, leaves, i)
    for j in [*range(n + 2), -1, 2**32]:
        if j != i:
            assert not merkle.verify_path(H, leaves[i], j, n, p, root), (i, j)


@given(distinct_leaf_lists, st.data())
def test_wrong_size_fails_unless_the_path_shape_is_identical(items: list[bytes],
                                                              data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(H, x) for x in items]
    root = merkle.root_of_leaves(H, leaves)
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1))
    p = merkle.path(H, leaves, i)
    for m in range(0, 2 * n + 3):
        if m == n:
            continue
        ok = merkle.verify_path(H, leaves[i], i, m, p, root)
        # the size is bound by the signed header; a wrong size can only "verify" when it
        # asks for exactly the same hashing steps as the true one
        assert ok == (i < m and shape(i, m) == shape(i, n)), (i, n, m)


def test_size_must_cover_the_index_and_be_positive() -> None:
    leaves = [merkle.leaf_hash(H, bytes([k])) for k in range(4)]
    root = merkle.root_of_leaves(H, leaves)
    p = merkle.path(H, leaves, 3)
    assert merkle.verify_path(H, leaves[3], 3, 4, p, root)
    assert not merkle.verify_path(H, leaves[3], 3, 3, p, root)
    assert not merkle.verify_path(H, leaves[3], 3, 0, p, root)
    assert not merkle.verify_path(H, leaves[3], -1, 4, p, root)


@given(distinct_leaf_lists, st.data())
def test_altered_sibling_leaf_or_path_length_fails(items: list[bytes],
                                                   data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(H, x) for x in items]
    root = merkle.root_of_leaves(H, leaves)
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1))
    p = merkle.path(H, leaves, i)
    for k in range(len(p)):
        for bit in (0, 7):
            bad = list(p)
            bad[k] = bad[k][:bit] + bytes([bad[k][bit] ^ 1]) + bad[k][bit + 1:]
            assert not merkle.verify_path(H, leaves[i], i, n, bad, root)
    altered = bytes([leaves[i][0] ^ 0x80]) + leaves[i][1:]
    assert not merkle.verify_path(H, altered, i, n, p, root)
    other = merkle.leaf_hash(H, items[i] + b"\x00")
    assert not merkle.verify_path(H, other, i, n, p, root)
    assert not merkle.verify_path(H, leaves[i], i, n, [*p, root], root)
    if p:
        assert not merkle.verify_path(H, leaves[i], i, n, p[:-1], root)
    if list(reversed(p)) != p:
        assert not merkle.verify_path(H, leaves[i], i, n, list(reversed(p)), root)
    bad_root = bytes([root[0] ^ 1]) + root[1:]
    assert not merkle.verify_path(H, leaves[i], i, n, p, bad_root)


@given(st.binary(min_size=2, max_size=64), st.data())
def test_length_prefix_binds_transaction_boundaries(blob: bytes, data: st.DataObject) -> None:
    cuts_a = sorted(data.draw(st.sets(st.integers(1, len(blob) - 1), min_size=1, max_size=4)))
    cuts_b = sorted(data.draw(st.sets(st.integers(1, len(blob) - 1), max_size=4)))

    def split(cuts: list[int]) -> list[bytes]:
        bounds = [0, *cuts, len(blob)]
        return [blob[a:b] for a, b in itertools.pairwise(bounds)]

    a, b = split(cuts_a), split(cuts_b)
    assert b"".join(a) == b"".join(b) == blob
    if a != b:
        assert merkle.root(H, a) != merkle.root(H, b)


def test_length_prefix_known_vectors() -> None:
    assert merkle.root(H, [b"ab", b"c"]) != merkle.root(H, [b"a", b"bc"])
    assert merkle.leaf_hash(H, b"abc") == H(b"\x00\x00\x00\x00\x03abc")
    assert merkle.leaf_hash(H, b"") == H(b"\x00\x00\x00\x00\x00")
    # a leaf never hashes like an inner node (domain byte)
    l1, l2 = merkle.leaf_hash(H, b"a"), merkle.leaf_hash(H, b"b")
    assert merkle.root(H, [b"a", b"b"]) == H(b"\x01" + l1 + l2) == merkle.node_hash(H, l1, l2)
    assert merkle.root(H, [l1 + l2]) != merkle.root(H, [b"a", b"b"])


def test_last_odd_node_is_promoted_not_duplicated() -> None:
    a, b, c = b"a", b"b", b"c"
    assert merkle.root(H, [a, b, c]) != merkle.root(H, [a, b, c, c])
    la, lb, lc = (merkle.leaf_hash(H, x) for x in (a, b, c))
    assert merkle.root(H, [a, b, c]) == H(b"\x01" + H(b"\x01" + la + lb) + lc)


@given(st.lists(st.binary(max_size=16), min_size=1, max_size=35).filter(lambda x: len(x) % 2))
def test_duplicating_the_last_item_always_changes_the_root(items: list[bytes]) -> None:
    assert merkle.root(H, items) != merkle.root(H, [*items, items[-1]])


def test_empty_tree_and_path_bounds() -> None:
    assert merkle.root(H, []) == H(b"")
    single = merkle.leaf_hash(H, b"x")
    assert merkle.root(H, [b"x"]) == single
    assert merkle.path(H, [single], 0) == []
    assert merkle.verify_path(H, single, 0, 1, [], single)
    with pytest.raises(IndexError):
        merkle.path(H, [single], 1)
    with pytest.raises(IndexError):
        merkle.path(H, [single], -1)
