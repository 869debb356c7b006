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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab.confidence import count_reasons, flag_interactions, usable
from hybridrec.collab.refit import run_als
from hybridrec.config import Config
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.hybrid import blend as B
from hybridrec.hybrid import cold as C
from hybridrec.hybrid import content as CT
from hybridrec.hybrid import history as H
from hybridrec.hybrid import lists as L
from hybridrec.hybrid import popular as P
from hybridrec.hybrid import similar as S
from hybridrec.hybrid.freshness import embed_new_products
from hybridrec.models.product_embeddings import arrow_batch_rows
from hybridrec.models.training import current_version
from hybridrec.runs import utcnow
from hybridrec.tables import (
    ALS_CANDIDATES, ALS_ITEM_FACTORS, ALS_USER_FACTORS, ALS_USER_IDS, INTERACTIONS, PRODUCT_EMBEDDINGS,
    PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS, TableSpec, delta_table, read_table, read_table_snapshot,
    table_exists, table_ref, write_table,
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


def _require(spark: SparkSession, cfg: Config, spec: TableSpec, job: str) -> DataFrame:
    ref = table_ref(cfg, spec)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{spec.logical_name} not found at {ref}: run {job} first")
    return read_table_snapshot(spark, ref)[0]


class _Progress:
    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    def __call__(self, stage: str, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        line = fn()
        took = time.perf_counter() - t0
        self.seconds[stage] = round(took, 2)
        print(f"[recommend {stage}] {line} ({took:.1f}s)", flush=True)


def _dense_index(ids: DataFrame, col: str, idx: str) -> DataFrame:
    """``col`` → 0..n-1 in ``col`` order (so int ties break like the string ids), as a DataFrame."""
    spark = ids.sparkSession
    rdd = ids.select(col).distinct().orderBy(col).rdd.zipWithIndex().map(lambda r: (r[0][0], int(r[1])))
    return spark.createDataFrame(rdd, f"{col} string, {idx} int")


def _stage(df: DataFrame, folder: Path, name: str) -> DataFrame:
    path = str(folder / name)
    df.write.mode("overwrite").parquet(path)
    return df.sparkSession.read.parquet(path)


def _killer(jvm_pid: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def kill(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for i, pdf in enumerate(batches):
            if i == 0:
                os.kill(jvm_pid, signal.SIGKILL)
            yield pdf
    return kill


def _replace_night(df: DataFrame, cfg: Config, spec: TableSpec, run_date: dt.date) -> int:
    ref = table_ref(cfg, spec)
    try:
        write_table(df, ref, mode="overwrite", replace_where=f"run_date = '{run_date.isoformat()}'")
    except Exception as exc:  # noqa: BLE001 - Delta's conflict classes come through py4j
        if "Concurrent" in type(exc).__name__ or "ConcurrentAppend" in str(exc) or "DELTA_CONCURRENT" in str(exc):
            raise HybridrecError(
                f"another run wrote {spec.logical_name} for {run_date} at the same time and committed "
                f"first (Delta conflict); its night is complete, re-run this one if it must win: {str(exc)[:300]}"
            ) from exc
        raise
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


def run_nightly(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str = "adhoc") -> NightResult:
    """Compute and write the night ``run_date`` (events strictly before its 00:00 UTC); ``run_id``
    (the job's, see gold.runs) is stamped on every row."""
    rc = cfg.recommend
    check_run_date(run_date, rc.max_future_days)
    cutoff = dt.datetime.combine(run_date, dt.time())
    products_all = _require(spark, cfg, PRODUCTS, "jobs/ingest.py")
    interactions = _require(spark, cfg, INTERACTIONS, "jobs/ingest.py")
    _require(spark, cfg, PRODUCT_EMBEDDINGS, "jobs/train.py")
    version = current_version(cfg)
    result = NightResult(run_date=run_date, content_version=version, als_version=None)
    counts, seconds = result.counts, result.seconds
    progress = _Progress(seconds)
    stage_dir = Path(cfg.paths.checkpoints) / "nightly" / run_date.isoformat()
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    products = products_all.select("product_id", "title", "description", "category", "image_path").persist()

    def fresh() -> str:
        if not rc.embed_new_products:
            return "skipped (recommend.embed_new_products=false)"
        f = embed_new_products(spark, cfg, version, products)
        counts.update(f.counts)
        return (f"{f.counts['new_products_embedded']} new products embedded with models {version} "
                f"({f.counts['new_products_with_image']} with a photo)")

    progress("freshness", fresh)

    def als() -> str:
        if rc.refit_als:
            fit = run_als(spark, cfg, cutoff, run_date, counts=counts, metrics=result.metrics)
            return f"ALS {fit.model_version} refit on {fit.counts.get('pairs', 0)} user-product pairs before {cutoff:%Y-%m-%d}"
        cand = table_ref(cfg, ALS_CANDIDATES)
        if not table_exists(spark, cand) or read_table(spark, cand).filter(F.col("run_date") == F.lit(run_date)).limit(1).count() == 0:
            raise MissingInputError(f"no ALS output for {run_date}: run jobs/als.py --run-date {run_date} first "
                                    "(or set recommend.refit_als=true)")
        return f"ALS output of {run_date} reused (recommend.refit_als=false)"

    progress("als", als)

    def night(spec: TableSpec) -> DataFrame:
        return read_table(spark, table_ref(cfg, spec)).filter(F.col("run_date") == F.lit(run_date))

    als_users, als_items, als_cands = night(ALS_USER_FACTORS), night(ALS_ITEM_FACTORS), night(ALS_CANDIDATES)
    row = als_cands.select("model_version").limit(1).collect()
    result.als_version = row[0][0] if row else None
    user_index = read_table(spark, table_ref(cfg, ALS_USER_IDS)).select("user_id", "user_idx")

    # History: the same usable events ALS fitted on.
    flagged = flag_interactions(interactions, cutoff, cfg.als.event_weights, products).persist()
    history = H.user_item_history(usable(flagged), cutoff, cfg.als.half_life_days, rc.purchase_events)
    history = H.top_history(history, 10**9).persist()  # h_rank on every pair
    user_stats = H.user_counts(history).persist()
    item_stats = H.item_counts(history).persist()

    def hist() -> str:
        reasons = count_reasons(flagged)
        counts.update({f"events_{k}": v for k, v in reasons.items()})
        counts["active_users"] = user_stats.count()
        counts["warm_items"] = item_stats.count()
        counts["cold_users"] = user_stats.filter(F.col("n_items") <= rc.cold_user_max_items).count()
        return (f"{reasons['used']} events of {reasons['read']} before {cutoff:%Y-%m-%d}: {counts['active_users']} active "
                f"users ({counts['cold_users']} cold), {counts['warm_items']} warm products")

    progress("history", hist)

    emb_rows = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).filter(F.col("model_version") == version)
    vectors = emb_rows.join(products.select("product_id"), "product_id", "left_semi").select("product_id", F.col("fused_emb").alias("vec"))
    item_index = _dense_index(vectors, "product_id", "item_idx").persist()
    vec_idx = vectors.join(item_index, "product_id").select("item_idx", "vec").persist()
    n_items = item_index.count()
    counts["products"] = products.count()
    counts["products_with_vector"] = n_items
    if n_items == 0:
        raise MissingInputError(f"gold.product_embeddings has no rows of model version {version} for current products: run jobs/train.py")

    warm_users = user_stats.filter(F.col("n_items") > rc.cold_user_max_items)

    def content() -> str:
        rows = (
            history.join(warm_users.select("user_id"), "user_id", "left_semi")
            .withColumn("in_profile", F.col("h_rank") <= rc.history_items)
            .filter(F.col("in_profile") | F.col("purchased"))
            .join(user_index, "user_id").join(item_index, "product_id")
            .select("user_idx", "item_idx", "weight", "in_profile", "purchased")
        )
        n_users = int(counts["active_users"])
        cands = CT.content_candidates(rows, vec_idx, rc.content_candidates, n_users, n_items, rc.user_block,
                                      rc.content_item_block)
        with arrow_batch_rows(spark, 1):
            staged = _stage(cands, stage_dir, "content")
        counts["content_candidates"] = staged.count()
        return f"{counts['content_candidates']} content candidates (top {rc.content_candidates} of {n_items} products per user)"

    progress("content", content)

    def cold() -> str:
        warm_vec = als_items.join(item_index, "product_id").join(vec_idx, "item_idx").select("vec", "factors")
        model = C.fit_factor_regression(warm_vec, rc.regression_l2)
        result.metrics["cold_regression_r2"] = model.r2
        cold_vec = vec_idx.join(item_index, "item_idx").join(item_stats, "product_id", "left_anti").select("item_idx", "vec")
        n_cold = cold_vec.count()
        counts["cold_items"] = n_cold
        if n_cold == 0:
            _stage(spark.createDataFrame([], "user_idx int, item_idx int, cold_score float"), stage_dir, "cold")
            return f"no cold products (regression R2 {model.r2:.3f} on {model.rows} warm products)"
        uf = als_users.join(warm_users.select("user_id"), "user_id", "left_semi").join(user_index, "user_id").select(
            F.col("user_idx").alias("id"), F.col("factors").alias("features"))
        cands = C.cold_candidates(uf, C.predicted_factors(cold_vec, model), rc.cold_candidates,
                                  (int(counts["active_users"]), n_cold), cfg.als.topk_user_block, cfg.als.topk_item_block)
        staged = _stage(cands, stage_dir, "cold")
        counts["cold_candidates"] = staged.count()
        return (f"{counts['cold_candidates']} cold-item candidates over {n_cold} cold products "
                f"(content→ALS regression R2 {model.r2:.3f} on {model.rows} warm products)")

    progress("cold", cold)

    def recommend() -> str:
        def ids(df: DataFrame) -> DataFrame:
            return df.join(user_index, "user_idx").join(item_index, "item_idx")

        content_c = ids(spark.read.parquet(str(stage_dir / "content"))).join(
            item_index.select(F.col("item_idx").alias("reason_item_idx"), F.col("product_id").alias("reason_product_id")),
            "reason_item_idx")
        cold_c = ids(spark.read.parquet(str(stage_dir / "cold")))
        als_c = als_cands.filter(F.col("rank") <= rc.als_candidates).join(warm_users.select("user_id"), "user_id", "left_semi").join(
            products.select("product_id"), "product_id", "left_semi").select("user_id", "product_id", F.col("score").alias("als_score"))
        blended = B.blend_candidates(als_c, content_c, cold_c, warm_users, item_stats, rc)
        pop = P.popularity(usable(flagged), cutoff, rc.popular_days, products).persist()
        lists = L.final_lists(blended, history, user_stats, products, pop, rc,
                              stage=lambda df, name: _stage(df, stage_dir, name))
        final, short = lists.final, lists.short
        stamp = utcnow()
        out = final.select(
            F.lit(run_date).cast("date").alias("run_date"), "user_id", "rank", "product_id",
            F.round("score", 6).cast("double").alias("score"), "source", "reason", "reason_product_id", "category",
            F.when(F.col("source") != "popular", F.lit(result.als_version)).alias("als_model_version"),
            F.lit(version).alias("content_model_version"), F.lit(run_id).alias("run_id"),
            F.lit(stamp).cast("timestamp").alias("created_at"),
        )
        out = _stage(out, stage_dir, "recommendations")
        pop.unpersist()
        if os.environ.get(FAULT_ENV) == "kill_during_write":
            pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            out = out.mapInPandas(_killer(pid), out.schema)
        written = _replace_night(out, cfg, RECOMMENDATIONS, run_date)
        agg = out.agg(F.countDistinct("user_id").alias("users"),
                      *[F.sum((F.col("source") == s).cast("long")).alias(s) for s in B.SOURCES]).collect()[0]
        counts["recommendations"] = written
        counts["users_with_recommendations"] = int(agg["users"])
        counts["users_short"] = int(short.count())
        for s in B.SOURCES:
            counts[f"recommendations_{s}"] = int(agg[s] or 0)
        full = out.groupBy("user_id").count().filter(F.col("count") == rc.top_n).count()
        counts["users_with_full_list"] = int(full)
        counts["users_without_recommendations"] = counts["active_users"] - counts["users_with_recommendations"]
        return (f"{written} rows for {agg['users']} of {counts['active_users']} active users "
                f"({full} full lists of {rc.top_n}); sources " +
                ", ".join(f"{s} {counts[f'recommendations_{s}']}" for s in B.SOURCES))

    progress("recommendations", recommend)

    def similar() -> str:
        content_nn = S.nearest(vec_idx.select(F.col("item_idx").alias("id"), F.col("vec").alias("features")),
                               rc.similar_top_m, n_items, cfg.als.topk_user_block, cfg.als.topk_item_block)
        warm_f = als_items.join(item_index, "product_id").select(F.col("item_idx").alias("id"), "factors")
        n_warm = warm_f.count()
        collab_nn = None
        if n_warm > 1:
            collab_nn = S.nearest(S.unit_rows(warm_f.withColumnRenamed("factors", "features")), rc.similar_top_m,
                                  n_warm, cfg.als.topk_user_block, cfg.als.topk_item_block)
        evidence = item_stats.join(item_index, "product_id").select(
            "item_idx", (F.col("n_users") / (F.col("n_users") + F.lit(rc.item_shrinkage))).alias("b"))
        sims = S.similar_items(content_nn, collab_nn, evidence, rc)
        named = sims.join(item_index, "item_idx").join(
            item_index.select(F.col("item_idx").alias("other_idx"), F.col("product_id").alias("similar_product_id")), "other_idx")
        out = named.select(
            F.lit(run_date).cast("date").alias("run_date"), "product_id", "rank", "similar_product_id",
            F.round("score", 6).cast("double").alias("score"), "source", F.lit(version).alias("content_model_version"),
            F.lit(result.als_version if collab_nn is not None else None).cast("string").alias("als_model_version"),
            F.lit(run_id).alias("run_id"), F.lit(utcnow()).cast("timestamp").alias("created_at"),
        )
        out = _stage(out, stage_dir, "similar_items")
        written = _replace_night(out, cfg, SIMILAR_ITEMS, run_date)
        counts["similar_items"] = written
        counts["products_with_similar"] = out.select("product_id").distinct().count()
        cold_ids = item_index.join(item_stats, "product_id", "left_anti")
        counts["cold_products_with_similar"] = out.join(cold_ids, "product_id", "left_semi").select("product_id").distinct().count()
        return (f"{written} rows for {counts['products_with_similar']} of {n_items} products "
                f"({counts['cold_products_with_similar']} cold)")

    progress("similar_items", similar)

    def keep() -> str:
        counts.update(retention(spark, cfg, run_date))
        vacuumed = counts["recommendations_vacuumed"] + counts["similar_items_vacuumed"]
        return (f"kept {rc.keep_nights} nights; deleted {counts['recommendations_nights_deleted']} old night(s); "
                + (f"vacuumed {vacuumed} table(s) (files older than {rc.vacuum_retain_hours:.0f} h)" if vacuumed
                   else f"no VACUUM due (every {rc.vacuum_every_days:g} days)"))

    progress("retention", keep)

    for frame in (flagged, history, user_stats, item_stats, item_index, vec_idx, products):
        frame.unpersist()
    if counts["users_without_recommendations"]:
        log.warning("%d active users got no recommendation (catalog too small for the filters?)",
                    counts["users_without_recommendations"])
    _write_summary(stage_dir, result)
    return result


def _write_summary(folder: Path, result: NightResult) -> None:
    data: dict[str, Any] = {"run_date": result.run_date.isoformat(), "content_version": result.content_version,
                            "als_version": result.als_version, "counts": result.counts,
                            "metrics": result.metrics, "seconds": result.seconds}
    (folder / "summary.json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
