"""conf/retail.yaml ingests real Online Retail data: a 2,000-line slice of the interactions file
(gzip, as the real file) through the ingest job, every path in a temporary folder.

What must hold: read = accepted + quarantined for products and interactions; products carry their
titles and no category, description or photo; lines that share (user, product, ts, event) (one
invoice listing a product twice) are quarantined as duplicate_row and counted, never lost.
Skipped when ../shared/data/online-retail is not beside the repository.
"""

from __future__ import annotations

import collections
import csv
import gzip
import io
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from tiny_catalog import REPO_ROOT, ingest_job

from hybridrec.config import load_config
from hybridrec.job import run_job
from hybridrec.tables import INTERACTIONS, PRODUCTS, QUARANTINE_INTERACTIONS, RUNS, read_table, table_ref

RETAIL = (REPO_ROOT.parent / "shared" / "data" / "online-retail").resolve()
CONF = REPO_ROOT / "conf" / "retail.yaml"
SLICE_LINES = 2000


def _slice(dest: Path) -> list[dict[str, str]]:
    """The header and the first SLICE_LINES lines of the real file, written gzip to ``dest``."""
    with gzip.open(RETAIL / "interactions.csv.gz", "rt", encoding="utf-8", newline="") as f:
        lines = [f.readline() for _ in range(SLICE_LINES + 1)]
    with gzip.open(dest, "wt", encoding="utf-8", newline="") as out:
        out.writelines(lines)
    return list(csv.DictReader(io.StringIO("".join(lines))))


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    if not (RETAIL / "interactions.csv.gz").is_file() or not (RETAIL / "products.csv").is_file():
        pytest.skip(f"Online Retail not found at {RETAIL} (products.csv, interactions.csv.gz)")
    tmp = tmp_path_factory.mktemp("retail")
    rows = _slice(tmp / "interactions.csv.gz")
    overrides = [f"paths.{k}={tmp / k}" for k in ("warehouse", "features", "models", "raw", "checkpoints", "report")]
    overrides += [
        f"interactions.path={tmp / 'interactions.csv.gz'}",
        "spark.master=local[2]",
        "spark.shuffle_partitions=4",
        "spark.ui_enabled=false",
    ]
    argv = ["--config", str(CONF)] + [x for o in overrides for x in ("--set", o)]
    assert run_job("ingest", ingest_job.main, argv, ingest_job.job_parser()) == 0
    cfg = load_config(CONF, overrides)
    run = read_table(spark, table_ref(cfg, RUNS)).where((F.col("job") == "ingest") & (F.col("status") == "succeeded"))
    return cfg, rows, run.first().counts


def test_counts_reconcile(spark, ingested) -> None:
    cfg, rows, counts = ingested
    assert counts["interactions_read"] == SLICE_LINES == len(rows)
    assert counts["interactions_accepted"] + counts["interactions_quarantined"] == SLICE_LINES
    reasons = {k: v for k, v in counts.items() if k.startswith("interactions_quarantined_")}
    assert sum(reasons.values()) == counts["interactions_quarantined"]
    assert read_table(spark, table_ref(cfg, INTERACTIONS)).count() == counts["interactions_accepted"]
    assert read_table(spark, table_ref(cfg, QUARANTINE_INTERACTIONS)).count() == counts["interactions_quarantined"]
    products = sum(1 for _ in (RETAIL / "products.csv").open(encoding="utf-8")) - 1
    assert counts["products_read"] == products == counts["products_accepted"] + counts["products_quarantined"]


def test_lines_sharing_a_key_are_quarantined_and_counted(spark, ingested) -> None:
    cfg, rows, counts = ingested
    keys = collections.Counter((r["user_id"], r["product_id"], r["ts"], r["event"]) for r in rows)
    extra_copies = sum(n - 1 for n in keys.values())
    assert extra_copies > 0, "the slice holds invoices listing a product twice"
    # Every purchase weighs the same, so the copies are duplicate_row (never a weight conflict).
    assert counts.get("interactions_quarantined_duplicate_row", 0) == extra_copies
    assert counts["interactions_accepted"] == len(keys)
    quarantined = read_table(spark, table_ref(cfg, QUARANTINE_INTERACTIONS))
    row = quarantined.where(F.col("reason") == "duplicate_row").first()
    assert row is not None and row.raw["invoice_no"], "the original line, extra columns included, is kept"


def test_products_have_titles_and_no_category(spark, ingested) -> None:
    cfg, _, counts = ingested
    products = read_table(spark, table_ref(cfg, PRODUCTS))
    stats = products.agg(
        F.count(F.lit(1)).alias("n"),
        F.count("title").alias("titles"),
        F.count("category").alias("categories"),
        F.count("description").alias("descriptions"),
        F.count("image_path").alias("photos"),
    ).first()
    assert stats.n == counts["products_accepted"] > 3000
    assert stats.titles == stats.n and stats.categories == stats.descriptions == stats.photos == 0
    assert products.where(F.col("product_id") == "85123A").first().title == "WHITE HANGING HEART T-LIGHT HOLDER"


def test_timestamps_are_the_uk_wall_clock_read_as_utc(spark, ingested) -> None:
    cfg, rows, _ = ingested
    first = (
        read_table(spark, table_ref(cfg, INTERACTIONS))
        .where((F.col("user_id") == rows[0]["user_id"]) & (F.col("product_id") == rows[0]["product_id"]))
        .select(F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss").alias("ts"))
        .first()
    )
    assert first.ts == rows[0]["ts"]  # 2010-12-01T08:26:00, no shift
