"""Popularity lists: the fallback for users with too little data and for lists left short.

Popularity of a product = the sum of its events' weights over the last ``popular_days`` of the data
(ending at ``reference``, the last usable event before the night: ``confidence.data_end``), each
halved every ``popular_days / 2`` (recent interest counts more), so a product that was hot two
months ago does not lead tonight's lists; ``popular_days: null`` = all history, undecayed (a log
without a live feed, where "recent" carries little).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.hybrid.history import decayed_weight
from hybridrec.run_dates import utc_timestamp


def popularity(events: DataFrame, reference: dt.datetime, days: float | None, products: DataFrame) -> DataFrame:
    """(product_id, category, pop) for products with events in the window (pop > 0)."""
    if days is None:
        pop = events.groupBy("product_id").agg(F.sum("weight").alias("pop"))
    else:
        since = reference - dt.timedelta(days=days)
        recent = events.filter(F.col("ts") >= utc_timestamp(since))
        pop = recent.groupBy("product_id").agg(F.sum(decayed_weight(reference, days / 2.0)).alias("pop"))
    return pop.join(products.select("product_id", "category"), "product_id", "inner").filter(F.col("pop") > 0)


def category_popular(pop: DataFrame, per_category: int) -> DataFrame:
    """The ``per_category`` most popular products of each category, ``pop_norm`` = pop / category max."""
    order = Window.partitionBy("category").orderBy(F.col("pop").desc(), F.col("product_id"))
    top = Window.partitionBy("category")
    return (
        pop.filter(F.col("category").isNotNull())
        .withColumn("pop_rank", F.row_number().over(order))
        .filter(F.col("pop_rank") <= per_category)
        .withColumn("pop_norm", F.col("pop") / F.max("pop").over(top))
    )


def overall_popular(pop: DataFrame, n: int) -> DataFrame:
    """The ``n`` most popular products overall with ``pop_norm`` (a small table: n rows)."""
    top = pop.orderBy(F.col("pop").desc(), F.col("product_id")).limit(n)
    peak = top.agg(F.max("pop").alias("_peak"))
    return top.crossJoin(peak).withColumn("pop_norm", F.col("pop") / F.col("_peak")).drop("_peak")


def user_categories(history: DataFrame, products: DataFrame) -> DataFrame:
    """(user_id, category, cat_weight): how much of each category a user touched."""
    return (
        history.join(products.select("product_id", "category"), "product_id", "inner")
        .filter(F.col("category").isNotNull())
        .groupBy("user_id", "category")
        .agg(F.sum("weight").alias("cat_weight"))
    )


def popular_fill(
    users: DataFrame,
    touched: DataFrame,
    by_category: DataFrame,
    overall: DataFrame,
) -> DataFrame:
    """Fallback candidates for ``users`` (user_id): popular in the categories they touched, then
    popular overall. Scores sit below every blended score (blended ones are in [0, 1]): touched
    categories in (-1, -0.5], overall in (-2, -1.5], so a list is topped up, never reordered.

    Columns: user_id, product_id, score, reason, source ('popular'), reason_product_id, cold_item.
    """
    share = touched.join(users, "user_id", "left_semi").withColumn(
        "cat_share", F.col("cat_weight") / F.max("cat_weight").over(Window.partitionBy("user_id"))
    )
    in_category = share.join(by_category, "category", "inner").select(
        "user_id",
        "product_id",
        (F.lit(-1.0) + 0.25 * F.col("cat_share") + 0.25 * F.col("pop_norm")).alias("score"),
        F.concat(F.lit("popular in "), F.col("category")).alias("reason"),
    )
    everywhere = (
        users.select("user_id")
        .crossJoin(F.broadcast(overall.select("product_id", "pop_norm")))
        .select(
            "user_id",
            "product_id",
            (F.lit(-2.0) + 0.5 * F.col("pop_norm")).alias("score"),
            F.lit("popular right now").alias("reason"),
        )
    )
    return in_category.unionByName(everywhere).select(
        "*",
        F.lit("popular").alias("source"),
        F.lit(None).cast("string").alias("reason_product_id"),
        F.lit(False).alias("cold_item"),
    )
