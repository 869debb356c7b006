"""Blend the candidate sources into one scored, explained, filtered and capped list per user.

Scores of different sources live on different scales (ALS dot products, cosines), so each source
is min-max normalised within the user's own candidates of that source; a candidate missing from a
source's top-K gets that source's minimum (0 after normalising: it ranked below the K-th). A cold
item's collaborative score is a *predicted* ALS score (user factors x factors regressed from its
content), so it is put on the user's ALS candidates' scale instead of its own: it ranks where its
predicted factors place it among the warm products (a separate min-max would lift the best cold
product of every user to the top of the ALS scale, which the offline evaluation showed costs warm
recall without finding more cold hits). The blend weight ``w = a_u * b_i`` (see
``config.RecommendConfig``) moves a pair from content to collaborative evidence as the user and
the item accumulate interactions.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.config import RecommendConfig
from hybridrec.hybrid.history import own_reason, verb

SOURCES = ("als", "content", "blend", "repeat", "popular")
_TITLE_CHARS = 60


def _normalised(col: str) -> Column:
    """Min-max of ``col`` within the user's candidates that have it; null (missing) → 0."""
    user = Window.partitionBy("user_id")
    lo, hi = F.min(col).over(user), F.max(col).over(user)
    return F.coalesce(
        F.when(hi > lo, (F.col(col) - lo) / (hi - lo)).when(F.col(col).isNotNull(), F.lit(1.0)), F.lit(0.0)
    )


def _on_als_scale(col: str) -> Column:
    """``col`` (a predicted ALS score of a cold item) on the user's ALS candidates' min-max scale,
    clipped to [0, 1]: a cold item ranks where its predicted factors put it among the warm ones.
    A user without ALS candidates falls back to min-max within the cold candidates."""
    user = Window.partitionBy("user_id")
    lo, hi = F.min("als_score").over(user), F.max("als_score").over(user)
    scaled = F.least(F.lit(1.0), F.greatest(F.lit(0.0), (F.col(col) - lo) / (hi - lo)))
    return F.when(hi > lo, F.coalesce(scaled, F.lit(0.0))).otherwise(_normalised(col))


def blend_candidates(
    als: DataFrame,
    content: DataFrame,
    cold: DataFrame,
    user_stats: DataFrame,
    item_stats: DataFrame,
    rc: RecommendConfig,
) -> DataFrame:
    """One row per (user_id, product_id) candidate with the blended ``score`` and its ``source``.

    ``als``: (user_id, product_id, als_score) for warm items; ``content``: (user_id, product_id,
    content_score, reason_product_id); ``cold``: (user_id, product_id, cold_score) for cold items;
    ``user_stats``: (user_id, n_items); ``item_stats``: (product_id, n_users) of warm items.
    """
    union = (
        als.select("user_id", "product_id", "als_score")
        .unionByName(
            content.select("user_id", "product_id", "content_score", "reason_product_id"), allowMissingColumns=True
        )
        .unionByName(cold.select("user_id", "product_id", "cold_score"), allowMissingColumns=True)
    )
    merged = union.groupBy("user_id", "product_id").agg(
        F.max("als_score").alias("als_score"),
        F.max("content_score").alias("content_score"),
        F.max("cold_score").alias("cold_score"),
        F.max("reason_product_id").alias("reason_product_id"),
    )
    scored = (
        merged.join(user_stats, "user_id", "inner")
        .join(item_stats, "product_id", "left")
        .withColumn("als_n", _normalised("als_score"))
        .withColumn("content_n", _normalised("content_score"))
        .withColumn("cold_n", _on_als_scale("cold_score"))
    )
    warm = F.coalesce(F.col("n_users"), F.lit(0)) > 0
    a_u = F.col("n_items") / (F.col("n_items") + F.lit(rc.user_shrinkage))
    b_i = F.when(warm, F.col("n_users") / (F.col("n_users") + F.lit(rc.item_shrinkage))).otherwise(
        F.lit(rc.cold_item_weight)
    )
    w = a_u * b_i
    collab = F.when(warm, F.col("als_n")).otherwise(F.col("cold_n"))
    has_collab = F.col("als_score").isNotNull() | F.col("cold_score").isNotNull()
    has_content = F.col("content_score").isNotNull()
    source = F.when(has_collab & has_content, "blend").when(has_collab, "als").otherwise("content")
    return scored.select(
        "user_id",
        "product_id",
        (w * collab + (F.lit(1.0) - w) * F.col("content_n")).cast("double").alias("score"),
        source.alias("source"),
        F.when(has_content, F.col("reason_product_id")).alias("reason_product_id"),
        (~warm).alias("cold_item"),
        F.lit(None).cast("string").alias("reason"),
    )


