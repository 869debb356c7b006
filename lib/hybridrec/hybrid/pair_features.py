"""Features of each (user, candidate) pair for the learned ranker: the one place they are defined.

Everything is computed in Spark from what the night already has (no per-user loop on the driver):
the candidate pool (``candidates.candidate_pool``), the user-item history, the usable events
before the night and the content vectors. A missing value is NaN (XGBoost learns a default
direction for it), never a made-up zero.

``FEATURES`` (name → meaning, below) is the ranker's input, in its order (docs/jobs.md, "The learned
ranker", summarises it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from hybridrec.hybrid.candidates import SOURCE_SCORES
from hybridrec.hybrid.pair_cosines import BROADCAST_VECTOR_FLOATS, dot
from hybridrec.run_dates import utc_timestamp

FEATURES: dict[str, str] = {
    "als_score": "ALS user·item score (null: not among the user's ALS candidates)",
    "als_rank": "rank of the pair among the user's ALS candidates",
    "content_score": "cosine of the product to the user's content profile",
    "content_rank": "rank among the user's content candidates",
    "cold_score": "predicted ALS score of a cold product (content → factors)",
    "cold_rank": "rank among the user's cold candidates",
    "popular_score": "recent popularity / the most popular product's (popular candidates only)",
    "repeat_score": "the user's own decayed weight on the product (repeat candidates only)",
    "co_score": "sum of co-interaction cosines to the user's latest products (co candidates only)",
    "co_rank": "rank among the user's co-interaction candidates",
    "lexical_score": "sum of title TF-IDF cosines to the user's latest products (lexical candidates only)",
    "lexical_rank": "rank among the user's lexical candidates",
    "n_sources": "how many sources proposed the pair",
    "item_users": "distinct users of the product before the night (0 = cold)",
    "item_pop_7d": "weighted events on the product in the last 7 days of the data",
    "item_pop_30d": "... in the last 30 days",
    "item_pop_all": "... in all history",
    "item_trend": "item_pop_7d / (item_pop_30d * 7 / 30 + 1): rising (> 1) or fading",
    "item_age_days": "days since the product's first event (NaN for a cold product)",
    "item_days_since_last": "days since the product's last event",
    "user_items": "distinct products of the user",
    "user_events": "usable events of the user",
    "user_active_days": "distinct days with an event",
    "user_days_since_last": "days since the user's last event",
    "hist_weight": "the user's decayed weight on this product (NaN: never interacted)",
    "hist_events": "the user's events on this product",
    "hist_days_since": "days since the user's last event on this product",
    "cat_share": "share of the user's weight in the product's category (NaN without categories)",
    "sim_last": "content cosine of the product to the user's most recent product",
    "sim_top": "content cosine of the product to the user's most weighted product",
}

_DAY_US = 86_400e6


def _days_before(reference: dt.datetime, ts: Column) -> Column:
    return (F.unix_micros(utc_timestamp(reference)) - F.unix_micros(ts)) / _DAY_US


def _nan(col: Column) -> Column:
    return F.coalesce(col.cast("double"), F.lit(float("nan")))


def item_features(events: DataFrame, reference: dt.datetime) -> DataFrame:
    """(product_id, item_users, item_pop_7d, item_pop_30d, item_pop_all, item_trend,
    item_age_days, item_days_since_last) over the usable events before the night."""
    age = _days_before(reference, F.col("ts"))
    return (
        events.groupBy("product_id")
        .agg(
            F.countDistinct("user_id").alias("item_users"),
            F.sum(F.when(age <= 7, F.col("weight")).otherwise(0.0)).alias("item_pop_7d"),
            F.sum(F.when(age <= 30, F.col("weight")).otherwise(0.0)).alias("item_pop_30d"),
            F.sum("weight").alias("item_pop_all"),
            F.max(age).alias("item_age_days"),
            F.min(age).alias("item_days_since_last"),
        )
        .withColumn("item_trend", F.col("item_pop_7d") / (F.col("item_pop_30d") * 7.0 / 30.0 + 1.0))
    )


def user_features(events: DataFrame, reference: dt.datetime) -> DataFrame:
    """(user_id, user_items, user_events, user_active_days, user_days_since_last)."""
    return events.groupBy("user_id").agg(
        F.countDistinct("product_id").alias("user_items"),
        F.count(F.lit(1)).alias("user_events"),
        F.countDistinct(F.to_date("ts")).alias("user_active_days"),
        F.min(_days_before(reference, F.col("ts"))).alias("user_days_since_last"),
    )


def _category_shares(history: DataFrame, products: DataFrame) -> DataFrame:
    """(user_id, _cat_shares): map category → share of the user's weight in it."""
    cat = products.select("product_id", "category").filter(F.col("category").isNotNull())
    per = history.join(cat, "product_id").groupBy("user_id", "category").agg(F.sum("weight").alias("_w"))
    share = F.col("_w") / F.sum("_w").over(Window.partitionBy("user_id"))
    return (
        per.withColumn("_share", share)
        .groupBy("user_id")
        .agg(F.map_from_entries(F.collect_list(F.struct("category", "_share"))).alias("_cat_shares"))
    )


