"""Scoring a backtest's systems and external peers with the evaluation's own code (Spark side):
shared by bench/bench_lightfm.py and bench/bench_retail.py.

- ``peer_lists``: a peer's lists (bench/peer_io.py) through the filter the backtest uses for its
  own systems (``systems.filtered_lists``: ``recommend.exclude`` pairs removed, the category cap,
  top K), named as one more system
- ``score_lists``: ``per_user_metrics`` per segment, ``bootstrap_ci`` per (segment, system),
  ``paired_difference_ci`` per comparison, ``coverage``: the evaluation's replicates, seed (the
  same Poisson weight per user in every system) and level
- ``evaluation_backtest``: the evaluation's split and backtest at its cutoff, as the evaluate job
  runs them, with the filter for the peers
- ``evaluation_seconds``: the fit / score seconds of the evaluation's four systems from the stage
  timings, with what each figure covers
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from peer_io import read_recs, recs_as_candidates

RANKING = ("recall", "ndcg", "ap", "precision")
BEYOND = ("n_categories", "novelty")


def peer_lists(spark: Any, recs_path: Any, capped: Callable[[Any], Any], system: str) -> Any:
    """``system, user_id, rank, product_id`` after the evaluation's filter ``capped`` (which also
    keeps the judged users only); the peer's own order is kept (score = −rank)."""
    from pyspark.sql import functions as F

    cands = spark.createDataFrame(
        recs_as_candidates(read_recs(recs_path)), "user_id string, product_id string, score double"
    )
    return capped(cands).select(F.lit(system).alias("system"), "user_id", "rank", "product_id")


def train_users_items(catalog: Any, item_stats: Any) -> Any:
    """``product_id, category, train_users`` (users with events before the cutoff; 0 for cold)."""
    from pyspark.sql import functions as F

    return (
        catalog.select("product_id", "category")
        .join(item_stats.select("product_id", F.col("n_users").alias("train_users")), "product_id", "left")
        .fillna({"train_users": 0})
    )


def score_lists(
    lists: Any,
    relevant: Any,
    items: Any,
    k: int,
    n_train_users: int,
    systems: Sequence[str],
    comparisons: Sequence[tuple[str, str]],
    ev: Any,
    stage: Callable[[Any, str], Any],
    segments: Sequence[str],
    n_catalog: int,
) -> dict[str, Any]:
    """The evaluation's tables for ``lists`` (see the module docstring): headline, paired, coverage."""
    from pyspark.sql import functions as F

    from hybridrec.evaluation.bootstrap import bootstrap_ci, paired_difference_ci
    from hybridrec.evaluation.per_user import coverage, per_user_metrics

    per_user = None
    for seg in segments:
        part = per_user_metrics(
            lists, relevant.filter(F.col("segment") == seg), items, k, n_train_users, systems=list(systems)
        ).withColumn("segment", F.lit(seg))
        per_user = part if per_user is None else per_user.unionByName(part)
    per_user = stage(per_user, "per_user")
    return {
        "headline": bootstrap_ci(
            per_user, ["segment", "system"], [*RANKING, *BEYOND], ev.bootstrap_replicates, ev.seed, ev.confidence
        ),
        "paired": pd.concat(
            [
                paired_difference_ci(
                    per_user, a, b, ["segment"], list(RANKING), ev.bootstrap_replicates, ev.seed, ev.confidence
                )
                for a, b in comparisons
            ],
            ignore_index=True,
        ),
        "coverage": coverage(lists, k, n_catalog),
    }


def noop_seconds(df: Any) -> float:
    """Wall seconds to compute ``df`` whole (Spark's ``noop`` sink: nothing written)."""
    t0 = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return round(time.perf_counter() - t0, 2)


