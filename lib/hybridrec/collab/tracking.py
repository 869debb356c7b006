"""Log an ALS fit to MLflow: parameters, metrics, counts, the tuning trials and the model's folder.

Why optional in spirit: the model and its ``als.json`` are saved before anything is logged, and a
failure to reach or write the tracking store is a warning, never a lost night. The default store
is a local folder (``file:<paths.models>/mlruns``); on Databricks set ``als.mlflow_tracking_uri:
databricks``. MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is true (it wants a
database, and the SQL extras are not installed), so it is set, for file URIs only, just before use.

A client (``MlflowClient``) is used rather than the fluent API so that nothing global (active
run, tracking URI) leaks into whatever else runs in the process.
"""
from __future__ import annotations

import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from hybridrec.config import Config
from hybridrec.runs import redact

log = logging.getLogger(__name__)


def tracking_uri(cfg: Config) -> str:
    """``als.mlflow_tracking_uri``, else a file store under ``paths.models/mlruns``."""
    if cfg.als.mlflow_tracking_uri:
        return cfg.als.mlflow_tracking_uri
    models = cfg.paths.models
    if "://" in models or models.startswith("dbfs:"):
        return models.rstrip("/") + "/mlruns"
    return (Path(models) / "mlruns").resolve().as_uri()


def mlflow_key(name: str) -> str:
    """A metric/param name MLflow accepts (alphanumerics, ``_ - . : /`` and spaces)."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", name.replace("@", "_at_"))


def log_fit(
    cfg: Config,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, Any],
    tags: Mapping[str, str],
) -> str | None:
    """Log one run; return its id, or None (with a warning) when logging failed.

    ``artifacts`` maps artifact file names (``tuning.json``) to JSON-serialisable data. Metric
    names are made MLflow-safe (``ndcg@10`` → ``ndcg_at_10``: MLflow 3 refuses ``@``). Non-finite
    metrics are left out.
    """
    uri = tracking_uri(cfg)
    try:
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(cfg.als.mlflow_experiment)
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment(cfg.als.mlflow_experiment)
        )
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric(key=mlflow_key(k), value=float(v), timestamp=now, step=0)
                for k, v in metrics.items()
                if isinstance(v, (int, float)) and math.isfinite(float(v))
            ],
            params=[Param(key=mlflow_key(k), value=str(v)) for k, v in params.items()],
        )
        for name, data in artifacts.items():
            client.log_dict(run.info.run_id, data, name)
        client.set_terminated(run.info.run_id)
        log.info("logged ALS run %s to MLflow %s (experiment %s)", run.info.run_id, redact(uri),
                 cfg.als.mlflow_experiment)
        return str(run.info.run_id)
    except Exception as exc:  # noqa: BLE001 - tracking must never fail the fit
        log.warning("could not log the ALS fit to MLflow at %s: %s: %s (the model is saved)",
                    redact(uri), type(exc).__name__, redact(str(exc)))
        return None
