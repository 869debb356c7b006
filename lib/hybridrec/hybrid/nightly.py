"""The nightly job: fresh embeddings → ALS refit → history → content / cold / ALS candidates →
blend, explain, filter, cap, rank, top up → gold.recommendations and gold.similar_items →
retention. Each stage prints one progress line with its counts and time.

Order keeps a failed night harmless: intermediate results are staged as Parquet under
``<paths.checkpoints>/nightly/<run_date>/`` (overwritten by a re-run), and each output table gets
its night in one Delta commit (``replaceWhere run_date = ...``): a run killed at any point leaves
every table at a complete version (the previous night's, or this one's), and re-running the
night replaces exactly its partition, never duplicates. Old nights are deleted only after both
writes succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab.refit import run_als
from hybridrec.config import Config
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.hybrid import blend
from hybridrec.hybrid.content import night_vectors
from hybridrec.hybrid.freshness import embed_new_products
from hybridrec.hybrid.learned import learned_lists
from hybridrec.hybrid.lists import Stage
from hybridrec.hybrid.ranker import RankerModel, current_ranker_version, load_ranker
from hybridrec.hybrid.scoring import (
    NIGHT_PRODUCT_COLUMNS,
    NightInputs,
    NightScores,
    Progress,
    hybrid_lists,
    parquet_stage,
    score_users,
    similar_products,
)
from hybridrec.models.training import current_version
from hybridrec.run_dates import start_of_day
from hybridrec.runs import utcnow
from hybridrec.tables import (
    ALS_CANDIDATES,
    ALS_ITEM_FACTORS,
    ALS_USER_FACTORS,
    ALS_USER_IDS,
    INTERACTIONS,
    PRODUCT_EMBEDDINGS,
    PRODUCTS,
    RECOMMENDATIONS,
    SIMILAR_ITEMS,
    TableSpec,
    delta_conflicts,
    delta_table,
    read_table,
    require_table,
    table_exists,
    table_ref,
    write_table,
)

log = logging.getLogger(__name__)

# Test hook: HYBRIDREC_NIGHTLY_FAULT=kill_during_write SIGKILLs the Spark JVM while the
# recommendations are being written (files written, nothing committed).
FAULT_ENV = "HYBRIDREC_NIGHTLY_FAULT"


@dataclass
class NightResult:
    run_date: dt.date
    content_version: str
    als_version: str | None
    ranking: str = "blend"  # how the lists were ordered: the learned ranker's version, or why the blend
    ranker_version: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def check_run_date(run_date: dt.date, max_future_days: int, today: dt.date | None = None) -> None:
    """A night at most ``max_future_days`` after today (UTC): later ones would see no events."""
    today = today or utcnow().date()
    if run_date > today + dt.timedelta(days=max_future_days):
        raise HybridrecError(
            f"--run-date {run_date} is more than {max_future_days} day(s) after today ({today}): "
            "a night in the future has no events yet; check the scheduler's date parameter"
        )


def _killer(jvm_pid: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def kill(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for i, pdf in enumerate(batches):
            if i == 0:
                os.kill(jvm_pid, signal.SIGKILL)
            yield pdf

    return kill


def _replace_night(df: DataFrame, cfg: Config, spec: TableSpec, run_date: dt.date) -> int:
    """Replace the night's partition of ``spec``; return its row count.

    A commit conflict (another run of the same night committed first) is raised by ``write_table``
    as ``ConcurrentRunError`` naming the table, and ``run_job`` says that the other run won. It used
    to be mapped here only, so a conflict in any earlier write of the night (the ALS id maps, the
    embeddings) reached the user as a raw ConcurrentAppendException trace.
    """
    ref = table_ref(cfg, spec)
    write_table(df, ref, mode="overwrite", replace_where=f"run_date = '{run_date.isoformat()}'")
    return read_table(df.sparkSession, ref).filter(F.col("run_date") == F.lit(run_date)).count()


def retention(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    """Delete nights older than ``keep_nights`` (one commit per table), then VACUUM with the
    table's retention (never below Delta's 7-day minimum, so running readers keep their files)
    when the table's last VACUUM is ``vacuum_every_days`` old or more: a VACUUM lists every file
    of the table, which costs more than a night's delete, and files only become removable a week
    after they were replaced anyway."""
    rc = cfg.recommend
    oldest = run_date - dt.timedelta(days=rc.keep_nights - 1)
    counts: dict[str, int] = {}
    for spec in (RECOMMENDATIONS, SIMILAR_ITEMS):
        ref = table_ref(cfg, spec)
        table = read_table(spark, ref)
        old = table.filter(F.col("run_date") < F.lit(oldest)).select("run_date").distinct().count()
        handle = delta_table(spark, ref)
        if old:
            with delta_conflicts(ref):
                handle.delete(F.col("run_date") < F.lit(oldest))
        counts[f"{spec.name}_nights_deleted"] = old
        if rc.vacuum and _vacuum_due(handle, rc.vacuum_every_days):
            handle.vacuum(rc.vacuum_retain_hours)
            counts[f"{spec.name}_vacuumed"] = 1
        else:
            counts[f"{spec.name}_vacuumed"] = 0
    return counts


def _vacuum_due(handle: Any, every_days: float) -> bool:
    """True when the last VACUUM (or, without one, the oldest commit looked at) is at least
    ``every_days`` old, by the table's own history."""
    hist = handle.history(200)
    row = hist.agg(
        F.max(F.when(F.col("operation").startswith("VACUUM"), F.col("timestamp"))).alias("vacuum"),
        F.min("timestamp").alias("oldest"),
    ).first()
    since = row["vacuum"] or row["oldest"]
    return since is not None and (utcnow() - since) >= dt.timedelta(days=every_days)


