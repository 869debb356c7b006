"""The learned stage's candidate pool: every source's candidates for every active user, one row
per (user, product), each source's score kept as a column (null where the source did not
propose the pair), so the ranker learns how much each source is worth instead of a hand-set blend.

Sources (``SOURCE_SCORES``):

- ``als``: the night's ALS top ``recommend.als_candidates`` (users with factors)
- ``content``: the content profile's nearest products (``recommend.content_candidates``)
- ``cold``: cold products scored by their predicted ALS factors (``recommend.cold_candidates``)
- ``popular``: the ``ranker.popular_candidates`` most popular products of the recent window
  (``recommend.popular_days``), proposed to every user
- ``repeat``: the user's own ``ranker.repeat_candidates`` strongest products, when
  ``recommend.exclude`` lets them back into a list (Online Retail: customers re-order)
- ``co``: co-interaction neighbours of the user's latest products (``co_interaction``)
- ``lexical``: title/description neighbours (``lexical``, the similar items' TF-IDF) of the user's
  ``ranker.lexical_recent`` latest products, their cosines summed; the reason is the latest
  product the candidate's title is closest to

Pairs ``recommend.exclude`` forbids are removed here, before anything is ranked or cut.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.config import RankerConfig, RecommendConfig
from hybridrec.hybrid import popular
from hybridrec.hybrid.co_interaction import co_candidates, item_neighbours, neighbour_candidates

# source name → its score column in the pool
SOURCE_SCORES = {
    "als": "als_score",
    "content": "content_score",
    "cold": "cold_score",
    "popular": "popular_score",
    "repeat": "repeat_score",
    "co": "co_score",
    "lexical": "lexical_score",
}


def candidate_pool(
    *,
    users: DataFrame,
    history: DataFrame,
    usable_events: DataFrame,
    reference: dt.datetime,
    products: DataFrame,
    als: DataFrame,
    content: DataFrame,
    cold: DataFrame,
    rc: RecommendConfig,
    kc: RankerConfig,
    lexical: DataFrame | None = None,
) -> DataFrame:
    """(user_id, product_id, <source>_score..., reason_product_id) for ``users`` (user_id).

    ``history``: ``history.user_item_history`` rows with ``h_rank`` and ``excluded``;
    ``als``/``content``/``cold``: the ``NightScores`` frames; ``usable_events`` and ``reference``
    (where the data ends) make the popularity list; ``lexical``: (product_id, other_id, sim), each
    product's ``ranker.lexical_neighbours`` title neighbours (no lexical source when None).
    """
    user_ids = users.select("user_id")
    parts = [
        als.select("user_id", "product_id", "als_score"),
        content.select("user_id", "product_id", "content_score", "reason_product_id"),
        cold.select("user_id", "product_id", "cold_score"),
    ]
    if kc.popular_candidates > 0:
        pop = popular.overall_popular(
            popular.popularity(usable_events, reference, rc.popular_days, products),
            kc.popular_candidates,
        )
        parts.append(
            user_ids.crossJoin(F.broadcast(pop.select("product_id", F.col("pop_norm").alias("popular_score"))))
        )
    if kc.co_neighbours > 0:
        neighbours = item_neighbours(history, kc.co_per_user, kc.co_neighbours)
        parts.append(co_candidates(history, neighbours, kc.co_recent))
    if lexical is not None and kc.lexical_neighbours > 0:
        parts.append(neighbour_candidates(history, lexical, kc.lexical_recent, "lexical_score"))
    if kc.repeat_candidates > 0:
        parts.append(
            history.filter(~F.col("excluded") & (F.col("h_rank") <= kc.repeat_candidates)).select(
                "user_id", "product_id", F.col("weight").alias("repeat_score")
            )
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=True)
    merged = (
        union.join(user_ids, "user_id", "left_semi")
        .groupBy("user_id", "product_id")
        .agg(
            # A source switched off (0 candidates) has no column in the union: all null.
            *(
                (F.max(c) if c in union.columns else F.lit(None).cast("double")).alias(c)
                for c in SOURCE_SCORES.values()
            ),
            F.max("reason_product_id").alias("reason_product_id"),
        )
    )
    excluded = history.filter(F.col("excluded")).select("user_id", "product_id")
    return merged.join(excluded, ["user_id", "product_id"], "left_anti").join(
        products.select("product_id"), "product_id", "left_semi"
    )


def present(col: str) -> F.Column:
    """The source proposed the pair: its score is neither null (pool) nor NaN (features)."""
    return F.col(col).isNotNull() & ~F.isnan(F.col(col))


def source_recall(pool: DataFrame, labels: DataFrame) -> dict[str, float]:
    """Share of the labelled (user, product) pairs that each source, and the pool as a whole,
    contains: the ceiling any ranking of these candidates can reach. ``pool``: candidate or
    feature rows; ``labels``: (user_id, product_id) of what users did next, counted for the users
    the pool covers."""
    judged = labels.join(pool.select("user_id").distinct(), "user_id", "left_semi")
    hit = judged.join(pool.withColumn("_in", F.lit(1)), ["user_id", "product_id"], "left")
    aggs = [F.count(F.lit(1)).alias("n"), F.count(F.col("_in")).alias("pool")]
    aggs += [F.count(F.when(present(c), 1)).alias(s) for s, c in SOURCE_SCORES.items()]
    row = hit.agg(*aggs).first()
    n = int(row["n"] or 0) if row is not None else 0
    names = (*SOURCE_SCORES, "pool")
    if row is None or n == 0:
        return dict.fromkeys(names, 0.0)
    return {name: round(int(row[name]) / n, 4) for name in names}
