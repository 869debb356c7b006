"""The learned second stage: a gradient-boosted ranker (``xgboost.spark.SparkXGBRanker``) over the
candidate pool's pair features, trained on the data's own history.

Training (``training_rows`` → ``fit_ranker``): the night is replayed ``ranker.label_days`` before
the end of the data (ALS fitted there, every source scored as that night would); each user's pool
is labelled with what the user did in the ``label_days`` after (1 = the user interacted with the
product, 0 = not); users with no positive in their pool teach a ranking nothing and are left out;
each kept user keeps every positive and at most ``ranker.negatives`` negatives (the ones with
the smallest seeded hash: a sample that does not depend on the partitioning). ``qid`` = the
user's dense ALS index, so one user's rows form one query; XGBoost's Spark estimator partitions by
it and trains over ``ranker.workers`` executors. (A 31-bit hash of the user id as qid trained
empty trees with two workers: XGBoost handles qid as float32, which merges and unsorts large ids;
dense indices stay exact up to 2^24 users.)

Scoring (``score_pool``): the fitted model's margin for each pair of tonight's pool; higher is
better. The model is saved under ``<paths.models>/ranker/<version>/`` (Spark ML's writer,
``spark_model/``) with ``ranker.json`` (features, settings, importances, training counts and
metrics), and ``<paths.models>/ranker/current.json`` names the version the nightly job uses.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.config import Config, RankerConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.pair_features import FEATURES

log = logging.getLogger(__name__)

RANKER_DIR = "ranker"
CURRENT = "current.json"


def label_pairs(events: DataFrame) -> DataFrame:
    """(user_id, product_id) pairs with a usable event in the label window (``events`` already
    cut to it)."""
    return events.select("user_id", "product_id").distinct()


def training_rows(features: DataFrame, labels: DataFrame, user_index: DataFrame, kc: RankerConfig) -> DataFrame:
    """Labelled, sampled training rows: ``features`` (``pair_features`` output) + ``label`` +
    ``qid`` (``user_index``: user_id, user_idx), for users with at least one positive in their
    pool (see the module docstring)."""
    labelled = features.join(labels.withColumn("label", F.lit(1)), ["user_id", "product_id"], "left").fillna(
        0, subset=["label"]
    )
    positives = labelled.groupBy("user_id").agg(F.sum("label").alias("_pos")).filter(F.col("_pos") > 0)
    order = Window.partitionBy("user_id").orderBy(
        F.xxhash64(F.col("user_id"), F.col("product_id"), F.lit(kc.seed)), F.col("product_id")
    )
    negatives = (
        labelled.filter(F.col("label") == 0)
        .withColumn("_n", F.row_number().over(order))
        .filter(F.col("_n") <= kc.negatives)
        .drop("_n")
    )
    kept = labelled.filter(F.col("label") == 1).unionByName(negatives).join(positives, "user_id", "left_semi")
    qids = user_index.select("user_id", F.col("user_idx").cast("int").alias("qid"))
    return kept.join(qids, "user_id").withColumn("label", F.col("label").cast("double"))


class NothingToLearn(HybridrecError):
    """No user acted on any of their candidates in the label window: no ranker can be trained."""


@dataclass
class RankerModel:
    """A fitted ranker with what is saved beside it."""

    model: Any  # xgboost.spark.SparkXGBRankerModel
    version: str
    features: list[str]
    importances: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def _workers(rows: DataFrame, kc: RankerConfig) -> int:
    if kc.workers is not None:
        return kc.workers
    return max(1, int(rows.sparkSession.sparkContext.defaultParallelism))


def fit_ranker(rows: DataFrame, kc: RankerConfig, version: str) -> RankerModel:
    """Train ``SparkXGBRanker`` on ``training_rows`` output (persist ``rows`` first: it is read
    more than once)."""
    from xgboost.spark import SparkXGBRanker

    counts = {
        "rows": rows.count(),
        "positives": rows.filter(F.col("label") > 0).count(),
        "users": rows.select("user_id").distinct().count(),
    }
    if counts["positives"] == 0:
        raise NothingToLearn(
            "the ranker has nothing to learn: no user acted on any of their candidates in the label "
            f"window (ranker.label_days={kc.label_days:g}); lengthen the window or check the interactions"
        )
    unknown = sorted(set(kc.drop_features) - set(FEATURES))
    if unknown:
        raise HybridrecError(
            f"ranker.drop_features names {', '.join(unknown)}, which are not ranker features; "
            f"choose among {', '.join(FEATURES)}"
        )
    features = [f for f in FEATURES if f not in kc.drop_features]
    estimator = SparkXGBRanker(
        features_col=features,
        label_col="label",
        qid_col="qid",
        prediction_col="ranker_score",
        num_workers=_workers(rows, kc),
        n_estimators=kc.trees,
        max_depth=kc.max_depth,
        learning_rate=kc.learning_rate,
        objective=kc.objective,
        min_child_weight=kc.min_child_weight,
        subsample=kc.subsample,
        colsample_bytree=kc.colsample_bytree,
        random_state=kc.seed,
        missing=float("nan"),
        tree_method="hist",
        # Always range-partition by qid: when the input already has num_workers partitions XGBoost
        # keeps them, a user's rows then sit on two workers and the trees came out empty.
        force_repartition=True,
    )
    model = estimator.fit(rows.select(*features, "label", "qid"))
    gain = model.get_booster().get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    importances = {
        name: round(float(gain.get(name, gain.get(f"f{i}", 0.0))) / total, 4) for i, name in enumerate(features)
    }
    return RankerModel(model=model, version=version, features=features, importances=importances, counts=counts)


def score_pool(model: RankerModel, features: DataFrame) -> DataFrame:
    """``pair_features`` rows → (user_id, product_id, reason_product_id, score, + feature columns
    kept for the source) with ``score`` = the ranker's margin (higher = better)."""
    missing = [f for f in model.features if f not in features.columns]
    if missing:
        raise HybridrecError(
            f"ranker {model.version} needs features {', '.join(missing)} that this version of hybridrec "
            "does not compute: retrain it with jobs/train_ranker.py"
        )
    scored = model.model.transform(features)
    return scored.withColumn("score", F.col("ranker_score").cast("double")).drop("ranker_score")


