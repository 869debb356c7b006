"""Poisson bootstrap over users in Spark (evaluation.bootstrap).

What must hold: the weights are Poisson(1), independent across replicates and the same for a user in
every system and segment; the replicate sums are the weighted sums of those weights (checked
against pandas); intervals cover the true mean about as often as their level says on a synthetic
table whose true means are known; paired differences of identical systems are exactly 0 wide, and
pairing narrows the interval when the systems share user-to-user variation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from hybridrec.evaluation.bootstrap import (
    REPLICATE,
    SAMPLE,
    bootstrap_ci,
    paired_difference_ci,
    replicate_sums,
    user_weight,
)


def _weights(spark, users: int, replicates: int, seed: int = 3) -> pd.DataFrame:
    df = spark.range(users).select(F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"))
    df = df.withColumn(REPLICATE, F.explode(F.sequence(F.lit(0), F.lit(replicates - 1))))
    return df.withColumn("w", user_weight(F.col("user_id"), F.col(REPLICATE), seed)).toPandas()


def test_weights_are_poisson_one_and_independent_across_replicates(spark) -> None:
    w = _weights(spark, 4000, 25)
    values = w["w"].to_numpy()
    assert values.mean() == pytest.approx(1.0, abs=0.02)
    assert values.var() == pytest.approx(1.0, abs=0.04)
    assert (values == 0).mean() == pytest.approx(np.exp(-1), abs=0.01)
    wide = w.pivot(index="user_id", columns=REPLICATE, values="w")
    corr = np.corrcoef(wide.to_numpy().T)
    assert np.abs(corr[np.triu_indices(25, 1)]).max() < 0.08
    # a function of (user, replicate, seed) alone: recomputed, the same; another seed, different
    again = _weights(spark, 4000, 25)
    assert (
        again.sort_values(["user_id", REPLICATE])["w"].to_numpy()
        == w.sort_values(["user_id", REPLICATE])["w"].to_numpy()
    ).all()
    other = _weights(spark, 4000, 25, seed=4)
    assert (
        other.sort_values(["user_id", REPLICATE])["w"].to_numpy()
        != w.sort_values(["user_id", REPLICATE])["w"].to_numpy()
    ).mean() > 0.5


def test_replicate_sums_are_the_weighted_sums(spark) -> None:
    rng = np.random.default_rng(1)
    rows = [
        (seg, f"u{u}", float(rng.random()), None if u % 5 == 0 else float(rng.random()))
        for seg in ("all", "cold")
        for u in range(50)
    ]
    per_user = spark.createDataFrame(rows, "segment string, user_id string, recall double, novelty double")
    sums = replicate_sums(per_user, ["segment"], ["recall", "novelty"], replicates=6, seed=9).toPandas()
    assert len(sums) == 2 * 7
    w = _weights(spark, 50, 6, seed=9)
    pdf = pd.DataFrame(rows, columns=["segment", "user_id", "recall", "novelty"]).merge(w, on="user_id")
    sample = pd.DataFrame(rows, columns=["segment", "user_id", "recall", "novelty"]).assign(
        **{REPLICATE: SAMPLE, "w": 1}
    )
    pdf = pd.concat([pdf, sample])
    for (seg, rep), g in pdf.groupby(["segment", REPLICATE]):
        got = sums[(sums["segment"] == seg) & (sums[REPLICATE] == rep)].iloc[0]
        assert got["recall__sum"] == pytest.approx((g["w"] * g["recall"]).sum())
        assert got["recall__w"] == g["w"].sum()
        has = g["novelty"].notna()
        assert got["novelty__sum"] == pytest.approx((g["w"] * g["novelty"])[has].sum())
        assert got["novelty__w"] == g["w"][has].sum()


def test_intervals_cover_the_true_means(spark) -> None:
    """40 groups of 400 users, metric ~ Bernoulli(p_g) with known p_g: a 90 % interval should miss
    about 4 of them, and be as wide as the normal approximation 2 * 1.645 * sd / sqrt(n)."""
    rng = np.random.default_rng(7)
    groups, n = 40, 400
    p = rng.uniform(0.1, 0.6, groups)
    rows = [(f"g{g:02d}", f"u{u}", float(rng.random() < p[g])) for g in range(groups) for u in range(n)]
    per_user = spark.createDataFrame(rows, "segment string, user_id string, recall double")
    out = bootstrap_ci(per_user, ["segment"], ["recall"], replicates=200, seed=11, level=0.9)
    assert list(out.columns) == ["segment", "metric", "mean", "lo", "hi", "n_users"]
    assert len(out) == groups and (out["n_users"] == n).all()
    assert ((out["lo"] <= out["mean"]) & (out["mean"] <= out["hi"])).all()
    covered = ((out["lo"] <= p) & (p <= out["hi"])).mean()
    assert 0.8 <= covered <= 1.0
    normal = 2 * 1.645 * np.sqrt(out["mean"] * (1 - out["mean"]) / n)
    ratio = (out["hi"] - out["lo"]) / normal
    assert ratio.median() == pytest.approx(1.0, abs=0.15)


def test_identical_systems_differ_by_exactly_zero(spark) -> None:
    rng = np.random.default_rng(2)
    rows = [
        (sys, seg, f"u{u}", float(v), float(v) * 3)
        for seg in ("all", "new")
        for u, v in enumerate(rng.random(300))
        for sys in ("als", "als_copy")
    ]
    per_user = spark.createDataFrame(rows, "system string, segment string, user_id string, ndcg double, novelty double")
    diff = paired_difference_ci(per_user, "als", "als_copy", ["segment"], ["ndcg", "novelty"], replicates=50, seed=1)
    assert list(diff.columns) == ["segment", "system_a", "system_b", "metric", "mean", "lo", "hi", "n_users"]
    assert len(diff) == 4
    assert (diff[["mean", "lo", "hi"]] == 0.0).all().all()
    assert (diff["n_users"] == 300).all()
    # and each system alone gets the same interval: the same users draw the same weights
    both = bootstrap_ci(per_user, ["segment", "system"], ["ndcg"], replicates=50, seed=1)
    a, b = both[both.system == "als"].reset_index(drop=True), both[both.system == "als_copy"].reset_index(drop=True)
    assert (a[["mean", "lo", "hi"]] == b[["mean", "lo", "hi"]]).all().all()


def test_pairing_narrows_the_interval_of_a_difference(spark) -> None:
    """System b = a + 0.02 + small noise: users vary a lot, the systems little. The paired interval
    of a - b is tight around -0.02; the two separate intervals overlap almost entirely."""
    rng = np.random.default_rng(4)
    base = rng.random(1000)
    rows = [("a", f"u{u}", float(x)) for u, x in enumerate(base)]
    rows += [("b", f"u{u}", float(x + 0.02 + rng.normal(0, 0.01))) for u, x in enumerate(base)]
    rows += [("b", "only_in_b", 0.5)]  # not evaluated for a: left out of the difference
    per_user = spark.createDataFrame(rows, "system string, user_id string, recall double")
    diff = paired_difference_ci(per_user, "a", "b", [], ["recall"], replicates=100, seed=5).iloc[0]
    assert diff["n_users"] == 1000
    assert diff["lo"] < -0.02 < diff["hi"] and diff["hi"] < 0
    assert diff["hi"] - diff["lo"] < 0.005
    alone = bootstrap_ci(per_user, ["system"], ["recall"], replicates=100, seed=5).set_index("system")
    assert alone.loc["a", "hi"] - alone.loc["a", "lo"] > 10 * (diff["hi"] - diff["lo"])


def test_bad_arguments_are_refused(spark) -> None:
    per_user = spark.createDataFrame([("s", "u", 1.0)], "system string, user_id string, recall double")
    with pytest.raises(ValueError, match="lacks column.*ndcg"):
        bootstrap_ci(per_user, ["system"], ["ndcg"])
    with pytest.raises(ValueError, match="replicates"):
        bootstrap_ci(per_user, ["system"], ["recall"], replicates=0)
    with pytest.raises(ValueError, match="must not contain 'system'"):
        paired_difference_ci(per_user, "s", "t", ["system"], ["recall"])