def explain(candidates: DataFrame, products: DataFrame, history: DataFrame) -> DataFrame:
    """Fill the null ``reason`` of blended rows (rows that carry one, e.g. popular, keep it) from
    product titles/categories and the user's history (for the verb): "similar to <title> you
    viewed", "you viewed this", "new in <category>", "liked by shoppers with similar taste".
    Run it on the final top-N rows: it joins titles and history per row."""
    titles = products.select(
        F.col("product_id").alias("reason_product_id"),
        F.when(F.length("title") > _TITLE_CHARS, F.concat(F.substring("title", 1, _TITLE_CHARS - 1), F.lit("…")))
        .otherwise(F.col("title"))
        .alias("_title"),
    )
    verbs = history.select(
        "user_id",
        F.col("product_id").alias("reason_product_id"),
        verb(F.col("event")).alias("_verb"),
        own_reason(F.col("event")).alias("_own"),
    )
    cats = products.select("product_id", F.col("category").alias("_category"))
    df = (
        candidates.join(titles, "reason_product_id", "left")
        .join(verbs, ["user_id", "reason_product_id"], "left")
        .join(cats, "product_id", "left")
    )
    similar = F.concat(
        F.lit("similar to "),
        F.coalesce(F.col("_title"), F.col("reason_product_id")),
        F.lit(" you "),
        F.coalesce(F.col("_verb"), F.lit("viewed")),
    )
    same = F.coalesce(F.col("_own"), F.lit("you viewed this"))
    content_reason = F.when(F.col("reason_product_id") == F.col("product_id"), same).otherwise(similar)
    reason = (
        F.when(F.col("reason_product_id").isNotNull() & F.col("cold_item"), F.concat(F.lit("new: "), similar))
        .when(F.col("reason_product_id").isNotNull(), content_reason)
        .when(F.col("cold_item") & F.col("_category").isNotNull(), F.concat(F.lit("new in "), F.col("_category")))
        .when(F.col("cold_item"), F.lit("new arrival"))
        .otherwise(F.lit("liked by shoppers with similar taste"))
    )
    return df.withColumn("reason", F.coalesce(F.col("reason"), reason)).drop(
        "_title", "_verb", "_own", "_category", "cold_item"
    )


def cap_and_rank(
    candidates: DataFrame,
    excluded: DataFrame,
    categories: DataFrame,
    top_n: int,
    max_per_category: int | None,
) -> DataFrame:
    """Drop excluded (user_id, product_id) pairs (``recommend.exclude``) and duplicate products,
    keep at most ``max_per_category`` per category (a product without category is its own group;
    None = no cap), rank by score (ties: product_id) and keep ``top_n``. Adds ``category`` and
    ``rank``."""
    order = [F.col("score").desc(), F.col("product_id")]
    df = candidates.join(excluded.select("user_id", "product_id"), ["user_id", "product_id"], "left_anti")
    df = df.withColumn("_dup", F.row_number().over(Window.partitionBy("user_id", "product_id").orderBy(*order)))
    df = (
        df.filter(F.col("_dup") == 1)
        .drop("_dup")
        .join(categories.select("product_id", "category"), "product_id", "left")
    )
    if max_per_category is not None:
        group = F.coalesce(F.col("category"), F.concat(F.lit("\u0000"), F.col("product_id")))
        df = df.withColumn("_in_cat", F.row_number().over(Window.partitionBy("user_id", group).orderBy(*order)))
        df = df.filter(F.col("_in_cat") <= max_per_category).drop("_in_cat")
    df = df.withColumn("rank", F.row_number().over(Window.partitionBy("user_id").orderBy(*order)).cast("int"))
    return df.filter(F.col("rank") <= top_n)
