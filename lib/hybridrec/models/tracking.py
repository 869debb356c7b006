"""MLflow logging of a training run: parameters, per-epoch and final metrics, artifacts.

Local runs log to a file store under ``<paths.models>/mlruns`` (``mlflow ui --backend-store-uri
<that folder>`` shows them); on Databricks set ``train.mlflow_tracking_uri: databricks``. Logging is
best effort: the model folder and ``metrics.json`` are the record of truth, so an MLflow failure is
reported as a warning and never loses a trained model.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from hybridrec.runs import redact

log = logging.getLogger(__name__)


def tracking_uri(configured: str | None, models_dir: str) -> str:
    if configured:
        return configured
    return (Path(models_dir).resolve() / "mlruns").as_uri()


def log_run(
    uri: str,
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    epoch_metrics: Mapping[str, list[dict[str, float]]],
    artifacts: list[str],
    tags: Mapping[str, str],
) -> str | None:
    """Log one run; returns its MLflow run id, or None when logging failed (warned)."""
    try:
        import mlflow

        if uri.startswith("file:"):
            # MLflow 3 keeps the file store in maintenance mode behind this switch; mlflow-skinny has
            # no SQL store, and a local file store is what a one-machine run needs.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=run_name, tags=dict(tags)) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            for model, history in epoch_metrics.items():
                for row in history:
                    step = int(row.get("epoch", 0))
                    mlflow.log_metrics(
                        {f"{model}_{k}": float(v) for k, v in row.items() if k != "epoch" and v == v}, step=step
                    )
            for path in artifacts:
                if Path(path).is_file():
                    mlflow.log_artifact(path)
            return str(run.info.run_id)
    except Exception as exc:  # noqa: BLE001 - tracking must never lose the trained model
        log.warning("MLflow logging to %s failed (the model and metrics.json are saved): %s",
                    redact(uri), redact(str(exc)))
        return None
