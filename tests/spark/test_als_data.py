"""ALS inputs: usable-event flags with counts that reconcile, confidence with time decay, the
persistent id mappings (stable across runs with new ids), temporal holdouts, and the Spark path
of the ranking metrics against the hand-computed example of tests/unit/test_ranking_metrics.py."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from hybridrec.collab.confidence import (
    count_reasons,
    flag_interactions,
    implicit_confidence,
    usable,
)
from hybridrec.collab.ids import ITEMS, USERS, IdKind, IdMappingError, check_mapping, empty_mapping, extend_mapping
from hybridrec.metrics.ranking import mean_metrics, ranking_metrics
from hybridrec.splits import split_last_days, split_last_n
from hybridrec.tables import INTERACTIONS

CUTOFF = dt.datetime(2026, 1, 1)
T0 = dt.datetime(2025, 12, 1)


def _events(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """(user, product, ts, event, weight) rows in bronze.interactions' schema."""
    full = [(u, p, ts, e, w, "f.csv", T0) for u, p, ts, e, w in rows]
    # Nullable columns, so that the missing_* checks can be fed (bronze itself forbids nulls).
    schema = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in INTERACTIONS.schema.fields)
    return spark.createDataFrame(full, schema)


def test_flags_every_unusable_row_once_and_counts_reconcile(spark) -> None:
    day = dt.timedelta(days=1)
    rows = [
        ("u1", "p1", T0, "view", 1.0),  # used
        ("u1", "p1", T0, "view", 1.0),  # duplicate_event
        ("u1", "p2", T0 + day, "cart", 3.0),  # used
        (None, "p1", T0, "view", 1.0),  # missing_user
        ("u2", None, T0, "view", 1.0),  # missing_product
        ("u2", "p1", None, "view", 1.0),  # missing_timestamp
        ("u2", "p1", CUTOFF, "view", 1.0),  # after_cutoff (cutoff is exclusive)
        ("u2", "p1", CUTOFF + day, "view", 1.0),  # after_cutoff
        ("u2", "p1", T0, "view", float("nan")),  # invalid_weight
        ("u2", "p1", T0 + day, "view", -1.0),  # invalid_weight
        ("u2", "p1", T0 + 2 * day, "view", float("inf")),  # invalid_weight
        ("u2", "p2", T0, "view", None),  # invalid_weight
        ("u2", "p2", T0 + day, "view", 0.0),  # zero_weight
        ("u3", "zz", T0, "view", 1.0),  # unknown_product
        ("u3", "p2", T0, "purchase", 5.0),  # used
    ]
    products = spark.createDataFrame([("p1",), ("p2",)], "product_id string")
    flagged = flag_interactions(_events(spark, rows), CUTOFF, products=products)
    counts = count_reasons(flagged)
    assert counts == {
        "read": 15,
        "used": 3,
        "dropped_duplicate_event": 1,
        "dropped_missing_user": 1,
        "dropped_missing_product": 1,
        "dropped_missing_timestamp": 1,
        "dropped_after_cutoff": 2,
        "dropped_invalid_weight": 4,
        "dropped_zero_weight": 1,
        "dropped_unknown_product": 1,
    }
    got = usable(flagged).select("user_id", "product_id", "event").orderBy("user_id", "product_id")
    assert [tuple(r) for r in got.collect()] == [("u1", "p1", "view"), ("u1", "p2", "cart"), ("u3", "p2", "purchase")]


def test_event_weight_override_and_unknown_events(spark) -> None:
    rows = [("u1", "p1", T0, "view", 1.0), ("u1", "p2", T0, "wishlist", 2.0)]
    flagged = flag_interactions(_events(spark, rows), CUTOFF, event_weights={"view": 0.5})
    assert count_reasons(flagged) == {"read": 2, "used": 1, "dropped_unknown_event": 1}
    assert usable(flagged).first()["weight"] == 0.5


def test_confidence_decays_sums_and_damps(spark) -> None:
    rows = [
        ("u1", "p1", CUTOFF - dt.timedelta(days=10), "view", 1.0),  # one half-life old: 0.5
        ("u1", "p1", CUTOFF - dt.timedelta(days=20), "cart", 3.0),  # two: 3 * 0.25
        ("u1", "p2", CUTOFF, "view", 2.0),  # age 0: 2
    ]
    events = _events(spark, rows)
    linear = implicit_confidence(events, CUTOFF, half_life_days=10.0, transform="sum")
    expected = spark.createDataFrame(
        [("u1", "p1", 1.25, 2), ("u1", "p2", 2.0, 1)],
        "user_id string, product_id string, rating double, n_events long",
    )
    assert_df_equality(linear.drop("last_ts"), expected, ignore_row_order=True, ignore_nullable=True)
    damped = {r["product_id"]: r["rating"] for r in implicit_confidence(events, CUTOFF, 10.0, "log1p").collect()}
    assert damped == {"p1": pytest.approx(math.log1p(1.25)), "p2": pytest.approx(math.log1p(2.0))}
    flat = {r["product_id"]: r["rating"] for r in implicit_confidence(events, CUTOFF, None, "sum").collect()}
    assert flat == {"p1": 4.0, "p2": 2.0}


def _mapping(rows: list[tuple[str, int]], spark: SparkSession, kind: IdKind) -> DataFrame:
    return spark.createDataFrame([(i, x, T0) for i, x in rows], kind.spec.schema)


