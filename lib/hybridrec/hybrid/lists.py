"""From blended candidates to each user's final list: filter, cap and rank, top up the users whose
list is short (cold users have none) with what they may have again (``recommend.exclude``
permitting), then popular products, and explain every row.

Kept apart from the job (``nightly``) so the scale benchmark and tests run exactly this sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.config import RecommendConfig
from hybridrec.hybrid import blend, popular
from hybridrec.hybrid.history import repeat_candidates

# How the night materialises an intermediate result: ``stage(df, name)`` returns ``df`` or the same
# rows re-read (``scoring.parquet_stage`` writes Parquet, cutting lineage); the default is the identity.
Stage = Callable[[DataFrame, str], DataFrame]


@dataclass
class Lists:
    final: DataFrame  # user_id, product_id, rank, score, source, reason, reason_product_id, category
    short: DataFrame  # user_id of the users that were topped up
    scored: DataFrame | None = None  # the learned lists: the pairs the ranker scored (None: the blend)


def final_lists(
    blended: DataFrame,
    history: DataFrame,
    user_stats: DataFrame,
    products: DataFrame,
    pop: DataFrame,
    rc: RecommendConfig,
    stage: Stage = lambda df, name: df,
) -> Lists:
    """``blended``: ``blend.blend_candidates`` rows; ``history``: ``history.user_item_history``
    rows (with ``excluded``, ``weight``, ``event``); ``user_stats``: every active user;
    ``products``: (product_id, title, category); ``pop``: ``popular.popularity``. ``stage``
    materialises an intermediate result (the job writes it to Parquet) and returns it re-read."""
    excluded = history.filter(F.col("excluded")).select("user_id", "product_id")
    ranked = stage(blend.cap_and_rank(blended, excluded, products, rc.top_n, rc.max_per_category), "ranked")
    sizes = ranked.groupBy("user_id").agg(F.count(F.lit(1)).alias("_n"))
    short = stage(
        user_stats.select("user_id")
        .join(sizes, "user_id", "left")
        .filter(F.coalesce("_n", F.lit(0)) < rc.top_n)
        .select("user_id"),
        "short",
    )
    fill = popular.popular_fill(
        short,
        popular.user_categories(history, products),
        popular.category_popular(pop, rc.popular_per_category),
        popular.overall_popular(pop, rc.top_n + rc.popular_per_category),
    )
    fill = repeat_candidates(short, history).unionByName(fill)
    keep = ranked.join(short, "user_id", "left_anti")
    redo = ranked.join(short, "user_id", "left_semi").drop("rank", "category").unionByName(fill)
    topped = blend.cap_and_rank(redo, excluded, products, rc.top_n, rc.max_per_category)
    return Lists(final=blend.explain(keep.unionByName(topped), products, history), short=short)
