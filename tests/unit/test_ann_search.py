"""The numpy cores of the approximate content path: list search with per-query exclusions, probes
extended until the lists can cover a query's exclusions, and reasons from rows as from a block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.hybrid import ann
from hybridrec.hybrid.content import _reasons, reasons_for

pytestmark = pytest.mark.unit


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_search_list_masks_excluded_ids_before_the_cut() -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng.normal(size=(50, 8)))
    ids = np.arange(100, 150, dtype=np.int32)
    q = vecs[:2].copy()
    full = np.argsort(-(q @ vecs.T), axis=1, kind="stable")
    excl = [ids[full[0, :7]].astype(np.int64), np.array([999], np.int64)]  # query 0 loses its best 7
    others, sims = ann.search_list(np.array([1, 2], np.int32), q, ids, vecs, 5, False, excl)
    assert others[0].tolist() == ids[full[0, 7:12]].tolist()
    assert others[1].tolist() == ids[full[1, :5]].tolist()
    np.testing.assert_allclose(sims[0], (q[0] @ vecs.T)[full[0, 7:12]], rtol=1e-5)


def test_probes_extend_until_the_lists_hold_enough() -> None:
    centroids = _unit(np.eye(4, dtype=np.float32) + 0.01)
    x = _unit(np.array([[1.0, 0.5, 0.2, 0.0], [0.0, 0.0, 1.0, 0.3]], dtype=np.float32))
    sizes = np.array([3, 3, 3, 3])
    got = ann.probes_covering(x, centroids, 1, sizes, np.array([7, 2]))
    assert got[0].tolist() == [0, 1, 2]  # 3 + 3 < 7: a third list, nearest first
    assert got[1].tolist() == [2]
    assert ann.probes_covering(x, centroids, 1, sizes, np.array([99, 1]))[0].tolist() == [0, 1, 2, 3]


def test_reasons_from_rows_match_the_block_version() -> None:
    rng = np.random.default_rng(3)
    vecs = _unit(rng.normal(size=(30, 6)))
    h_users = np.array([4, 4, 4, 9, 9], np.int32)
    h_items = np.array([1, 5, 7, 2, 20], np.int32)
    h_w = np.array([1.0, 2.5, -1.0, 0.3, 0.3], np.float32)
    top = np.array([[3, 8, 11], [0, 2, 29]])
    want = _reasons(np.array([0, 0, 0, 1, 1]), h_items.astype(np.int64), h_w, top, vecs)
    c_users = np.repeat(np.array([4, 9], np.int32), 3)
    got = reasons_for(c_users, vecs[top.ravel()], h_users, h_items, h_w, vecs[h_items])
    assert got.tolist() == want.ravel().tolist()


def test_a_list_no_query_probes_converts_to_the_udf_schema() -> None:
    import pyarrow as pa

    pdf = pd.DataFrame({"id": np.array([1], np.int32), "vec": [b"\0" * 8], "in_list": [True], "is_query": [False]})
    out = ann._searcher(3, False)(pdf)  # noqa: SLF001 - the UDF body, without Spark
    assert out.empty
    pa.Array.from_pandas(out["others"], type=pa.list_(pa.int32()))  # raised before: float64 column


def test_probe_count_keeps_a_share_of_the_lists_with_a_floor() -> None:
    """null ann_nprobe: 8 up to 500 lists, then 1.6 % of them (16 of the 1,000 lists of 1M products)."""
    assert ann.probe_count(None, 316) == ann.MIN_PROBES == 8  # 100k products
    assert ann.probe_count(None, 500) == 8
    assert ann.probe_count(None, 548) == 9  # 300k
    assert ann.probe_count(None, ann.list_count(1_000_000, None, 50_000)) == 16
    assert ann.probe_count(3, 1000) == 3  # a set value is kept
