"""Driver side of the Poisson bootstrap (evaluation.bootstrap): the Poisson(1) inversion and the
percentile summary of replicate sums, against hand-computed values (no Spark)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hybridrec.evaluation.bootstrap import POISSON1_CDF, SAMPLE, poisson1_quantile, summarise

E1 = math.exp(-1.0)


def test_poisson1_cdf_values() -> None:
    assert POISSON1_CDF[0] == pytest.approx(E1)  # P(X = 0) = 1/e
    assert POISSON1_CDF[1] == pytest.approx(2 * E1)  # + 1/e
    assert POISSON1_CDF[2] == pytest.approx(2.5 * E1)  # + 1/(2e)
    assert POISSON1_CDF[-1] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    "u, draw",
    [(0.0, 0), (0.36, 0), (0.37, 1), (0.73, 1), (0.74, 2), (0.91, 2), (0.92, 3), (0.98, 3), (0.99, 4), (0.9999, 6)],
)
def test_poisson1_quantile_inverts_the_cdf(u: float, draw: int) -> None:
    assert poisson1_quantile(u) == draw


def test_poisson1_quantile_has_mean_and_variance_one() -> None:
    u = (np.arange(200_000) + 0.5) / 200_000  # a fine grid of the uniform: the exact distribution
    draws = np.array([poisson1_quantile(x) for x in u])
    assert draws.mean() == pytest.approx(1.0, abs=1e-3)
    assert draws.var() == pytest.approx(1.0, abs=2e-3)


def test_poisson1_quantile_refuses_values_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError):
        poisson1_quantile(1.0)


def _sums(group: str, sample: tuple[float, float], replicate_means: list[float]) -> list[dict]:
    rows = [{"segment": group, "replicate": SAMPLE, "recall__sum": sample[0], "recall__w": sample[1]}]
    # Each replicate: weight sum 4, so that sum = 4 * mean.
    rows += [
        {"segment": group, "replicate": b, "recall__sum": 4 * m, "recall__w": 4.0}
        for b, m in enumerate(replicate_means)
    ]
    return rows


def test_summarise_takes_the_sample_mean_and_replicate_percentiles() -> None:
    # Sample: 3 users summing to 1.5 -> mean 0.5. Replicate means 0.1 .. 0.9 (9 values):
    # the 2.5 % / 97.5 % percentiles by linear interpolation sit at position 0.025 * 8 = 0.2 from each
    # end: 0.1 + 0.2 * 0.1 and 0.9 - 0.2 * 0.1.
    means = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    out = summarise(pd.DataFrame(_sums("all", (1.5, 3.0), means)), ["segment"], ["recall"], level=0.95)
    assert list(out.columns) == ["segment", "metric", "mean", "lo", "hi", "n_users"]
    row = out.iloc[0]
    assert (row["segment"], row["metric"], row["n_users"]) == ("all", "recall", 3)
    assert row["mean"] == pytest.approx(0.5)
    assert row["lo"] == pytest.approx(0.12)
    assert row["hi"] == pytest.approx(0.88)
    # level 0.5: quartiles 0.3 and 0.7
    half = summarise(pd.DataFrame(_sums("all", (1.5, 3.0), means)), ["segment"], ["recall"], level=0.5)
    assert (half.iloc[0]["lo"], half.iloc[0]["hi"]) == (pytest.approx(0.3), pytest.approx(0.7))


def test_summarise_drops_replicates_without_weight_and_keeps_groups_apart() -> None:
    rows = _sums("a", (2.0, 2.0), [1.0, 1.0]) + _sums("b", (0.0, 1.0), [0.0])
    rows.append({"segment": "b", "replicate": 5, "recall__sum": 0.0, "recall__w": 0.0})  # all users drew 0
    out = summarise(pd.DataFrame(rows), ["segment"], ["recall"]).set_index("segment")
    assert out.loc["a", "mean"] == 1.0 and out.loc["a", "lo"] == 1.0 and out.loc["a", "hi"] == 1.0
    assert out.loc["b", "n_users"] == 1 and out.loc["b", "hi"] == 0.0


def test_summarise_without_groups_and_with_a_metric_that_has_no_values() -> None:
    sums = pd.DataFrame(
        [
            {"replicate": SAMPLE, "novelty__sum": None, "novelty__w": None},
            {"replicate": 0, "novelty__sum": None, "novelty__w": None},
        ]
    )
    out = summarise(sums, [], ["novelty"])
    assert out.iloc[0]["n_users"] == 0
    assert math.isnan(out.iloc[0]["mean"]) and math.isnan(out.iloc[0]["lo"])


def test_summarise_refuses_a_bad_level() -> None:
    with pytest.raises(ValueError, match="level"):
        summarise(pd.DataFrame(_sums("a", (1.0, 1.0), [1.0])), ["segment"], ["recall"], level=1.0)
