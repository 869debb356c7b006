"""Ingest into Delta: every quarantine reason fed by a bad row, counts that reconcile (run record and
tables), idempotent re-ingest, updates from a newer file, the job entry point, and a slice of the
real fashion catalog through conf/fashion.yaml."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import importlib.util
import io
import json
import os
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from PIL import Image
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conftest import REPO_ROOT, TEST_SPARK, make_config
from hybridrec.catalog import reasons
from hybridrec.catalog.ingest import ingest
from hybridrec.config import Config, load_config
from hybridrec.errors import MissingInputError
from hybridrec.job import run_job
from hybridrec.models.retrain import catalog_change
from hybridrec.tables import (
    INTERACTIONS,
    PRODUCTS,
    QUARANTINE_INTERACTIONS,
    QUARANTINE_PRODUCTS,
    RUNS,
    TableSpec,
    read_table,
    table_ref,
)

NOW = dt.datetime(2025, 6, 1, 12, 0, 0)
CATALOG_HEADER = ["id", "title", "description", "category", "image", "listed_at", "colour"]
BAD_UTF8 = "@@BAD_UTF8@@"


def _jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _write_csv(path: Path, header: list[str], rows: list[list[str]], extra_lines: tuple[str, ...] = ()) -> None:
    """CSV via the csv module; BAD_UTF8 becomes bytes that are not UTF-8; extra lines appended raw."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    for line in extra_lines:
        buf.write(line + "\n")
    path.write_bytes(buf.getvalue().encode("utf-8").replace(BAD_UTF8.encode(), b"\xff\xfe"))


