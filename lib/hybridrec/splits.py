"""Train / val / test split by a stable hash of the product id.

Why a hash and not ``randomSplit``: the split of a product must not change when the job re-runs, when
Spark partitions the data differently, or when new products arrive, otherwise evaluation leaks
(a product trained on yesterday is tested on today). And the image row and the text row of one
product must land in the same split so the fusion model never sees a test product in training.

The rule, reproducible outside Spark (``split_of``)::

    u = int(sha1(utf8(product_id)).hexdigest()[:8], 16) / 2**32      # uniform in [0, 1)
    train if u < train_fraction, val if u < train_fraction + val_fraction, else test

Changing the fractions only moves products across the nearest boundary.
"""
from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SPLITS = ("train", "val", "test")
_BUCKETS = float(2**32)


def split_of(product_id: str, train_fraction: float, val_fraction: float) -> str:
    """The split of one product id (the same rule as ``split_column``)."""
    u = int(hashlib.sha1(product_id.encode("utf-8")).hexdigest()[:8], 16) / _BUCKETS
    return _pick(u, train_fraction, val_fraction)


def _pick(u: float, train_fraction: float, val_fraction: float) -> str:
    if u < train_fraction:
        return "train"
    if u < train_fraction + val_fraction:
        return "val"
    return "test"


def split_column(product_id: Column | str, train_fraction: float, val_fraction: float) -> Column:
    """Spark column with 'train' / 'val' / 'test' for each product id."""
    pid = F.col(product_id) if isinstance(product_id, str) else product_id
    u = F.conv(F.substring(F.sha1(pid.cast("binary")), 1, 8), 16, 10).cast("long") / F.lit(_BUCKETS)
    return (
        F.when(u < F.lit(train_fraction), F.lit("train"))
        .when(u < F.lit(train_fraction + val_fraction), F.lit("val"))
        .otherwise(F.lit("test"))
    )


def add_split(products: DataFrame, train_fraction: float, val_fraction: float) -> DataFrame:
    """``products`` plus a ``split`` column (pure)."""
    return products.withColumn("split", split_column("product_id", train_fraction, val_fraction))
