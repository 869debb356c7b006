"""The pure helpers of bench/bench_catalog.py: seeded chunks, brute-force top-k, recall, growth."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bench_catalog as BC

pytestmark = pytest.mark.unit


def test_chunks_are_unit_seeded_and_tile_the_catalog() -> None:
    n = BC.CHUNK + 100
    centres = BC.subcluster_centres(n, seed=1)
    ids0, x0 = BC.chunk_vectors(0, n, centres, seed=1)
    ids1, x1 = BC.chunk_vectors(1, n, centres, seed=1)
    assert ids0[0] == 0 and ids1[0] == BC.CHUNK and ids1[-1] == n - 1 and len(ids1) == 100
    assert np.allclose(np.linalg.norm(x1, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(BC.chunk_vectors(1, n, centres, seed=1)[1], x1)  # whoever generates it
    assert not np.array_equal(BC.chunk_vectors(1, n, centres, seed=2)[1], x1)
    assert BC.all_vectors(n, seed=1).shape == (n, BC.DIM)
    assert len(centres) == n // BC.PER_SUBCLUSTER


def test_exact_top_k_excludes_self_orders_by_dot_and_ties_to_the_lower_id() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    got = BC.exact_top_k(x, np.array([0, 2]), 3, batch=1)
    assert got[0].tolist() == [1, 4, 3]  # 1 and 4 tie at 1.0: lower id first; itself never
    assert got[1].tolist() == [3, 0, 1]


def test_recall_counts_overlap_and_missing_queries_as_zero() -> None:
    exact = {1: [5, 6], 2: [7, 8]}
    assert BC.recall_at_k({1: [6, 5], 2: [7, 9]}, exact, 2) == pytest.approx(0.75)
    assert BC.recall_at_k({1: [5, 6]}, exact, 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        BC.recall_at_k({}, {}, 2)


def test_growth_exponent_and_query_sample() -> None:
    assert BC.growth_exponent(100, 1.0, 1000, 10.0) == pytest.approx(1.0)
    assert BC.growth_exponent(100, 1.0, 1000, 100.0) == pytest.approx(2.0)
    q = BC.sample_queries(1000, 10, seed=3)
    assert len(set(q.tolist())) == 10 and (np.diff(q) > 0).all()
    assert np.array_equal(q, BC.sample_queries(1000, 10, seed=3))
    assert len(BC.sample_queries(5, 10, seed=3)) == 5


def test_summary_extrapolates_the_exact_path_quadratically_and_says_so() -> None:
    sizes = [
        {"products": 100, "ivf": {"seconds": 10.0}, "exact": {"seconds": 4.0}},
        {"products": 1000, "ivf": {"seconds": 100.0}},
    ]
    s = BC.summarize(sizes)
    assert s["ivf_growth_exponent"]["100->1000"] == pytest.approx(1.0)
    assert s["exact_seconds"]["100"] == {"seconds": 4.0, "measured": True}
    assert s["exact_seconds"]["1000"]["seconds"] == pytest.approx(400.0)
    assert s["exact_seconds"]["1000"]["measured"] is False
    assert "extrapolated" in s["exact_seconds"]["1000"]["note"]
    assert math.isfinite(s["exact_seconds"]["1000"]["seconds"])


def test_users_draw_from_their_home_subcluster_and_exact_content_masks_exclusions() -> None:
    n = 2 * BC.CHUNK
    members, starts = BC.user_index(n, seed=4)
    sub = BC.subclusters(n, len(starts) - 1, seed=4)
    assert len(members) == n and np.all(np.diff(sub[members]) >= 0)
    h = BC.chunk_users(0, 300, members, starts, n, seed=4)
    assert h.equals(BC.chunk_users(0, 300, members, starts, n, seed=4))
    assert h.groupby("user_idx")["excluded"].sum().eq(1).all()  # the first item of each user
    homes = h.groupby("user_idx")["item_idx"].apply(lambda s: np.bincount(sub[s.to_numpy()]).max())
    assert (homes >= 2).mean() > 0.9  # most history shares a sub-cluster
    x = BC.all_vectors(n, seed=4)
    got = BC.exact_content(x, h[h.user_idx < 5], 10)
    for u, top in got.items():
        mine = h[h.user_idx == u]
        assert not set(mine.loc[mine.excluded, "item_idx"]) & set(top) and len(top) == 10
