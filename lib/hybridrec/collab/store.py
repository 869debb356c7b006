"""Reading and writing what an ALS fit needs and produces (the load half; ``als`` is the transform).

- Id mappings: ``gold.als_user_ids`` / ``gold.als_item_ids``, read pinned to one Delta version and
  checked one-to-one, then only appended to (the new ids of a fit). Re-running a night appends
  nothing, because its ids are mapped by then.
- Model: ``<paths.models>/als/<model_version>/`` holds Spark's ``ALSModel`` (``spark_model/``)
  and ``als.json`` (parameters, metrics, tuning trials, counts, BLAS in use, the ALS config).
- Outputs for the hybrid step: ``gold.als_user_factors``, ``gold.als_item_factors`` and
  ``gold.als_candidates``, partitioned by ``run_date``; a night's partition is replaced as a
  whole (``replaceWhere``), so re-runs never duplicate and a killed write leaves the old one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab import ids
from hybridrec.collab.als import AlsResult
from hybridrec.config import Config
from hybridrec.tables import (
    ALS_CANDIDATES,
    ALS_ITEM_FACTORS,
    ALS_USER_FACTORS,
    read_table,
    read_table_snapshot,
    table_exists,
    table_ref,
    write_table,
)

log = logging.getLogger(__name__)


def load_id_mappings(spark: SparkSession, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """The stored (users, items) mappings, each pinned to its current version; empty at first."""
    out = []
    for kind in (ids.USERS, ids.ITEMS):
        ref = table_ref(cfg, kind.spec)
        if table_exists(spark, ref):
            mapping, version = read_table_snapshot(spark, ref)
            n = ids.check_mapping(mapping, kind)
            log.info("%s: %d ids (version %d)", kind.spec.logical_name, n, version)
        else:
            mapping = ids.empty_mapping(spark, kind)
        out.append(mapping)
    return out[0], out[1]


def save_id_mappings(cfg: Config, result: AlsResult) -> dict[str, int]:
    """Append the fit's new ids that the table does not hold yet; return rows appended per table.

    Idempotent: saving the same result twice appends nothing the second time. An id stored with
    another index (a concurrent writer) stops with ``IdMappingError`` instead of a second index.
    """
    spark = result.user_ids.sparkSession
    written = {}
    for kind, new in ((ids.USERS, result.new_user_ids), (ids.ITEMS, result.new_item_ids)):
        ref = table_ref(cfg, kind.spec)
        rows = new.select(*kind.spec.schema.fieldNames())
        if table_exists(spark, ref):
            stored = read_table(spark, ref).select(kind.id_col, F.col(kind.idx_col).alias("_stored"))
            clash = rows.join(stored, on=kind.id_col).filter(F.col(kind.idx_col) != F.col("_stored")).count()
            if clash:
                raise ids.IdMappingError(
                    f"{kind.spec.logical_name}: {clash} ids were stored with other indices since this "
                    f"fit read the mapping (two ALS runs at once?); re-run the fit"
                )
            rows = rows.join(stored.select(kind.id_col), on=kind.id_col, how="left_anti")
        rows = rows.persist()
        n = rows.count()
        if n:
            write_table(rows, ref, mode="append")
        rows.unpersist()
        written[kind.spec.name] = n
    return written


def model_dir(cfg: Config, version: str) -> Path:
    """Folder of one ALS model version."""
    return Path(cfg.paths.models) / "als" / version


def save_model(cfg: Config, result: AlsResult) -> Path:
    """Save the Spark model and ``als.json`` (parameters, metrics, trials); return the folder."""
    folder = model_dir(cfg, result.model_version)
    folder.mkdir(parents=True, exist_ok=True)
    result.model.write().overwrite().save(str(folder / "spark_model"))
    meta = result.metadata(cfg)
    (folder / "als.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    log.info("ALS model %s saved to %s", result.model_version, folder)
    return folder


def write_outputs(cfg: Config, result: AlsResult, run_date: dt.date) -> dict[str, int]:
    """Replace ``run_date``'s partition of the factor and candidate tables; return row counts."""
    spark = result.user_factors.sparkSession
    stamp = [F.lit(run_date).cast("date").alias("run_date")]
    version = F.lit(result.model_version).alias("model_version")
    frames = {
        ALS_USER_FACTORS: result.user_factors.select(*stamp, "user_id", "factors", version),
        ALS_ITEM_FACTORS: result.item_factors.select(*stamp, "product_id", "factors", version),
        ALS_CANDIDATES: result.candidates.select(
            *stamp, "user_id", F.col("rank").cast("int"), "product_id", F.col("score").cast("float"), version
        ),
    }
    counts = {}
    where = f"run_date = '{run_date.isoformat()}'"
    for spec, frame in frames.items():
        ref = table_ref(cfg, spec)
        write_table(frame, ref, mode="overwrite", replace_where=where)
        counts[spec.name] = read_table(spark, ref).filter(F.col("run_date") == F.lit(run_date)).count()
    log.info("ALS outputs for %s: %s", run_date.isoformat(), counts)
    return counts
