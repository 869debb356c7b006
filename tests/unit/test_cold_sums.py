"""The cold model's per-partition sums (``hybrid.cold._sums`` → ``_side_sums``): what a partition
sends for each side (X'X as the set entries of its upper triangle) adds up on the driver to the
sums of the rows themselves, whether the batches are summed sparse, dense or both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridrec.hybrid.cold import _side_sums, _sums


def _batch(x: np.ndarray, y: np.ndarray, side: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"vec": list(x.astype(np.float32)), "factors": list(y.astype(np.float32)), "side": side})


def test_sides_of_sparse_and_dense_batches_add_up_to_the_rows_sums() -> None:
    rng = np.random.default_rng(3)
    sparse_x = (rng.random((40, 30)) * (rng.random((40, 30)) < 0.05)).astype(np.float32)  # summed sparse
    dense_x = rng.normal(size=(25, 30)).astype(np.float32)  # summed dense, on the same sides
    x = np.vstack([sparse_x, dense_x])
    y = rng.normal(size=(65, 4)).astype(np.float32)
    side = rng.integers(0, 2, 65)
    batches = [_batch(sparse_x, y[:40], side[:40]), _batch(dense_x, y[40:], side[40:])]
    rows = list(_sums(iter(batches)))
    assert sorted(int(r["side"].iloc[0]) for r in rows) == [0, 1]
    for s in (0, 1):
        got = _side_sums([r.iloc[0].to_dict() for r in rows if int(r["side"].iloc[0]) == s])
        xs = np.hstack([x[side == s], np.ones(((side == s).sum(), 1))]).astype(np.float64)
        ys = y[side == s].astype(np.float64)
        assert got.n == int((side == s).sum())
        np.testing.assert_allclose(got.xtx, xs.T @ xs, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got.xty, xs.T @ ys, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got.ysum, ys.sum(axis=0), rtol=1e-6)
        assert abs(got.yty - float((ys * ys).sum())) < 1e-6


def test_partitions_shares_of_one_side_are_added() -> None:
    rng = np.random.default_rng(4)
    x = (rng.random((30, 12)) * (rng.random((30, 12)) < 0.1)).astype(np.float32)
    y = rng.normal(size=(30, 2)).astype(np.float32)
    zero = np.zeros(30, dtype=np.int64)
    first = list(_sums(iter([_batch(x[:10], y[:10], zero[:10])])))
    second = list(_sums(iter([_batch(x[10:], y[10:], zero[10:])])))
    got = _side_sums([first[0].iloc[0].to_dict(), second[0].iloc[0].to_dict()])
    xs = np.hstack([x, np.ones((30, 1))]).astype(np.float64)
    np.testing.assert_allclose(got.xtx, xs.T @ xs, rtol=1e-6, atol=1e-6)
    assert got.n == 30


def test_a_column_without_variance_gets_weight_zero_without_an_ill_conditioned_solve() -> None:
    """A category none of the fitted rows has (an all-zero column) is penalised unscaled: its
    weight is 0 and the solve raises no ill-conditioning warning, at the grid's smallest penalty
    (scaled by its variance floor the column's penalty was 1e-13 beside the intercept's 2,000)."""
    import warnings

    from scipy.linalg import LinAlgWarning

    rng = np.random.default_rng(5)
    x = np.hstack([rng.normal(size=(2000, 3)), np.zeros((2000, 1))]).astype(np.float32)
    y = rng.normal(size=(2000, 2)).astype(np.float32)
    sums = _side_sums([r.iloc[0].to_dict() for r in _sums(iter([_batch(x, y, np.zeros(2000, dtype=np.int64))]))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)
        weights = sums.solve([0.1])
    assert np.all(weights[3] == 0.0)
    assert np.all(np.isfinite(weights))
