"""Spark's ALS estimator for implicit feedback, configured once: parameters, blocks, checkpoints.

Why checkpoints: each ALS iteration adds to the lineage of the factor RDDs; after a few dozen
iterations a lost block (or just planning the DAG) costs more than the iteration itself, and deep
lineages overflow the stack. With a checkpoint directory set, Spark's ALS writes the factors out
every ``checkpointInterval`` iterations and cuts the lineage there; without one it silently
does not, so ``fit_model`` sets ``paths.checkpoints/als`` when the session has no directory yet.

``coldStartStrategy="drop"``: ``model.transform`` on a (user, item) pair the model has no
factors for drops the row instead of returning NaN, which would poison any metric averaged over
predictions. Top-K (``hybridrec.collab.topk``) only ever scores users and items with factors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession

from hybridrec.config import AlsConfig, Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlsParams:
    """The hyper-parameters tuned and saved with a model (Spark's meaning of each)."""

    rank: int
    reg_param: float
    alpha: float
    max_iter: int

    @classmethod
    def from_config(cls, als: AlsConfig) -> AlsParams:
        return cls(rank=als.rank, reg_param=als.reg_param, alpha=als.alpha, max_iter=als.max_iter)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def num_blocks(spark: SparkSession, als: AlsConfig) -> int:
    """User and item blocks: ``als.num_blocks``, else the session's default parallelism.

    Spark's default of 10 blocks suits a cluster; on two cores ten blocks only add shuffle
    overhead (measured in bench/bench_als.py).
    """
    return als.num_blocks or max(1, spark.sparkContext.defaultParallelism)


def build_estimator(params: AlsParams, als: AlsConfig, blocks: int) -> ALS:
    """``ALS(implicitPrefs=True)`` over ``user_idx``, ``item_idx``, ``rating``."""
    return ALS(
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        alpha=params.alpha,
        implicitPrefs=True,
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="rating",
        coldStartStrategy="drop",
        nonnegative=False,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        checkpointInterval=als.checkpoint_interval if als.checkpoint_interval > 0 else -1,
        seed=als.seed,
    )


def ensure_checkpoint_dir(spark: SparkSession, cfg: Config) -> str:
    """The session's checkpoint directory, set to ``paths.checkpoints/als`` if it had none."""
    sc = spark.sparkContext
    current = sc.getCheckpointDir()
    if current:
        return str(current)
    target = (
        str(Path(cfg.paths.checkpoints) / "als")
        if "://" not in cfg.paths.checkpoints
        else (cfg.paths.checkpoints.rstrip("/") + "/als")
    )
    sc.setCheckpointDir(target)
    log.info("spark checkpoint directory set to %s (ALS lineage)", target)
    return target


def fit_model(ratings: DataFrame, params: AlsParams, cfg: Config) -> tuple[ALSModel, float]:
    """Fit ALS on ``(user_idx, item_idx, rating)``; return the model and the fit's wall seconds.

    Spark's ``fit`` runs every iteration and materialises the final factors, so the time is the
    whole fit.
    """
    spark = ratings.sparkSession
    if cfg.als.checkpoint_interval > 0:
        ensure_checkpoint_dir(spark, cfg)
    estimator = build_estimator(params, cfg.als, num_blocks(spark, cfg.als))
    t0 = time.perf_counter()
    model = estimator.fit(ratings)
    seconds = time.perf_counter() - t0
    log.info("ALS fit %s in %.1fs", params.as_dict(), seconds)
    return model, seconds