def read_inputs(
    spark: SparkSession,
    cfg: Config,
    run_date: dt.date,
    content_version: str,
    products: DataFrame,
    interactions: DataFrame,
) -> NightInputs:
    """The night's scoring inputs from the tables: the current model version's vectors and the
    ALS outputs of ``run_date`` (written by this night's refit or by jobs/als.py)."""

    def night(spec: TableSpec) -> DataFrame:
        return read_table(spark, table_ref(cfg, spec)).filter(F.col("run_date") == F.lit(run_date))

    als_cands = night(ALS_CANDIDATES)
    row = als_cands.select("model_version").limit(1).collect()
    vectors = night_vectors(read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)), content_version)
    return NightInputs(
        products=products,
        interactions=interactions,
        vectors=vectors,
        als_users=night(ALS_USER_FACTORS).select("user_id", "factors"),
        als_items=night(ALS_ITEM_FACTORS).select("product_id", "factors"),
        als_candidates=als_cands.select("user_id", "product_id", "score", "rank"),
        user_index=read_table(spark, table_ref(cfg, ALS_USER_IDS)).select("user_id", "user_idx"),
        content_version=content_version,
        als_version=row[0][0] if row else None,
    )


def night_ranker(cfg: Config) -> tuple[RankerModel | None, str]:
    """The ranker that orders tonight's lists and the sentence gold.runs records about it: the
    current one (``ranker.use: auto``), or None and why the hand-set blend is used instead."""
    if cfg.ranker.use == "off":
        return None, "blend (ranker.use=off)"
    version = current_ranker_version(cfg)
    if version is None:
        return None, "blend: no ranker trained yet (run jobs/train_ranker.py to train one)"
    return load_ranker(cfg, version), f"learned ranker {version}"


