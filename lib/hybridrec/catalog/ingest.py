"""The ingest job's work: catalog and interaction files → bronze.products / bronze.interactions,
rejected rows → quarantine.products / quarantine.interactions, counts → the run record.

For each of the two inputs: read (``sources``), validate (``validation``, pure), count read /
accepted / quarantined per reason with Spark and raise ``IngestCountError`` before writing anything
if they do not add up, then write:

- bronze: Delta MERGE on the key (product_id; user_id, product_id, ts, event). New keys are
  inserted; a product whose content (or resolved photo) changed is updated; an unchanged row is
  left alone, ``ingested_at`` included, so re-ingesting the same files leaves bronze identical.
  A product missing from a later file, or newly quarantined, keeps its last accepted row: bronze
  is the catalog as last validly seen, never emptied by a bad delivery.
- quarantine: the rows of every source file read in this run replace that file's previous
  quarantine rows (``replaceWhere source_file IN (...)``), so a re-ingested file is never
  quarantined twice and a fixed file's old rejections disappear.

Products go first: interactions are checked against bronze.products as it stands after the merge.
Both writes are single Delta commits, so a killed run leaves each table at a readable version and a
re-run completes the work.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.catalog import sources, validation
from hybridrec.catalog.image_check import image_check_column, local_root
from hybridrec.config import CatalogConfig, Config
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.runs import utcnow
from hybridrec.tables import (
    INTERACTIONS,
    PRODUCTS,
    QUARANTINE_INTERACTIONS,
    QUARANTINE_PRODUCTS,
    TableSpec,
    merge_table,
    read_table,
    table_exists,
    table_ref,
    write_table,
)

log = logging.getLogger(__name__)

PRODUCT_KEY = ("product_id",)
INTERACTION_KEY = ("user_id", "product_id", "ts", "event")
# A bronze row is rewritten only when one of these differs from the incoming row.
PRODUCT_CONTENT = ("content_hash", "image_path")
INTERACTION_CONTENT = ("weight",)


class IngestCountError(HybridrecError):
    """Rows read ≠ accepted + quarantined: a row would be lost, so nothing is written."""


def ingest(
    spark: SparkSession,
    cfg: Config,
    *,
    run_id: str,
    now: dt.datetime | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, int]:
    """Ingest the catalog, then the interactions (skipped when ``interactions.path`` is null).

    ``now`` (naive UTC, default: the current time) is the run's time: ``ingested_at`` of new rows
    and the limit for future_timestamp (event times and listed_at). ``counts`` is filled as each
    input finishes (so a job that fails halfway still records what it counted) and returned.
    """
    now = now or utcnow()
    counts = counts if counts is not None else {}
    ingest_products(spark, cfg, run_id=run_id, now=now, counts=counts)
    if cfg.interactions.path is None:
        log.info("interactions.path is null: catalog only, no interactions ingested")
    else:
        ingest_interactions(spark, cfg, run_id=run_id, now=now, counts=counts)
    return counts


def ingest_products(
    spark: SparkSession,
    cfg: Config,
    *,
    run_id: str,
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    """Catalog file(s) → bronze.products + quarantine.products; adds ``products_*`` counts."""
    cat = sources.catalog_settings(cfg.catalog)
    image_check = _image_checker(cat)
    raw = sources.read_catalog(spark, cat)
    n_read = raw.df.count()
    log.info("products: read %d rows from %d file(s)", n_read, len(raw.files))
    std = validation.standardize_products(raw.df, raw.columns, cat)
    partitions = max(2, spark.sparkContext.defaultParallelism * 2)
    validated = validation.validate_products(std, cat, image_check, now, image_partitions=partitions).persist()
    try:
        accepted_with_photo = F.col(validation.REASON).isNull() & F.col("image_path").isNotNull()
        by_reason, extra, files = summarise(
            validated,
            {"with_image": accepted_with_photo, "photo_missing_text_only": F.col(validation.PHOTO_MISSING)},
        )
        tally = reconcile("products", n_read, by_reason)
        tally["products_with_image"] = extra["with_image"]
        tally["products_text_only"] = tally["products_accepted"] - extra["with_image"]
        tally["products_photo_missing_text_only"] = extra["photo_missing_text_only"]
        counts.update(tally)
        _log_tally("products", tally)

        _load(
            cfg,
            validated,
            "products",
            PRODUCTS,
            PRODUCT_KEY,
            PRODUCT_CONTENT,
            QUARANTINE_PRODUCTS,
            sorted(files | set(raw.files)),
            tally["products_quarantined"],
            run_id,
            now,
            counts,
        )
    finally:
        validated.unpersist()


def ingest_interactions(
    spark: SparkSession,
    cfg: Config,
    *,
    run_id: str,
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    """Interaction file(s) → bronze.interactions + quarantine.interactions; ``interactions_*`` counts.

    Needs bronze.products (run ``ingest_products`` first): an interaction's product must be in it.
    """
    inter = cfg.interactions
    raw = sources.read_interactions(spark, inter)
    n_read = raw.df.count()
    log.info("interactions: read %d rows from %d file(s)", n_read, len(raw.files))
    products_ref = table_ref(cfg, PRODUCTS)
    if not table_exists(spark, products_ref):
        raise MissingInputError(
            f"{PRODUCTS.logical_name} not found at {products_ref}: interactions are checked against "
            "the catalog, so ingest the catalog first (jobs/ingest.py does both, catalog first)"
        )
    product_ids = read_table(spark, products_ref).select("product_id")
    std = validation.standardize_interactions(raw.df, raw.columns, inter)
    validated = validation.validate_interactions(std, inter, product_ids, now).persist()
    try:
        by_reason, _, files = summarise(validated, {})
        tally = reconcile("interactions", n_read, by_reason)
        counts.update(tally)
        _log_tally("interactions", tally)

        _load(
            cfg,
            validated,
            "interactions",
            INTERACTIONS,
            INTERACTION_KEY,
            INTERACTION_CONTENT,
            QUARANTINE_INTERACTIONS,
            sorted(files | set(raw.files)),
            tally["interactions_quarantined"],
            run_id,
            now,
            counts,
        )
    finally:
        validated.unpersist()


def _load(
    cfg: Config,
    validated: DataFrame,
    what: str,
    bronze: TableSpec,
    key: Sequence[str],
    content: Sequence[str],
    quarantine: TableSpec,
    files: list[str],
    n_quarantined: int,
    run_id: str,
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    """Merge the accepted rows into the bronze table and replace the files' quarantine rows."""
    accepted = validation.accepted_rows(validated, bronze.schema, now)
    merged = merge_table(accepted, table_ref(cfg, bronze), key, compare=content)
    counts.update({f"{what}_{k}": v for k, v in merged.items()})
    log.info(
        "%s: %d inserted, %d updated, %d unchanged",
        bronze.logical_name,
        merged["inserted"],
        merged["updated"],
        merged["unchanged"],
    )
    _replace_quarantine(cfg, quarantine, validation.quarantine_rows(validated, run_id, now), files, n_quarantined)


