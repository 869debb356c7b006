"""Per-user evaluation rows: one row per (system, user) with ranking and beyond-accuracy metrics.

Why per user and not straight to means: confidence intervals (``evaluation.bootstrap``) resample
users, segments are sets of users, and paired comparisons match the same user across systems; all
of that needs the per-user values. They stay a DataFrame: nothing here collects users to the driver.

Inputs (string ids):

- ``recs``: ``system, user_id, rank, product_id``, the ranked lists (rank 1 = best). A product
  listed twice for the same user keeps its best rank; each list is cut to its first ``k`` products.
- ``relevant``: ``user_id, product_id``, what each user did after the cutoff (repeats are ignored).
- ``items``: ``product_id, category, train_users`` where ``train_users`` counts the training users
  who interacted with the product (0 or absent for a cold product), for novelty and diversity.

Who is evaluated: every user with at least one relevant product, in every system; a system with no
list for such a user scores 0 on the ranking metrics (the user asked and got nothing). Users
without relevant products are left out (they say nothing about a ranking: ``metrics.ranking``).

Output columns: ``system, user_id, n_recs, n_relevant, hits, precision, recall, ndcg, ap,
n_categories, novelty`` with the formulas of ``metrics.ranking`` (``ranking_columns``, shared
with ``ranking_metrics``; ``ap`` is AP@K, whose mean is MAP@K) and ``metrics.beyond_accuracy``
(``novelty`` is null for an empty list). Coverage is a property of a system, not of a user:
``coverage``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.metrics.beyond_accuracy import novelty_column
from hybridrec.metrics.ranking import _check_k, ranking_columns

RECS_COLUMNS = ("system", "user_id", "rank", "product_id")
RELEVANT_COLUMNS = ("user_id", "product_id")
ITEMS_COLUMNS = ("product_id", "category", "train_users")
METRIC_COLUMNS = ("precision", "recall", "ndcg", "ap", "n_categories", "novelty")


def _require(df: DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")


def top_k_rows(recs: DataFrame, k: int, group_cols: Sequence[str] = ("system", "user_id")) -> DataFrame:
    """Each list's first ``k`` distinct products: ``group_cols…, product_id, pos`` (pos from 1).

    A repeated product keeps its best rank; ties in rank are broken by product id so that the cut
    is deterministic.
    """
    _check_k(k)
    best = recs.groupBy(*group_cols, "product_id").agg(F.min("rank").alias("rank"))
    order = Window.partitionBy(*group_cols).orderBy(F.col("rank"), F.col("product_id"))
    return (
        best.withColumn("pos", F.row_number().over(order))
        .filter(F.col("pos") <= k)
        .select(*group_cols, "product_id", "pos")
    )


def per_user_metrics(
    recs: DataFrame,
    relevant: DataFrame,
    items: DataFrame,
    k: int,
    n_train_users: int,
    systems: Sequence[str] | None = None,
) -> DataFrame:
    """The per-(system, user) table of the module docstring.

    ``n_train_users``: users with training interactions (``U`` of the novelty definition).
    ``systems``: the systems to evaluate (default: those in ``recs``, a handful of names); a system
    named here without any list scores 0 for every user.
    """
    _check_k(k)
    for df, cols, name in (
        (recs, RECS_COLUMNS, "recs"),
        (relevant, RELEVANT_COLUMNS, "relevant"),
        (items, ITEMS_COLUMNS, "items"),
    ):
        _require(df, cols, name)
    spark = recs.sparkSession
    if systems is None:
        systems = sorted(r[0] for r in recs.select("system").distinct().collect())
    if not systems:
        raise ValueError("no systems to evaluate: recs is empty and no systems were named")

    top = top_k_rows(recs.select(*RECS_COLUMNS), k).join(
        items.select("product_id", "category", "train_users"), "product_id", "left"
    )
    lists = top.groupBy("system", "user_id").agg(
        F.transform(F.array_sort(F.collect_list(F.struct("pos", "product_id"))), lambda s: s["product_id"]).alias(
            "rec"
        ),
        F.count_distinct("category").alias("n_categories"),
        F.avg(novelty_column(F.col("train_users"), n_train_users)).alias("novelty"),
    )
    rel = relevant.select(*RELEVANT_COLUMNS).dropna().groupBy("user_id").agg(F.collect_set("product_id").alias("rel"))
    system_names = spark.createDataFrame([(s,) for s in systems], "system string")
    rows = (
        rel.crossJoin(F.broadcast(system_names))
        .join(lists, ["system", "user_id"], "left")
        .withColumn("rec", F.coalesce(F.col("rec"), F.array().cast("array<string>")))
    )
    cols = ranking_columns(F.col("rec"), F.col("rel"), k)
    return rows.select(
        "system",
        "user_id",
        F.size("rec").alias("n_recs"),
        F.size("rel").alias("n_relevant"),
        F.size(F.filter("rec", lambda x: F.array_contains(F.col("rel"), x))).alias("hits"),
        cols["precision"].alias("precision"),
        cols["recall"].alias("recall"),
        cols["ndcg"].alias("ndcg"),
        cols["map"].alias("ap"),
        F.coalesce(F.col("n_categories"), F.lit(0)).cast("int").alias("n_categories"),
        F.col("novelty"),
    )


def coverage(recs: DataFrame, k: int, catalog_size: int, group_cols: Sequence[str] = ("system",)) -> pd.DataFrame:
    """Catalog coverage at ``k`` per group (e.g. system, or system and segment), small, on the driver.

    Columns: ``group_cols…, items_shown, catalog_size, coverage`` with coverage = distinct products
    in the groups' top-``k`` lists / ``catalog_size`` (``ranking.catalog_coverage``). ``recs`` needs
    ``user_id, rank, product_id`` and the group columns.
    """
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be at least 1, got {catalog_size}")
    group_cols = list(group_cols)
    _require(recs, [*group_cols, "user_id", "rank", "product_id"], "recs")
    top = top_k_rows(recs, k, [*group_cols, "user_id"])
    out = (
        top.groupBy(*group_cols)
        .agg(F.count_distinct("product_id").alias("items_shown"))
        .toPandas()
        .sort_values(group_cols, ignore_index=True)
    )
    out["catalog_size"] = catalog_size
    out["coverage"] = out["items_shown"] / catalog_size
    return out
