"""The seeded inputs of bench/bench_pair_cosines.py: no product its own lexical neighbour, unit
postings rows, text vectors of unit length, the same chunk whoever generates it."""

from __future__ import annotations

import numpy as np
import pytest

import bench_catalog
import bench_pair_cosines as BP

pytestmark = pytest.mark.unit


def test_chunks_are_seeded_and_never_pair_a_product_with_itself() -> None:
    n = bench_catalog.CHUNK + 50
    centres = bench_catalog.subcluster_centres(n, seed=3)
    part = BP.chunk_products(1, n, centres, seed=3, terms=5)
    vectors, lexical, postings = part["vectors"], part["lexical"], part["postings"]
    assert len(vectors) == 50 and vectors["id"].iloc[0] == bench_catalog.CHUNK
    assert np.allclose([np.linalg.norm(t) for t in vectors["text"]], 1.0, atol=1e-5)
    assert vectors["photo"].mean() == pytest.approx(1 / BP.PHOTO_EVERY, abs=0.05)
    assert len(lexical) == 50 * bench_catalog.TOP and (lexical["item_idx"] != lexical["other_idx"]).all()
    assert lexical["other_idx"].between(0, n - 1).all()
    norms = postings.groupby("item_idx")["weight"].apply(lambda w: float(np.sqrt((w**2).sum())))
    assert np.allclose(norms, 1.0) and len(norms) == 50
    again = BP.chunk_products(1, n, centres, seed=3, terms=5)
    assert again["lexical"].equals(lexical) and again["postings"].equals(postings)
