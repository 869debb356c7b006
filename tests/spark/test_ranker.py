"""The learned stage on hand-made DataFrames: the candidate pool merges every source and never
holds an excluded pair, pair features are what they say (NaN where missing), training rows keep
only users with a positive and at most ``negatives`` negatives, and a ranker trained on two
workers learns a planted signal, survives a save/load round trip and refuses unknown features."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F

from hybridrec.config import RankerConfig, RecommendConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.candidates import candidate_pool, source_recall
from hybridrec.hybrid.co_interaction import item_neighbours
from hybridrec.hybrid.learned import COLD_STEP, reserve_cold_slots
from hybridrec.hybrid.pair_features import FEATURES, AnchorVectors, _anchors, pair_features
from hybridrec.hybrid.ranker import (
    current_ranker_version,
    fit_ranker,
    load_ranker,
    save_ranker,
    score_pool,
    training_rows,
)

pytestmark = pytest.mark.spark
REF = dt.datetime(2026, 1, 10)


def _history(spark):
    # u1 bought a (excluded) and viewed b (allowed back); u2 viewed c.
    return spark.createDataFrame(
        [
            ("u1", "a", 3.0, 1, dt.datetime(2026, 1, 9), True, "purchase", 1),
            ("u1", "b", 1.0, 2, dt.datetime(2026, 1, 5), False, "view", 2),
            ("u2", "c", 1.0, 1, dt.datetime(2026, 1, 8), False, "view", 1),
        ],
        "user_id string, product_id string, weight double, n_events long, last_ts timestamp, excluded boolean, "
        "event string, h_rank int",
    )


def _events(spark):
    return spark.createDataFrame(
        [
            ("u1", "a", dt.datetime(2026, 1, 9), "purchase", 3.0),
            ("u1", "b", dt.datetime(2026, 1, 5), "view", 1.0),
            ("u1", "b", dt.datetime(2026, 1, 4), "view", 1.0),
            ("u2", "c", dt.datetime(2026, 1, 8), "view", 1.0),
            ("u2", "a", dt.datetime(2025, 11, 1), "view", 1.0),
        ],
        "user_id string, product_id string, ts timestamp, event string, weight double",
    )


def _products(spark):
    return spark.createDataFrame(
        [(p, f"title {p}", None, cat) for p, cat in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", None))],
        "product_id string, title string, description string, category string",
    )


ALS_ROWS = [("u1", "a", 0.9), ("u1", "c", 0.5), ("u2", "d", 0.4)]


def _pool(spark, kc: RankerConfig | None = None, *, sources: bool = True, lexical=None, als_rows=None, depth=None):
    """The pool of u1 and u2 from hand-made ALS (``als_rows``), content and cold candidates (none
    when not ``sources``), the history's popular / repeat / co candidates per ``kc``, and
    ``lexical``, cut at ``depth``."""
    als = spark.createDataFrame(
        (als_rows or ALS_ROWS) if sources else [],
        "user_id string, product_id string, als_score double",
    )
    content = spark.createDataFrame(
        [("u1", "c", 0.7, "b"), ("u1", "d", 0.6, "b")] if sources else [],
        "user_id string, product_id string, content_score double, reason_product_id string",
    )
    cold = spark.createDataFrame(
        [("u2", "e", 0.2)] if sources else [], "user_id string, product_id string, cold_score double"
    )
    users = spark.createDataFrame([("u1",), ("u2",)], "user_id string")
    return candidate_pool(
        users=users,
        history=_history(spark),
        usable_events=_events(spark),
        reference=REF,
        products=_products(spark),
        als=als,
        content=content,
        cold=cold,
        rc=RecommendConfig(popular_days=None),
        kc=kc or RankerConfig(popular_candidates=1, repeat_candidates=5),
        lexical=lexical,
        depth=depth,
    )


def test_pool_merges_sources_and_drops_excluded_pairs(spark) -> None:
    rows = {(r.user_id, r.product_id): r for r in _pool(spark).collect()}
    # u1-a is excluded (bought) although ALS and popularity propose it
    assert ("u1", "a") not in rows
    assert rows[("u1", "c")].als_score == 0.5 and rows[("u1", "c")].content_score == pytest.approx(0.7)
    assert rows[("u1", "b")].repeat_score == 1.0 and rows[("u1", "b")].als_score is None
    # b is a's co-interaction neighbour (u1 has both; cosine 1 / sqrt(1 * 1)), a is excluded for u1
    assert rows[("u1", "b")].co_score == pytest.approx(1.0)
    # the most popular product (a: weight 4 in all history) goes to every user who may have it
    assert rows[("u2", "a")].popular_score == 1.0
    assert rows[("u2", "e")].cold_score == pytest.approx(0.2)
    assert set(rows) == {("u1", "b"), ("u1", "c"), ("u1", "d"), ("u2", "a"), ("u2", "c"), ("u2", "d"), ("u2", "e")}


def test_night_depth_keeps_pairs_some_source_ranks_high_with_all_their_scores(spark) -> None:
    # u1: ALS d (0.55) then c (0.5) (a is excluded); content c (0.7) then d (0.6); repeat and co b.
    als_rows = [*ALS_ROWS, ("u1", "d", 0.55)]
    whole = _pool(spark, als_rows=als_rows).orderBy("user_id", "product_id")
    cut = _pool(spark, als_rows=als_rows, depth=1).orderBy("user_id", "product_id")
    # Every pair is some source's first here, so nothing leaves; c and d keep the score and rank of
    # the source that ranked them second: the features are those of the whole pool.
    assert_approx_df_equality(cut, whole, 1e-9, ignore_nullable=True)
    rows = {(r.user_id, r.product_id): r for r in cut.collect()}
    assert (rows[("u1", "c")].als_rank, rows[("u1", "c")].content_rank) == (2, 1)
    assert rows[("u1", "d")].content_score == pytest.approx(0.6) and rows[("u1", "d")].als_rank == 1
    # Without d's ALS row, d is only content's second: depth 1 drops it, depth 2 keeps it.
    assert ("u1", "d") not in {(r.user_id, r.product_id) for r in _pool(spark, depth=1).collect()}
    assert ("u1", "d") in {(r.user_id, r.product_id) for r in _pool(spark, depth=2).collect()}
    # popular and repeat are ranked too: two popular products, depth 1 keeps only the first.
    kc = RankerConfig(popular_candidates=2, repeat_candidates=0, co_neighbours=0, lexical_neighbours=0)
    pop2 = {r.product_id for r in _pool(spark, kc, sources=False).collect() if r.user_id == "u2"}
    pop1 = {r.product_id for r in _pool(spark, kc, sources=False, depth=1).collect() if r.user_id == "u2"}
    assert pop1 == {"a"} and pop2 == {"a", "b"}


def _expected_cut(rows, depth: int) -> list:
    """The pairs of the whole pool (``rows``) that some source ranks among the user's ``depth``
    best: the pool's own ranks, and for popular and repeat (no rank column) their place by score
    (ties by product id) among the user's pairs that source proposed."""
    best: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.user_id, r.product_id)
        for source in ("als", "content", "cold", "co", "lexical"):
            if r[f"{source}_rank"] is not None:
                best[key] = min(best.get(key, 10**9), r[f"{source}_rank"])
    for col in ("popular_score", "repeat_score"):
        for user in {r.user_id for r in rows}:
            proposed = sorted((-r[col], r.product_id) for r in rows if r.user_id == user and r[col] is not None)
            for place, (_, product) in enumerate(proposed, start=1):
                best[(user, product)] = min(best.get((user, product), 10**9), place)
    return [r for r in rows if best.get((r.user_id, r.product_id), 10**9) <= depth]


