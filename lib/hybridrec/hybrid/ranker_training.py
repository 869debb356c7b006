"""Train the ranker on the data's own history: replay the night ``ranker.label_days`` before
``cutoff`` and learn from what users did in the days between.

The replay runs the nightly code itself (``collab.als.fit_als`` at the earlier moment, in memory,
then ``scoring.score_users`` and ``learned.night_features``), so the features the ranker learns
from are computed exactly as tonight's will be. Everything it reads lies before ``cutoff``: the
evaluation can train a ranker for its own cutoff without seeing the test window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from hybridrec.collab.als import fit_als
from hybridrec.collab.confidence import flag_interactions, usable
from hybridrec.config import Config
from hybridrec.hybrid.candidates import source_recall
from hybridrec.hybrid.content import night_vectors
from hybridrec.hybrid.learned import night_features
from hybridrec.hybrid.lists import Stage
from hybridrec.hybrid.ranker import RankerModel, fit_ranker, label_pairs, save_ranker, training_rows
from hybridrec.hybrid.scoring import NIGHT_PRODUCT_COLUMNS, NightInputs, Progress, parquet_stage, score_users
from hybridrec.models.training import current_version
from hybridrec.run_dates import start_of_day
from hybridrec.splits import events_between
from hybridrec.tables import INTERACTIONS, PRODUCT_EMBEDDINGS, PRODUCTS, require_table
from hybridrec.tracking import log_run


@dataclass
class RankerTraining:
    """A trained ranker and how its training went (recorded in ``ranker.json`` and MLflow)."""

    ranker: RankerModel
    label_start: dt.datetime
    cutoff: dt.datetime
    recall: dict[str, float] = field(default_factory=dict)  # candidate recall per source, on the labels
    seconds: dict[str, float] = field(default_factory=dict)


def ranker_version(cfg: Config, cutoff: dt.datetime, content_version: str) -> str:
    """``<cutoff date>-<hash of the settings and content model>``: the same night and settings
    give the same version (a re-run replaces it)."""
    blob = json.dumps(
        {"ranker": dataclasses.asdict(cfg.ranker), "content": content_version, "cutoff": cutoff.isoformat()},
        sort_keys=True,
        default=str,
    )
    return f"{cutoff:%Y-%m-%d}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def train_ranker(
    spark: SparkSession,
    cfg: Config,
    products: DataFrame,
    interactions: DataFrame,
    vectors: DataFrame,
    content_version: str,
    cutoff: dt.datetime,
    stage: Stage,
) -> RankerTraining:
    """Replay the night at ``cutoff - ranker.label_days``, label its pools with the events of
    ``[that moment, cutoff)`` and fit the ranker (see the module docstring)."""
    kc = cfg.ranker
    start = cutoff - dt.timedelta(days=kc.label_days)
    seconds: dict[str, float] = {}
    progress = Progress(seconds, job="ranker")
    fit_cfg = dataclasses.replace(cfg, als=dataclasses.replace(cfg.als, evaluate=False, tune=False))

    def prefixed(df: DataFrame, name: str) -> DataFrame:
        return stage(df, f"ranker_{name}")

    fits = []

    def als() -> str:
        fit = fit_als(spark, fit_cfg, interactions, start, products=products)
        fits.append(fit)
        return f"ALS replayed at {start:%Y-%m-%d} on {fit.counts.get('pairs', 0)} user-product pairs (in memory)"

    progress("als", als)
    fit = fits[0]
    inputs = NightInputs.from_fit(fit, products, interactions, vectors, content_version)
    scores = score_users(spark, cfg, inputs, start, prefixed, progress, content_users="all")
    window = events_between(interactions, start, cutoff)
    labels = label_pairs(usable(flag_interactions(window, cutoff, cfg.als.event_weights, products))).persist()
    out: dict[str, object] = {}

    def features() -> str:
        feats = prefixed(night_features(scores, inputs, cfg), "features")
        out["recall"] = source_recall(feats, labels)
        rows = prefixed(training_rows(feats, labels, inputs.user_index, kc), "rows")
        out["rows"] = rows
        recall = out["recall"]
        return (
            f"candidate recall of the {labels.count()} labelled pairs in [{start:%Y-%m-%d}, {cutoff:%Y-%m-%d}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in recall.items())  # type: ignore[union-attr]
        )

    progress("features", features)
    version = ranker_version(cfg, cutoff, content_version)

    def train() -> str:
        ranker = fit_ranker(out["rows"], kc, version)  # type: ignore[arg-type]
        out["ranker"] = ranker
        top = sorted(ranker.importances.items(), key=lambda kv: -kv[1])[:5]
        return (
            f"ranker {version}: {kc.trees} trees on {ranker.counts['rows']} rows of {ranker.counts['users']} users "
            f"({ranker.counts['positives']} positives); top features " + ", ".join(f"{k} {v:.2f}" for k, v in top)
        )

    progress("train", train)
    labels.unpersist()
    scores.release()
    fit.release()
    ranker: RankerModel = out["ranker"]  # type: ignore[assignment]
    ranker.metrics.update({f"candidate_recall_{k}": v for k, v in out["recall"].items()})  # type: ignore[union-attr]
    return RankerTraining(
        ranker=ranker,
        label_start=start,
        cutoff=cutoff,
        recall=dict(out["recall"]),  # type: ignore[call-overload]
        seconds=seconds,
    )


def train_and_save(spark: SparkSession, cfg: Config, run_date: dt.date) -> RankerTraining:
    """``jobs/train_ranker.py``: train on every event before ``run_date`` 00:00 UTC (the tables of
    ingest and train), save under ``<paths.models>/ranker/<version>/``, point ``current.json`` at
    it and log the run to MLflow (best effort)."""
    cutoff = start_of_day(run_date)
    products = require_table(spark, cfg, PRODUCTS, "jobs/ingest.py").select(*NIGHT_PRODUCT_COLUMNS)
    interactions = require_table(spark, cfg, INTERACTIONS, "jobs/ingest.py")
    embeddings = require_table(spark, cfg, PRODUCT_EMBEDDINGS, "jobs/train.py")
    version = current_version(cfg)
    vectors = night_vectors(embeddings, version)
    stage_dir = Path(cfg.paths.checkpoints) / "ranker" / run_date.isoformat()
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    trained = train_ranker(spark, cfg, products, interactions, vectors, version, cutoff, parquet_stage(stage_dir))
    ranker = trained.ranker
    meta = {
        "cutoff": cutoff.isoformat(),
        "label_start": trained.label_start.isoformat(),
        "content_version": version,
        "settings": dataclasses.asdict(cfg.ranker),
        "candidate_recall": trained.recall,
        "seconds": trained.seconds,
    }
    folder = save_ranker(cfg, ranker, meta)
    log_run(
        cfg.ranker,
        cfg.paths.models,
        run_name=ranker.version,
        params={k: v for k, v in dataclasses.asdict(cfg.ranker).items() if not k.startswith("mlflow")},
        metrics={
            **ranker.metrics,
            **{f"importance_{k}": v for k, v in ranker.importances.items()},
            **{f"count_{k}": float(v) for k, v in ranker.counts.items()},
            **{f"seconds_{k}": float(v) for k, v in trained.seconds.items()},
        },
        files=[str(folder / "ranker.json")],
        tags={"ranker_version": ranker.version, "content_version": version},
        what="the ranker",
    )
    shutil.rmtree(stage_dir, ignore_errors=True)
    return trained
