"""Per-user evaluation rows (evaluation.per_user) against the plain-Python definitions.

Hand example, K = 4, U = 7 training users, string ids:

- system s1: user A gets [p10, p20, p30, p40, p70] (rank 5 is cut) with p10 repeated at rank 7
  (ignored), relevant {p10, p30, p50}: the ranking example of tests/unit/test_ranking_metrics.py
  (precision 2/4, recall 2/3, AP 5/9). Categories: p10, p20 shirts, p30 shoes, p40 unknown → 2.
  Training users p10: 7, p20: 3, p30: 0, p40 absent from items → novelty (0 + 1 + 3 + 3) / 4.
- s1, user B: [p20, p60], relevant {p60}: recall 1, AP 1/2, precision 1/4.
- s2 has a list for A only ([p50], a hit); B gets nothing there: every ranking metric 0, no novelty.
- user C has lists but nothing relevant: not evaluated.
"""

from __future__ import annotations

import math
import random

import pytest

from hybridrec.evaluation.per_user import coverage, per_user_metrics
from hybridrec.metrics.beyond_accuracy import list_diversity, list_novelty
from hybridrec.metrics.ranking import (
    average_precision_at_k,
    mean_metrics,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

RECS = "system string, user_id string, rank int, product_id string"
REL = "user_id string, product_id string"
ITEMS = "product_id string, category string, train_users long"


def _frames(spark, recs, relevant, items):
    return (
        spark.createDataFrame(recs, RECS),
        spark.createDataFrame(relevant, REL),
        spark.createDataFrame(items, ITEMS),
    )


def hand_example(spark):
    recs = [("s1", "A", r, p) for r, p in enumerate(["p10", "p20", "p30", "p40", "p70"], start=1)]
    recs += [
        ("s1", "A", 7, "p10"),
        ("s1", "B", 1, "p20"),
        ("s1", "B", 2, "p60"),
        ("s1", "C", 1, "p10"),
        ("s2", "A", 1, "p50"),
    ]
    relevant = [("A", "p10"), ("A", "p30"), ("A", "p50"), ("A", "p30"), ("B", "p60")]
    items = [
        ("p10", "shirts", 7),
        ("p20", "shirts", 3),
        ("p30", "shoes", 0),
        ("p50", "bags", 1),
        ("p60", "shoes", 2),
        ("p70", "bags", 5),
    ]
    return _frames(spark, recs, relevant, items)


def test_per_user_metrics_on_the_hand_example(spark) -> None:
    recs, relevant, items = hand_example(spark)
    got = {
        (r.system, r.user_id): r.asDict()
        for r in per_user_metrics(recs, relevant, items, k=4, n_train_users=7).collect()
    }
    assert sorted(got) == [("s1", "A"), ("s1", "B"), ("s2", "A"), ("s2", "B")]
    exact = lambda v: pytest.approx(v, rel=1e-15, abs=1e-15)  # noqa: E731 - a one-line tolerance helper
    a = got[("s1", "A")]
    assert (a["n_recs"], a["n_relevant"], a["hits"], a["n_categories"]) == (4, 3, 2, 2)
    assert a["precision"] == exact(0.5) and a["recall"] == exact(2 / 3) and a["ap"] == exact(5 / 9)
    assert a["ndcg"] == exact(1.5 / (1 + 1 / math.log2(3) + 0.5))
    assert a["novelty"] == exact((0 + 1 + 3 + 3) / 4)
    b = got[("s1", "B")]
    assert (b["recall"], b["ap"], b["precision"], b["n_categories"]) == (1.0, 0.5, 0.25, 2)
    assert b["ndcg"] == exact(1 / math.log2(3))
    assert b["novelty"] == exact((1 + -math.log2(3 / 8)) / 2)
    a2 = got[("s2", "A")]
    assert (a2["recall"], a2["ap"], a2["ndcg"], a2["precision"]) == (
        pytest.approx(1 / 3),
        1 / 3,
        exact(1 / (1 + 1 / math.log2(3) + 0.5)),
        0.25,
    )
    empty = got[("s2", "B")]
    assert (
        empty["n_recs"],
        empty["hits"],
        empty["recall"],
        empty["ndcg"],
        empty["ap"],
        empty["precision"],
        empty["n_categories"],
        empty["novelty"],
    ) == (0, 0, 0.0, 0.0, 0.0, 0.0, 0, None)


def test_a_named_system_without_lists_scores_zero(spark) -> None:
    recs, relevant, items = hand_example(spark)
    rows = per_user_metrics(recs, relevant, items, k=4, n_train_users=7, systems=["s1", "nothing"])
    nothing = rows.filter("system = 'nothing'").collect()
    assert sorted(r.user_id for r in nothing) == ["A", "B"]
    assert all(r.recall == 0.0 and r.n_recs == 0 and r.novelty is None for r in nothing)


def test_per_user_metrics_equal_the_definitions_on_random_lists(spark) -> None:
    rng = random.Random(5)
    catalog = [f"p{i}" for i in range(60)]
    cats = {p: (None if i % 13 == 0 else f"c{i % 7}") for i, p in enumerate(catalog)}
    train_users = {p: rng.randint(0, 40) for p in catalog[:50]}  # the last 10: unknown to training
    recs, relevant, expected = [], [], {}
    for u in range(120):
        user = f"u{u}"
        rec = rng.sample(catalog, rng.randint(0, 15))
        rel = rng.sample(catalog, rng.randint(1, 8))
        for rank, p in enumerate(rec, start=1):
            recs.append(("sys", user, rank, p))
        relevant += [(user, p) for p in rel]
        expected[user] = (rec, rel)
    items = [(p, cats[p], train_users[p]) for p in catalog[:50]] + [(p, cats[p], None) for p in catalog[50:55]]
    in_items = set(catalog[:55])  # the last 5 are absent from items: unknown category, cold
    k = 10
    rows = per_user_metrics(*_frames(spark, recs, relevant, items), k=k, n_train_users=40).collect()
    assert len(rows) == 120
    approx = lambda v: pytest.approx(v, rel=1e-12, abs=1e-12)  # noqa: E731 - a one-line tolerance helper
    for r in rows:
        rec, rel = expected[r.user_id]
        top = rec[:k]
        assert r.precision == approx(precision_at_k(top, rel, k))
        assert r.recall == approx(recall_at_k(top, rel, k))
        assert r.ndcg == approx(ndcg_at_k(top, rel, k))
        assert r.ap == approx(average_precision_at_k(top, rel, k))
        assert r.n_categories == list_diversity(cats[p] if p in in_items else None for p in top)
        novelty = list_novelty([train_users.get(p, 0) for p in top], 40)
        assert (r.novelty is None) if novelty is None else r.novelty == approx(novelty)
    # and the means are those of ranking.mean_metrics
    means = mean_metrics(list(expected.values()), k)
    assert sum(r.ndcg for r in rows) / len(rows) == approx(means[f"ndcg@{k}"])
    assert sum(r.ap for r in rows) / len(rows) == approx(means[f"map@{k}"])


def test_missing_columns_are_named(spark) -> None:
    recs, relevant, items = hand_example(spark)
    with pytest.raises(ValueError, match="items lacks column.*train_users"):
        per_user_metrics(recs, relevant, items.drop("train_users"), k=4, n_train_users=7)


def test_coverage_per_system_and_segment(spark) -> None:
    recs, _, _ = hand_example(spark)
    # s1 top 4: A {p10, p20, p30, p40}, B {p20, p60}, C {p10} -> 5 items; s2: {p50} -> 1 item.
    got = coverage(recs, k=4, catalog_size=10)
    assert got.to_dict("records") == [
        {"system": "s1", "items_shown": 5, "catalog_size": 10, "coverage": 0.5},
        {"system": "s2", "items_shown": 1, "catalog_size": 10, "coverage": 0.1},
    ]
    seg = recs.withColumn("segment", recs.user_id.isin("A").cast("string"))
    by_segment = coverage(seg, k=1, catalog_size=10, group_cols=["segment", "system"])
    assert by_segment[["segment", "system", "items_shown"]].values.tolist() == [
        ["false", "s1", 2],
        ["true", "s1", 1],
        ["true", "s2", 1],
    ]