def test_night_depth_cut_matches_the_whole_pool_cut_on_random_histories(spark) -> None:
    # 40 users, 30 products, 15 popular ones; many exclusions among the popular products, so each
    # user's popular ranks shift by their own exclusions.
    rng = np.random.default_rng(11)
    products = [f"p{i:02d}" for i in range(30)]
    users = [f"u{i:02d}" for i in range(40)]
    history, events, als, content = [], [], [], []
    for u in users:
        own = rng.choice(30, size=int(rng.integers(1, 9)), replace=False)
        for h, i in enumerate(own, start=1):
            ts = REF - dt.timedelta(days=int(rng.integers(1, 30)), hours=int(rng.integers(0, 24)))
            w = float(rng.integers(1, 5))
            history.append((u, products[i], w, 1, ts, bool(rng.random() < 0.5), "view", h))
            events.append((u, products[i], ts, "view", w))
        als += [(u, products[i], float(rng.random())) for i in rng.choice(30, size=6, replace=False)]
        content += [(u, products[i], float(rng.random()), None) for i in rng.choice(30, size=6, replace=False)]
    kc = RankerConfig(popular_candidates=15, repeat_candidates=4, co_neighbours=3, co_recent=2, lexical_neighbours=0)

    def pool(depth):
        return candidate_pool(
            users=spark.createDataFrame([(u,) for u in users], "user_id string"),
            history=spark.createDataFrame(
                history,
                "user_id string, product_id string, weight double, n_events long, last_ts timestamp, "
                "excluded boolean, event string, h_rank int",
            ),
            usable_events=spark.createDataFrame(
                events, "user_id string, product_id string, ts timestamp, event string, weight double"
            ),
            reference=REF,
            products=spark.createDataFrame(
                [(p, p, None, "x") for p in products],
                "product_id string, title string, description string, category string",
            ),
            als=spark.createDataFrame(als, "user_id string, product_id string, als_score double"),
            content=spark.createDataFrame(
                content, "user_id string, product_id string, content_score double, reason_product_id string"
            ),
            cold=spark.createDataFrame([], "user_id string, product_id string, cold_score double"),
            rc=RecommendConfig(popular_days=None),
            kc=kc,
            depth=depth,
        )

    whole = pool(None)
    rows = whole.collect()
    for depth in (1, 3, 8):
        want = spark.createDataFrame(_expected_cut(rows, depth), whole.schema)
        got = pool(depth)
        assert len(want.collect()) < len(rows)
        assert_approx_df_equality(
            got.orderBy("user_id", "product_id"), want.orderBy("user_id", "product_id"), 1e-12, ignore_nullable=True
        )


