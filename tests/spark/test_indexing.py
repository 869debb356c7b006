"""The night's dense numbering of string ids: 0..n-1 in id order, one number per distinct id."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from hybridrec.hybrid.indexing import dense_index

pytestmark = pytest.mark.spark


def test_distinct_ids_are_numbered_from_zero_in_id_order(spark) -> None:
    ids = spark.createDataFrame([("p2",), ("p10",), ("p2",), ("a",), ("p1",)], "product_id string").repartition(3)
    got = dense_index(ids, "product_id", "item_idx")
    want = spark.createDataFrame([("a", 0), ("p1", 1), ("p10", 2), ("p2", 3)], "product_id string, item_idx int")
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)
