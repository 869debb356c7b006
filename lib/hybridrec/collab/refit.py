"""The whole ALS step of a night: read, fit, save, write, log (``run_als``).

Why separate from ``als.fit_als``: the fit is a transform (DataFrames in, DataFrames out) that
tests and benchmarks drive directly; this module is the extract and load around it, in the order
that keeps a failed night harmless: new ids are appended first (an id mapped by a failed run keeps
its index, nothing else refers to it yet), then the model and its ``als.json`` are saved, then the
night's output partitions are replaced, and MLflow is told last (a failure there only warns).
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import SparkSession

from hybridrec.collab.als import AlsResult, fit_als
from hybridrec.collab.store import load_id_mappings, save_id_mappings, save_model, write_outputs
from hybridrec.config import Config
from hybridrec.errors import MissingInputError
from hybridrec.run_dates import cutoff_after, last_event
from hybridrec.tables import INTERACTIONS, PRODUCTS, read_table, read_table_snapshot, table_exists, table_ref
from hybridrec.tracking import log_run

log = logging.getLogger(__name__)


def run_als(
    spark: SparkSession,
    cfg: Config,
    cutoff: dt.datetime,
    run_date: dt.date,
    counts: dict[str, int] | None = None,
    metrics: dict[str, float] | None = None,
) -> AlsResult:
    """Fit on bronze.interactions before ``cutoff`` and store everything for ``run_date``.

    ``counts`` / ``metrics`` (a job's ``RunRecord``) receive the fit's counts, the rows written
    and the evaluation metrics. Raises ``MissingInputError`` when bronze.interactions is missing.
    """
    ref = table_ref(cfg, INTERACTIONS)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{INTERACTIONS.logical_name} not found at {ref}: run jobs/ingest.py first")
    interactions, version = read_table_snapshot(spark, ref)
    log.info("reading %s version %d, cutoff %s", INTERACTIONS.logical_name, version, cutoff.isoformat())
    products_ref = table_ref(cfg, PRODUCTS)
    products = read_table(spark, products_ref) if table_exists(spark, products_ref) else None
    user_ids, item_ids = load_id_mappings(spark, cfg)
    result = fit_als(spark, cfg, interactions, cutoff, user_ids=user_ids, item_ids=item_ids, products=products)
    try:
        appended = save_id_mappings(cfg, result)
        folder = save_model(cfg, result)
        written = write_outputs(cfg, result, run_date)
        meta = result.metadata(cfg)
        run_id = log_run(
            cfg.als,
            cfg.paths.models,
            run_name=result.model_version,
            params={
                **result.params.as_dict(),
                "cutoff": cutoff.isoformat(),
                "topk_method": cfg.als.topk_method,
                "holdout": cfg.als.holdout,
                "half_life_days": cfg.als.half_life_days,
                "transform": cfg.als.transform,
            },
            metrics={**result.metrics, **{f"count_{k}": float(v) for k, v in result.counts.items()}},
            documents={"als.json": meta},
            tags={
                "model_version": result.model_version,
                "model_dir": str(folder),
                "run_date": run_date.isoformat(),
                "native_blas": str(result.linear_algebra.get("native")),
            },
            what="the ALS fit",
        )
        if counts is not None:
            counts.update(result.counts)
            counts.update({f"appended_{k}": v for k, v in appended.items()})
            counts.update({f"written_{k}": v for k, v in written.items()})
        if metrics is not None:
            metrics.update(result.metrics)
        log.info("ALS %s for %s: model %s, MLflow run %s", result.model_version, run_date, folder, run_id)
    finally:
        result.release()
    return result


def latest_cutoff(spark: SparkSession, cfg: Config) -> dt.datetime:
    """Just after the last event in bronze.interactions (naive UTC): a cutoff that uses them all.

    For runs without a run date (the demo, a backfill of "everything so far"); the nightly job
    passes its run date instead, so that time decay is measured from the night, not the data.
    """
    ref = table_ref(cfg, INTERACTIONS)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{INTERACTIONS.logical_name} not found at {ref}: run jobs/ingest.py first")
    last = last_event(read_table(spark, ref))
    if last is None:
        raise MissingInputError(f"{INTERACTIONS.logical_name} at {ref} is empty: run jobs/ingest.py first")
    return cutoff_after(last)
