"""The numpy cores of the nightly scoring: content profile nearest neighbours with their reasons,
and the content → ALS-factor ridge regression, checked against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.hybrid.cold import FactorRegression
from hybridrec.hybrid.content import score_block

pytestmark = pytest.mark.unit


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_content_scores_are_cosines_to_the_weighted_profile() -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng.normal(size=(40, 8)))
    ids = np.arange(100, 140, dtype=np.int32)
    # user 7: items 100 (w 2) and 105 (w 1) form the profile; user 9: item 120 only.
    users = np.array([7, 7, 9], dtype=np.int32)
    items = np.array([100, 105, 120], dtype=np.int32)
    weights = np.array([2.0, 1.0, 1.0])
    out = score_block(users, items, weights, np.ones(3, bool), np.zeros(3, bool), ids, vecs, k=5)
    profile = 2 * vecs[0] + vecs[5]
    profile /= np.linalg.norm(profile)
    expected = vecs @ profile
    got = out[out.user_idx == 7]
    top = np.argsort(-expected, kind="stable")[:5]
    assert list(got.item_idx) == list(ids[top])
    np.testing.assert_allclose(got.content_score, expected[top], rtol=1e-5)
    assert len(out[out.user_idx == 9]) == 5
    assert out[out.user_idx == 9].item_idx.iloc[0] == 120  # an item is nearest to itself


def test_reason_is_the_history_item_contributing_most() -> None:
    vecs = _unit(np.array([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0.1, 0.9, 0], [0, 0, 1]], dtype=np.float64))
    ids = np.arange(5, dtype=np.int32)
    users = np.array([1, 1], dtype=np.int32)
    items = np.array([0, 1], dtype=np.int32)
    out = score_block(users, items, np.array([1.0, 1.0]), np.ones(2, bool), np.zeros(2, bool), ids, vecs, k=4)
    reasons = dict(zip(out.item_idx, out.reason_item_idx))
    assert reasons[2] == 0 and reasons[3] == 1  # near item 0 → "similar to 0"; near 1 → "similar to 1"
    assert reasons[0] == 0


def test_purchased_items_are_masked_and_non_profile_rows_do_not_shape_the_profile() -> None:
    vecs = _unit(np.eye(4) + 0.01)
    ids = np.arange(4, dtype=np.int32)
    users = np.array([3, 3], dtype=np.int32)
    items = np.array([0, 2], dtype=np.int32)
    in_profile = np.array([True, False])
    purchased = np.array([True, True])
    out = score_block(users, items, np.array([1.0, 50.0]), in_profile, purchased, ids, vecs, k=4)
    assert set(out.item_idx) == {1, 3}  # 0 and 2 purchased
    # item 2 (weight 50) is purchased but not in the profile: the profile is item 0 alone
    assert (out.reason_item_idx == 0).all()


def test_users_without_profile_items_get_nothing() -> None:
    vecs = _unit(np.eye(3))
    out = score_block(
        np.array([5], np.int32),
        np.array([99], np.int32),
        np.array([1.0]),
        np.ones(1, bool),
        np.zeros(1, bool),
        np.arange(3, dtype=np.int32),
        vecs,
        k=2,
    )
    assert out.empty


def test_factor_regression_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    true = rng.normal(size=(7, 3)).astype(np.float32)
    y = np.hstack([x, np.ones((500, 1), np.float32)]) @ true
    xtx = np.hstack([x, np.ones((500, 1))]).T @ np.hstack([x, np.ones((500, 1))])
    w = np.linalg.solve(xtx + 1e-6 * np.eye(7), np.hstack([x, np.ones((500, 1))]).T @ y)
    model = FactorRegression(weights=w.astype(np.float32), rows=500, r2=1.0)
    np.testing.assert_allclose(model.predict(x[:5]), y[:5], atol=1e-3)


def _pairs_row(users: np.ndarray, u: np.ndarray, items: np.ndarray, v: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"u_ids": [users], "u_vecs": [u.ravel()], "i_ids": [items], "i_vecs": [v.ravel()]})


@pytest.mark.parametrize("k", [3, 12])  # 12 > the 10 items: every other item, self dropped
def test_item_neighbours_never_include_the_item_itself(k: int) -> None:
    from hybridrec.collab.topk import _score_pairs

    rng = np.random.default_rng(3)
    v = _unit(rng.normal(size=(10, 4)))
    ids = np.arange(20, 30, dtype=np.int32)
    rows = _pairs_row(ids[2:7], v[2:7], ids, v)  # a user block of 5 of the 10 items
    out = next(_score_pairs(k, rank_final=True, exclude_self=True)(iter([rows])))
    sims = v @ v.T
    for i in range(2, 7):
        got = out[out.user_idx == ids[i]].sort_values("rank")
        order = [j for j in np.argsort(-sims[i], kind="stable") if j != i][: min(k, 9)]
        assert list(got.item_idx) == list(ids[order])
        assert list(got["rank"]) == list(range(1, len(order) + 1))
        np.testing.assert_allclose(got.score.to_numpy(), sims[i, order], rtol=1e-5)
