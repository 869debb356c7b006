"""Ranking metrics at K against a hand-computed example, and their edge cases.

The example (K = 4, catalog of 8 items):

- user A: recommended [10, 20, 30, 40], relevant {10, 30, 50}: hits at ranks 1 and 3.
  Precision 2/4; Recall 2/3; DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG (3 relevant) = 1 + 1/log2(3)
  + 1/log2(4); AP = (1/1 + 2/3) / min(4, 3) = 5/9.
- user B: recommended [20, 60] (fewer than K), relevant {60}: a hit at rank 2.
  Precision 1/4 (K slots); Recall 1; NDCG = (1/log2(3)) / 1; AP = (1/2) / 1.
- Coverage: {10, 20, 30, 40, 60} shown, 5 of 8.

"Exactly" means up to the rounding of the last bit of a double (``EXACT``): 5/9 computed as
(1 + 2/3) / 3 differs from the literal 5/9 in the 16th digit.
"""

from __future__ import annotations

import math

import pytest

from hybridrec.metrics.ranking import (
    average_precision_at_k,
    catalog_coverage,
    mean_metrics,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

A = ([10, 20, 30, 40], {10, 30, 50})
B = ([20, 60], {60})
LOG3 = math.log2(3)
NDCG_A = 1.5 / (1 + 1 / LOG3 + 0.5)
NDCG_B = 1 / LOG3


def EXACT(value: float) -> object:  # reads as a constant in the asserts
    return pytest.approx(value, rel=1e-15, abs=1e-15)


def test_hand_computed_example_per_user() -> None:
    assert precision_at_k(*A, k=4) == 0.5
    assert recall_at_k(*A, k=4) == 2 / 3
    assert ndcg_at_k(*A, k=4) == NDCG_A
    assert average_precision_at_k(*A, k=4) == EXACT(5 / 9)
    assert precision_at_k(*B, k=4) == 0.25
    assert recall_at_k(*B, k=4) == 1.0
    assert ndcg_at_k(*B, k=4) == NDCG_B
    assert average_precision_at_k(*B, k=4) == 0.5


def test_hand_computed_example_means_and_coverage() -> None:
    got = mean_metrics([A, B], k=4, catalog_size=8)
    assert got == {
        "precision@4": 0.375,
        "recall@4": EXACT((2 / 3 + 1) / 2),
        "ndcg@4": EXACT((NDCG_A + NDCG_B) / 2),
        "map@4": EXACT((5 / 9 + 0.5) / 2),
        "users": 2.0,
        "coverage@4": 5 / 8,
    }


def test_only_the_top_k_counts() -> None:
    # The hit at rank 3 is outside K = 2; IDCG uses min(K, |relevant|) = 2 positions.
    assert precision_at_k(*A, k=2) == 0.5
    assert recall_at_k(*A, k=2) == 1 / 3
    assert ndcg_at_k(*A, k=2) == 1 / (1 + 1 / LOG3)
    assert average_precision_at_k(*A, k=2) == 1 / 2
    assert catalog_coverage([A[0], B[0]], catalog_size=8, k=1) == 2 / 8


def test_perfect_and_empty_rankings() -> None:
    assert ndcg_at_k([1, 2, 3], {1, 2, 3}, k=3) == 1.0
    assert average_precision_at_k([1, 2, 3], {1, 2, 3}, k=3) == 1.0
    assert ndcg_at_k([], {1}, k=3) == 0.0
    assert precision_at_k([], {1}, k=3) == 0.0
    # No relevant item: nothing to find, every metric is 0 (Spark's convention).
    assert recall_at_k([1], set(), k=3) == 0.0
    assert ndcg_at_k([1], set(), k=3) == 0.0
    assert average_precision_at_k([1], set(), k=3) == 0.0
    assert mean_metrics([], k=3)["ndcg@3"] == 0.0


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        precision_at_k([1], {1}, k=0)
    with pytest.raises(ValueError, match="catalog_size must be at least 1"):
        catalog_coverage([[1]], catalog_size=0, k=1)
