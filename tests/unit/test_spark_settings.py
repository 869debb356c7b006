"""The Spark settings the one builder applies (pure: no JVM started)."""

from __future__ import annotations

from hybridrec.config import SparkConfig
from hybridrec.spark import DELTA_CATALOG, DELTA_EXTENSION, spark_settings


def test_local_settings_bind_to_loopback_and_enable_delta_and_arrow() -> None:
    s = spark_settings(SparkConfig(), launched_by_spark_submit=False)
    assert s["spark.master"] == "local[*]"
    assert s["spark.driver.host"] == s["spark.driver.bindAddress"] == "127.0.0.1"
    assert s["spark.sql.extensions"] == DELTA_EXTENSION
    assert s["spark.sql.catalog.spark_catalog"] == DELTA_CATALOG
    assert s["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert s["spark.ui.showConsoleProgress"] == "false"


def test_spark_submit_keeps_its_master_and_driver_memory() -> None:
    s = spark_settings(SparkConfig(master="local[1]"), launched_by_spark_submit=True)
    assert "spark.master" not in s and "spark.driver.memory" not in s


def test_cluster_config_binds_nowhere_special_and_passes_extra_conf() -> None:
    cfg = SparkConfig(local_ip=None, conf={"spark.sql.adaptive.enabled": "false"})
    s = spark_settings(cfg, launched_by_spark_submit=True)
    assert "spark.driver.host" not in s
    assert s["spark.sql.adaptive.enabled"] == "false"


def test_delta_snapshot_partitions_small_locally_and_left_to_the_platform_when_null() -> None:
    assert (
        spark_settings(SparkConfig(), launched_by_spark_submit=True)["spark.databricks.delta.snapshotPartitions"] == "2"
    )
    s = spark_settings(SparkConfig(delta_snapshot_partitions=None), launched_by_spark_submit=True)
    assert "spark.databricks.delta.snapshotPartitions" not in s
