"""Distributed training of the content models with Horovod on Spark.

The models and the Horovod loop arrive with the training issue; until then the job checks its
inputs and says what is missing, so ``spark-submit jobs/train.py`` already behaves like a job.
"""
from __future__ import annotations

import logging
from pathlib import Path

from hybridrec.config import Config
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.tables import FEATURE_SETS, features_path

log = logging.getLogger(__name__)


def check_features(cfg: Config) -> dict[str, str]:
    """Return the feature folders, or raise ``MissingInputError`` naming the job to run first."""
    found: dict[str, str] = {}
    for name in FEATURE_SETS:
        path = Path(features_path(cfg, name))
        if path.is_dir() and any(path.glob("*.parquet")):
            found[name] = str(path)
    if not found:
        raise MissingInputError(
            f"no features yet under {cfg.paths.features}: run jobs/preprocess.py first"
        )
    return found


def train(cfg: Config) -> None:
    """Train the image and text models on the preprocessed features."""
    found = check_features(cfg)
    log.info("features found: %s", ", ".join(sorted(found)))
    raise HybridrecError("model training is not implemented yet (see the distributed training issue)")