def summarise(
    validated: DataFrame, extra: Mapping[str, Column]
) -> tuple[dict[str | None, int], dict[str, int], set[str]]:
    """Rows per reason (None = accepted), the sum of each boolean ``extra`` column, and the source
    files the rows came from, in one Spark aggregation: one row per (reason, file) reaches the
    driver, never a row per product or event."""
    aggs = [F.count(F.lit(1)).alias("_n")] + [
        F.sum(F.coalesce(c, F.lit(False)).cast("long")).alias(f"_x_{name}") for name, c in extra.items()
    ]
    rows = validated.groupBy(validation.REASON, sources.SOURCE_FILE).agg(*aggs).collect()
    by_reason: dict[str | None, int] = {}
    for r in rows:
        by_reason[r[validation.REASON]] = by_reason.get(r[validation.REASON], 0) + int(r["_n"])
    sums = {name: sum(int(r[f"_x_{name}"] or 0) for r in rows) for name in extra}
    return by_reason, sums, {r[sources.SOURCE_FILE] for r in rows}


def reconcile(what: str, n_read: int, by_reason: Mapping[str | None, int]) -> dict[str, int]:
    """Counts for the run record; raises ``IngestCountError`` unless read = accepted + quarantined.

    Keys: ``<what>_read``, ``<what>_accepted``, ``<what>_quarantined`` and
    ``<what>_quarantined_<reason>`` per reason that occurred.
    """
    accepted = int(by_reason.get(None, 0))
    per_reason = {str(k): int(v) for k, v in by_reason.items() if k is not None}
    quarantined = sum(per_reason.values())
    if accepted + quarantined != n_read:
        raise IngestCountError(
            f"{what}: read {n_read} rows but accepted {accepted} + quarantined {quarantined} = "
            f"{accepted + quarantined}; nothing was written. This is a bug in validation: please "
            "report it with the input file"
        )
    counts = {
        f"{what}_read": n_read,
        f"{what}_accepted": accepted,
        f"{what}_quarantined": quarantined,
    }
    counts.update({f"{what}_quarantined_{k}": v for k, v in sorted(per_reason.items())})
    return counts


def sql_string(value: str) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _image_checker(cat: CatalogConfig) -> Callable[[Column], Column] | None:
    """The image-check column function, or None when the catalog references no photos.

    Checks up front that the image root is set and exists, so a wrong path stops the job with one
    message instead of quarantining every product as missing_image.
    """
    if not (cat.columns.image or cat.image_pattern):
        return None
    key = "catalog.image_pattern" if cat.image_pattern else "catalog.columns.image"
    if cat.image_root is None:
        raise MissingInputError(
            f"{key} references product photos but catalog.image_root is null: set "
            "catalog.image_root to the folder holding them"
        )
    root = local_root(cat.image_root)
    if not os.path.isdir(root):
        raise MissingInputError(
            f"catalog.image_root: {root} is not a folder: point catalog.image_root at the folder "
            f"of product photos (or set {key} to null for a catalog without photos)"
        )
    return image_check_column(root)


def _replace_quarantine(cfg: Config, spec: TableSpec, rows: DataFrame, files: list[str], expected: int) -> None:
    """Replace the quarantine rows of ``files`` (every file read this run) with ``rows``."""
    ref = table_ref(cfg, spec)
    spark = rows.sparkSession
    if not files:
        return  # an empty folder: no rows read, none to replace
    where = f"source_file IN ({', '.join(sql_string(f) for f in files)})"
    if not table_exists(spark, ref):
        write_table(rows, ref, mode="append")  # first run: nothing to replace
    elif expected == 0 and read_table(spark, ref).filter(where).isEmpty():
        pass  # nothing to add, nothing to remove: no commit
    else:
        write_table(rows, ref, mode="overwrite", replace_where=where)
    log.info("%s: %d rows for %d source file(s)", spec.logical_name, expected, len(files))


def _log_tally(what: str, tally: Mapping[str, int]) -> None:
    prefix = f"{what}_quarantined_"
    reasons = ", ".join(f"{k[len(prefix) :]} {v}" for k, v in tally.items() if k.startswith(prefix))
    log.info(
        "%s: read %d = accepted %d + quarantined %d%s",
        what,
        tally[f"{what}_read"],
        tally[f"{what}_accepted"],
        tally[f"{what}_quarantined"],
        f" ({reasons})" if reasons else "",
    )
