"""Each Horovod rank reads its own share of a split through Petastorm; together they read every row once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from hybridrec.models.data import ShardSpec, count_rows, iter_shard, make_dataset


@pytest.fixture
def text_urls(spark, tmp_path) -> tuple[str, ...]:
    """4 single-row-group files of text features: 100 rows, every 5th unlabelled."""
    folder = tmp_path / "text"
    df = spark.range(100).select(
        F.format_string("p%03d", F.col("id")).alias("product_id"),
        F.when(F.col("id") % 5 == 0, -1).otherwise(F.col("id") % 3).cast("int").alias("label"),
        F.array(*[(F.col("id") + i).cast("int") for i in range(4)]).alias("token_ids"),
    )
    df.repartition(4, "product_id").write.parquet(str(folder))
    return tuple(f"file://{p}" for p in sorted(Path(folder).glob("*.parquet")))


def _ids(shard: ShardSpec, labelled_only: bool = False) -> list[str]:
    return [i for ids, _, _ in iter_shard("text", shard, 0, labelled_only) for i in ids]


@pytest.mark.parametrize("row_groups", [4, 1], ids=["by-row-group", "by-row-when-too-few-groups"])
def test_two_ranks_partition_the_rows(text_urls, row_groups) -> None:
    shards = [_ids(ShardSpec(text_urls, rank, 2, row_groups)) for rank in (0, 1)]
    assert all(shards)
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == [f"p{i:03d}" for i in range(100)]


def test_training_reads_labelled_rows_only(text_urls) -> None:
    shard = ShardSpec(text_urls)
    assert count_rows("text", shard, 0) == 80
    for ids, x, y in iter_shard("text", shard, 0, labelled_only=True):
        assert (y >= 0).all() and x.shape[1] == 4 and x.dtype == np.int32
        for pid, row in zip(ids, x):
            assert row[0] == int(pid[1:])  # inputs stay aligned with their product


def test_eval_dataset_is_one_exact_pass_each_time_it_is_iterated(text_urls) -> None:
    ds = make_dataset("text", ShardSpec(text_urls), 0, 4, batch_size=16, training=False)
    for _ in range(2):
        assert sum(int(y.shape[0]) for _, y in ds) == 80


def test_training_dataset_repeats_and_shuffles(text_urls) -> None:
    ds = make_dataset("text", ShardSpec(text_urls), 0, 4, batch_size=16, training=True, shuffle_buffer=64, seed=1)
    labels = [int(v) for _, y in ds.take(12) for v in y.numpy()]
    assert len(labels) == 12 * 16  # endless: more batches than one pass holds


def test_images_of_the_wrong_size_fail_with_the_product(spark, tmp_path) -> None:
    folder = tmp_path / "images"
    spark.createDataFrame([("p1", 0, bytes(10))], "product_id string, label int, image binary").write.parquet(
        str(folder)
    )
    urls = tuple(f"file://{p}" for p in sorted(folder.glob("*.parquet")))
    with pytest.raises(ValueError, match="product p1 hold 10 bytes, expected 48"):
        list(iter_shard("image", ShardSpec(urls), 4, labelled_only=True))
