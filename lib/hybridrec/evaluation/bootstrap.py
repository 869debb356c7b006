"""Confidence intervals by bootstrap over users, computed in Spark (Poisson bootstrap).

Why Poisson and why hashed: the classic bootstrap draws n users with replacement, which needs all
users in one place. The Poisson bootstrap gives every user, in every replicate ``b``, an independent
weight ``w ~ Poisson(1)`` (how many times the user is "drawn"); for large n it is equivalent, and
each row can compute its weights alone, so the replicates are one ``explode`` and one ``groupBy``
over the per-user table (Chamandy et al., "Estimating uncertainty for massive data streams",
Google 2012). The weight is a function of ``(user_id, b, seed)`` through a 64-bit hash, never of
row order or partitioning, so:

- the same user has the same weight in every system and segment of a replicate (a paired design:
  differences between systems measured on the same resampled users), and
- a re-run with the same seed gives the same intervals.

Driver side: only the ``groups × (replicates + 1)`` weighted sums come back, then the percentile
interval of the replicate means. Replicate -1 is the sample itself (weight 1 per user): its mean is
the point estimate and its weight sum the number of users. A replicate in which every user of a
group drew weight 0 has no mean and is left out (likely only for groups of a few users, whose
intervals mean little anyway). A null metric value (e.g. the novelty of an empty list) is left out
of that metric's means and counts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# P(X <= j) for X ~ Poisson(1), j = 0..17; beyond 17 the tail (< 6e-17) is below a double's step at 1.
POISSON1_CDF: tuple[float, ...] = tuple(
    math.exp(-1.0) * sum(1.0 / math.factorial(i) for i in range(j + 1)) for j in range(18)
)
_MANTISSA = 1 << 53
REPLICATE = "replicate"
SAMPLE = -1  # the replicate index of the sample itself


def poisson1_quantile(u: float) -> int:
    """The Poisson(1) draw for a uniform ``u`` in [0, 1) by inverting the CDF (reference of ``poisson1_weight``)."""
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must lie in [0, 1), got {u}")
    return min(bisect.bisect_right(POISSON1_CDF, u), len(POISSON1_CDF))


def uniform_hash(user: Column, replicate: Column, seed: int) -> Column:
    """A uniform in [0, 1) from xxhash64 of (user id as string, replicate, seed): its low 53 bits."""
    h = F.xxhash64(user.cast("string"), replicate.cast("int"), F.lit(int(seed)).cast("long"))
    return h.bitwiseAND(F.lit(_MANTISSA - 1)).cast("double") / F.lit(float(_MANTISSA))


def poisson1_weight(u: Column) -> Column:
    """Poisson(1) draw for the uniform column ``u``: the first j with u < P(X <= j)."""
    expr = F.when(u < F.lit(POISSON1_CDF[0]), F.lit(0))
    for j, c in enumerate(POISSON1_CDF[1:], start=1):
        expr = expr.when(u < F.lit(c), F.lit(j))
    return expr.otherwise(F.lit(len(POISSON1_CDF)))


def user_weight(user: Column, replicate: Column, seed: int) -> Column:
    """The bootstrap weight of a user in a replicate: 1 in replicate -1 (the sample), else Poisson(1)."""
    return F.when(replicate == F.lit(SAMPLE), F.lit(1)).otherwise(poisson1_weight(uniform_hash(user, replicate, seed)))


def _check(
    per_user: DataFrame,
    group_cols: Sequence[str],
    metric_cols: Sequence[str],
    user_col: str,
    replicates: int,
    level: float,
) -> None:
    missing = [c for c in (*group_cols, *metric_cols, user_col) if c not in per_user.columns]
    if missing:
        raise ValueError(f"per-user table lacks column(s) {', '.join(missing)}; it has {', '.join(per_user.columns)}")
    if not metric_cols:
        raise ValueError("name at least one metric column")
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1 (200 or more for a 95 % interval), got {replicates}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def replicate_sums(
    per_user: DataFrame,
    group_cols: Sequence[str],
    metric_cols: Sequence[str],
    replicates: int = 200,
    seed: int = 0,
    user_col: str = "user_id",
) -> DataFrame:
    """Per ``(group…, replicate)``: ``<m>__sum`` = Σ w·x and ``<m>__w`` = Σ w over users with x not null.

    Small (groups × (replicates + 1) rows), so the caller may collect it; rows with weight 0 are
    dropped before the shuffle.
    """
    _check(per_user, group_cols, metric_cols, user_col, replicates, 0.5)
    rep = F.col(REPLICATE)
    rows = per_user.select(
        *group_cols,
        F.col(user_col).alias("_user"),
        *(F.col(m).cast("double").alias(m) for m in metric_cols),
    ).withColumn(REPLICATE, F.explode(F.sequence(F.lit(SAMPLE), F.lit(replicates - 1))))
    rows = rows.withColumn("_w", user_weight(F.col("_user"), rep, seed)).filter(F.col("_w") > 0)
    aggs = []
    for m in metric_cols:
        aggs.append(F.sum(F.col("_w") * F.col(m)).alias(f"{m}__sum"))
        aggs.append(F.sum(F.when(F.col(m).isNotNull(), F.col("_w"))).alias(f"{m}__w"))
    return rows.groupBy(*group_cols, REPLICATE).agg(*aggs)


def summarise(
    sums: pd.DataFrame, group_cols: Sequence[str], metric_cols: Sequence[str], level: float = 0.95
) -> pd.DataFrame:
    """Replicate sums (``replicate_sums`` collected) → ``group…, metric, mean, lo, hi, n_users``.

    ``mean`` and ``n_users`` from the sample (replicate -1); ``lo``/``hi`` the ``(1 ± level)/2``
    percentiles (linear interpolation) of the replicate means. NaN where a group has no value.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    tail = (1.0 - level) / 2.0
    group_cols = list(group_cols)
    out: list[dict] = []
    keyed = sums.groupby(group_cols, dropna=False, sort=True) if group_cols else [((), sums)]
    for key, g in keyed:
        key = key if isinstance(key, tuple) else (key,)
        sample = g[g[REPLICATE] == SAMPLE]
        boot = g[g[REPLICATE] != SAMPLE]
        for m in metric_cols:
            w = np.nansum(sample[f"{m}__w"].to_numpy(dtype=float))
            mean = float(np.nansum(sample[f"{m}__sum"].to_numpy(dtype=float)) / w) if w > 0 else math.nan
            bw = boot[f"{m}__w"].to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = boot[f"{m}__sum"].to_numpy(dtype=float) / bw
            means = means[np.isfinite(means) & (bw > 0)]
            lo, hi = np.quantile(means, [tail, 1.0 - tail]) if len(means) else (math.nan, math.nan)
            out.append(
                {
                    **dict(zip(group_cols, key)),
                    "metric": m,
                    "mean": mean,
                    "lo": float(lo),
                    "hi": float(hi),
                    "n_users": int(w),
                }
            )
    return pd.DataFrame(out, columns=[*group_cols, "metric", "mean", "lo", "hi", "n_users"])


