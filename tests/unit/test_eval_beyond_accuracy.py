"""Novelty and diversity definitions (metrics.beyond_accuracy) against hand-computed values.

U = 7 training users: an item 3 of them touched has p = (3 + 1) / (7 + 1) = 1/2, novelty 1 bit; a
cold item (0 users) has p = 1/8, novelty 3 bits; an item all 7 touched has p = 1, novelty 0.
"""

from __future__ import annotations

import math

import pytest

from hybridrec.metrics.beyond_accuracy import (
    item_novelty,
    list_diversity,
    list_novelty,
    popularity_share,
)


def test_popularity_share_is_add_one_smoothed() -> None:
    assert popularity_share(3, 7) == 0.5
    assert popularity_share(0, 7) == 0.125
    assert popularity_share(7, 7) == 1.0


def test_item_novelty_in_bits() -> None:
    assert item_novelty(3, 7) == 1.0
    assert item_novelty(0, 7) == 3.0  # a cold item: the largest finite value, log2(U + 1)
    assert item_novelty(7, 7) == 0.0
    assert item_novelty(0, 0) == 0.0  # no training users: nothing is novel


def test_list_novelty_is_the_mean_and_none_for_an_empty_list() -> None:
    assert list_novelty([3, 0, 7], 7) == pytest.approx((1.0 + 3.0 + 0.0) / 3)
    assert list_novelty([], 7) is None


def test_list_diversity_counts_known_categories() -> None:
    assert list_diversity(["shoes", "bags", "shoes", None]) == 2
    assert list_diversity([]) == 0


@pytest.mark.parametrize("n_item, n_users", [(-1, 5), (6, 5)])
def test_impossible_counts_are_refused(n_item: int, n_users: int) -> None:
    with pytest.raises(ValueError, match="training users"):
        popularity_share(n_item, n_users)


def test_negative_user_count_is_refused() -> None:
    with pytest.raises(ValueError, match="n_train_users"):
        item_novelty(0, -1)
    assert math.isfinite(item_novelty(0, 10**9))