def run_nightly(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str = "adhoc") -> NightResult:
    """Compute and write the night ``run_date`` (events strictly before its 00:00 UTC); ``run_id``
    (the job's, see gold.runs) is stamped on every row."""
    rc = cfg.recommend
    check_run_date(run_date, rc.max_future_days)
    cutoff = start_of_day(run_date)
    products_all = require_table(spark, cfg, PRODUCTS, "jobs/ingest.py")
    interactions = require_table(spark, cfg, INTERACTIONS, "jobs/ingest.py")
    require_table(spark, cfg, PRODUCT_EMBEDDINGS, "jobs/train.py")
    version = current_version(cfg)
    result = NightResult(run_date=run_date, content_version=version, als_version=None)
    counts, seconds = result.counts, result.seconds
    progress = Progress(seconds)
    stage_dir = Path(cfg.paths.checkpoints) / "nightly" / run_date.isoformat()
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    stage = parquet_stage(stage_dir)
    products = products_all.select(*NIGHT_PRODUCT_COLUMNS).persist()

    def fresh() -> str:
        if not rc.embed_new_products:
            return "skipped (recommend.embed_new_products=false)"
        f = embed_new_products(spark, cfg, version, products)
        counts.update(f.counts)
        return (
            f"{f.counts['new_products_embedded']} new products embedded with models {version} "
            f"({f.counts['new_products_with_image']} with a photo)"
        )

    progress("freshness", fresh)

    def als() -> str:
        if rc.refit_als:
            fit = run_als(spark, cfg, cutoff, run_date, counts=counts, metrics=result.metrics)
            pairs = fit.counts.get("pairs", 0)
            return f"ALS {fit.model_version} refit on {pairs} user-product pairs before {cutoff:%Y-%m-%d}"
        cand = table_ref(cfg, ALS_CANDIDATES)
        if (
            not table_exists(spark, cand)
            or read_table(spark, cand).filter(F.col("run_date") == F.lit(run_date)).limit(1).count() == 0
        ):
            raise MissingInputError(
                f"no ALS output for {run_date}: run jobs/als.py --run-date {run_date} first "
                "(or set recommend.refit_als=true)"
            )
        return f"ALS output of {run_date} reused (recommend.refit_als=false)"

    progress("als", als)

    inputs = read_inputs(spark, cfg, run_date, version, products, interactions)
    result.als_version = inputs.als_version
    ranker, result.ranking = night_ranker(cfg)
    result.ranker_version = ranker.version if ranker is not None else None
    counts["ranker_used"] = int(ranker is not None)
    # The ranker was trained with content candidates for every user, so it gets them tonight too.
    scores = score_users(spark, cfg, inputs, cutoff, stage, progress, content_users="all" if ranker else "warm")
    counts.update(scores.counts)
    result.metrics.update(scores.metrics)
    stamp = [F.lit(run_date).cast("date").alias("run_date")]

    def recommend() -> str:
        return write_recommendations(spark, cfg, scores, inputs, run_date, stage, run_id, counts, ranker)

    progress("recommendations", recommend)

    def similar() -> str:
        sims, with_collab = similar_products(scores, inputs, cfg)
        out = sims.select(
            *stamp,
            "product_id",
            "rank",
            "similar_product_id",
            F.round("score", 6).cast("double").alias("score"),
            "source",
            F.lit(version).alias("content_model_version"),
            F.lit(result.als_version if with_collab else None).cast("string").alias("als_model_version"),
            F.lit(run_id).alias("run_id"),
            F.lit(utcnow()).cast("timestamp").alias("created_at"),
        )
        out = stage(out, "similar_items")
        written = _replace_night(out, cfg, SIMILAR_ITEMS, run_date)
        counts["similar_items"] = written
        cold_ids = scores.item_index.join(scores.item_stats, "product_id", "left_anti").select(
            "product_id", F.lit(1).alias("_cold")
        )
        agg = (
            out.select("product_id")
            .distinct()
            .join(cold_ids, "product_id", "left")
            .agg(F.count(F.lit(1)).alias("products"), F.count("_cold").alias("cold"))
            .collect()[0]
        )
        counts["products_with_similar"] = int(agg["products"])
        counts["cold_products_with_similar"] = int(agg["cold"])
        return (
            f"{written} rows for {counts['products_with_similar']} of {scores.n_items} products "
            f"({counts['cold_products_with_similar']} cold)"
        )

    progress("similar_items", similar)

    def keep() -> str:
        counts.update(retention(spark, cfg, run_date))
        vacuumed = counts["recommendations_vacuumed"] + counts["similar_items_vacuumed"]
        return f"kept {rc.keep_nights} nights; deleted {counts['recommendations_nights_deleted']} old night(s); " + (
            f"vacuumed {vacuumed} table(s) (files older than {rc.vacuum_retain_hours:.0f} h)"
            if vacuumed
            else f"no VACUUM due (every {rc.vacuum_every_days:g} days)"
        )

    progress("retention", keep)

    scores.release()
    products.unpersist()
    if counts["users_without_recommendations"]:
        log.warning(
            "%d active users got no recommendation (catalog too small for the filters?)",
            counts["users_without_recommendations"],
        )
    _write_summary(stage_dir, result)
    return result