def ranker_dir(cfg: Config) -> Path:
    return Path(cfg.paths.models) / RANKER_DIR


def save_ranker(cfg: Config, ranker: RankerModel, meta: dict[str, Any]) -> Path:
    """Write the model and ``ranker.json`` under ``ranker/<version>/``, then point
    ``ranker/current.json`` at it (written last, atomically: a killed save leaves the old one)."""
    folder = ranker_dir(cfg) / ranker.version
    folder.mkdir(parents=True, exist_ok=True)
    ranker.model.write().overwrite().save(str(folder / "spark_model"))
    info = {
        "version": ranker.version,
        "features": ranker.features,
        "importances": ranker.importances,
        "counts": ranker.counts,
        "metrics": ranker.metrics,
        **meta,
    }
    (folder / "ranker.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
    tmp = ranker_dir(cfg) / f".{CURRENT}.tmp"
    tmp.write_text(json.dumps({"version": ranker.version}))
    os.replace(tmp, ranker_dir(cfg) / CURRENT)
    return folder


def current_ranker_version(cfg: Config) -> str | None:
    """The version ``ranker/current.json`` names, or None when no ranker was trained."""
    path = ranker_dir(cfg) / CURRENT
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text())["version"])
    except (ValueError, KeyError) as exc:
        raise HybridrecError(
            f"{path} is not a ranker pointer ({exc}): delete it, or retrain with jobs/train_ranker.py"
        ) from exc


def load_ranker(cfg: Config, version: str) -> RankerModel:
    """The saved ranker ``version`` (``save_ranker``'s layout)."""
    from xgboost.spark import SparkXGBRankerModel

    folder = ranker_dir(cfg) / version
    meta_path = folder / "ranker.json"
    if not meta_path.is_file():
        raise HybridrecError(f"ranker {version} has no {meta_path}: retrain with jobs/train_ranker.py")
    meta = json.loads(meta_path.read_text())
    model = SparkXGBRankerModel.load(str(folder / "spark_model"))
    return RankerModel(
        model=model,
        version=version,
        features=list(meta["features"]),
        importances=dict(meta.get("importances", {})),
        counts=dict(meta.get("counts", {})),
        metrics=dict(meta.get("metrics", {})),
    )