def test_lexical_candidates_sum_title_neighbours_of_the_latest_products(spark) -> None:
    # Title neighbours: d is close to b and to a; c to b. u1's latest products: a (excluded, bought)
    # then b; u2's: c. With lexical_recent 1 only each user's very latest product counts.
    lexical = spark.createDataFrame(
        [("a", "d", 0.5), ("b", "d", 0.25), ("b", "c", 0.75), ("c", "e", 0.5)],
        "product_id string, other_id string, sim double",
    )

    def pool(kc: RankerConfig, with_lexical: bool = True) -> dict:
        rows = _pool(spark, kc, sources=False, lexical=lexical if with_lexical else None).collect()
        return {(r.user_id, r.product_id): r for r in rows if r.lexical_score is not None}

    base = {"popular_candidates": 0, "repeat_candidates": 0, "co_neighbours": 0}
    rows = pool(RankerConfig(**base, lexical_recent=5))
    assert rows[("u1", "d")].lexical_score == pytest.approx(0.75)  # near a (0.5) and b (0.25)
    assert rows[("u1", "d")].reason_product_id == "a"  # the closer of the two
    assert rows[("u1", "c")].lexical_score == pytest.approx(0.75) and rows[("u1", "c")].reason_product_id == "b"
    assert rows[("u2", "e")].lexical_score == pytest.approx(0.5)
    assert set(rows) == {("u1", "c"), ("u1", "d"), ("u2", "e")}
    latest_only = pool(RankerConfig(**base, lexical_recent=1))
    assert latest_only[("u1", "d")].lexical_score == pytest.approx(0.5)  # a only (u1's latest)
    assert ("u1", "c") not in latest_only
    assert pool(RankerConfig(**base, lexical_neighbours=0)) == {}
    assert pool(RankerConfig(**base), with_lexical=False) == {}