def _anchors(history: DataFrame) -> DataFrame:
    """(user_id, _last, _top): the user's most recent and most weighted products."""
    last = Window.partitionBy("user_id").orderBy(F.col("last_ts").desc(), F.col("product_id"))
    return (
        history.withColumn("_r", F.row_number().over(last))
        .filter((F.col("_r") == 1) | (F.col("h_rank") == 1))
        .groupBy("user_id")
        .agg(
            F.max(F.when(F.col("_r") == 1, F.col("product_id"))).alias("_last"),
            F.max(F.when(F.col("h_rank") == 1, F.col("product_id"))).alias("_top"),
        )
    )


def _similarity_by_joins(pairs: DataFrame, vectors: DataFrame) -> DataFrame:
    """``pairs`` (user_id, product_id, _last, _top) with the cosines, by joining the vectors."""
    vec = vectors.select("product_id", "vec")
    out = pairs.join(vec, "product_id")
    for anchor, name in (("_last", "sim_last"), ("_top", "sim_top")):
        out = (
            out.join(vec.select(F.col("product_id").alias(anchor), F.col("vec").alias("_a")), anchor, "left")
            .withColumn(name, F.when(F.col("_a").isNotNull(), dot(F.col("vec"), F.col("_a"))))
            .drop("_a")
        )
    return out.select("user_id", "product_id", "sim_last", "sim_top")


def _similarity_broadcast(rows: DataFrame, shared: Any) -> DataFrame:
    """``rows`` (with _v, _v_last, _v_top: row numbers in the broadcast matrix ``shared``, null
    without a vector) plus the cosines (NumPy per Arrow batch; the other columns pass through
    unconverted), the row numbers dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = [f for f in rows.schema.fields if f.name not in _INDEX_COLUMNS]
    names = [f.name for f in keep]

    def index(batch: pa.RecordBatch, name: str) -> np.ndarray:
        return np.asarray(pc.fill_null(batch.column(name), -1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def sims(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        mat = shared.value
        for batch in batches:
            cand = index(batch, "_v")
            arrays = [batch.column(name) for name in names]
            for anchor in ("_v_last", "_v_top"):
                other = index(batch, anchor)
                ok = (cand >= 0) & (other >= 0)
                values = np.full(batch.num_rows, np.nan)
                a, b = mat[cand[ok]].astype(np.float64), mat[other[ok]].astype(np.float64)
                values[ok] = np.einsum("ij,ij->i", a, b)  # in double (the join path: float products, double sum)
                arrays.append(pa.array(values, type=pa.float64()))
            yield pa.RecordBatch.from_arrays(arrays, names=[*names, "sim_last", "sim_top"])

    schema = StructType([*keep, StructField("sim_last", DoubleType()), StructField("sim_top", DoubleType())])
    return rows.mapInArrow(sims, schema)


_INDEX_COLUMNS = ("_v", "_v_last", "_v_top", "_last", "_top")


@dataclass
class AnchorVectors:
    """The content vectors behind ``sim_last`` / ``sim_top``: the cosines (unit vectors) of a
    candidate to the user's most recent and most weighted products (NaN where the candidate or
    the anchor has no vector).

    Where the catalog's vectors fit ``BROADCAST_VECTOR_FLOATS`` they are broadcast as one matrix;
    each product's row number rides on the product-level frame (``items``) and the anchors' on the
    user-level frame (``users``), so the wide pair rows only carry integers and the dot products are
    taken in NumPy as they pass (measured at 2,000 synthetic users, 40k products: joining the
    vectors took 26 s of the features' 27 s; looking the product ids up in Python, 30 s of 100 s at
    20,000 users). Larger catalogs join the pairs with the vectors and the cosines back onto the rows.
    """

    vectors: DataFrame
    matrix: Any = None  # the broadcast float32 matrix, or None: the join path
    index: DataFrame | None = None  # (product_id, _v): the matrix's row of each product

    @classmethod
    def of(cls, vectors: DataFrame, broadcast_floats: int = BROADCAST_VECTOR_FLOATS) -> AnchorVectors:
        vectors = vectors.select("product_id", "vec")
        n, dim = vectors.agg(F.count(F.lit(1)), F.max(F.size("vec"))).first()
        if n * (dim or 0) > broadcast_floats:
            return cls(vectors)
        pdf = vectors.toPandas()
        matrix = np.stack(pdf["vec"].to_numpy()).astype(np.float32) if len(pdf) else np.zeros((0, 1), np.float32)
        spark = vectors.sparkSession
        ids = pd.DataFrame({"product_id": pdf["product_id"].astype(str), "_v": np.arange(len(pdf), dtype=np.int32)})
        index = spark.createDataFrame(ids, "product_id string, _v int")
        return cls(vectors, spark.sparkContext.broadcast(matrix), index)

    def items(self, frame: DataFrame) -> DataFrame:
        """A product-level frame (product_id, ...) with the product's matrix row."""
        return frame if self.index is None else frame.join(F.broadcast(self.index), "product_id", "left")

    def users(self, frame: DataFrame) -> DataFrame:
        """A user-level frame with _last and _top (``_anchors``) with their matrix rows instead."""
        if self.index is None:
            return frame
        for anchor in ("_last", "_top"):
            rows = self.index.select(F.col("product_id").alias(anchor), F.col("_v").alias(f"_v{anchor}"))
            frame = frame.join(F.broadcast(rows), anchor, "left")
        return frame.drop("_last", "_top")

    def similarity(self, rows: DataFrame) -> DataFrame:
        """``rows`` (joined with ``items`` and ``users`` frames) plus sim_last and sim_top, without
        the anchor and row-number columns."""
        if self.matrix is not None:
            return _similarity_broadcast(rows, self.matrix)
        pairs = rows.select("user_id", "product_id", "_last", "_top")
        return rows.drop(*_INDEX_COLUMNS).join(
            _similarity_by_joins(pairs, self.vectors), ["user_id", "product_id"], "left"
        )


