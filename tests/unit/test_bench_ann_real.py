"""The pure helpers of bench/bench_ann_real.py: top lists, list agreement, seeded subsets."""

from __future__ import annotations

import pandas as pd
import pytest

import bench_ann_real as BA

pytestmark = pytest.mark.unit


def test_top_lists_order_by_score_then_the_smaller_item_and_cut_at_k() -> None:
    df = pd.DataFrame({"q": [1, 1, 1, 1, 2], "item": ["c", "a", "b", "d", "x"], "s": [0.5, 0.9, 0.5, 0.1, 0.3]})
    assert BA.top_lists(df, "q", "item", "s", 3) == {1: ["a", "b", "c"], 2: ["x"]}


def test_list_agreement_counts_shared_items_as_sets_and_identical_lists_in_order() -> None:
    exact = {"p": ["a", "b", "c", "d"], "q": ["e", "f"], "r": ["g"]}
    approx = {"p": ["b", "a", "c", "z"], "q": ["e", "f"]}  # r missing: an empty list
    got = BA.list_agreement(exact, approx)
    assert got == {"items_kept": round((3 / 4 + 1 + 0) / 3, 4), "identical_lists": round(1 / 3, 4)}
    with pytest.raises(ValueError, match="at least one"):
        BA.list_agreement({}, approx)


def test_seeded_subset_is_reproducible_sorted_and_capped() -> None:
    values = [f"u{i:03d}" for i in range(200)]
    a = BA.seeded_subset(list(reversed(values)), 20, seed=3)
    assert a == BA.seeded_subset(values, 20, seed=3)  # the input order does not matter
    assert a == sorted(a) and len(set(a)) == 20
    assert a != BA.seeded_subset(values, 20, seed=4)
    assert BA.seeded_subset(values[:5], 20, seed=3) == values[:5]