def test_co_interaction_neighbours_are_cosines_of_user_sets(spark) -> None:
    history = spark.createDataFrame(
        [(u, p, 1) for u, ps in (("u1", "ab"), ("u2", "ab"), ("u3", "ac"), ("u4", "a")) for p in ps],
        "user_id string, product_id string, h_rank int",
    )
    got = {(r.product_id, r.other_id): r.co_cosine for r in item_neighbours(history, 30, 5).collect()}
    # a: 4 users, b: 2 (both with a), c: 1 (with a)
    assert got == pytest.approx(
        {("a", "b"): 2 / math.sqrt(8), ("b", "a"): 2 / math.sqrt(8), ("a", "c"): 1 / 2, ("c", "a"): 1 / 2}
    )
    assert item_neighbours(history, 30, 1).filter(F.col("product_id") == "a").first().other_id == "b"


def test_co_interaction_neighbours_match_counting_every_ordered_pair(spark) -> None:
    # Random histories (seeded) against a plain count of every ordered pair of each user's kept
    # products: the halved, indexed self-join gives the same cosines, caps and tie order.
    rng = np.random.default_rng(7)
    products = [f"p{k:02d}" for k in range(12)]
    rows = []
    for u in range(40):
        picked = rng.choice(products, size=int(rng.integers(1, 9)), replace=False)
        rows += [(f"u{u:02d}", str(p), rank) for rank, p in enumerate(picked, start=1)]
    history = spark.createDataFrame(rows, "user_id string, product_id string, h_rank int")
    per_user, top_m = 5, 3
    kept: dict[str, set[str]] = {}
    for user, product, rank in rows:
        if rank <= per_user:
            kept.setdefault(user, set()).add(product)
    n = {p: sum(p in ps for ps in kept.values()) for p in products}
    co: dict[tuple[str, str], int] = {}
    for ps in kept.values():
        for a in ps:
            for b in ps - {a}:
                co[(a, b)] = co.get((a, b), 0) + 1
    expected = []
    for a in products:
        mine = sorted(((-c / math.sqrt(n[a] * n[b]), b) for (x, b), c in co.items() if x == a))
        expected += [(a, b, -neg) for neg, b in mine[:top_m]]
    want = spark.createDataFrame(expected, "product_id string, other_id string, co_cosine double")
    got = item_neighbours(history, per_user, top_m)
    assert_approx_df_equality(
        got.orderBy("product_id", "other_id"), want.orderBy("product_id", "other_id"), 1e-12, ignore_nullable=True
    )


def test_source_recall_counts_labels_each_source_holds(spark) -> None:
    labels = spark.createDataFrame(
        [("u1", "c"), ("u1", "z"), ("u2", "e"), ("u9", "a")], "user_id string, product_id string"
    )
    recall = source_recall(_pool(spark), labels)
    # u9 has no pool: not counted; of 3 labels, c (als + content) and e (cold) are in the pool
    assert recall["pool"] == pytest.approx(2 / 3, abs=1e-4)
    assert recall["als"] == pytest.approx(1 / 3, abs=1e-4) and recall["cold"] == pytest.approx(1 / 3, abs=1e-4)
    assert recall["popular"] == 0.0


def test_pair_features_are_what_they_say(spark) -> None:
    vectors = spark.createDataFrame(
        [
            ("a", [1.0, 0.0]),
            ("b", [0.0, 1.0]),
            ("c", [0.6, 0.8]),
            ("d", [1.0, 0.0]),
        ],
        "product_id string, vec array<float>",
    )
    feats = pair_features(
        _pool(spark),
        history=_history(spark),
        usable_events=_events(spark),
        reference=REF,
        products=_products(spark),
        vectors=vectors,
    )
    assert feats.columns == ["user_id", "product_id", "reason_product_id", *FEATURES]
    rows = {(r.user_id, r.product_id): r for r in feats.collect()}
    u1c, u1b, u2e = rows[("u1", "c")], rows[("u1", "b")], rows[("u2", "e")]
    assert u1c.n_sources == 2 and u1c.als_rank == 1 and u1c.content_rank == 1
    assert math.isnan(u1c.cold_score) and math.isnan(u1c.hist_weight)
    # u1's most recent and most weighted product is a (bought): cos(c, a) = 0.6
    assert u1c.sim_last == pytest.approx(0.6) and u1c.sim_top == pytest.approx(0.6)
    assert u1b.hist_weight == 1.0 and u1b.hist_events == 2 and u1b.hist_days_since == pytest.approx(5.0)
    # category x: u1's whole weight (a and b)
    assert u1b.cat_share == pytest.approx(1.0)
    assert u1c.cat_share == pytest.approx(0.0) or math.isnan(u1c.cat_share)
    # e: cold (no events), no category, no vector
    assert u2e.item_users == 0 and math.isnan(u2e.item_age_days) and math.isnan(u2e.sim_last)
    assert u2e.user_items == 2 and u2e.user_events == 2 and u2e.user_days_since_last == pytest.approx(2.0)
    a = rows[("u2", "a")]
    assert a.item_users == 2 and a.item_pop_all == 4.0 and a.item_pop_7d == 3.0