def pair_features(
    pool: DataFrame,
    *,
    history: DataFrame,
    usable_events: DataFrame,
    reference: dt.datetime,
    products: DataFrame,
    vectors: DataFrame,
) -> DataFrame:
    """``pool`` (``candidate_pool`` rows: scores, ranks, the user's history on the pair) → the same
    pairs with every ``FEATURES`` column (double, NaN where missing) plus user_id, product_id and
    reason_product_id.

    ``vectors``: (product_id, vec) unit content vectors; ``history``: ``user_item_history`` rows
    with ``h_rank``.

    The pool arrives partitioned by user: the product's features are broadcast (one row per
    product; where the vectors are too many to broadcast, the catalog is left to Spark's join
    planning too) and everything about the user (activity, anchors, category shares) is one frame
    joined on user_id, so the wide rows are not shuffled again.
    """
    n_sources = sum((F.col(c).isNotNull().cast("int") for c in SOURCE_SCORES.values()), F.lit(0))
    anchors = AnchorVectors.of(vectors)
    items = anchors.items(
        products.select("product_id", "category")
        .join(item_features(usable_events, reference), "product_id", "left")
        .fillna(0, subset=["item_users", "item_pop_7d", "item_pop_30d", "item_pop_all"])
    )
    per_user = (
        user_features(usable_events, reference)
        .join(anchors.users(_anchors(history)), "user_id", "full")
        .join(_category_shares(history, products), "user_id", "full")
    )
    joined = (
        pool.withColumn("n_sources", n_sources)
        .withColumn("hist_days_since", _days_before(reference, F.col("hist_last_ts")))
        .join(F.broadcast(items) if anchors.matrix is not None else items, "product_id", "left")
        .join(per_user, "user_id", "left")
        .withColumn("cat_share", F.when(F.col("category").isNotNull(), F.col("_cat_shares")[F.col("category")]))
    )
    with_sims = anchors.similarity(joined.drop("_cat_shares", "hist_last_ts"))
    return with_sims.select(
        "user_id", "product_id", "reason_product_id", *(_nan(F.col(name)).alias(name) for name in FEATURES)
    )
