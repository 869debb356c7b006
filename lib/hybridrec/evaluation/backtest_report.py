"""The evaluate job: backtest every system on a temporal split, score it per segment with
bootstrap intervals, and write ``<paths.report>/<cutoff>/index.html`` + ``metrics.json`` (one
report per catalog and cutoff; the data statement comes from ``interactions.simulated``).

Steps (one progress line each): split → als → history / content / cold (the nightly's scoring at
the cutoff) → lists → metrics (per user, per segment; Poisson bootstrap over users; paired
differences hybrid − ALS, ALS − popularity, hybrid − content) → gallery → report (+ a headless
Chromium screenshot when Chromium is installed). Nothing is written to the tables besides the
job's row in gold.runs; intermediate results are staged under ``<paths.checkpoints>/evaluate/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab.topk import blocked
from hybridrec.config import Config
from hybridrec.errors import HybridrecError
from hybridrec.evaluation import report
from hybridrec.evaluation.bootstrap import bootstrap_ci, paired_difference_ci
from hybridrec.evaluation.per_user import coverage, per_user_metrics
from hybridrec.evaluation.protocol import SEGMENTS, Split, temporal_split
from hybridrec.evaluation.systems import Backtest, backtest
from hybridrec.hybrid.content import night_vectors
from hybridrec.hybrid.scoring import Progress, parquet_stage
from hybridrec.models.training import current_version
from hybridrec.run_dates import date_cutoff, default_evaluation_cutoff, last_event
from hybridrec.tables import INTERACTIONS, PRODUCT_EMBEDDINGS, PRODUCTS, require_table

log = logging.getLogger(__name__)

RANKING = ("recall", "ndcg", "ap", "precision")
BEYOND = ("n_categories", "novelty")
COMPARISONS = (
    ("hybrid", "als"),
    ("als", "popularity"),
    ("hybrid", "content"),
    ("learned", "als"),
    ("learned", "hybrid"),
    ("learned", "content"),
)


@dataclass
class EvaluationResult:
    cutoff: dt.datetime
    report: Path
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    headline: str = ""


def evaluation_cutoff(cfg: Config, interactions: DataFrame) -> dt.datetime:
    """``evaluate.cutoff`` at 00:00 UTC, or ``test_days`` before the day after the last event
    (``run_dates.default_evaluation_cutoff``). Raises ``HybridrecError`` when there is no event."""
    if cfg.evaluate.cutoff:
        return date_cutoff(cfg.evaluate.cutoff)
    last = last_event(interactions)
    if last is None:
        raise HybridrecError("bronze.interactions is empty: nothing to evaluate (run jobs/ingest.py with interactions)")
    return default_evaluation_cutoff(last, cfg.evaluate.test_days)


def run_evaluation(spark: SparkSession, cfg: Config) -> EvaluationResult:
    ev = cfg.evaluate
    products = require_table(spark, cfg, PRODUCTS, "jobs/ingest.py")
    interactions = require_table(spark, cfg, INTERACTIONS, "jobs/ingest.py")
    embeddings = require_table(spark, cfg, PRODUCT_EMBEDDINGS, "jobs/train.py")
    version = current_version(cfg)
    cutoff = evaluation_cutoff(cfg, interactions)
    out_dir = report.report_dir(cfg.paths.report, cutoff.date().isoformat())
    result = EvaluationResult(cutoff=cutoff, report=out_dir / report.INDEX)
    progress = Progress(result.seconds, job="evaluate")
    stage_dir = Path(cfg.paths.checkpoints) / "evaluate" / cutoff.date().isoformat()
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    stage = parquet_stage(stage_dir)
    splits: list[Split] = []

    def split_() -> str:
        s = temporal_split(cfg, products, interactions, cutoff)
        splits.append(s)
        c = s.counts
        return (
            f"cutoff {cutoff:%Y-%m-%d}, test {ev.test_days:g} days: {c['train_events']} events before, "
            f"{c['test_events']} after; {c['judged_users']} users judged ({c['test_users_new']} new users "
            f"only after the cutoff, not judged); cold-item segment {c.get('cold_items_users', 0)} users"
        )

    progress("split", split_)
    split = splits[0]
    result.counts.update({f"split_{k}": v for k, v in split.counts.items()})
    vectors = night_vectors(embeddings, version)
    bt = backtest(spark, cfg, split, interactions, vectors, version, stage, progress)
    result.counts.update({f"backtest_{k}": v for k, v in bt.scores.counts.items()})
    tables: dict[str, Any] = {}

    def metrics() -> str:
        items = (
            split.products.select("product_id", "category")
            .join(
                bt.scores.item_stats.select("product_id", F.col("n_users").alias("train_users")), "product_id", "left"
            )
            .fillna({"train_users": 0})
        )
        n_train_users = int(bt.scores.counts["active_users"])
        per_user = None
        for seg in SEGMENTS:
            part = per_user_metrics(
                bt.lists, split.relevant.filter(F.col("segment") == seg), items, ev.k, n_train_users, systems=bt.systems
            ).withColumn("segment", F.lit(seg))
            per_user = part if per_user is None else per_user.unionByName(part)
        per_user = stage(per_user, "per_user")
        metric_cols = [*RANKING, *BEYOND]
        tables["headline"] = bootstrap_ci(
            per_user, ["segment", "system"], metric_cols, ev.bootstrap_replicates, ev.seed, ev.confidence
        )
        paired = [
            paired_difference_ci(
                per_user, a, b, ["segment"], list(RANKING), ev.bootstrap_replicates, ev.seed, ev.confidence
            )
            for a, b in COMPARISONS
            if a in bt.systems and b in bt.systems
        ]
        tables["paired"] = paired
        n_catalog = int(split.counts["catalog_products"])
        tables["coverage"] = coverage(bt.lists, ev.k, n_catalog)
        return (
            f"{per_user.count()} (segment, system, user) rows; {ev.bootstrap_replicates} bootstrap replicates, "
            f"{ev.confidence:.0%} intervals"
        )

    progress("metrics", metrics)
    headline = report.metric_rows(tables["headline"])
    paired_rows = [row for t in tables["paired"] for row in report.paired_rows(t)]
    figures = [
        report.SystemFigure("all_users", str(r.system), "coverage", float(r.coverage))
        for r in tables["coverage"].itertuples(index=False)
    ]
    gallery: dict[str, Any] = {}

    def gallery_() -> str:
        gallery["users"] = gallery_users(split, bt, cfg)
        gallery["cold"] = gallery_cold_products(split, bt, cfg)
        return f"{len(gallery['users'])} users, {len(gallery['cold'])} cold products"

    progress("gallery", gallery_)
    data = report.ReportData(
        title="hybridrec offline evaluation",
        protocol=report.Protocol(
            cutoff=cutoff.date().isoformat(),
            k=ev.k,
            data=report.data_statement(cfg.interactions.simulated, cfg.interactions.path),
            simulated=cfg.interactions.simulated,
            description=protocol_text(cfg, split),
            windows={
                "train": f"events before {cutoff:%Y-%m-%d} 00:00 UTC",
                "test": f"[{cutoff:%Y-%m-%d}, {split.end:%Y-%m-%d}) UTC",
            },
            counts={k: float(v) for k, v in split.counts.items()},
            replicates=ev.bootstrap_replicates,
            level=ev.confidence,
        ),
        headline=headline,
        system_figures=figures,
        paired=paired_rows,
        classification=report.classification_from_training(training_metrics(cfg, version)),
        gallery_users=gallery["users"],
        gallery_cold=gallery["cold"],
        extra={
            "content_model_version": version,
            "als_model_version": bt.als_version,
            "seconds": result.seconds,
            "backtest_counts": bt.scores.counts,
        },
    )

    def write() -> str:
        out = report.write_report(out_dir, data)
        note = screenshot(cfg, out)
        return f"{out} and metrics.json written; {note}"

    progress("report", write)
    bt.scores.release()
    result.headline = report.format_headline(headline, ["recall", "ndcg", "ap"])
    for row in headline:
        if row.metric in ("recall", "ndcg", "ap"):
            result.metrics[f"{row.segment}_{row.system}_{row.metric}_at_{ev.k}"] = round(row.mean, 6)
    for row in paired_rows:
        if row.metric == "recall":
            result.metrics[f"{row.segment}_{row.system_a}_minus_{row.system_b}_recall_lo"] = round(row.lo, 6)
    return result


EXCLUDED_TEXT = {
    "interacted": "products the user had interacted with before",
    "purchased": "products the user had bought before",
    "none": "nothing",
}


def protocol_text(cfg: Config, split: Split) -> str:
    ev, rc = cfg.evaluate, cfg.recommend
    removed = EXCLUDED_TEXT[rc.exclude]
    judged = (
        f"{removed} excluded, as every list drops them"
        if ev.relevant == "allowed" and rc.exclude != "none"
        else "repeats included"
    )
    cap = f"at most {rc.max_per_category} per category" if rc.max_per_category is not None else "no category cap"
    return (
        f"Every system sees the usable events before {split.cutoff:%Y-%m-%d} and is judged on the products "
        f"each user interacted with in the {ev.test_days:g} days after it ({judged}). Systems: popularity "
        f"(the nightly popularity, the same list for all), ALS alone, content alone (nearest products to the "
        f"user's profile), hybrid (the nightly lists); all lists get the nightly filter (recommend.exclude="
        f"{rc.exclude}: {removed} removed; {cap}). "
        f"Segments: all judged users; users with at most {ev.few_interactions} events before the cutoff; "
        f"warm items (relevant products with events before the cutoff); cold items (without). "
        f"Intervals: Poisson bootstrap over users ({ev.bootstrap_replicates} replicates), paired across systems."
    )


def training_metrics(cfg: Config, version: str) -> dict[str, Any]:
    path = Path(cfg.paths.models) / version / "metrics.json"
    if not path.is_file():
        log.warning("no %s: the report has no classification section", path)
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _item(row: Any, **extra: Any) -> report.GalleryItem:
    return report.GalleryItem(
        product_id=row["product_id"],
        title=row["title"] or row["product_id"],
        category=row["category"],
        image_path=row["image_path"],
        **extra,
    )


def gallery_users(split: Split, bt: Backtest, cfg: Config) -> list[report.GalleryUser]:
    """A few judged users (seeded pick among those with a hybrid hit and 3+ products of history):
    their most weighted history next to their hybrid list, hits marked."""
    ev = cfg.evaluate
    if ev.gallery_users == 0:
        return []
    relevant = split.relevant.filter(F.col("segment") == "all_users").select("user_id", "product_id")
    hits = (
        bt.hybrid.join(relevant, ["user_id", "product_id"], "left_semi")
        .groupBy("user_id")
        .agg(F.count(F.lit(1)).alias("hits"))
    )
    picked = [
        r["user_id"]
        for r in (
            hits.join(bt.scores.user_stats.filter(F.col("n_items") >= 3), "user_id")
            .orderBy(F.xxhash64("user_id", F.lit(ev.seed)))
            .limit(ev.gallery_users)
            .collect()
        )
    ]
    if not picked:
        return []
    who = F.col("user_id").isin(picked)
    info = split.products.select("product_id", "title", "category", "image_path")
    hist = (
        bt.scores.history.filter(who & (F.col("h_rank") <= 6))
        .join(info, "product_id")
        .select("user_id", "h_rank", "event", "product_id", "title", "category", "image_path")
        .collect()
    )
    recs = (
        bt.hybrid.filter(who)
        .join(info.drop("category"), "product_id")
        .join(relevant.filter(who).withColumn("hit", F.lit(True)), ["user_id", "product_id"], "left")
        .select("user_id", "rank", "product_id", "title", "category", "image_path", "source", "reason", "score", "hit")
        .collect()
    )
    out = []
    for user in picked:
        h = sorted((r for r in hist if r["user_id"] == user), key=lambda r: r["h_rank"])
        rs = sorted((r for r in recs if r["user_id"] == user), key=lambda r: r["rank"])
        n_hits = sum(1 for r in rs if r["hit"])
        out.append(
            report.GalleryUser(
                user_id=user,
                history=[_item(r, source=r["event"]) for r in h],
                recommended=[
                    _item(
                        r,
                        source=r["source"] + (" · hit" if r["hit"] else ""),
                        reason=r["reason"] or "",
                        score=float(r["score"]),
                    )
                    for r in rs
                ],
                note=f"{n_hits} of the top {ev.k} interacted with after the cutoff",
            )
        )
    return out


def gallery_cold_products(split: Split, bt: Backtest, cfg: Config) -> list[report.GalleryColdProduct]:
    """A few cold products with a photo that users turned to after the cutoff, with their most
    similar products by the fused content vector (what gold.similar_items holds for a cold product)."""
    ev, rc = cfg.evaluate, cfg.recommend
    if ev.gallery_cold_products == 0:
        return []
    cold = split.relevant.filter(F.col("segment") == "cold_items").select("product_id").distinct()
    info = split.products.select("product_id", "title", "category", "image_path")
    picked = (
        cold.join(info.filter(F.col("image_path").isNotNull()), "product_id")
        .join(bt.scores.item_index, "product_id")
        .orderBy(F.xxhash64("product_id", F.lit(ev.seed)))
        .limit(ev.gallery_cold_products)
        .collect()
    )
    if not picked:
        return []
    idx = [r["item_idx"] for r in picked]
    vec = bt.scores.vec_idx.select(F.col("item_idx").alias("id"), F.col("vec").alias("features"))
    near = blocked(
        vec.filter(F.col("id").isin(idx)),
        vec,
        6,
        rc.user_block,
        rc.content_item_block,
        (len(idx), bt.scores.n_items),
        exclude_self=True,
    )
    rows = (
        near.join(bt.scores.item_index, "item_idx")
        .join(info, "product_id")
        .select("user_idx", "rank", "score", "product_id", "title", "category", "image_path")
        .collect()
    )
    out = []
    for p in picked:
        sims = sorted((r for r in rows if r["user_idx"] == p["item_idx"]), key=lambda r: r["rank"])
        out.append(
            report.GalleryColdProduct(
                product_id=p["product_id"],
                title=p["title"] or p["product_id"],
                image_path=p["image_path"],
                category=p["category"],
                similar=[_item(r, score=float(r["score"]), source="content") for r in sims],
            )
        )
    return out


def screenshot(cfg: Config, index: Path) -> str:
    """Render the report in headless Chromium into ``screenshot.png`` beside it, when installed."""
    if not cfg.evaluate.screenshot:
        return "no screenshot (evaluate.screenshot=false)"
    from hybridrec.evaluation import browser

    try:
        binary = browser.find_chromium()
    except Exception as exc:  # noqa: BLE001 - a missing browser only costs the screenshot
        return f"no screenshot: {exc}"
    shot = index.parent / "screenshot.png"
    browser.render(index, shot, binary=binary)
    return f"screenshot {shot}"
