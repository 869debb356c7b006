"""The cold-item model of a night (``hybrid.cold.fit_cold_model``): figures on warm products kept
out of the fit, the head beating the ridge there when factors are a nonlinear function of content,
the driver's sample bounded by ``cold_model_max_rows``, and predictions for cold products."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.config import ConfigError, RecommendConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.cold import fit_cold_model, fit_cold_model_with, predicted_factors

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
