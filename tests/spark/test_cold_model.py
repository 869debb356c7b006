"""The cold-item model of a night (``hybrid.cold.fit_cold_model``): figures on warm products kept
out of the fit, the head beating the ridge there when factors are a nonlinear function of content,
the driver's sample bounded by ``cold_model_max_rows``, and predictions for cold products."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.config import ConfigError, RecommendConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.cold import (
    L2_GRID,
    FactorRegression,
    fit_cold_model,
    fit_cold_model_with,
    predicted_factors,
)
from hybridrec.hybrid.cold_inputs import cold_model_inputs

pytestmark = pytest.mark.spark


def _warm(spark, n: int, seed: int, linear: bool = False):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 8))
    directions = rng.normal(size=(6, 4))
    label = rng.integers(0, 6, n)
    x = (centres[label] + 0.4 * rng.normal(size=(n, 8))).astype(np.float32)
    if linear:
        y = np.hstack([x, np.ones((n, 1), np.float32)]) @ rng.normal(size=(9, 4)).astype(np.float32)
    else:
        y = (directions[label] * np.abs(x[:, :1]) + 0.05 * rng.normal(size=(n, 4))).astype(np.float32)
    rows = [(x[i].tolist(), y[i].tolist()) for i in range(n)]
    return spark.createDataFrame(rows, "vec array<float>, factors array<float>").repartition(3), x, y


def test_head_beats_ridge_on_held_out_warm_products(spark) -> None:
    warm, _, _ = _warm(spark, 1500, seed=11)
    ridge = fit_cold_model_with(warm, "ridge", l2=1.0, holdout=0.2, max_rows=10_000, seed=21)
    mlp = fit_cold_model_with(warm, "mlp", l2=1.0, holdout=0.2, max_rows=10_000, seed=21)
    assert ridge.heldout_rows == mlp.heldout_rows and 200 < ridge.heldout_rows < 400
    assert ridge.fit_rows == 1500  # measured on the split, refitted on every warm product
    assert mlp.fit_rows == 1500 - mlp.heldout_rows
    assert mlp.r2 is not None and ridge.r2 is not None and mlp.cosine is not None and ridge.cosine is not None
    assert mlp.r2 > ridge.r2 + 0.15 and mlp.cosine > ridge.cosine, (mlp.r2, ridge.r2)
    assert set(mlp.metrics()) == {"cold_factor_r2", "cold_factor_cosine"}
    assert "held-out R2" in mlp.describe()


def test_ridge_held_out_figures_match_a_direct_computation(spark) -> None:
    warm, x, y = _warm(spark, 400, seed=12, linear=True)
    model = fit_cold_model_with(warm, "ridge", l2=1e-6, holdout=0.25, max_rows=10, seed=3)
    assert model.r2 == pytest.approx(1.0, abs=1e-4) and model.cosine == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(model.predict(x[:3]), y[:3], atol=1e-2)
    none = fit_cold_model_with(warm, "ridge", l2=1e-6, holdout=0.0, max_rows=10, seed=3)
    assert none.r2 is None and none.heldout_rows == 0 and none.metrics() == {}


def test_head_sample_is_bounded_and_seeded(spark) -> None:
    warm, x, _ = _warm(spark, 800, seed=13)
    rc = RecommendConfig(cold_model="mlp", cold_model_max_rows=100, cold_model_seed=5)
    a = fit_cold_model(warm, rc)
    b = fit_cold_model(warm, rc)
    assert a.fit_rows <= 100
    np.testing.assert_array_equal(a.predict(x[:4]), b.predict(x[:4]))
    cold = spark.createDataFrame([(7, x[0].tolist()), (9, x[1].tolist())], "item_idx int, vec array<float>")
    got = {r.id: r.features for r in predicted_factors(cold, a).collect()}
    np.testing.assert_allclose(got[9], a.predict(x[1:2])[0], rtol=1e-5)


def test_unknown_model_and_empty_input_are_refused_and_tiny_input_falls_back(spark) -> None:
    with pytest.raises(ConfigError, match="cold_model"):
        RecommendConfig(cold_model="forest")
    empty = spark.createDataFrame([], "vec array<float>, factors array<float>")
    with pytest.raises(HybridrecError, match="no product"):
        fit_cold_model_with(empty, "mlp", l2=1.0, holdout=0.2, max_rows=100, seed=1)
    tiny, x, _ = _warm(spark, 30, seed=14)  # a tiny catalog's night: the ridge on all, no figures
    model = fit_cold_model_with(tiny, "mlp", l2=1.0, holdout=0.2, max_rows=100, seed=1)
    assert model.kind.startswith("ridge") and model.fit_rows == 30 and model.r2 is None
    assert model.predict(x[:2]).shape == (2, 4)


def test_null_penalty_is_chosen_on_a_validation_share_and_shrinks_noise(spark) -> None:
    """With many pure-noise columns a tiny penalty overfits; the chosen one is larger and holds up
    better on the held-out products than the least penalty of the grid."""
    rng = np.random.default_rng(15)
    n = 500
    signal = rng.normal(size=(n, 3))
    x = np.hstack([signal, rng.normal(size=(n, 250))]).astype(np.float32)
    y = (signal @ rng.normal(size=(3, 4)) + 0.8 * rng.normal(size=(n, 4))).astype(np.float32)
    rows = [(x[i].tolist(), y[i].tolist()) for i in range(n)]
    warm = spark.createDataFrame(rows, "vec array<float>, factors array<float>").repartition(3)
    chosen = fit_cold_model_with(warm, "ridge", l2=None, holdout=0.2, max_rows=10, seed=4)
    least = fit_cold_model_with(warm, "ridge", l2=L2_GRID[0], holdout=0.2, max_rows=10, seed=4)
    assert isinstance(chosen.model, FactorRegression) and chosen.model.l2[0] > L2_GRID[0]
    assert "chosen on a validation share" in chosen.describe()
    # as two parts (the signal, the noise) the noise gets the larger penalty, and it pays
    parts = fit_cold_model_with(warm, "ridge", l2=None, holdout=0.2, max_rows=10, seed=4, groups=[3, 250])
    assert isinstance(parts.model, FactorRegression) and parts.model.l2[1] > parts.model.l2[0]
    assert parts.r2 is not None and parts.r2 >= chosen.r2 - 1e-9, (parts.r2, chosen.r2)
    with pytest.raises(HybridrecError, match="do not add up"):
        fit_cold_model_with(warm, "ridge", l2=None, holdout=0.2, max_rows=10, seed=4, groups=[3, 3])
    assert chosen.r2 is not None and least.r2 is not None and chosen.r2 > least.r2 + 0.05, (chosen.r2, least.r2)


def test_cold_inputs_put_category_and_title_words_beside_the_content_vector(spark) -> None:
    vectors = spark.createDataFrame(
        [(0, [1.0, 0.0]), (1, [0.0, 1.0]), (2, [0.5, 0.5]), (3, [0.2, 0.1])], "item_idx int, vec array<float>"
    )
    docs = spark.createDataFrame(
        [
            (0, "red wool scarf", None, "Scarves"),
            (1, "blue wool scarf", "warm", "Scarves"),
            (2, "red mug", None, "Mugs"),  # Mugs: one product, no column
            (3, None, None, None),
        ],
        "item_idx int, title string, description string, category string",
    )
    got, widths = cold_model_inputs(vectors, docs, ["text", "content", "category"], text_terms=2, categories=5)
    # content first; one category held by two products; the 2 terms in most products (red, scarf,
    # wool each in 2: the first two by name), no term in one product only
    assert widths == {"content": 2, "category": 1, "text": 2}
    rows = {r.item_idx: np.asarray(r.vec) for r in got.collect()}
    assert set(rows) == {0, 1, 2, 3} and all(len(v) == 5 for v in rows.values())
    np.testing.assert_allclose(rows[0][:3], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(rows[2][:3], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(rows[3], [0.2, 0.1, 0.0, 0.0, 0.0], atol=1e-7)
    assert rows[2][3] > 0 and rows[2][4] == 0  # "red" is a column, "mug" is not
    # word pairs are terms of their own: "wool scarf" (2 products) joins red, scarf and wool
    pairs, widths = cold_model_inputs(vectors, docs, ["text"], text_terms=10, categories=5, text_ngrams=2)
    assert widths == {"text": 4}
    by_item = {r.item_idx: np.asarray(r.vec) for r in pairs.collect()}
    assert np.count_nonzero(by_item[0]) == 4 and np.count_nonzero(by_item[2]) == 1
    content_only, widths = cold_model_inputs(vectors, docs, ["content"], text_terms=2, categories=5)
    assert widths == {"content": 2} and content_only.count() == 4
    with pytest.raises(ConfigError, match="cold_inputs"):
        RecommendConfig(cold_inputs=["content", "photo"])


def test_text_part_is_penalised_on_its_own_scale_and_the_rest_standardised(spark) -> None:
    """The night's ridge (``fit_cold_model`` with the parts' widths): content columns penalised
    l2 x their variance, the text part's l2 alone; the same weights as the closed form."""
    rng = np.random.default_rng(16)
    n = 300
    content = rng.normal(scale=3.0, size=(n, 3))
    text = rng.random((n, 5)) * (rng.random((n, 5)) < 0.3)
    x = np.hstack([content, text]).astype(np.float32)
    y = (x @ rng.normal(size=(8, 2)) + 0.3 * rng.normal(size=(n, 2))).astype(np.float32)
    rows = [(x[i].tolist(), y[i].tolist()) for i in range(n)]
    warm = spark.createDataFrame(rows, "vec array<float>, factors array<float>").repartition(3)
    rc = RecommendConfig(regression_l2=4.0, cold_model_holdout=0.0)
    got = fit_cold_model(warm, rc, {"content": 3, "category": 0, "text": 5})
    assert isinstance(got.model, FactorRegression)
    x1 = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    var = x.astype(np.float64).var(axis=0)
    penalty = np.diag(np.append(4.0 * np.append(var[:3], np.ones(5)), 0.0))
    want = np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)
    np.testing.assert_allclose(got.model.weights, want, rtol=1e-4, atol=1e-5)
    standardised = fit_cold_model_with(
        warm, "ridge", l2=4.0, holdout=0.0, max_rows=10, seed=1, groups=[3, 5], scaled=[True, True]
    )
    assert not np.allclose(standardised.model.predict(x[:5]), got.model.predict(x[:5]), atol=1e-4)


