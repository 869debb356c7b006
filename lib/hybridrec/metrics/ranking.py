"""Ranking metrics at K for top-K recommendations: Precision, Recall, NDCG, MAP and catalog coverage.

Why two implementations: the plain-Python functions are the definition (small, readable, unit
tested against a hand-computed example), and ``ranking_metrics`` computes the same figures over a
DataFrame with one row per user, so that evaluation never collects users to the driver: in one
aggregation of SQL array expressions, or through Spark's ``RankingEvaluator`` (one pass per
metric). Tests check that all three agree.

Definitions (binary relevance; ``rec`` = the user's ranked recommendations without repeats,
``rel`` = the set of relevant items, ``hit_i`` = 1 when ``rec[i]`` is in ``rel``, i from 1):

- Precision@K = (sum of hit_i, i <= K) / K   (K even when fewer than K items were recommended)
- Recall@K    = (sum of hit_i, i <= K) / |rel|
- NDCG@K      = DCG / IDCG with DCG = sum_{i<=K} hit_i / log2(i + 1) and
                IDCG = sum_{i <= min(K, |rel|)} 1 / log2(i + 1)
- AP@K        = sum_{i<=K} hit_i * Precision@i / min(K, |rel|); MAP@K is its mean
- Coverage@K  = distinct items in anybody's top K / catalog size

These are Spark's ``RankingMetrics`` definitions (``precisionAt``, ``recallAt``, ``ndcgAt``,
``meanAveragePrecisionAt``). A user with no relevant item scores 0 on every metric (Spark warns);
callers leave such users out, since they say nothing about the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

METRICS = ("precision", "recall", "ndcg", "map")
# hybridrec name -> RankingEvaluator metricName
_SPARK_METRIC = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


_INTEGER_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def metric_name(metric: str, k: int) -> str:
    """The key a metric is reported under, e.g. ``ndcg@10``."""
    return f"{metric}@{k}"


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _hits(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> list[int]:
    _check_k(k)
    rel = set(relevant)
    return [1 if item in rel else 0 for item in list(recommended)[:k]]


def precision_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the K recommendation slots that hold a relevant item."""
    return sum(_hits(recommended, relevant, k)) / k


def recall_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant items found in the top K."""
    n_rel = len(set(relevant))
    return sum(_hits(recommended, relevant, k)) / n_rel if n_rel else 0.0


def ndcg_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Discounted hits over the best possible discounted hits (binary relevance)."""
    n_rel = len(set(relevant))
    if not n_rel:
        return 0.0
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(_hits(recommended, relevant, k)))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(k, n_rel)))
    return dcg / idcg


def average_precision_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Precision at each hit's position, summed, over min(K, |relevant|)."""
    n_rel = len(set(relevant))
    if not n_rel:
        return 0.0
    total, found = 0.0, 0
    for i, h in enumerate(_hits(recommended, relevant, k)):
        if h:
            found += 1
            total += found / (i + 1)
    return total / min(k, n_rel)


def catalog_coverage(recommendations: Iterable[Sequence[Hashable]], catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in at least one user's top K."""
    _check_k(k)
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be at least 1, got {catalog_size}")
    shown = {item for rec in recommendations for item in list(rec)[:k]}
    return len(shown) / catalog_size


def mean_metrics(
    users: Iterable[tuple[Sequence[Hashable], Collection[Hashable]]],
    k: int,
    catalog_size: int | None = None,
) -> dict[str, float]:
    """Mean Precision/Recall/NDCG/AP at K over (recommended, relevant) pairs, plus coverage.

    The same keys as ``ranking_metrics``; the reference the Spark path is tested against.
    """
    pairs = list(users)
    fns = {
        "precision": precision_at_k,
        "recall": recall_at_k,
        "ndcg": ndcg_at_k,
        "map": average_precision_at_k,
    }
    n = len(pairs)
    out = {metric_name(m, k): (sum(fn(rec, rel, k) for rec, rel in pairs) / n if n else 0.0) for m, fn in fns.items()}
    out["users"] = float(n)
    if catalog_size is not None:
        out[metric_name("coverage", k)] = catalog_coverage((rec for rec, _ in pairs), catalog_size, k)
    return out


def ranking_metrics(
    df: DataFrame,
    k: int,
    recommended_col: str = "recommended",
    relevant_col: str = "relevant",
    catalog_size: int | None = None,
    method: str = "sql",
) -> dict[str, float]:
    """Mean ranking metrics at ``k`` over a DataFrame with one row per evaluated user.

    ``recommended_col``: the user's ranked recommendations (array of integer item ids, best
    first; null = nothing recommended); ``relevant_col``: the relevant items (array of integer
    ids, not empty). Returns ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``users`` and,
    with ``catalog_size``, ``coverage@k``.

    ``method``: ``sql`` computes the four means in one aggregation with SQL array functions (one
    pass, the default); ``evaluator`` asks Spark's ``RankingEvaluator`` once per metric (four
    passes over the cached rows; what the tests check ``sql`` against). Integer ids because the
    evaluator takes double arrays, which hold integers exactly (ALS indices are integers anyway).
    """
    _check_k(k)
    if method not in ("sql", "evaluator"):
        raise ValueError(f"method must be sql or evaluator, got {method!r}")
    rows = df.select(
        F.coalesce(F.slice(F.col(recommended_col), 1, k), F.array().cast("array<int>")).alias("_rec"),
        F.col(relevant_col).alias("_rel"),
    )
    for name, column in ((recommended_col, "_rec"), (relevant_col, "_rel")):
        dtype = rows.schema[column].dataType
        if not (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _INTEGER_TYPES)):
            raise ValueError(
                f"{name} must be an array of integer item ids (map ids to ALS indices first), "
                f"got {dtype.simpleString()}"
            )
    if catalog_size is not None and catalog_size < 1:
        raise ValueError(f"catalog_size must be at least 1, got {catalog_size}")
    rows = rows.select(
        F.col("_rec").cast("array<long>").alias("_rec"),
        F.array_distinct(F.col("_rel").cast("array<long>")).alias("_rel"),
    ).persist()
    try:
        out = _sql_means(rows, k) if method == "sql" else _evaluator_means(rows, k)
        if catalog_size is not None:
            shown = rows.select(F.explode("_rec").alias("i")).distinct().count()
            out[metric_name("coverage", k)] = shown / catalog_size
    finally:
        rows.unpersist()
    return out


