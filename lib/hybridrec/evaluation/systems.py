"""The systems compared offline, all scored by the nightly job's own code on one temporal split.

A backtest fits ALS on the events before the cutoff (in memory: no table, model or MLflow run is
written), then runs ``hybrid.scoring.score_users`` and ``hybrid_lists`` exactly as a night at
the cutoff would. From the same candidates it takes four top-K lists per judged user:

- ``popularity``: the most popular products of the last ``recommend.popular_days`` of the data
  before the cutoff (the nightly popularity), the same list for everybody (less what each user
  may not get)
- ``als``: ALS alone (its top ``als.top_k`` candidates; users without factors get none)
- ``content``: the content profile's nearest products alone (every user with a history)
- ``hybrid``: the nightly lists (blend, cold items, popular top-up for cold users)
- ``learned``: the learned ranker's lists (``hybrid.learned``), with a ranker trained here on the
  events before the cutoff only (``hybrid.ranker_training``); present when ``ranker.use`` is not off

Every list goes through the same filter as the nightly lists (``recommend.exclude`` applied, at
most ``recommend.max_per_category`` per category, ties by product id), so the comparison isolates
the scoring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab.als import AlsResult, fit_als
from hybridrec.config import Config
from hybridrec.evaluation.protocol import Split
from hybridrec.hybrid import blend, popular
from hybridrec.hybrid.learned import learned_lists
from hybridrec.hybrid.lists import Stage
from hybridrec.hybrid.ranker import NothingToLearn
from hybridrec.hybrid.ranker_training import RankerTraining, train_ranker
from hybridrec.hybrid.scoring import (
    NIGHT_PRODUCT_COLUMNS,
    NightInputs,
    NightScores,
    Progress,
    hybrid_lists,
    score_users,
)

SYSTEMS = ("popularity", "als", "content", "hybrid", "learned")


def systems_of(cfg: Config) -> tuple[str, ...]:
    """The systems a backtest with ``cfg`` compares (``learned`` only when the ranker is on)."""
    return SYSTEMS if cfg.ranker.use != "off" else tuple(s for s in SYSTEMS if s != "learned")


def filtered_lists(
    scores: NightScores, products: DataFrame, judged: DataFrame, k: int, max_per_category: int | None
) -> Callable[[DataFrame], DataFrame]:
    """The nightly filter for one system's candidates (user_id, product_id, score) of the judged
    users: excluded pairs removed, the category cap, top ``k`` (``blend.cap_and_rank``). Bench
    peers (bench/) go through the same function."""
    excluded = scores.history.filter(F.col("excluded")).select("user_id", "product_id")

    def capped(cands: DataFrame) -> DataFrame:
        return blend.cap_and_rank(cands.join(judged, "user_id", "left_semi"), excluded, products, k, max_per_category)

    return capped


def most_excluded(scores: NightScores, judged: DataFrame) -> int:
    """The most excluded products of any judged user: how much deeper a list shared by everybody
    (popularity) must go so that each user keeps ``k`` after the filter."""
    row = (
        scores.history.filter(F.col("excluded"))
        .join(judged, "user_id", "left_semi")
        .groupBy("user_id")
        .count()
        .agg(F.max("count"))
        .first()
    )
    return int(row[0] or 0)


@dataclass
class Backtest:
    """The lists of every system for the judged users, and what made them."""

    lists: DataFrame  # system, user_id, rank, product_id (rank <= evaluate.k)
    hybrid: DataFrame  # the hybrid lists with score, source, reason (judged users, rank <= evaluate.k)
    inputs: NightInputs
    scores: NightScores
    als_version: str
    systems: tuple[str, ...] = SYSTEMS[:4]
    ranker: RankerTraining | None = None


def backtest(
    spark: SparkSession,
    cfg: Config,
    split: Split,
    interactions: DataFrame,
    vectors: DataFrame,
    content_version: str,
    stage: Stage,
    progress: Progress,
) -> Backtest:
    """Fit ALS at ``split.cutoff`` and build every system's top-K lists (see the module docstring)."""
    rc, k = cfg.recommend, cfg.evaluate.k
    products = split.products.select(*NIGHT_PRODUCT_COLUMNS)
    # The nightly fit's settings, without its own holdout evaluation (this is the evaluation).
    fit_cfg = dataclasses.replace(cfg, als=dataclasses.replace(cfg.als, evaluate=False))
    fits: list[AlsResult] = []

    def als() -> str:
        fit = fit_als(spark, fit_cfg, interactions, split.cutoff, products=products)
        fits.append(fit)
        return (
            f"ALS fitted on {fit.counts.get('pairs', 0)} user-product pairs before {split.cutoff:%Y-%m-%d} "
            f"(in memory; rank {fit.params.rank})"
        )

    progress("als", als)
    fit = fits[0]
    inputs = NightInputs.from_fit(fit, products, interactions, vectors, content_version)
    scores = score_users(spark, cfg, inputs, split.cutoff, stage, progress, content_users="all")
    judged = split.users.select("user_id")
    out: dict[str, DataFrame] = {}
    names = systems_of(cfg)
    trained: list[RankerTraining] = []
    if "learned" in names:
        try:
            trained.append(
                train_ranker(spark, cfg, products, interactions, vectors, content_version, split.cutoff, stage)
            )
        except NothingToLearn as exc:
            print(f"[evaluate ranker] no learned system: {exc}", flush=True)
            names = tuple(n for n in names if n != "learned")

    def lists() -> str:
        capped = filtered_lists(scores, products, judged, k, rc.max_per_category)
        hybrid = hybrid_lists(scores, inputs, cfg, split.cutoff, stage).final
        hybrid = stage(hybrid.join(judged, "user_id", "left_semi").filter(F.col("rank") <= k), "hybrid")
        pop = popular.overall_popular(
            popular.popularity(scores.usable_events, scores.reference, rc.popular_days, products),
            k + rc.popular_per_category + most_excluded(scores, judged),
        )
        systems = {
            "popularity": capped(judged.crossJoin(F.broadcast(pop.select("product_id", F.col("pop").alias("score"))))),
            "als": capped(inputs.als_candidates.select("user_id", "product_id", "score")),
            "content": capped(scores.content.select("user_id", "product_id", F.col("content_score").alias("score"))),
            "hybrid": hybrid,
        }
        if trained:
            learned = learned_lists(scores, inputs, cfg, trained[0].ranker, stage, users=judged).final
            systems["learned"] = learned.filter(F.col("rank") <= k)
        union = None
        for name in names:
            part = systems[name].select(F.lit(name).alias("system"), "user_id", "rank", "product_id")
            union = part if union is None else union.unionByName(part)
        out["lists"] = stage(union, "lists")
        out["hybrid"] = hybrid
        n = {
            r["system"]: int(r["n"])
            for r in out["lists"].groupBy("system").agg(F.countDistinct("user_id").alias("n")).collect()
        }
        return "top-{} lists for {} judged users: {}".format(
            k, split.counts["judged_users"], ", ".join(f"{s} {n.get(s, 0)} users" for s in names)
        )

    progress("lists", lists)
    return Backtest(
        lists=out["lists"],
        hybrid=out["hybrid"],
        inputs=inputs,
        scores=scores,
        als_version=fit.model_version,
        systems=names,
        ranker=trained[0] if trained else None,
    )