def test_one_pass_over_sparse_inputs_gives_the_closed_form_on_every_warm_product(spark) -> None:
    """Mostly-zero inputs (a dense content vector beside a TF-IDF-like block: the sums are taken
    sparse) with a held-out share: the night's model is the closed-form ridge on every warm
    product, and the figures come from the held-out products alone."""
    rng = np.random.default_rng(17)
    n = 400
    content = rng.normal(size=(n, 2))
    text = rng.random((n, 120)) * (rng.random((n, 120)) < 0.02)
    x = np.hstack([content, text]).astype(np.float32)
    assert np.count_nonzero(x) < 0.1 * x.size
    y = (x @ rng.normal(size=(122, 3)) + 0.1 * rng.normal(size=(n, 3))).astype(np.float32)
    rows = [(x[i].tolist(), y[i].tolist()) for i in range(n)]
    warm = spark.createDataFrame(rows, "vec array<float>, factors array<float>").repartition(3)
    got = fit_cold_model_with(
        warm, "ridge", l2=0.5, holdout=0.25, max_rows=10, seed=6, groups=[2, 120], scaled=[True, False]
    )
    assert isinstance(got.model, FactorRegression) and got.fit_rows == n
    assert 60 < got.heldout_rows < 140 and got.r2 is not None and 0.0 < got.r2 < 1.0
    x1 = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    var = x[:, :2].astype(np.float64).var(axis=0)
    penalty = np.diag(np.append(0.5 * np.append(var, np.ones(120)), 0.0))
    want = np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)
    np.testing.assert_allclose(got.model.weights, want, rtol=1e-4, atol=1e-5)