def build_catalog(raw: Path) -> dict[str, str | None]:
    """A catalog with good products and one bad row per product reason; returns id → expected reason
    (None = accepted). Ids tell the rows apart in the quarantine's raw map."""
    images = raw / "images"
    images.mkdir(parents=True)
    for pid in ("p1", "p2", "p3", "d1"):
        _jpeg(images / f"{pid}.jpg")
    Image.new("RGBA", (16, 16), (0, 0, 255, 128)).save(images / "p7.jpg", "PNG")  # PNG named .jpg
    (images / "corrupt.jpg").write_bytes(b"this is not an image" * 10)
    (images / "zero.jpg").write_bytes(b"")
    full = _jpeg(images / "full.jpg")
    (images / "truncated.jpg").write_bytes(full[: len(full) // 2])
    _jpeg(raw / "outside.jpg")  # exists, but outside the image root
    rows = [
        ["p1", "Blue cotton shirt", "Soft", "shirts", "p1.jpg", "2024-05-01T10:00:00Z", "blue"],
        ["p2", "Trail shoe", "", "shoes", "p2.jpg", "", "red"],
        ["p3", "", "Leather shoe, <b>hand made</b> 👞", "shoes", "p3.jpg", "1714557600", ""],
        ["p5", "Gift card", "No photo: text only", "shirts", "", "", ""],
        ["p6", "Linen shirt", "", "shirts", "", "", "white"],
        ["p6", "Linen shirt", "", "shirts", "", "", "white"],  # exact copy
        ["p7", "Blue socks", "", "shirts", "p7.jpg", "", ""],
        ["d1", "Red shoe", "", "shoes", "d1.jpg", "", ""],
        ["d1", "Red shoe, new title", "", "shoes", "d1.jpg", "", ""],  # same id, other content
        ["", "No id", "", "shirts", "", "", ""],
        ["m1", "Lost photo", "", "shoes", "m1.jpg", "", ""],
        ["u1", "Corrupt photo", "", "shoes", "corrupt.jpg", "", ""],
        ["u2", "Truncated photo", "", "shoes", "truncated.jpg", "", ""],
        ["u3", "Empty photo file", "", "shoes", "zero.jpg", "", ""],
        ["e1", "Sneaky", "", "shoes", "../outside.jpg", "", ""],
        ["e2", "Absolute", "", "shoes", "/etc/hostname", "", ""],
        ["t1", "", "", "shoes", "", "", ""],
        ["c1", "Hat", "", "hats", "", "", ""],
        ["c2", "Thing", "", "", "", "", ""],
        ["ts1", "Dated", "", "shoes", "", "next tuesday", ""],
        ["ts2", "From the future", "", "shoes", "", "2999-01-01T00:00:00Z", ""],
        ["ts3", "Too old", "", "shoes", "", "1500-01-01T00:00:00Z", ""],
        ["enc1", f"Bad {BAD_UTF8} bytes", "", "shoes", "", "", ""],
    ]
    _write_csv(raw / "products.csv", CATALOG_HEADER, rows, ("mal1,Too,many,shirts,,,,EXTRA",))
    return {
        "p1": None,
        "p2": None,
        "p3": None,
        "p5": None,
        "p6": None,
        "p7": None,
        "d1": reasons.DUPLICATE_ID_CONFLICT,
        "": reasons.MISSING_ID,
        "m1": reasons.MISSING_IMAGE,
        "u1": reasons.UNREADABLE_IMAGE,
        "u2": reasons.UNREADABLE_IMAGE,
        "u3": reasons.UNREADABLE_IMAGE,
        "e1": reasons.IMAGE_PATH_ESCAPES_ROOT,
        "e2": reasons.IMAGE_PATH_ESCAPES_ROOT,
        "t1": reasons.EMPTY_TEXT_AND_NO_IMAGE,
        "c1": reasons.UNKNOWN_CATEGORY,
        "c2": reasons.EMPTY_CATEGORY,
        "ts1": reasons.UNPARSEABLE_TIMESTAMP,
        "ts2": reasons.FUTURE_TIMESTAMP,
        "ts3": reasons.TIMESTAMP_TOO_OLD,
        "enc1": reasons.INVALID_ENCODING,
        "mal1": reasons.MALFORMED_ROW,
    }


EXPECTED_PRODUCT_QUARANTINE = {
    # (raw id, reason) → copies
    ("p6", reasons.DUPLICATE_ROW): 1,
    ("d1", reasons.DUPLICATE_ID_CONFLICT): 2,
    ("", reasons.MISSING_ID): 1,
    ("m1", reasons.MISSING_IMAGE): 1,
    ("u1", reasons.UNREADABLE_IMAGE): 1,
    ("u2", reasons.UNREADABLE_IMAGE): 1,
    ("u3", reasons.UNREADABLE_IMAGE): 1,
    ("e1", reasons.IMAGE_PATH_ESCAPES_ROOT): 1,
    ("e2", reasons.IMAGE_PATH_ESCAPES_ROOT): 1,
    ("t1", reasons.EMPTY_TEXT_AND_NO_IMAGE): 1,
    ("c1", reasons.UNKNOWN_CATEGORY): 1,
    ("c2", reasons.EMPTY_CATEGORY): 1,
    ("ts1", reasons.UNPARSEABLE_TIMESTAMP): 1,
    ("ts2", reasons.FUTURE_TIMESTAMP): 1,
    ("ts3", reasons.TIMESTAMP_TOO_OLD): 1,
    ("enc1", reasons.INVALID_ENCODING): 1,
    ("mal1", reasons.MALFORMED_ROW): 1,
}

EXPECTED_INTERACTION_QUARANTINE = {
    # (user, product, reason) → copies
    ("u2", "p1", reasons.DUPLICATE_ROW): 1,
    ("u3", "zzz", reasons.UNKNOWN_PRODUCT): 1,
    ("u3", "m1", reasons.UNKNOWN_PRODUCT): 1,  # its product was quarantined
    (None, "p1", reasons.MISSING_USER): 1,
    ("u4", None, reasons.MISSING_PRODUCT): 1,
    ("u4", "p2", reasons.UNPARSEABLE_TIMESTAMP): 1,
    ("u4", "p3", reasons.FUTURE_TIMESTAMP): 1,
    ("u4", "p6", reasons.TIMESTAMP_TOO_OLD): 1,
    ("u4", "p5", reasons.UNKNOWN_EVENT): 1,
    ("u5", "p1", reasons.MALFORMED_ROW): 1,
    ("u?", "p1", reasons.INVALID_ENCODING): 1,  # user id with bytes that are not UTF-8
}


def build_interactions(raw: Path) -> int:
    """Interactions: 4 good events, an exact copy, a bad row per reason; returns the accepted count."""
    rows = [
        ["u1", "p1", "view", "2024-01-01T10:00:00Z"],
        ["u1", "p2", "purchase", "1704103200"],
        ["u2", "p5", "Cart", "2024-01-02 08:00:00"],
        ["u2", "p1", "view", "2024-01-03T00:00:00Z"],
        ["u2", "p1", "view", "2024-01-03T00:00:00Z"],
        ["u3", "zzz", "view", "2024-01-03T00:00:00Z"],
        ["u3", "m1", "view", "2024-01-03T00:00:00Z"],
        ["", "p1", "view", "2024-01-03T00:00:00Z"],
        ["u4", "", "view", "2024-01-03T00:00:00Z"],
        ["u4", "p2", "view", "last week"],
        ["u4", "p3", "view", "2999-01-01T00:00:00Z"],
        ["u4", "p6", "view", "-99999999999"],  # epoch seconds in year -1199
        ["u4", "p5", "like", "2024-01-03T00:00:00Z"],
        [f"u{BAD_UTF8}", "p1", "view", "2024-01-03T00:00:00Z"],
    ]
    _write_csv(
        raw / "interactions.csv",
        ["user_id", "product_id", "event", "ts"],
        rows,
        ("u5,p1,view,2024-01-03T00:00:00Z,EXTRA",),
    )
    return 4


def _config(base: Path, **catalog: object) -> Config:
    raw = base / "raw"
    return make_config(
        base,
        catalog={
            "path": str(raw / "products.csv"),
            "image_root": str(raw / "images"),
            "columns": {"image": "image", "listed_at": "listed_at"},
            "attributes": ["colour"],
            "categories": ["shirts", "shoes"],
            "require_category": True,
            **catalog,
        },
        interactions={"path": str(raw / "interactions.csv")},
    )


def _table(spark: SparkSession, cfg: Config, spec: TableSpec) -> DataFrame:
    return read_table(spark, table_ref(cfg, spec))


def _sortable(df: DataFrame) -> DataFrame:
    """Map columns as sorted entry arrays: Spark cannot sort maps, chispa's ignore_row_order does."""
    return df.withColumns(
        {f.name: F.array_sort(F.map_entries(f.name)) for f in df.schema.fields if isinstance(f.dataType, T.MapType)}
    )


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("ingest")
    expected = build_catalog(base / "raw")
    n_interactions = build_interactions(base / "raw")
    cfg = _config(base)
    counts = ingest(spark, cfg, run_id="run1", now=NOW)
    return cfg, expected, n_interactions, counts


def test_each_bad_product_row_is_quarantined_with_its_reason(spark, ingested) -> None:
    cfg, expected, _, _ = ingested
    rows = _table(spark, cfg, QUARANTINE_PRODUCTS).collect()
    got: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["raw"].get("id") or "", r["reason"])
        got[key] = got.get(key, 0) + 1
        assert r["detail"] and r["source_file"] == cfg.catalog.path
    assert got == EXPECTED_PRODUCT_QUARANTINE
    # The original row is kept as read, the malformed line whole.
    by_id = {r["raw"].get("id"): r for r in rows}
    assert by_id["e1"]["raw"]["image"] == "../outside.jpg"
    assert by_id["mal1"]["raw"]["_corrupt_record"] == "mal1,Too,many,shirts,,,,EXTRA"
    assert "U+FFFD" in by_id["enc1"]["detail"] and "outside the image root" in by_id["e1"]["detail"]
    accepted = {r["product_id"] for r in _table(spark, cfg, PRODUCTS).select("product_id").collect()}
    assert accepted == {k for k, v in expected.items() if v is None}
    assert set(reasons.PRODUCT_REASONS) == {reason for _, reason in EXPECTED_PRODUCT_QUARANTINE}


def test_accepted_products_carry_text_image_and_attributes(spark, ingested) -> None:
    cfg, *_ = ingested
    rows = {r["product_id"]: r for r in _table(spark, cfg, PRODUCTS).collect()}
    root = Path(cfg.catalog.image_root)
    assert rows["p1"]["image_path"] == str(root / "p1.jpg")
    assert rows["p7"]["image_path"] == str(root / "p7.jpg")  # a PNG named .jpg still decodes
    assert rows["p5"]["image_path"] is None and rows["p6"]["image_path"] is None  # text only
    assert rows["p3"]["title"] is None and rows["p3"]["description"].startswith("Leather")
    assert rows["p1"]["attributes"] == {"colour": "blue"} and rows["p5"]["attributes"] == {}
    assert rows["p1"]["listed_at"] == dt.datetime(2024, 5, 1, 10, 0)
    assert rows["p3"]["listed_at"] == dt.datetime(2024, 5, 1, 10, 0)  # epoch seconds
    assert rows["p1"]["ingested_at"] == NOW and rows["p1"]["source_file"] == cfg.catalog.path


def test_each_bad_interaction_row_is_quarantined_with_its_reason(spark, ingested) -> None:
    cfg, _, n_accepted, _ = ingested
    rows = _table(spark, cfg, QUARANTINE_INTERACTIONS).collect()
    got: dict[tuple, int] = {}
    for r in rows:
        user = r["raw"].get("user_id")
        key = ("u?" if user and "\ufffd" in user else user, r["raw"].get("product_id"), r["reason"])
        got[key] = got.get(key, 0) + 1
    assert got == EXPECTED_INTERACTION_QUARANTINE
    bronze = _table(spark, cfg, INTERACTIONS)
    expected = spark.createDataFrame(
        [
            ("u1", "p1", dt.datetime(2024, 1, 1, 10), "view", 1.0),
            ("u1", "p2", dt.datetime(2024, 1, 1, 10), "purchase", 5.0),
            ("u2", "p5", dt.datetime(2024, 1, 2, 8), "cart", 3.0),
            ("u2", "p1", dt.datetime(2024, 1, 3), "view", 1.0),
        ],
        "user_id string, product_id string, ts timestamp, event string, weight double",
    )
    assert bronze.count() == n_accepted
    assert_df_equality(bronze.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_counts_reconcile_in_the_run_and_in_the_tables(spark, ingested) -> None:
    cfg, expected, n_interactions, counts = ingested
    n_products = len(expected) + 2  # + the exact copy of p6 and the second d1
    assert counts["products_read"] == n_products
    assert counts["products_accepted"] + counts["products_quarantined"] == n_products
    assert counts["products_accepted"] == _table(spark, cfg, PRODUCTS).count()
    assert counts["products_quarantined"] == _table(spark, cfg, QUARANTINE_PRODUCTS).count()
    assert counts["products_quarantined_unreadable_image"] == 3
    assert counts["products_with_image"] == 4 and counts["products_text_only"] == 2
    assert counts["interactions_read"] == 15
    assert counts["interactions_accepted"] == n_interactions
    assert counts["interactions_accepted"] + counts["interactions_quarantined"] == 15
    per_reason = {
        r["reason"]: r["count"] for r in _table(spark, cfg, QUARANTINE_INTERACTIONS).groupBy("reason").count().collect()
    }
    assert per_reason == {
        k[len("interactions_quarantined_") :]: v for k, v in counts.items() if k.startswith("interactions_quarantined_")
    }


def test_reingesting_the_same_files_changes_nothing(spark, ingested) -> None:
    cfg, *_ = ingested
    versions = {
        s: _version(spark, cfg, s) for s in (PRODUCTS, INTERACTIONS, QUARANTINE_PRODUCTS, QUARANTINE_INTERACTIONS)
    }
    counts = ingest(spark, cfg, run_id="run2", now=NOW + dt.timedelta(days=1))
    for spec in (PRODUCTS, INTERACTIONS):
        before = _sortable(_at_version(spark, cfg, spec, versions[spec]))
        assert_df_equality(_sortable(_table(spark, cfg, spec)), before, ignore_row_order=True)
        assert _version(spark, cfg, spec) == versions[spec]  # not even rewritten
    # Quarantine: the same rows, replaced (this run's id), not added.
    run_specific = ("run_id", "ingested_at", "detail")  # future_timestamp's detail names the run time
    for spec in (QUARANTINE_PRODUCTS, QUARANTINE_INTERACTIONS):
        before = _sortable(_at_version(spark, cfg, spec, versions[spec]).drop(*run_specific))
        after = _table(spark, cfg, spec)
        assert {r["run_id"] for r in after.select("run_id").distinct().collect()} == {"run2"}
        assert_df_equality(_sortable(after.drop(*run_specific)), before, ignore_row_order=True)
    assert counts["products_inserted"] == counts["products_updated"] == 0
    assert counts["interactions_inserted"] == counts["interactions_updated"] == 0


def _version(spark: SparkSession, cfg: Config, spec: TableSpec) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, table_ref(cfg, spec).path).history(1).first()["version"]


def _at_version(spark: SparkSession, cfg: Config, spec: TableSpec, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(table_ref(cfg, spec).path)


def test_newer_files_update_changed_products_and_replace_their_quarantine(spark, tmp_path) -> None:
    """The catalog is a folder: a re-delivered file replaces its own quarantine rows, a changed
    product is updated, a new file adds products, an unchanged product is not touched."""
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    folder = raw / "catalog"
    folder.mkdir()
    _write_csv(
        folder / "part1.csv",
        CATALOG_HEADER,
        [
            ["a", "Mug", "", "shirts", "", "", ""],
            ["b", "Cup", "", "shirts", "", "", ""],
            ["c", "", "", "shirts", "", "", ""],  # empty_text_and_no_image
        ],
    )
    cfg = _config(tmp_path, path=str(folder), categories=None, require_category=False)
    cfg.interactions.path = None
    ingest(spark, cfg, run_id="v1", now=NOW)
    first = {r["product_id"]: r for r in _table(spark, cfg, PRODUCTS).collect()}
    assert set(first) == {"a", "b"} and _table(spark, cfg, QUARANTINE_PRODUCTS).count() == 1

    # part1 delivered again with c fixed and b changed, and a new part2 adding d.
    _write_csv(
        folder / "part1.csv",
        CATALOG_HEADER,
        [
            ["a", "Mug", "", "shirts", "", "", ""],
            ["b", "Cup, larger", "", "shirts", "", "", ""],
            ["c", "Plate", "", "", "", "", ""],  # no category: accepted by default
        ],
    )
    _write_csv(folder / "part2.csv", CATALOG_HEADER, [["d", "Bowl", "", "shirts", "", "", ""]])
    later = NOW + dt.timedelta(days=1)
    counts = ingest(spark, cfg, run_id="v2", now=later)
    assert counts["products_read"] == 4
    assert (counts["products_inserted"], counts["products_updated"], counts["products_unchanged"]) == (2, 1, 1)
    assert _table(spark, cfg, QUARANTINE_PRODUCTS).count() == 0  # c's old rejection is gone
    rows = {r["product_id"]: r for r in _table(spark, cfg, PRODUCTS).collect()}
    assert set(rows) == {"a", "b", "c", "d"}
    assert rows["a"] == first["a"]  # untouched, ingested_at included
    assert rows["b"]["title"] == "Cup, larger" and rows["b"]["ingested_at"] == later
    assert rows["c"]["category"] is None and rows["d"]["source_file"] == str(folder / "part2.csv")


def test_photo_pattern_text_only_and_a_rating_log_without_header(spark, tmp_path) -> None:
    """Photos named by pattern where a missing file means text-only (as in the fashion catalog),
    and a tab-separated rating log (user, item, rating, epoch seconds; no header) by config alone."""
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    _jpeg(raw / "images" / "p1.jpg")
    _write_csv(raw / "products.csv", ["sku", "name"], [["p1", "Mug"], ["p2", "Cup"], ["p3", ""]])
    lines = [
        "u1\tp1\t4.5\t1700000000",
        "u1\tp2\tNaN\t1700000000",
        "u2\tp1\t-1\t1700000000",
        "u2\tp2\tabc\t1700000000",
        "u3\tp1\t0.5\t1700000000",
        "u4\tp1\t4\t1700000100",
        "u4\tp1\t5\t1700000100",
        "u5\tp2\t3\t1700000200",
        "u5\tp2\t3\t1700000200",
    ]
    (raw / "ratings.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = make_config(
        tmp_path,
        catalog={
            "path": str(raw / "products.csv"),
            "image_root": str(raw / "images"),
            "columns": {"id": "sku", "title": "name", "description": None, "category": None},
            "image_pattern": "{id}.jpg",
            "missing_image": "text_only",
        },
        interactions={
            "path": str(raw / "ratings.tsv"),
            "separator": "\t",
            "header": False,
            "column_names": ["user", "item", "rating", "epoch"],
            "min_rating": 1.0,
            "columns": {"user": "user", "item": "item", "event": None, "rating": "rating", "timestamp": "epoch"},
        },
    )
    counts = ingest(spark, cfg, run_id="r", now=NOW)
    photos = {r["product_id"]: r["image_path"] for r in _table(spark, cfg, PRODUCTS).collect()}
    assert photos == {"p1": str(raw / "images" / "p1.jpg"), "p2": None}
    q = _table(spark, cfg, QUARANTINE_PRODUCTS).first()
    assert q["reason"] == reasons.MISSING_IMAGE and q["raw"]["sku"] == "p3"  # no photo and no text
    assert counts["products_photo_missing_text_only"] == 1 and counts["products_with_image"] == 1

    got = sorted(
        (r["raw"]["user"], r["raw"]["rating"], r["reason"])
        for r in _table(spark, cfg, QUARANTINE_INTERACTIONS).collect()
    )
    assert got == [
        ("u1", "NaN", reasons.INVALID_WEIGHT),
        ("u2", "-1", reasons.INVALID_WEIGHT),
        ("u2", "abc", reasons.INVALID_WEIGHT),
        ("u3", "0.5", reasons.BELOW_MIN_RATING),
        ("u4", "4", reasons.DUPLICATE_EVENT_CONFLICT),
        ("u4", "5", reasons.DUPLICATE_EVENT_CONFLICT),
        ("u5", "3", reasons.DUPLICATE_ROW),
    ]
    expected = spark.createDataFrame(
        [
            ("u1", "p1", dt.datetime(2023, 11, 14, 22, 13, 20), "rating", 4.5),
            ("u5", "p2", dt.datetime(2023, 11, 14, 22, 16, 40), "rating", 3.0),
        ],
        "user_id string, product_id string, ts timestamp, event string, weight double",
    )
    assert_df_equality(
        _table(spark, cfg, INTERACTIONS).select(*expected.columns),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert (counts["interactions_read"], counts["interactions_accepted"]) == (9, 2)
    all_reasons = set(EXPECTED_INTERACTION_QUARANTINE_REASONS) | {r for *_, r in got}
    assert all_reasons == set(reasons.INTERACTION_REASONS)


EXPECTED_INTERACTION_QUARANTINE_REASONS = {k[2] for k in EXPECTED_INTERACTION_QUARANTINE}


def test_missing_inputs_stop_with_the_key_and_path(spark, tmp_path) -> None:
    cfg = _config(tmp_path)
    with pytest.raises(MissingInputError, match=r"catalog\.image_root: .*raw/images is not a folder"):
        ingest(spark, cfg, run_id="x", now=NOW)
    (tmp_path / "raw" / "images").mkdir(parents=True)
    with pytest.raises(MissingInputError, match=r"catalog\.path: .*raw/products\.csv does not exist"):
        ingest(spark, cfg, run_id="x", now=NOW)


def _run_ingest_job(conf: Path) -> int:
    spec = importlib.util.spec_from_file_location("ingest_job", REPO_ROOT / "jobs" / "ingest.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return run_job("ingest", job.main, ["--config", str(conf)], job.job_parser())


def test_ingest_job_records_counts_in_gold_runs(spark, tmp_path) -> None:
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    _write_csv(raw / "products.csv", ["id", "title"], [["a", "Mug"], ["", "No id"]])
    conf = tmp_path / "job.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "spark": dict(TEST_SPARK),
                "paths": {"warehouse": str(tmp_path / "warehouse")},
                "catalog": {
                    "path": str(raw / "products.csv"),
                    "image_root": None,
                    "columns": {"description": None, "category": None},
                },
                "interactions": {"path": str(raw / "missing.csv")},
            }
        ),
        encoding="utf-8",
    )
    assert _run_ingest_job(conf) == 1  # interactions file missing: a clear error, recorded
    cfg = load_config(conf)
    failed = _table(spark, cfg, RUNS).first()
    assert failed["status"] == "failed" and "interactions.path" in failed["message"]
    assert failed["counts"]["products_read"] == 2  # what it did before failing is recorded

    conf.write_text(conf.read_text().replace(str(raw / "missing.csv"), "null"), encoding="utf-8")
    assert _run_ingest_job(conf) == 0
    ok = _table(spark, cfg, RUNS).filter("status = 'succeeded'").first()
    assert ok["job"] == "ingest"
    assert {
        k: ok["counts"][k]
        for k in ("products_read", "products_accepted", "products_quarantined", "products_quarantined_missing_id")
    } == {
        "products_read": 2,
        "products_accepted": 1,
        "products_quarantined": 1,
        "products_quarantined_missing_id": 1,
    }


def test_fashion_slice_through_conf_fashion_yaml(spark, fashion_dir: Path, tmp_path) -> None:
    """The first 300 rows of the real styles.csv (plus the two titles with doubled quotes), photos
    from the real images folder: every row accepted, photos exactly where the files exist."""
    lines = (fashion_dir / "styles.csv").read_text(encoding="utf-8").splitlines()
    picked = lines[:301] + [line for line in lines[301:] if line.startswith(("7491,", "7497,"))]
    (tmp_path / "styles.csv").write_text("\n".join(picked) + "\n", encoding="utf-8")
    cfg = load_config(
        REPO_ROOT / "conf" / "fashion.yaml",
        [
            f"catalog.path={tmp_path / 'styles.csv'}",
            f"paths.warehouse={tmp_path / 'warehouse'}",
            "interactions.path=null",  # the catalog only; simulated interactions are not part of it
        ],
    )
    assert cfg.catalog.image_root == str(fashion_dir / "images")
    counts: dict[str, int] = {}
    ingest(spark, cfg, run_id="fashion", now=NOW, counts=counts)
    ids = [line.split(",", 1)[0] for line in picked[1:]]
    with_photo = {i for i in ids if os.path.isfile(fashion_dir / "images" / f"{i}.jpg")}
    assert counts["products_read"] == counts["products_accepted"] == len(ids) == 302
    assert counts["products_with_image"] == len(with_photo) > 0
    products = _table(spark, cfg, PRODUCTS)
    photos = {r["product_id"] for r in products.filter(F.col("image_path").isNotNull()).collect()}
    assert photos == with_photo
    row = products.filter("product_id = '7491'").first()
    assert row["title"] == "Nike Women's EM Tempo 3.5\" Pink Short" and row["category"] == "Shorts"
    assert row["description"] is None
    assert row["attributes"] == {
        "gender": "Women",
        "masterCategory": "Apparel",
        "subCategory": "Bottomwear",
        "baseColour": "Pink",
        "season": "Summer",
        "usage": "Sports",
        "year": "2011",
    }
    assert not list(tmp_path.rglob("*.jpg"))  # photos read in place, never copied


def test_catalog_change_compares_the_catalogs_classes_with_the_current_models(spark, ingested, tmp_path) -> None:
    cfg, *_ = ingested
    models = tmp_path / "models"
    cfg = dataclasses.replace(
        cfg,
        features=dataclasses.replace(cfg.features, min_examples_per_class=1),
        paths=dataclasses.replace(cfg.paths, models=str(models)),
    )
    first = catalog_change(spark, cfg)
    assert first.model_version is None and first.retrain
    assert first.task_values() == {"retrain": 1, "new_classes": 0}
    assert set(first.catalog_classes) == {"shirts", "shoes"}  # the accepted rows' categories

    def publish(version: str, classes: list[str]) -> None:
        (models / version).mkdir(parents=True, exist_ok=True)
        (models / version / "labels.json").write_text(json.dumps({"classes": classes}), encoding="utf-8")
        (models / "current.json").write_text(json.dumps({"version": version, "path": version}), encoding="utf-8")

    publish("v1", ["shirts"])
    change = catalog_change(spark, cfg)
    assert change.model_version == "v1" and change.new_classes == ("shoes",) and change.retrain
    assert change.task_values() == {"retrain": 1, "new_classes": 1}
    publish("v2", ["shirts", "shoes", "socks"])  # a class the catalog lost is no reason to train
    assert catalog_change(spark, cfg).task_values() == {"retrain": 0, "new_classes": 0}
    (models / "v2" / "labels.json").unlink()
    with pytest.raises(MissingInputError, match="v2 has no labels.json"):
        catalog_change(spark, cfg)
