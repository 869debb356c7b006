"""Offline evaluation of ALS on a temporal holdout, against popularity and random baselines scored
the same way.

Why a baseline: on simulated (and real) shop data popularity is strong (the simulator's top 1 %
of items take about half the events), so "NDCG@10 = 0.05" means nothing until it is set next to
what recommending the best sellers to everybody achieves on the same users and the same items.

Both are scored on the *warm* test users, those with training events: ALS cannot say anything
about a user it has never seen (``coldStartStrategy="drop"``), and the cold-start path of the
hybrid step handles them. Cold users, cold items (only in the test window) and the relevant pairs
that fall on cold items are counted and reported; a cold item stays in a user's relevant set, so
it counts as a miss for both rankings, as it would in production.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.collab import ids
from hybridrec.collab.confidence import implicit_confidence
from hybridrec.collab.exclusion import NONE, excluded_pairs
from hybridrec.collab.topk import top_k
from hybridrec.config import AlsConfig
from hybridrec.metrics.ranking import ranking_metrics
from hybridrec.splits import Holdout

log = logging.getLogger(__name__)


@dataclass
class HoldoutData:
    """Indexed training ratings and, per warm test user, the relevant items of the test window."""

    train: DataFrame  # user_idx, item_idx, rating
    relevant: DataFrame  # user_idx, relevant array<int> (warm users only)
    counts: dict[str, int] = field(default_factory=dict)
    n_train_items: int = 0
    seen: DataFrame | None = None  # user_idx, item_idx: training pairs excluded from lists and relevance

    def unpersist(self) -> None:
        self.train.unpersist()
        self.relevant.unpersist()
        if self.seen is not None:
            self.seen.unpersist()


def indexed_ratings(ratings: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """Confidence rows keyed by string ids → ``(user_idx, item_idx, rating)`` for ALS."""
    return ids.to_index(ids.to_index(ratings, users, ids.USERS), items, ids.ITEMS).select(
        "user_idx", "item_idx", F.col("rating").cast("float").alias("rating")
    )


def indexed_pairs(pairs: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """(user_id, product_id) → (user_idx, item_idx)."""
    return ids.to_index(ids.to_index(pairs, users, ids.USERS), items, ids.ITEMS).select("user_idx", "item_idx")


def prepare_holdout(
    holdout: Holdout,
    users: DataFrame,
    items: DataFrame,
    als: AlsConfig,
    exclude: str = NONE,
    purchase_events: Sequence[str] = (),
) -> HoldoutData:
    """Ratings of the training part (decayed as of ``holdout.reference``) and the relevant sets.

    ``exclude`` (``collab.exclusion``, already made effective): training pairs it excludes are
    neither recommended nor relevant, as in the nightly lists.

    Counts: ``test_users``, ``warm_test_users``, ``cold_test_users``, ``cold_test_items``
    (items with test events but none in training) and ``relevant_pairs_on_cold_items``.
    """
    ratings = implicit_confidence(holdout.train, holdout.reference, als.half_life_days, als.transform)
    train = indexed_ratings(ratings, users, items).persist()
    pairs = excluded_pairs(holdout.train, exclude, purchase_events)
    seen = indexed_pairs(pairs, users, items).persist() if pairs is not None else None
    test_pairs = indexed_pairs(holdout.test.select("user_id", "product_id").distinct(), users, items)
    if seen is not None:
        test_pairs = test_pairs.join(seen, ["user_idx", "item_idx"], "left_anti")
    train_users = train.select("user_idx").distinct().withColumn("_warm_user", F.lit(True))
    train_items = train.select("item_idx").distinct().withColumn("_warm_item", F.lit(True))
    marked = test_pairs.join(train_users, "user_idx", "left").join(train_items, "item_idx", "left").persist()
    row = marked.agg(
        F.countDistinct("user_idx").alias("test_users"),
        F.countDistinct(F.when(F.col("_warm_user"), F.col("user_idx"))).alias("warm_test_users"),
        F.countDistinct(F.when(F.col("_warm_item").isNull(), F.col("item_idx"))).alias("cold_test_items"),
        F.count(F.when(F.col("_warm_item").isNull(), 1)).alias("relevant_pairs_on_cold_items"),
        F.count(F.lit(1)).alias("relevant_pairs"),
    ).first()
    counts = {k: int(row[k]) for k in row.asDict()}
    counts["cold_test_users"] = counts["test_users"] - counts["warm_test_users"]
    sizes = train.agg(F.count(F.lit(1)).alias("pairs"), F.countDistinct("item_idx").alias("items")).first()
    counts["train_pairs"] = int(sizes["pairs"])
    n_train_items = int(sizes["items"])
    relevant = (
        marked.filter(F.col("_warm_user"))
        .groupBy("user_idx")
        .agg(F.sort_array(F.collect_set("item_idx")).alias("relevant"))
        .persist()
    )
    relevant.count()
    marked.unpersist()
    log.info(
        "holdout (%s): %d training pairs; %d test users (%d warm, %d cold: not evaluated), "
        "%d test items unseen in training (%d of %d relevant pairs)",
        holdout.rule,
        counts["train_pairs"],
        counts["test_users"],
        counts["warm_test_users"],
        counts["cold_test_users"],
        counts["cold_test_items"],
        counts["relevant_pairs_on_cold_items"],
        counts["relevant_pairs"],
    )
    return HoldoutData(train=train, relevant=relevant, counts=counts, n_train_items=n_train_items, seen=seen)


def popularity_items(train: DataFrame, k: int) -> list[int]:
    """The ``k`` items with the most distinct training users (ties: lower index first).

    K numbers reach the driver, never a table that grows with users or items.
    """
    top = (
        train.groupBy("item_idx")
        .agg(F.countDistinct("user_idx").alias("users"))
        .orderBy(F.col("users").desc(), F.col("item_idx"))
        .limit(k)
        .collect()
    )
    return [int(r["item_idx"]) for r in top]


def _same_list_for_all(data: HoldoutData, items: list[int], k: int) -> dict[str, float]:
    """Ranking metrics of one ordered item list given to every warm test user, less the items
    each user may not get (``data.seen``), cut at ``k``."""
    listed = data.relevant.select("user_idx").crossJoin(
        F.broadcast(
            data.relevant.sparkSession.createDataFrame([(i, r) for r, i in enumerate(items)], "item_idx int, pos int")
        )
    )
    if data.seen is not None:
        listed = listed.join(data.seen, ["user_idx", "item_idx"], "left_anti")
    ranked = (
        listed.groupBy("user_idx")
        .agg(F.slice(F.sort_array(F.collect_list(F.struct("pos", "item_idx"))), 1, k).alias("_r"))
        .select("user_idx", F.col("_r.item_idx").alias("recommended"))
    )
    return ranking_metrics(data.relevant.join(ranked, "user_idx", "left"), k, catalog_size=max(1, data.n_train_items))


def score_popularity(data: HoldoutData, k: int) -> dict[str, float]:
    """Ranking metrics of recommending the same top popular items to every warm test user (the
    excluded ones left out, so each user still gets ``k``)."""
    extra = _most_seen(data)
    return _same_list_for_all(data, popularity_items(data.train, k + extra), k)


def score_random(data: HoldoutData, k: int, seed: int) -> dict[str, float]:
    """Ranking metrics of training items drawn at random (seeded), the same order for every user.

    The floor the other two are read against: what a model that learnt nothing would score.
    """
    drawn = (
        data.train.select("item_idx").distinct().orderBy(F.rand(seed), "item_idx").limit(k + _most_seen(data)).collect()
    )
    return _same_list_for_all(data, [int(r["item_idx"]) for r in drawn], k)


def _most_seen(data: HoldoutData) -> int:
    """The most excluded pairs of any warm test user (how much deeper a shared list must go)."""
    if data.seen is None:
        return 0
    row = (
        data.seen.join(data.relevant.select("user_idx"), "user_idx", "left_semi")
        .groupBy("user_idx")
        .count()
        .agg(F.max("count"))
        .first()
    )
    return int(row[0] or 0)


def score_model(model: ALSModel, data: HoldoutData, k: int, als: AlsConfig) -> dict[str, float]:
    """Ranking metrics of the model's top-K for the warm test users."""
    recs = top_k(
        model,
        k,
        als.topk_method,
        users=data.relevant.select("user_idx"),
        user_block=als.topk_user_block,
        item_block=als.topk_item_block,
        sizes=(data.counts["warm_test_users"], data.n_train_items),
        exclude=data.seen,
    )
    ranked = (
        recs.groupBy("user_idx")
        .agg(F.sort_array(F.collect_list(F.struct("rank", "item_idx"))).alias("_r"))
        .select("user_idx", F.col("_r.item_idx").alias("recommended"))
    )
    scored = data.relevant.join(ranked, on="user_idx", how="left")
    return ranking_metrics(scored, k, catalog_size=max(1, data.n_train_items))


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """``{"ndcg@10": x}`` → ``{"<prefix>_ndcg@10": x}``."""
    return {f"{prefix}_{name}": value for name, value in metrics.items()}