def test_id_mapping_is_stable_across_runs_with_new_ids(spark) -> None:
    day1 = spark.createDataFrame([("u3",), ("u1",), ("u2",), ("u1",), (None,)], "user_id string")
    m1, new1 = extend_mapping(empty_mapping(spark, USERS), day1, USERS, T0)
    assert sorted(map(tuple, m1.select("user_id", "user_idx").collect())) == [("u1", 0), ("u2", 1), ("u3", 2)]
    assert new1.count() == 3
    # Day 2: u0 sorts before every old id, u2 comes back: old ids keep their index, new ones follow.
    day2 = spark.createDataFrame([("u0",), ("u4",), ("u2",)], "user_id string")
    m2, new2 = extend_mapping(m1, day2, USERS, CUTOFF)
    assert sorted(map(tuple, m2.select("user_id", "user_idx").collect())) == [
        ("u0", 3),
        ("u1", 0),
        ("u2", 1),
        ("u3", 2),
        ("u4", 4),
    ]
    assert sorted(map(tuple, new2.select("user_id", "user_idx").collect())) == [("u0", 3), ("u4", 4)]
    assert {r["first_seen_at"] for r in new2.collect()} == {CUTOFF}
    # Nothing new: nothing appended, the mapping unchanged.
    m3, new3 = extend_mapping(m2, day2, USERS, CUTOFF)
    assert new3.count() == 0
    assert_df_equality(m3, m2, ignore_row_order=True)
    assert check_mapping(m3, USERS) == 5


def test_new_ids_are_numbered_in_sorted_order_whatever_the_partitioning(spark) -> None:
    ids = [f"p{n:05d}" for n in range(2000)]
    random.Random(3).shuffle(ids)
    stored = _mapping([("p99999", 7)], spark, ITEMS)
    frame = spark.createDataFrame([(i,) for i in ids], "product_id string").repartition(7)
    whole, new = extend_mapping(stored, frame, ITEMS, T0)
    got = {r["product_id"]: r["item_idx"] for r in new.collect()}
    assert got == {f"p{n:05d}": 8 + n for n in range(2000)}
    assert whole.count() == 2001


def test_a_broken_mapping_stops_the_fit(spark) -> None:
    dup_idx = _mapping([("u1", 0), ("u2", 0)], spark, USERS)
    with pytest.raises(IdMappingError, match="not a one-to-one mapping"):
        check_mapping(dup_idx, USERS)
    dup_id = _mapping([("u1", 0), ("u1", 1)], spark, USERS)
    with pytest.raises(IdMappingError, match="restore it from the Delta history"):
        check_mapping(dup_id, USERS)


def test_temporal_holdouts(spark) -> None:
    day = dt.timedelta(days=1)
    rows = [
        ("old", "p1", CUTOFF - 30 * day, "view", 1.0),
        ("old", "p2", CUTOFF - 2 * day, "view", 1.0),
        ("old", "p3", CUTOFF - 1 * day, "view", 1.0),
        ("new", "p9", CUTOFF - 1 * day, "view", 1.0),  # a user only in the test window
        ("one", "p1", CUTOFF - 20 * day, "view", 1.0),
    ]
    events = _events(spark, rows)
    h = split_last_days(events, CUTOFF, days=7)
    assert h.reference == CUTOFF - 7 * day
    assert sorted((r.user_id, r.product_id) for r in h.test.collect()) == [("new", "p9"), ("old", "p2"), ("old", "p3")]
    assert h.train.count() == 2
    n = split_last_n(events, CUTOFF, n=2)
    # "old" has 3 events: its last 2 test; "new" and "one" have too few: they stay in training.
    assert sorted((r.user_id, r.product_id) for r in n.test.collect()) == [("old", "p2"), ("old", "p3")]
    assert n.train.count() == 3


def test_spark_ranking_metrics_match_the_hand_computed_example(spark) -> None:
    df = spark.createDataFrame(
        [("A", [10, 20, 30, 40], [10, 30, 50]), ("B", [20, 60], [60])],
        "user string, recommended array<int>, relevant array<int>",
    )
    got = ranking_metrics(df, k=4, catalog_size=8)
    log3 = math.log2(3)
    ndcg_a, ndcg_b = 1.5 / (1 + 1 / log3 + 0.5), 1 / log3
    expected = {
        "precision@4": 0.375,
        "recall@4": (2 / 3 + 1) / 2,
        "ndcg@4": (ndcg_a + ndcg_b) / 2,
        "map@4": (5 / 9 + 0.5) / 2,
        "users": 2.0,
        "coverage@4": 5 / 8,
    }
    assert got == {k: pytest.approx(v, rel=1e-15, abs=1e-15) for k, v in expected.items()}


def test_spark_ranking_metrics_equal_the_reference_on_random_rankings(spark) -> None:
    rng = random.Random(11)
    rows = []
    for u in range(200):
        rec = rng.sample(range(50), rng.randint(0, 15))
        rows.append((u, rec if rec or u % 2 else None, rng.sample(range(50), rng.randint(1, 10))))
    df = spark.createDataFrame(rows, "u int, recommended array<int>, relevant array<int>")
    for k in (1, 5, 10):
        reference = mean_metrics([(rec or [], rel) for _, rec, rel in rows], k, catalog_size=50)
        got = ranking_metrics(df, k, catalog_size=50)
        assert got == {key: pytest.approx(v, rel=1e-12, abs=1e-12) for key, v in reference.items()}


def test_ranking_metrics_want_integer_ids(spark) -> None:
    df = spark.createDataFrame([(["a"], ["a"])], "recommended array<string>, relevant array<string>")
    with pytest.raises(ValueError, match="array of integer item ids"):
        ranking_metrics(df, k=3)
