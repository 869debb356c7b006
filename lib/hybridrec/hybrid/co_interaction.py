"""Co-interaction candidates: products often bought or viewed by the same people as what a user
did last ("customers who bought this also bought"), the item-to-item source of the ranker's pool.

Item neighbours come from each user's ``per_user`` strongest products (``h_rank``; a cap so one
heavy user adds at most per_user² pairs): every pair of them counts once per user, and the count is
normalised by ``sqrt(n_i * n_j)`` (the cosine of the two products' user sets, over the kept pairs),
so best sellers do not neighbour everything. Each product keeps its ``top_m`` neighbours. A user's
candidates are the neighbours of their ``recent`` most recent products, scored by the sum of the
cosines (a product near several of them ranks higher). All of it is Spark joins and windows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.hybrid.indexing import dense_index


def item_neighbours(history: DataFrame, per_user: int, top_m: int) -> DataFrame:
    """(product_id, other_id, co_cosine): each product's ``top_m`` co-interaction neighbours.

    The self-join runs on dense int product indexes and counts each unordered pair once (the
    smaller index first), then mirrors the counts: half the pair rows of joining every ordered
    pair, on keys that shuffle and hash cheaper than the ids (the same counts and cosines, and
    the same ties, since the indexes follow the ids' order)."""
    kept = history.filter(F.col("h_rank") <= per_user).select("user_id", "product_id")
    ids = dense_index(kept, "product_id", "_i")
    indexed = kept.join(F.broadcast(ids), "product_id").select("user_id", "_i")
    n = indexed.groupBy("_i").agg(F.count(F.lit(1)).alias("_n"))
    once = (
        indexed.alias("a")
        .join(indexed.alias("b"), "user_id")
        .filter(F.col("a._i") < F.col("b._i"))
        .groupBy(F.col("a._i").alias("i"), F.col("b._i").alias("j"))
        .agg(F.count(F.lit(1)).alias("_co"))
    )
    pairs = once.unionByName(once.select(F.col("j").alias("i"), F.col("i").alias("j"), "_co"))
    scored = (
        pairs.join(F.broadcast(n.select(F.col("_i").alias("i"), "_n")), "i")
        .join(F.broadcast(n.select(F.col("_i").alias("j"), F.col("_n").alias("_m"))), "j")
        .withColumn("co_cosine", F.col("_co") / F.sqrt(F.col("_n") * F.col("_m")))
    )
    order = Window.partitionBy("i").orderBy(F.col("co_cosine").desc(), F.col("j"))
    top = scored.withColumn("_r", F.row_number().over(order)).filter(F.col("_r") <= top_m)
    return (
        top.join(F.broadcast(ids.select(F.col("_i").alias("i"), "product_id")), "i")
        .join(F.broadcast(ids.select(F.col("_i").alias("j"), F.col("product_id").alias("other_id"))), "j")
        .select("product_id", "other_id", F.col("co_cosine").cast("double"))
    )


def co_candidates(history: DataFrame, neighbours: DataFrame, recent: int) -> DataFrame:
    """(user_id, product_id, co_score): neighbours of each user's ``recent`` latest products,
    their cosines summed (the user's own products are left in: the pool's exclusion rule decides)."""
    sims = neighbours.select("product_id", "other_id", F.col("co_cosine").alias("sim"))
    return neighbour_candidates(history, sims, recent, "co_score").drop("reason_product_id")


def neighbour_candidates(history: DataFrame, neighbours: DataFrame, recent: int, score: str) -> DataFrame:
    """(user_id, product_id, ``score``, reason_product_id): the item neighbours (product_id,
    other_id, sim) of each user's ``recent`` latest products, their sims summed; the reason is the
    latest product the candidate is most similar to."""
    latest = Window.partitionBy("user_id").orderBy(F.col("last_ts").desc(), F.col("product_id"))
    ranked = history.withColumn("_r", F.row_number().over(latest))
    anchors = ranked.filter(F.col("_r") <= recent).select("user_id", "product_id")
    best = F.struct(F.col("sim"), F.col("product_id"))
    return (
        anchors.join(neighbours, "product_id")
        .groupBy("user_id", F.col("other_id").alias("product_id"))
        .agg(F.sum("sim").cast("double").alias(score), F.max(best).getField("product_id").alias("reason_product_id"))
    )
