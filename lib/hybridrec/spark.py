"""The one SparkSession builder of hybridrec.

Every job, test and benchmark gets its session here, so Delta, Arrow, loopback networking and the
local defaults are set in exactly one place.

Delta Lake: locally the jars come from the folder that ``make setup`` fills with Maven and lists in
the virtual environment's ``spark-defaults.conf`` (no Ivy, no network at run time); on Databricks the
runtime ships Delta. Either way the builder checks that the classes load and says what to do if not.
"""

from __future__ import annotations

import logging
import os

from pyspark.sql import SparkSession

from hybridrec.config import SparkConfig
from hybridrec.errors import HybridrecError

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class SparkSetupError(HybridrecError, RuntimeError):
    """The Spark stack is not usable (for example Delta jars missing); the message says the fix."""


def spark_settings(cfg: SparkConfig, launched_by_spark_submit: bool) -> dict[str, str]:
    """All Spark settings the builder applies, as a plain mapping (pure, so it can be tested).

    Settings spark-submit already fixed for the JVM (master, driver memory) are left to it.
    """
    settings: dict[str, str] = {
        "spark.app.name": cfg.app_name,
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # Python workers write unbuffered: Horovod relays its processes' progress lines through them.
        "spark.executorEnv.PYTHONUNBUFFERED": "1",
        "spark.ui.enabled": "true" if cfg.ui_enabled else "false",
    }
    if not launched_by_spark_submit:
        settings["spark.master"] = cfg.master
        settings["spark.driver.memory"] = cfg.driver_memory
    if cfg.delta_snapshot_partitions is not None:
        settings["spark.databricks.delta.snapshotPartitions"] = str(cfg.delta_snapshot_partitions)
    if cfg.local_ip:
        settings["spark.driver.host"] = cfg.local_ip
        settings["spark.driver.bindAddress"] = cfg.local_ip
    settings.update(cfg.conf)
    return settings


def build_spark(cfg: SparkConfig) -> SparkSession:
    """Get or create the SparkSession described by ``cfg`` and check that Delta Lake is usable."""
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if cfg.local_ip and not launched_by_spark_submit:
        # The JVM we are about to start reads this to pick the address its services bind to.
        os.environ.setdefault("SPARK_LOCAL_IP", cfg.local_ip)
    builder = SparkSession.builder
    for key, value in spark_settings(cfg, launched_by_spark_submit).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if cfg.require_delta:
        check_delta(spark)
    log.info("spark %s master=%s delta=%s", spark.version, spark.sparkContext.master, cfg.require_delta)
    return spark


def check_delta(spark: SparkSession) -> None:
    """Raise ``SparkSetupError`` with the fix when the Delta Lake classes cannot be loaded."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j is the only way to ask the JVM
    try:
        jvm.java.lang.Class.forName(DELTA_EXTENSION, True, jvm.java.lang.Thread.currentThread().getContextClassLoader())
    except Exception as exc:  # py4j wraps ClassNotFoundException
        raise SparkSetupError(
            "Delta Lake classes are not on Spark's classpath: run `make setup` (it fetches the Delta "
            "jars with Maven and lists them in the virtual environment's spark-defaults.conf), or "
            "pass them with spark-submit --jars"
        ) from exc