def ranking_columns(rec: Column, rel: Column, k: int) -> dict[str, Column]:
    """Per-user Precision/Recall/NDCG/AP at ``k`` as column expressions (keys of ``METRICS``).

    The definitions of the module docstring as SQL array expressions, so that a caller can keep one
    value per user (``evaluation.per_user``) or average them (``ranking_metrics``) from one source.
    ``rec``: the ranked list already cut to ``k`` (array, not null: coalesce to an empty array);
    ``rel``: the relevant items without repeats (``array_distinct``), of the same element type.
    A user with no relevant item scores 0, as in the plain-Python functions.
    """
    _check_k(k)
    n_rel = F.size(rel)
    hit = lambda x: F.array_contains(rel, x)  # noqa: E731 - reads as the docstring's hit_i
    hits = F.aggregate(F.transform(rec, lambda x: F.when(hit(x), 1).otherwise(0)), F.lit(0), lambda a, h: a + h)
    dcg = F.aggregate(
        F.transform(rec, lambda x, i: F.when(hit(x), 1.0 / F.log2(i + 2)).otherwise(0.0)),
        F.lit(0.0),
        lambda a, g: a + g,
    )
    ideal_n = F.least(F.lit(k), n_rel)
    idcg = F.aggregate(
        F.transform(F.array_repeat(F.lit(0), ideal_n), lambda _, i: 1.0 / F.log2(i + 2)),
        F.lit(0.0),
        lambda a, g: a + g,
    )
    # Precision at each hit: hits among the first i+1 items, over i+1.
    precisions = F.transform(
        rec,
        lambda x, i: F.when(hit(x), F.size(F.filter(F.slice(rec, 1, i + 1), hit)) / (i + 1)).otherwise(0.0),
    )
    ap = F.aggregate(precisions, F.lit(0.0), lambda a, p: a + p) / ideal_n
    has_rel = n_rel > 0
    return {
        "precision": hits / F.lit(k),
        "recall": F.when(has_rel, hits / n_rel).otherwise(0.0),
        "ndcg": F.when(has_rel, dcg / idcg).otherwise(0.0),
        "map": F.when(has_rel, ap).otherwise(0.0),
    }


def _sql_means(rows: DataFrame, k: int) -> dict[str, float]:
    """``ranking_columns`` averaged over the users in one pass."""
    columns = ranking_columns(F.col("_rec"), F.col("_rel"), k)
    row = rows.agg(
        *(F.avg(columns[m]).alias(m) for m in METRICS),
        F.count(F.lit(1)).alias("users"),
    ).first()
    out = {metric_name(m, k): float(row[m] or 0.0) for m in METRICS}
    out["users"] = float(row["users"])
    return out


def _evaluator_means(rows: DataFrame, k: int) -> dict[str, float]:
    """The same means through Spark's ``RankingEvaluator`` (one pass per metric)."""
    from pyspark.ml.evaluation import RankingEvaluator

    scored = rows.select(
        F.col("_rec").cast("array<double>").alias("prediction"),
        F.col("_rel").cast("array<double>").alias("label"),
    )
    n_users = scored.count()
    out: dict[str, float] = {}
    for metric, spark_name in _SPARK_METRIC.items():
        value = float(RankingEvaluator(metricName=spark_name, k=k).evaluate(scored)) if n_users else 0.0
        out[metric_name(metric, k)] = value
    out["users"] = float(n_users)
    return out
