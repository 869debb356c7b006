"""Beyond-accuracy figures of a top-K list: novelty, category diversity and catalog coverage.

Why these three: a recommender can score well on Recall/NDCG by recommending the same best sellers
to everybody. Novelty says how far from the head of the popularity curve the lists reach,
diversity how many kinds of product a single list shows, coverage how much of the catalog any
list shows at all.

Definitions (``U`` = users with at least one training interaction, ``n_i`` = those of them who
interacted with item ``i`` in training):

- popularity share ``p_i = (n_i + 1) / (U + 1)``: add-one smoothing, so that an item nobody
  touched in training (a cold item, ``n_i = 0``) gets the largest finite novelty ``log2(U + 1)``
  instead of an infinite one, and an item everybody touched gets ``p_i = 1``, novelty 0.
- novelty of an item = ``-log2 p_i`` (self-information, in bits); novelty of a list = the mean over
  its items; an empty list has no novelty (null), not 0.
- diversity of a list = the number of distinct categories among its items (an item of unknown
  category does not count as a category).
- coverage of a system = distinct items in anybody's top K / catalog size (``ranking.catalog_coverage``).

The plain-Python functions are the definition the Spark expressions are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F


def _check_users(n_train_users: int) -> None:
    if n_train_users < 0:
        raise ValueError(f"n_train_users must be at least 0, got {n_train_users}")


def popularity_share(n_item_users: int, n_train_users: int) -> float:
    """``(n_i + 1) / (U + 1)``: the smoothed share of training users who interacted with the item."""
    _check_users(n_train_users)
    if not 0 <= n_item_users <= n_train_users:
        raise ValueError(f"an item's training users must lie in [0, {n_train_users}], got {n_item_users}")
    return (n_item_users + 1) / (n_train_users + 1)


def item_novelty(n_item_users: int, n_train_users: int) -> float:
    """``-log2`` of the smoothed popularity share, in bits."""
    return -math.log2(popularity_share(n_item_users, n_train_users))


def list_novelty(item_users: Sequence[int], n_train_users: int) -> float | None:
    """Mean item novelty of a list (given each item's training users); None for an empty list."""
    if not item_users:
        return None
    return sum(item_novelty(n, n_train_users) for n in item_users) / len(item_users)


def list_diversity(categories: Iterable[Hashable | None]) -> int:
    """Distinct known categories in a list."""
    return len({c for c in categories if c is not None})


def novelty_column(item_users: Column, n_train_users: int) -> Column:
    """Spark version of ``item_novelty``; a null ``item_users`` (item unknown to training) counts as 0."""
    _check_users(n_train_users)
    n_i = F.coalesce(item_users.cast("double"), F.lit(0.0))
    return -F.log2((n_i + F.lit(1.0)) / F.lit(float(n_train_users + 1)))