def test_anchor_similarity_broadcast_and_join_paths_agree(spark) -> None:
    rng = np.random.default_rng(9)
    vecs = rng.normal(size=(12, 4))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vectors = spark.createDataFrame(
        [(f"p{i}", vecs[i].astype(np.float32).tolist()) for i in range(10)],  # p10, p11: no vector
        "product_id string, vec array<float>",
    )
    history = spark.createDataFrame(
        [
            ("u1", "p1", 1, dt.datetime(2026, 1, 9)),
            ("u1", "p2", 2, dt.datetime(2026, 1, 5)),
            ("u2", "p11", 1, dt.datetime(2026, 1, 8)),  # u2's anchors have no vector
        ],
        "user_id string, product_id string, h_rank int, last_ts timestamp",
    )
    pool = spark.createDataFrame(
        [(u, f"p{i}") for u in ("u1", "u2") for i in (0, 3, 5, 10)], "user_id string, product_id string"
    )

    def sims(anchors: AnchorVectors):
        rows = anchors.items(pool).join(anchors.users(_anchors(history)), "user_id", "left")
        return anchors.similarity(rows)  # the row numbers and anchors dropped again

    fast = sims(AnchorVectors.of(vectors))
    joined = sims(AnchorVectors.of(vectors, broadcast_floats=0)).select(*fast.columns)
    assert AnchorVectors.of(vectors).matrix is not None and AnchorVectors.of(vectors, 0).matrix is None
    order = ["user_id", "product_id"]
    assert_approx_df_equality(
        fast.fillna(-9.0).orderBy(order), joined.fillna(-9.0).orderBy(order), 1e-6, ignore_nullable=True
    )
    got = {(r.user_id, r.product_id): r for r in fast.collect()}
    assert len(got) == 8 and set(fast.columns) == {"user_id", "product_id", "sim_last", "sim_top"}  # every row kept

    def missing(v: float | None) -> bool:
        return v is None or math.isnan(v)

    assert missing(got[("u1", "p10")].sim_last) and missing(got[("u1", "p10")].sim_top)  # the candidate has no vector
    assert got[("u1", "p3")].sim_last == pytest.approx(float(vecs[3] @ vecs[1]), abs=1e-6)
    assert got[("u1", "p3")].sim_top == pytest.approx(float(vecs[3] @ vecs[1]), abs=1e-6)
    assert missing(got[("u2", "p0")].sim_last) and missing(got[("u2", "p0")].sim_top)  # anchors without a vector


def _synthetic(spark, n_users: int = 60, per_user: int = 30, seed: int = 5):
    """Pairs whose label is 1 exactly when ``als_score`` > 0.7 (plus noise features). The ALS scores
    come from a stream of their own, so adding a feature changes the noise, never the signal."""
    rng = np.random.default_rng(seed)
    als = np.random.default_rng([seed, 1]).random((n_users, per_user))
    col = list(FEATURES).index("als_score")
    rows = []
    for u in range(n_users):
        for j in range(per_user):
            x = rng.random(len(FEATURES))
            x[col] = als[u, j]
            rows.append((f"u{u}", f"p{j}", None, *[float(v) for v in x]))
    schema = "user_id string, product_id string, reason_product_id string, " + ", ".join(
        f"{f} double" for f in FEATURES
    )
    feats = spark.createDataFrame(rows, schema)
    labels = feats.filter(F.col("als_score") > 0.7).select("user_id", "product_id")
    index = feats.select("user_id").distinct().withColumn("user_idx", F.expr("int(substring(user_id, 2))"))
    return feats, labels, index