def evaluation_seconds(stage_s: dict[str, float], content_fit: str) -> dict[str, dict[str, Any]]:
    """Fit / score seconds of popularity, ALS, content and hybrid from the backtest's stage
    seconds plus the ``popularity_noop`` and ``als_topk_noop`` re-runs."""
    return {
        "popularity": {
            "fit_s": stage_s["popularity_noop"],
            "score_s": 0.0,
            "covers": "fit: the decayed event count of the last popular_days and its top list "
            "(noop re-run); score: none (one list for all)",
        },
        "als": {
            "fit_s": stage_s["als"],
            "score_s": stage_s["als_topk_noop"],
            "covers": "fit: fit_als at the cutoff (in memory); score: top-K for every user (noop re-run)",
        },
        "content": {
            "fit_s": 0.0,
            "score_s": stage_s["content"],
            "covers": f"fit: none here ({content_fit}); score: the content candidates of every active user",
        },
        "hybrid": {
            "fit_s": stage_s["als"],
            "score_s": round(stage_s["history"] + stage_s["content"] + stage_s["cold"] + stage_s["lists"], 2),
            "covers": "fit: ALS; score: history + content + cold + lists stages (lists also filters the "
            "other three systems: an upper bound)",
        },
    }


@dataclass
class Evaluated:
    """The evaluation's four systems backtested at its cutoff, and what the peers need of them."""

    cfg: Any
    cutoff: dt.datetime
    version: str  # the content model (gold.product_embeddings) version
    products: Any  # bronze.products
    interactions: Any  # bronze.interactions
    vectors: Any  # product_id, vec of ``version``
    split: Any  # protocol.Split
    bt: Any  # systems.Backtest
    judged: Any  # user_id of the judged users
    capped: Callable[[Any], Any]  # systems.filtered_lists: the backtest's own filter
    stage: Callable[[Any, str], Any]
    progress: Any
    seconds: dict[str, float] = field(default_factory=dict)


def evaluation_backtest(spark: Any, cfg: Any, work: Path, job: str) -> Evaluated:
    """What ``evaluation.backtest_report.run_evaluation`` does up to its lists: the tables, the cutoff
    (``evaluate.cutoff`` or the data's end), ``temporal_split``, ``backtest`` of the four systems,
    and the filter the peers go through; plus the ``als_topk_noop`` / ``popularity_noop`` re-runs
    of ``evaluation_seconds``. Stages under ``work/stage`` (``work`` is emptied first)."""

    from hybridrec.evaluation.backtest_report import evaluation_cutoff
    from hybridrec.evaluation.protocol import temporal_split
    from hybridrec.evaluation.systems import backtest, filtered_lists
    from hybridrec.hybrid import popular
    from hybridrec.hybrid.content import night_vectors
    from hybridrec.hybrid.scoring import Progress, parquet_stage
    from hybridrec.models.training import current_version
    from hybridrec.tables import INTERACTIONS, PRODUCT_EMBEDDINGS, PRODUCTS, require_table

    rc, k = cfg.recommend, cfg.evaluate.k
    products = require_table(spark, cfg, PRODUCTS, "jobs/ingest.py")
    interactions = require_table(spark, cfg, INTERACTIONS, "jobs/ingest.py")
    embeddings = require_table(spark, cfg, PRODUCT_EMBEDDINGS, "jobs/train.py")
    version = current_version(cfg)
    cutoff = evaluation_cutoff(cfg, interactions)
    seconds: dict[str, float] = {}
    progress = Progress(seconds, job=job)
    shutil.rmtree(work, ignore_errors=True)
    (work / "stage").mkdir(parents=True)
    stage = parquet_stage(work / "stage")
    held: dict[str, Any] = {}

    def split_() -> str:
        held["split"] = s = temporal_split(cfg, products, interactions, cutoff)
        return f"cutoff {cutoff:%Y-%m-%d}: {s.counts['judged_users']} judged users"

    progress("split", split_)
    split = held["split"]
    vectors = night_vectors(embeddings, version)
    bt = backtest(spark, cfg, split, interactions, vectors, version, stage, progress)
    judged = split.users.select("user_id")
    capped = filtered_lists(bt.scores, split.products, judged, k, rc.max_per_category)
    # Per-system scoring costs the shared stages do not separate (re-run into the noop sink).
    seconds["als_topk_noop"] = noop_seconds(bt.inputs.als_candidates)
    seconds["popularity_noop"] = noop_seconds(
        popular.overall_popular(
            popular.popularity(bt.scores.usable_events, bt.scores.reference, rc.popular_days, bt.inputs.products),
            k + rc.popular_per_category,
        )
    )
    return Evaluated(
        cfg=cfg,
        cutoff=cutoff,
        version=version,
        products=products,
        interactions=interactions,
        vectors=vectors,
        split=split,
        bt=bt,
        judged=judged,
        capped=capped,
        stage=stage,
        progress=progress,
        seconds=seconds,
    )
