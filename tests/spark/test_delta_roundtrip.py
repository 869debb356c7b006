"""Delta Lake works from the local jars: write, overwrite, replace one partition, time travel."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import types as T

from hybridrec.tables import RUNS, TableRef, TableSpec, read_table, table_exists, table_ref, write_table

NIGHTLY = TableSpec(
    layer="gold",
    name="nightly_test",
    partition_by=("run_date",),
    schema=T.StructType(
        [
            T.StructField("run_date", T.DateType(), False),
            T.StructField("user_id", T.StringType(), False),
            T.StructField("score", T.DoubleType(), False),
        ]
    ),
)


def _rows(day: int, users: list[str], score: float) -> list[tuple]:
    return [(dt.date(2026, 11, day), u, score) for u in users]


def test_delta_write_overwrite_and_replace_where(spark, cfg) -> None:
    ref = table_ref(cfg, NIGHTLY)
    assert not table_exists(spark, ref)
    write_table(spark.createDataFrame(_rows(23, ["a", "b"], 1.0), NIGHTLY.schema), ref)
    write_table(spark.createDataFrame(_rows(24, ["a", "b"], 1.0), NIGHTLY.schema), ref)
    assert table_exists(spark, ref)

    # Re-running night 24 replaces exactly that partition; night 23 stays.
    rerun = spark.createDataFrame(_rows(24, ["a", "c"], 2.0), NIGHTLY.schema)
    write_table(rerun, ref, mode="overwrite", replace_where="run_date = '2026-11-24'")
    expected = spark.createDataFrame(_rows(23, ["a", "b"], 1.0) + _rows(24, ["a", "c"], 2.0), NIGHTLY.schema)
    assert_df_equality(read_table(spark, ref), expected, ignore_row_order=True)

    # The replaced version is still readable (time travel), as a killed run would leave it.
    v1 = spark.read.format("delta").option("versionAsOf", 2).load(ref.path)
    assert_df_equality(
        v1,
        spark.createDataFrame(_rows(23, ["a", "b"], 1.0) + _rows(24, ["a", "b"], 1.0), NIGHTLY.schema),
        ignore_row_order=True,
    )
    history = spark.sql(f"DESCRIBE HISTORY delta.`{ref.path}`").select("operation").collect()
    ops = [r.operation for r in history]
    assert ops[0] == "WRITE" and ops[-1] == "CREATE TABLE" and len(ops) == 4


def test_table_ref_paths_and_catalog_names(cfg) -> None:
    ref = table_ref(cfg, RUNS)
    assert isinstance(ref, TableRef)
    assert ref.path is not None and ref.path.endswith("warehouse/gold/runs")
    cfg.tables.uc_catalog = "main"
    cfg.tables.schema_prefix = "hybridrec_"
    uc = table_ref(cfg, RUNS)
    assert uc.qualified_name == "main.hybridrec_gold.runs" and uc.path is None


def test_declared_not_null_is_enforced(spark, cfg) -> None:
    ref = table_ref(cfg, NIGHTLY)
    write_table(spark.createDataFrame(_rows(23, ["a"], 1.0), NIGHTLY.schema), ref)
    loose = T.StructType([T.StructField(f.name, f.dataType, True) for f in NIGHTLY.schema])
    bad = spark.createDataFrame([(dt.date(2026, 11, 24), None, 1.0)], loose)
    try:
        write_table(bad, ref)
    except Exception as exc:  # noqa: BLE001 - Delta raises DELTA_NOT_NULL_CONSTRAINT_VIOLATED
        assert "NOT_NULL" in str(exc).upper().replace(" ", "_")
    else:
        raise AssertionError("a null user_id was accepted by a NOT NULL column")
    assert read_table(spark, ref).count() == 1
