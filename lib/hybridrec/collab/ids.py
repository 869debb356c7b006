"""Persistent string id → integer index mappings for Spark ALS (users and products).

Why persistent: Spark's ALS wants integer ids. Indexing afresh every night (``StringIndexer``,
``dense_rank``) would give yesterday's user 17 another index tomorrow as soon as a new id sorts
before it, so factors, checkpoints and anything keyed by index would silently mean someone else.
Here a mapping only grows: ids already mapped keep their index, and new ids get the next free
indices (``max + 1`` onwards) in the sorted order of the new ids, so the same inputs always give
the same mapping. The mapping lives in ``gold.als_user_ids`` / ``gold.als_item_ids`` (read and
appended by ``hybridrec.collab.store``); the functions here are pure DataFrame transforms.

Spark's ALS takes ids within the 32-bit integer range, so a mapping that would pass
``MAX_INDEX`` is an error, not a wrap-around.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hybridrec.errors import HybridrecError
from hybridrec.run_dates import utc_timestamp
from hybridrec.tables import ALS_ITEM_IDS, ALS_USER_IDS, TableSpec

MAX_INDEX = 2**31 - 2


class IdMappingError(HybridrecError, ValueError):
    """A stored id mapping is not one-to-one, or the id space is exhausted."""


@dataclass(frozen=True)
class IdKind:
    """Which mapping: its string id column, integer index column and table."""

    id_col: str
    idx_col: str
    spec: TableSpec


USERS = IdKind("user_id", "user_idx", ALS_USER_IDS)
ITEMS = IdKind("product_id", "item_idx", ALS_ITEM_IDS)


def empty_mapping(spark: SparkSession, kind: IdKind) -> DataFrame:
    """A mapping with no ids yet (the first fit)."""
    return spark.createDataFrame([], kind.spec.schema)


def check_mapping(mapping: DataFrame, kind: IdKind) -> int:
    """Raise ``IdMappingError`` unless ids and indices are unique and non-negative; return the count.

    One aggregation, run on the stored mapping before it is extended: a broken mapping (two
    writers appending at once, a hand edit) would otherwise mix up two users' histories.
    """
    row = mapping.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct(kind.id_col).alias("ids"),
        F.countDistinct(kind.idx_col).alias("idxs"),
        F.min(kind.idx_col).alias("lo"),
    ).first()
    n, ids, idxs, lo = int(row["n"]), int(row["ids"]), int(row["idxs"]), row["lo"]
    if n and (ids != n or idxs != n or lo < 0):
        raise IdMappingError(
            f"{kind.spec.logical_name} is not a one-to-one mapping ({n} rows, {ids} distinct "
            f"{kind.id_col}, {idxs} distinct {kind.idx_col}, smallest index {lo}): it must not be "
            f"edited by hand or written by two jobs at once; restore it from the Delta history "
            f"(DESCRIBE HISTORY, RESTORE) before refitting"
        )
    return n


def extend_mapping(
    mapping: DataFrame, ids: DataFrame, kind: IdKind, seen_at: dt.datetime
) -> tuple[DataFrame, DataFrame]:
    """(the whole mapping, the new rows) after adding the ids of ``ids`` not mapped yet.

    ``ids`` holds a column ``kind.id_col`` (repeats and nulls are ignored). New ids are numbered
    in sorted order from the current largest index + 1, so the result depends only on the inputs.
    The numbering is one sorted pass over the *new* ids in a single task: a night brings few, and
    even a first run over ten million ids is a sort of ten million strings. ``seen_at`` (the fit's
    cutoff) is stored as ``first_seen_at``. The new rows are computed once and cached (the caller
    unpersists them), so the rows appended are exactly the rows used.
    """
    id_col, idx_col = kind.id_col, kind.idx_col
    top = mapping.agg(F.coalesce(F.max(idx_col).cast("long"), F.lit(-1).cast("long")).alias("_top"))
    new_ids = (
        ids.select(id_col)
        .where(F.col(id_col).isNotNull())
        .distinct()
        .join(mapping.select(id_col), on=id_col, how="left_anti")
    )
    numbered = new_ids.withColumn("_n", F.row_number().over(Window.orderBy(id_col)))
    index = F.col("_top") + F.col("_n")
    new = (
        numbered.crossJoin(F.broadcast(top))
        .select(
            F.col(id_col),
            # Null past the 32-bit range: counted below and refused, never wrapped around.
            F.when(index <= MAX_INDEX, index.cast("int")).alias(idx_col),
            utc_timestamp(seen_at).alias("first_seen_at"),
        )
        .persist()
    )
    row = new.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col(idx_col).isNull(), 1)).alias("over")).first()
    if row["over"]:
        new.unpersist()
        raise IdMappingError(
            f"{kind.spec.logical_name}: {row['over']} of {row['n']} new ids fall past Spark ALS's "
            f"32-bit id range ({MAX_INDEX}); ids are never reused, so archive the mapping and "
            f"start a new one (a full refit)"
        )
    whole = mapping.select(*kind.spec.schema.fieldNames()).unionByName(new)
    return whole, new


def to_index(df: DataFrame, mapping: DataFrame, kind: IdKind, how: str = "inner") -> DataFrame:
    """``df`` with ``kind.idx_col`` joined on ``kind.id_col`` (inner: unmapped ids drop)."""
    return df.join(mapping.select(kind.id_col, kind.idx_col), on=kind.id_col, how=how)


def to_id(df: DataFrame, mapping: DataFrame, kind: IdKind) -> DataFrame:
    """``df`` with ``kind.id_col`` joined back on ``kind.idx_col`` (the index column is dropped)."""
    return df.join(mapping.select(kind.id_col, kind.idx_col), on=kind.idx_col).drop(kind.idx_col)
