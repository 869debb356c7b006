"""One night's dense int numbering of string ids (products, for the night's vector searches and the
co-interaction self-join): 0..n-1 in id order, so an int order, and an int tie-break, is the ids'
order.

Not persistent: the numbering holds for one plan only. ALS's ids, which must mean the same user or
product from night to night, have their own growing mapping (``collab.ids``).

One sorted task numbers the ids (a window without a partition: Spark logs "No Partition Defined
for Window operation" once per use). That is product-sized work, a few seconds at a million ids,
and keeps the plan lazy: the numbering runs with whatever reads it.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def dense_index(ids: DataFrame, col: str, idx: str) -> DataFrame:
    """(``col``, ``idx`` int): the distinct values of ``col`` numbered 0..n-1 in ``col`` order."""
    order = Window.orderBy(col)
    return ids.select(col).distinct().select(col, (F.row_number().over(order) - F.lit(1)).cast("int").alias(idx))