def bootstrap_ci(
    per_user: DataFrame,
    group_cols: Sequence[str],
    metric_cols: Sequence[str],
    replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
    user_col: str = "user_id",
) -> pd.DataFrame:
    """Mean and percentile bootstrap interval of each metric per group (e.g. segment, system).

    ``per_user``: one row per (group…, user). Returns a small pandas DataFrame
    ``group…, metric, mean, lo, hi, n_users``, sorted by group.
    """
    _check(per_user, group_cols, metric_cols, user_col, replicates, level)
    sums = replicate_sums(per_user, group_cols, metric_cols, replicates, seed, user_col).toPandas()
    return summarise(sums, group_cols, metric_cols, level)


def paired_difference_ci(
    per_user: DataFrame,
    system_a: str,
    system_b: str,
    group_cols: Sequence[str],
    metric_cols: Sequence[str],
    replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
    user_col: str = "user_id",
    system_col: str = "system",
) -> pd.DataFrame:
    """Interval of mean(a) − mean(b) over the users both systems were evaluated on, per group.

    Each user's difference ``x_a − x_b`` is bootstrapped with the user's weights, i.e. both means
    of a replicate use the same resampled users: user-to-user variation shared by the systems
    cancels, so the interval is what decides "a beats b". Identical systems give exactly 0 wide.
    Columns: ``group…, system_a, system_b, metric, mean, lo, hi, n_users``.
    """
    group_cols = list(group_cols)
    if system_col in group_cols:
        raise ValueError(f"group_cols must not contain {system_col!r}: the two systems are compared within a group")
    _check(per_user, [*group_cols, system_col], metric_cols, user_col, replicates, level)
    keys = [*group_cols, user_col]

    def side(name: str, tag: str) -> DataFrame:
        return per_user.filter(F.col(system_col) == name).select(
            *keys, *(F.col(m).cast("double").alias(f"{m}__{tag}") for m in metric_cols)
        )

    diffs = (
        side(system_a, "a")
        .join(side(system_b, "b"), keys, "inner")
        .select(*keys, *((F.col(f"{m}__a") - F.col(f"{m}__b")).alias(m) for m in metric_cols))
    )
    out = bootstrap_ci(diffs, group_cols, metric_cols, replicates, seed, level, user_col)
    out.insert(len(group_cols), "system_a", system_a)
    out.insert(len(group_cols) + 1, "system_b", system_b)
    return out
