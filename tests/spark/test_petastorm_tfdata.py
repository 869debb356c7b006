"""Parquet written by Spark feeds tf.data through Petastorm, sharded across readers."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F


@pytest.fixture
def parquet_url(spark, tmp_path) -> str:
    path = tmp_path / "features"
    df = spark.range(40).select(
        F.col("id").cast("int").alias("product_id"),
        F.array(*[(F.col("id") + i).cast("float") for i in range(6)]).alias("vec"),
        (F.col("id") % 3).cast("int").alias("label"),
    )
    df.repartition(2).write.option("parquet.block.size", 1024).parquet(str(path))
    return f"file://{path}"


def _read_all(url: str, cur_shard: int | None = None, shard_count: int | None = None) -> list[dict]:
    import tensorflow as tf
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    rows: list[dict] = []
    # petastorm 0.13.1's thread pool can end a read early (a race between its ventilator and the
    # per-worker counters: seen with few row groups, shuffled or not), so reads here use the
    # "dummy" (in-thread) pool; training shuffles in tf.data instead of across row groups.
    with make_batch_reader(
        url,
        num_epochs=1,
        reader_pool_type="dummy",
        cur_shard=cur_shard,
        shard_count=shard_count,
        workers_count=1,
        shuffle_row_groups=False,
    ) as reader:
        ds = make_petastorm_dataset(reader).unbatch().batch(8)
        ds = ds.map(lambda b: (tf.cast(b.product_id, tf.int32), tf.reshape(b.vec, (-1, 6)), b.label))
        for ids, vec, label in ds:
            assert vec.dtype == tf.float32 and vec.shape[1:] == (6,)
            assert label.dtype == tf.int32
            for i, v, y in zip(ids.numpy(), vec.numpy(), label.numpy()):
                rows.append({"id": int(i), "vec": v, "label": int(y)})
    return rows


def test_petastorm_reader_feeds_tf_data(parquet_url) -> None:
    rows = _read_all(parquet_url)
    assert sorted(r["id"] for r in rows) == list(range(40))
    for r in rows:
        np.testing.assert_array_equal(r["vec"], np.arange(r["id"], r["id"] + 6, dtype=np.float32))
        assert r["label"] == r["id"] % 3


def test_petastorm_shards_cover_every_row_once(parquet_url) -> None:
    shard_ids = [sorted(r["id"] for r in _read_all(parquet_url, s, 2)) for s in (0, 1)]
    assert all(shard_ids), "each shard must get some rows"
    assert sorted(shard_ids[0] + shard_ids[1]) == list(range(40))
