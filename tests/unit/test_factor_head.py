"""The cold-item factor head (``hybrid.factor_mlp``): on content whose factors are a nonlinear
function of it, the head beats the ridge on held-out rows; the same seed gives the same head."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.errors import HybridrecError
from hybridrec.hybrid.factor_mlp import fit_mlp

pytestmark = pytest.mark.unit


def _clustered(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Content in 12 clusters of a 3-dimensional space, each cluster with its own factor direction
    (like categories placing products): an affine map of 3 inputs cannot give 12 directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 3)) * 2.0
    directions = rng.normal(size=(12, 6))
    label = rng.integers(0, 12, n)
    x = centres[label] + 0.2 * rng.normal(size=(n, 3))
    y = directions[label] + 0.05 * rng.normal(size=(n, 6))
    return x.astype(np.float32), y.astype(np.float32)


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    return 1.0 - float(((pred - true) ** 2).sum()) / float(((true - true.mean(axis=0)) ** 2).sum())


def test_head_beats_ridge_held_out_on_nonlinear_factors() -> None:
    x, y = _clustered(3000, seed=4)
    fit, test = slice(0, 2400), slice(2400, None)
    x1 = np.hstack([x, np.ones((len(x), 1), np.float32)])
    w = np.linalg.solve(x1[fit].T @ x1[fit] + np.eye(4), x1[fit].T @ y[fit])
    ridge = _r2(x1[test] @ w, y[test])
    head = fit_mlp(x[fit], y[fit], hidden=64, max_epochs=60, seed=7)
    mlp = _r2(head.predict(x[test]), y[test])
    assert mlp > 0.85 and mlp > ridge + 0.15, (mlp, ridge)
    assert 1 <= head.epochs <= 60


def test_same_seed_same_head() -> None:
    x, y = _clustered(600, seed=5)
    a = fit_mlp(x, y, hidden=16, max_epochs=15, seed=3)
    b = fit_mlp(x, y, hidden=16, max_epochs=15, seed=3)
    np.testing.assert_array_equal(a.w1, b.w1)
    np.testing.assert_array_equal(a.predict(x[:5]), b.predict(x[:5]))
    c = fit_mlp(x, y, hidden=16, max_epochs=15, seed=4)
    assert not np.array_equal(a.w1, c.w1)
    assert 1 <= a.epochs <= 15


def test_too_few_rows_is_refused_with_a_message() -> None:
    with pytest.raises(HybridrecError, match="at least 10 rows"):
        fit_mlp(np.zeros((5, 3), np.float32), np.zeros((5, 2), np.float32))
