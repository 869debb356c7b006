"""Simulated interactions as a bronze.interactions-shaped DataFrame, for tests, benchmarks and demos.

Why a shortcut past ingest: ALS tests and the benchmark need 10^4-10^6 events in seconds, and
what they measure starts after ingest. The rows are the simulator's (``hybridrec.demo.simulator``,
a documented, seeded SIMULATION) with the weight ingest would give each event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.config import DemoConfig
from hybridrec.demo.catalog import ATTRIBUTE_COLUMNS, generate_catalog
from hybridrec.demo.simulator import Simulation, simulate
from hybridrec.tables import INTERACTIONS

SOURCE = "simulator"


def simulate_generated(demo: DemoConfig) -> Simulation:
    """Events of ``demo.n_users`` users over the generated catalog of ``demo`` (no photos drawn)."""
    products = generate_catalog(demo, None)
    attributes = [a for a in demo.preference_attributes if a in ATTRIBUTE_COLUMNS] or list(ATTRIBUTE_COLUMNS)
    return simulate(products, demo, attributes)


def interactions_frame(
    spark: SparkSession,
    events: pd.DataFrame,
    event_weights: Mapping[str, float],
    ingested_at: dt.datetime | None = None,
) -> DataFrame:
    """``events`` (user_id, product_id, event, ts in epoch seconds) in bronze.interactions' schema."""
    pdf = pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str),
            "product_id": events["product_id"].astype(str),
            "ts": events["ts"].astype("int64"),
            "event": events["event"].astype(str),
            "weight": events["event"].map(dict(event_weights)).astype("float64"),
        }
    )
    stamp = ingested_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    df = spark.createDataFrame(pdf, "user_id string, product_id string, ts long, event string, weight double")
    return df.select(
        "user_id",
        "product_id",
        F.timestamp_seconds("ts").alias("ts"),
        "event",
        "weight",
        F.lit(SOURCE).alias("source_file"),
        F.lit(stamp).cast("timestamp").alias("ingested_at"),
    ).select(*INTERACTIONS.schema.fieldNames())
