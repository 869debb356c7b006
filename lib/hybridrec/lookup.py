"""One user's recommendations or one product's similar items, with product titles, through Spark.

Backs ``hybridrec recs`` / ``hybridrec similar``: reads the nightly tables where the config points
(Delta folders or Unity Catalog), so it sees exactly what jobs/recommend.py wrote. The results are
one short list (top-N / top-M rows), returned as pandas for printing. Downstream systems without
Spark read the same tables with ``hybridrec.reader``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec import tables
from hybridrec.config import Config
from hybridrec.errors import HybridrecError, MissingInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class NightNotFoundError(HybridrecError):
    """The requested run_date is not in the table; the message lists the nights there are."""


def nights(spark: SparkSession, cfg: Config, spec: tables.TableSpec) -> list[dt.date]:
    """The run_dates present in a nightly table, oldest first.

    Raises ``MissingInputError`` when the table does not exist yet. The nightly job keeps
    ``recommend.keep_nights`` partitions, so the list is short.
    """
    ref = tables.table_ref(cfg, spec)
    if not tables.table_exists(spark, ref):
        raise MissingInputError(f"{spec.logical_name} not found at {ref}: run jobs/recommend.py first")
    rows = tables.read_table(spark, ref).select("run_date").distinct().collect()
    return sorted(r["run_date"] for r in rows if r["run_date"] is not None)


def resolve_night(spark: SparkSession, cfg: Config, spec: tables.TableSpec, run_date: dt.date | None = None) -> dt.date:
    """``run_date`` if the table has it, else the latest night when ``run_date`` is None."""
    present = nights(spark, cfg, spec)
    if not present:
        raise MissingInputError(f"{spec.logical_name} has no night yet: run jobs/recommend.py first")
    if run_date is None:
        return present[-1]
    if run_date not in present:
        listed = ", ".join(map(str, present[-8:]))
        raise NightNotFoundError(f"{spec.logical_name} has no night {run_date} (latest nights: {listed})")
    return run_date


def _titles(spark: SparkSession, cfg: Config, product_ids: list[str]) -> DataFrame | None:
    """product_id -> title for the given ids, or None when bronze.products does not exist."""
    ref = tables.table_ref(cfg, tables.PRODUCTS)
    if not product_ids or not tables.table_exists(spark, ref):
        return None
    return (
        tables.read_table(spark, ref)
        .filter(F.col("product_id").isin(product_ids))  # pushed down: only matching files and groups
        .select("product_id", "title")
        .dropDuplicates(["product_id"])
    )


def _with_titles(spark: SparkSession, cfg: Config, rows: DataFrame, id_col: str, title_col: str) -> DataFrame:
    ids = [r[id_col] for r in rows.select(id_col).distinct().collect()]  # one list: top-N ids
    titles = _titles(spark, cfg, ids)
    if titles is None:
        return rows.withColumn(title_col, F.lit(None).cast("string"))
    titles = titles.withColumnRenamed("product_id", id_col).withColumnRenamed("title", title_col)
    return rows.join(F.broadcast(titles), on=id_col, how="left")


def user_recommendations(
    spark: SparkSession, cfg: Config, user_id: str, run_date: dt.date | None = None
) -> pd.DataFrame:
    """The user's list of the given (default: latest) night with product titles, by rank.

    Columns: the gold.recommendations columns plus ``title`` (null for a product missing from
    bronze.products). Empty when the user has no list that night.
    """
    night = resolve_night(spark, cfg, tables.RECOMMENDATIONS, run_date)
    ref = tables.table_ref(cfg, tables.RECOMMENDATIONS)
    rows = tables.read_table(spark, ref).filter(
        (F.col("run_date") == F.lit(night)) & (F.col("user_id") == F.lit(user_id))
    )
    columns = [*rows.columns, "title"]
    return _with_titles(spark, cfg, rows, "product_id", "title").select(*columns).orderBy("rank").toPandas()


def similar_products(
    spark: SparkSession, cfg: Config, product_id: str, run_date: dt.date | None = None
) -> pd.DataFrame:
    """The product's similar items of the given (default: latest) night with titles, by rank.

    Columns: the gold.similar_items columns plus ``title`` (of ``product_id``) and
    ``similar_title``. Empty when the product has no list that night.
    """
    night = resolve_night(spark, cfg, tables.SIMILAR_ITEMS, run_date)
    ref = tables.table_ref(cfg, tables.SIMILAR_ITEMS)
    rows = tables.read_table(spark, ref).filter(
        (F.col("run_date") == F.lit(night)) & (F.col("product_id") == F.lit(product_id))
    )
    columns = [*rows.columns, "title", "similar_title"]
    rows = _with_titles(spark, cfg, rows, "similar_product_id", "similar_title")
    rows = _with_titles(spark, cfg, rows, "product_id", "title")
    return rows.select(*columns).orderBy("rank").toPandas()


def example_keys(spark: SparkSession, cfg: Config, night: dt.date) -> dict[str, str]:
    """A few ids worth showing from one night (for the demo): ``warm_user`` (a list with blended
    items), ``cold_user`` (a popular-only list) and ``cold_product`` (a new product that made a list)."""
    recs = tables.read_table(spark, tables.table_ref(cfg, tables.RECOMMENDATIONS)).filter(
        F.col("run_date") == F.lit(night)
    )
    keys: dict[str, str] = {}
    warm = recs.filter(F.col("source") == "blend").agg(F.min("user_id")).first()[0]
    if warm:
        keys["warm_user"] = warm
    per_user = recs.groupBy("user_id").agg(F.min(F.col("source") == "popular").alias("only_popular"))
    cold = per_user.filter("only_popular").agg(F.min("user_id")).first()[0]
    if cold:
        keys["cold_user"] = cold
    new = recs.filter(F.col("reason").startswith("new")).agg(F.min("product_id")).first()[0]
    if new:
        keys["cold_product"] = new
    return keys