def write_recommendations(
    spark: SparkSession,
    cfg: Config,
    scores: NightScores,
    inputs: NightInputs,
    run_date: dt.date,
    stage: Stage,
    run_id: str,
    counts: dict[str, int],
    ranker: RankerModel | None = None,
) -> str:
    """The night's lists (``learned_lists`` with a ranker, else ``hybrid_lists``) written to
    gold.recommendations (partition ``run_date`` replaced), with their counts added to
    ``counts``; returns the progress line."""
    rc = cfg.recommend
    cutoff = start_of_day(run_date)
    if ranker is not None:
        lists = learned_lists(scores, inputs, cfg, ranker, stage)
    else:
        lists = hybrid_lists(scores, inputs, cfg, cutoff, stage)
    final, short = lists.final, lists.short
    out = final.select(
        F.lit(run_date).cast("date").alias("run_date"),
        "user_id",
        "rank",
        "product_id",
        F.round("score", 6).cast("double").alias("score"),
        "source",
        "reason",
        "reason_product_id",
        "category",
        F.when(~F.col("source").isin("popular", "repeat"), F.lit(inputs.als_version)).alias("als_model_version"),
        F.lit(inputs.content_version).alias("content_model_version"),
        F.lit(run_id).alias("run_id"),
        F.lit(utcnow()).cast("timestamp").alias("created_at"),
    )
    out = stage(out, "recommendations")
    if os.environ.get(FAULT_ENV) == "kill_during_write":
        pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # noqa: SLF001 - the JVM's pid for the memory figures, only through py4j
        out = out.mapInPandas(_killer(pid), out.schema)
    written = _replace_night(out, cfg, RECOMMENDATIONS, run_date)
    per_user = out.groupBy("user_id").agg(F.count(F.lit(1)).alias("n"))
    agg = out.agg(*[F.sum((F.col("source") == s).cast("long")).alias(s) for s in blend.SOURCES]).collect()[0]
    sizes = per_user.agg(
        F.count(F.lit(1)).alias("users"), F.sum((F.col("n") == rc.top_n).cast("long")).alias("full")
    ).collect()[0]
    counts["recommendations"] = written
    counts["users_with_recommendations"] = int(sizes["users"])
    counts["users_short"] = int(short.count())
    for s in blend.SOURCES:
        counts[f"recommendations_{s}"] = int(agg[s] or 0)
    counts["users_with_full_list"] = int(sizes["full"] or 0)
    counts["users_without_recommendations"] = counts["active_users"] - counts["users_with_recommendations"]
    scored = ""
    if lists.scored is not None:  # the staged scores: a Parquet count
        counts["ranker_pairs_scored"] = int(lists.scored.count())
        depth = cfg.ranker.night_depth
        scored = f"; the ranker scored {counts['ranker_pairs_scored']} pairs" + (
            f" (each among the user's {depth} best of some source)" if depth is not None else " (the whole pool)"
        )
    return (
        f"{written} rows for {sizes['users']} of {counts['active_users']} active users "
        f"({counts['users_with_full_list']} full lists of {rc.top_n}); sources "
        + ", ".join(f"{s} {counts[f'recommendations_{s}']}" for s in blend.SOURCES)
        + scored
    )


def _write_summary(folder: Path, result: NightResult) -> None:
    data: dict[str, Any] = {
        "run_date": result.run_date.isoformat(),
        "content_version": result.content_version,
        "als_version": result.als_version,
        "ranking": result.ranking,
        "counts": result.counts,
        "metrics": result.metrics,
        "seconds": result.seconds,
    }
    (folder / "summary.json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