def test_training_rows_keep_positive_users_and_sample_negatives(spark) -> None:
    feats, labels, index = _synthetic(spark, n_users=10, per_user=20)
    # one user without any positive in the pool
    labels = labels.filter(F.col("user_id") != "u3")
    rows = training_rows(feats, labels, index, RankerConfig(negatives=4)).collect()
    assert "u3" not in {r.user_id for r in rows}
    per_user: dict[str, list[float]] = {}
    for r in rows:
        per_user.setdefault(r.user_id, []).append(r.label)
        assert r.qid == int(r.user_id[1:])
    n_pos = {r.user_id: 0 for r in rows}
    for r in labels.collect():
        if r.user_id in n_pos:
            n_pos[r.user_id] += 1
    for user, labs in per_user.items():
        assert labs.count(1.0) == n_pos[user] and labs.count(0.0) <= 4


def test_ranker_learns_a_planted_signal_on_two_workers_and_round_trips(spark, cfg) -> None:
    feats, labels, index = _synthetic(spark)
    # Every tree sees every feature (colsample 1): with 0.8 some trees never see als_score and fit
    # the noise, which can blur the separation by chance.
    kc = RankerConfig(
        trees=30, max_depth=3, learning_rate=0.3, negatives=50, workers=2, subsample=1.0, colsample_bytree=1.0
    )
    rows = training_rows(feats, labels, index, kc).persist()
    ranker = fit_ranker(rows, kc, "test-1")
    assert ranker.importances["als_score"] == max(ranker.importances.values()) > 0.5
    scored = score_pool(ranker, feats).join(labels.withColumn("label", F.lit(1)), ["user_id", "product_id"], "left")
    pdf = scored.fillna(0, subset=["label"]).select("label", "score").toPandas()
    assert pdf[pdf.label == 1].score.min() > pdf[pdf.label == 0].score.max()  # a perfect separation
    assert current_ranker_version(cfg) is None
    save_ranker(cfg, ranker, {"note": "test"})
    assert current_ranker_version(cfg) == "test-1"
    loaded = load_ranker(cfg, "test-1")
    again = score_pool(loaded, feats).select("user_id", "product_id", F.col("score").alias("again"))
    diff = (
        score_pool(ranker, feats)
        .join(again, ["user_id", "product_id"])
        .select(F.max(F.abs(F.col("score") - F.col("again"))))
    )
    assert diff.first()[0] < 1e-6
    with pytest.raises(HybridrecError, match="drop_features names nope"):
        fit_ranker(rows, RankerConfig(drop_features=["nope"]), "test-2")


def test_cold_slots_lift_the_best_cold_candidates_into_the_last_places(spark) -> None:
    rows = [("u1", f"w{i}", 0.9 - 0.1 * i, False) for i in range(6)]  # warm: 0.9 .. 0.4
    rows += [("u1", "c1", 0.05, True), ("u1", "c2", 0.2, True), ("u1", "c3", 0.01, True)]
    rows += [("u2", "w0", 0.7, False), ("u2", "c9", 0.95, True)]  # u2: short list, cold already first
    ranked = spark.createDataFrame(rows, "user_id string, product_id string, score double, cold_item boolean")
    got = {(r.user_id, r.product_id): r.score for r in reserve_cold_slots(ranked, 2, 4).collect()}
    # 2 of 4 places: u1's 3rd best score is 0.7, c2 (better) then c1 land just above it, c3 stays
    assert got[("u1", "c2")] == pytest.approx(0.7 + 2 * COLD_STEP) and got[("u1", "c1")] == pytest.approx(
        0.7 + COLD_STEP
    )
    assert got[("u1", "c3")] == 0.01 and got[("u1", "w3")] == pytest.approx(0.6)
    top4 = sorted((s, p) for (u, p), s in got.items() if u == "u1")[::-1][:4]
    assert [p for _, p in top4] == ["w0", "w1", "c2", "c1"]
    assert got[("u2", "c9")] == 0.95 and got[("u2", "w0")] == 0.7
    assert reserve_cold_slots(ranked, 0, 4) is ranked
