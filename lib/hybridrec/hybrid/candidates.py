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

from pyspark.sql import Column, DataFrame, Window
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


# Sources whose candidates are ranked per user (``<source>_rank``): the others are one list for
# everybody (popular) or the user's own products (repeat).
RANKED_SOURCES = ("als", "content", "cold", "co", "lexical")

# The user's own history on a pair (``history.user_item_history``), carried by the pool's rows.
HISTORY_COLUMNS = ("hist_weight", "hist_events", "hist_last_ts")


def _tagged(df: DataFrame, source: str, score: str) -> DataFrame:
    """One source's candidates in the pool's long form: user_id, product_id, _src, _s, reason."""
    reason = F.col("reason_product_id") if "reason_product_id" in df.columns else F.lit(None).cast("string")
    return df.select(
        "user_id",
        "product_id",
        F.lit(source).alias("_src"),
        F.col(score).cast("double").alias("_s"),
        reason.alias("reason_product_id"),
    )


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
    depth: int | None = None,
) -> DataFrame:
    """(user_id, product_id, <source>_score..., <source>_rank..., reason_product_id,
    hist_weight, hist_events, hist_last_ts) for ``users`` (user_id).

    ``<source>_rank`` (``RANKED_SOURCES``): the pair's place among the user's candidates of that
    source that survive the exclusions (1 = highest score, ties by product id). ``hist_*``: the
    user's decayed weight, events and last event on the product (null: never interacted).

    ``history``: ``history.user_item_history`` rows with ``h_rank`` and ``excluded``;
    ``als``/``content``/``cold``: the ``NightScores`` frames; ``usable_events`` and ``reference``
    (where the data ends) make the popularity list; ``lexical``: (product_id, other_id, sim), each
    product's ``ranker.lexical_neighbours`` title neighbours (no lexical source when None);
    ``depth``: keep only the pairs among the user's ``depth`` best of at least one source (every
    source counts, popular and repeat included, ranked as above); a kept pair keeps every source's
    score and rank, so its features are the same as in the whole pool (None = the whole pool).

    Every source is stacked in one long frame with the user's history rows and partitioned by
    user once: the exclusions, the per-source ranks (one window over all sources) and the merge
    into one row per pair then run without another shuffle.
    """
    user_ids = users.select("user_id")
    parts = [
        _tagged(als, "als", "als_score"),
        _tagged(content, "content", "content_score"),
        _tagged(cold, "cold", "cold_score"),
    ]
    if kc.popular_candidates > 0:
        pop = popular.overall_popular(
            popular.popularity(usable_events, reference, rc.popular_days, products),
            kc.popular_candidates,
        )
        parts.append(_tagged(user_ids.crossJoin(F.broadcast(pop)), "popular", "pop_norm"))
    if kc.co_neighbours > 0:
        neighbours = item_neighbours(history, kc.co_per_user, kc.co_neighbours)
        parts.append(_tagged(co_candidates(history, neighbours, kc.co_recent), "co", "co_score"))
    if lexical is not None and kc.lexical_neighbours > 0:
        lex = neighbour_candidates(history, lexical, kc.lexical_recent, "lexical_score")
        parts.append(_tagged(lex, "lexical", "lexical_score"))
    if kc.repeat_candidates > 0:
        repeat = history.filter(~F.col("excluded") & (F.col("h_rank") <= kc.repeat_candidates))
        parts.append(_tagged(repeat, "repeat", "weight"))
    own = history.select(
        "user_id",
        "product_id",
        F.lit(None).cast("string").alias("_src"),  # not a candidate: the user's history on the pair
        F.col("excluded").alias("_excluded"),
        F.col("weight").alias("hist_weight"),
        F.col("n_events").alias("hist_events"),
        F.col("last_ts").alias("hist_last_ts"),
    )
    long = own
    for part in parts:
        long = long.unionByName(part, allowMissingColumns=True)
    long = (
        long.join(F.broadcast(products.select("product_id")), "product_id", "left_semi")
        .join(user_ids, "user_id", "left_semi")
        .repartition("user_id")
    )
    # A source's rank counts only the pairs left after the exclusions (the user's history rows
    # carry them; neighbours of the user's own products and popular ones often are excluded
    # pairs): every row of an excluded pair leaves first.
    pair = Window.partitionBy("user_id", "product_id")
    by_score = Window.partitionBy("user_id", "_src").orderBy(F.col("_s").desc_nulls_last(), F.col("product_id"))
    kept = (
        long.withColumn("_drop", F.max(F.coalesce(F.col("_excluded"), F.lit(False))).over(pair))
        .filter(~F.col("_drop"))
        .withColumn("_r", F.row_number().over(by_score))
    )

    def of(source: str, col: str) -> Column:
        return F.max(F.when(F.col("_src") == source, F.col(col)))

    merged = kept.groupBy("user_id", "product_id").agg(
        *(of(source, "_s").alias(c) for source, c in SOURCE_SCORES.items()),
        *(of(source, "_r").alias(f"{source}_rank") for source in RANKED_SOURCES),
        F.max("reason_product_id").alias("reason_product_id"),
        *(F.max(c).alias(c) for c in HISTORY_COLUMNS),
        F.count("_src").alias("_proposed"),
        # the pair's best rank over its sources: only needed to cut the pool at a depth
        *([F.min(F.when(F.col("_src").isNotNull(), F.col("_r"))).alias("_best")] if depth is not None else []),
    )
    if depth is None:
        return merged.filter(F.col("_proposed") > 0).drop("_proposed")
    return merged.filter((F.col("_proposed") > 0) & (F.col("_best") <= depth)).drop("_proposed", "_best")


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
