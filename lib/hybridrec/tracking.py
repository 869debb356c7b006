"""MLflow logging of a run (the content models' training, a night's ALS fit): params, metrics, artifacts.

Why optional in spirit: the model folder (and its ``metrics.json`` / ``als.json``) is saved before
anything is logged, and a failure to reach or write the tracking store is a warning, never a lost
model or night. The default store is a local folder (``<paths.models>/mlruns``; ``mlflow ui
--backend-store-uri <that folder>`` shows it); on Databricks set ``train.mlflow_tracking_uri`` and
``als.mlflow_tracking_uri`` to ``databricks``. MLflow 3 refuses file stores unless
``MLFLOW_ALLOW_FILE_STORE`` is true (it wants a database, and the SQL extras are not installed), so
it is set, for file URIs only, just before use.

One set of rules for every job: a client (``MlflowClient``) rather than the fluent API, so that
nothing global (active run, tracking URI) leaks into whatever else runs in the process; metric and
param names made MLflow-safe (``ndcg@10`` → ``ndcg_at_10``: MLflow 3 refuses ``@``); non-finite
metrics left out; a ``dbfs:`` or other remote models folder kept remote; credentials in the URI
never quoted in a warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hybridrec.config import MlflowSettings
from hybridrec.runs import redact

log = logging.getLogger(__name__)

# MLflow's limits per log_batch call, and the longest param value every MLflow version keeps.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 500

T = TypeVar("T")


def tracking_uri(settings: MlflowSettings, models_dir: str) -> str:
    """``<section>.mlflow_tracking_uri``, else a store under ``<models_dir>/mlruns``.

    A remote models folder (``dbfs:/...``, ``s3://...``) keeps its scheme: turning it into a local
    path would log into a folder of the driver that nobody reads.
    """
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    if "://" in models_dir or models_dir.startswith("dbfs:"):
        return models_dir.rstrip("/") + "/mlruns"
    return (Path(models_dir) / "mlruns").resolve().as_uri()


def mlflow_key(name: str) -> str:
    """A metric/param name MLflow accepts (alphanumerics, ``_ - . : /`` and spaces)."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", name.replace("@", "_at_"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_run(
    settings: MlflowSettings,
    models_dir: str,
    run_name: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    epoch_metrics: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    files: Sequence[str] = (),
    documents: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    what: str = "the run",
    kept: str = "the model is saved",
) -> str | None:
    """Log one run to ``settings``' store and experiment; return its id, or None (warned) on failure.

    ``epoch_metrics`` maps a model to its per-epoch rows (``{"epoch": 1, "loss": ...}``), logged as
    ``<model>_<metric>`` at step ``epoch``. ``files`` are copied as artifacts (missing ones skipped);
    ``documents`` maps artifact file names (``tuning.json``) to JSON-serialisable data. ``what`` and
    ``kept`` word the messages (``the ALS fit``; ``the model is saved``).
    """
    uri = tracking_uri(settings, models_dir)
    experiment_name = str(settings.mlflow_experiment)
    run_id: str | None = None
    try:
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        run_id = str(run.info.run_id)
        now = int(time.time() * 1000)
        rows = [
            Metric(key=mlflow_key(k), value=float(v), timestamp=now, step=0)
            for k, v in (metrics or {}).items()
            if _finite(v)
        ]
        for model, history in (epoch_metrics or {}).items():
            for row in history:
                step = int(row.get("epoch", 0))
                rows += [
                    Metric(key=mlflow_key(f"{model}_{k}"), value=float(v), timestamp=now, step=step)
                    for k, v in row.items()
                    if k != "epoch" and _finite(v)
                ]
        values = [Param(key=mlflow_key(k), value=str(v)[:MAX_PARAM_LENGTH]) for k, v in (params or {}).items()]
        for part in _chunks(values, MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=list(part))
        for part in _chunks(rows, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=list(part))
        for path in files:
            if Path(path).is_file():
                client.log_artifact(run_id, path)
        for name, data in (documents or {}).items():
            client.log_dict(run_id, data, name)
        client.set_terminated(run_id)
        log.info("logged %s as MLflow run %s at %s (experiment %s)", what, run_id, redact(uri), experiment_name)
        return run_id
    except Exception as exc:  # noqa: BLE001 - tracking must never lose the model or fail the night
        log.warning(
            "could not log %s to MLflow at %s: %s: %s (%s)",
            what,
            redact(uri),
            type(exc).__name__,
            redact(str(exc)),
            kept,
        )
        if run_id is not None:
            _mark_failed(uri, run_id)
        return None


def _mark_failed(uri: str, run_id: str) -> None:
    """A run cut short shows as FAILED rather than RUNNING forever (best effort, like the rest)."""
    try:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=uri).set_terminated(run_id, status="FAILED")
    except Exception:  # noqa: BLE001 - the warning above already says logging failed
        pass
