"""The nightly transforms on hand-made DataFrames: the blend weight moves from content to ALS as
data grows, normalisation per user and source, purchased items and duplicate products dropped,
the category cap, deterministic ties, popular top-up below blended scores, similar-item blending,
the factor regression, and concurrent writes of one night never mixing rows."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from hybridrec.config import RecommendConfig
from hybridrec.errors import ConcurrentRunError, HybridrecError
from hybridrec.hybrid import blend, popular, similar
from hybridrec.hybrid.cold import fit_factor_regression
from hybridrec.hybrid.nightly import _replace_night
from hybridrec.tables import RECOMMENDATIONS, read_table, table_ref

pytestmark = pytest.mark.spark


def _scores(df) -> dict[tuple[str, str], float]:
    return {(r.user_id, r.product_id): r.score for r in df.collect()}


def test_blend_weight_follows_the_data_behind_user_and_item(spark) -> None:
    rc = RecommendConfig(user_shrinkage=5.0, item_shrinkage=10.0, cold_item_weight=0.5)
    als = spark.createDataFrame(
        [("u", "a", 2.0), ("u", "b", 1.0)], "user_id string, product_id string, als_score double"
    )
    content = spark.createDataFrame(
        [("u", "a", 0.2, "h"), ("u", "b", 0.9, "h"), ("u", "c", 0.5, "h")],
        "user_id string, product_id string, content_score double, reason_product_id string",
    )
    # Cold scores are predicted ALS scores: on the user's ALS scale (2.0 best, 1.0 worst) 1.5 is 0.5,
    # 0.5 below the worst clips to 0.
    cold = spark.createDataFrame(
        [("u", "c", 1.5), ("u", "d", 0.5)], "user_id string, product_id string, cold_score double"
    )
    users = spark.createDataFrame([("u", 5)], "user_id string, n_items long")
    items = spark.createDataFrame([("a", 10), ("b", 30)], "product_id string, n_users long")
    out = {r.product_id: r for r in blend.blend_candidates(als, content, cold, users, items, rc).collect()}
    a_u = 5 / 10
    # a: ALS best (1.0), content worst (0.0); b: ALS 0.0, content 1.0; c: cold 0.5, content 3/7;
    # d: cold 0 (below every ALS candidate), no content
    w_a, w_b, w_c = a_u * 10 / 20, a_u * 30 / 40, a_u * 0.5
    assert out["a"].score == pytest.approx(w_a * 1.0)
    assert out["b"].score == pytest.approx((1 - w_b) * 1.0)
    assert out["c"].score == pytest.approx(w_c * 0.5 + (1 - w_c) * (0.5 - 0.2) / 0.7)
    assert out["d"].score == pytest.approx(0.0)
    assert {k: v.source for k, v in out.items()} == {"a": "blend", "b": "blend", "c": "blend", "d": "als"}
    more = spark.createDataFrame([("u", 500)], "user_id string, n_items long")
    heavy = {r.product_id: r.score for r in blend.blend_candidates(als, content, cold, more, items, rc).collect()}
    assert heavy["a"] > out["a"].score  # more user data → more weight on ALS


def test_sources_and_reasons(spark) -> None:
    rc = RecommendConfig()
    als = spark.createDataFrame([("u", "w1", 1.0)], "user_id string, product_id string, als_score double")
    content = spark.createDataFrame(
        [("u", "w2", 0.9, "h1"), ("u", "h1", 0.95, "h1"), ("u", "c1", 0.8, "h1")],
        "user_id string, product_id string, content_score double, reason_product_id string",
    )
    cold = spark.createDataFrame([("u", "c2", 0.4)], "user_id string, product_id string, cold_score double")
    users = spark.createDataFrame([("u", 3)], "user_id string, n_items long")
    items = spark.createDataFrame([("w1", 4), ("w2", 4), ("h1", 2)], "product_id string, n_users long")
    products = spark.createDataFrame(
        [
            ("w1", "Warm One", "Shoes"),
            ("w2", "Warm Two", "Shoes"),
            ("h1", "Red Dress", "Dresses"),
            ("c1", "New Bag", "Bags"),
            ("c2", "New Hat", "Hats"),
        ],
        "product_id string, title string, category string",
    )
    history = spark.createDataFrame([("u", "h1", "cart")], "user_id string, product_id string, event string")
    blended = blend.blend_candidates(als, content, cold, users, items, rc)
    out = {r.product_id: (r.source, r.reason) for r in blend.explain(blended, products, history).collect()}
    assert out == {
        "w1": ("als", "liked by shoppers with similar taste"),
        "w2": ("content", "similar to Red Dress you added to your cart"),
        "h1": ("content", "still in your cart"),
        "c1": ("content", "new: similar to Red Dress you added to your cart"),
        "c2": ("als", "new in Hats"),
    }


def test_cap_and_rank_filters_purchases_caps_categories_and_breaks_ties_by_id(spark) -> None:
    cands = spark.createDataFrame(
        [
            ("u", "p1", 0.9),
            ("u", "p2", 0.9),
            ("u", "p3", 0.8),
            ("u", "p4", 0.7),
            ("u", "p5", 0.6),
            ("u", "p6", 0.5),
            ("u", "p1", 0.1),
            ("v", "p1", 0.3),
        ],
        "user_id string, product_id string, score double",
    )
    purchased = spark.createDataFrame([("u", "p3")], "user_id string, product_id string")
    cats = spark.createDataFrame(
        [("p1", "A"), ("p2", "A"), ("p3", "B"), ("p4", "A"), ("p5", None), ("p6", None)],
        "product_id string, category string",
    )
    out = blend.cap_and_rank(cands, purchased, cats, top_n=4, max_per_category=2)
    got = [(r.user_id, r.rank, r.product_id) for r in out.orderBy("user_id", "rank").collect()]
    # p3 bought, p4 third of category A, p1 once; products without a category are never capped.
    assert got == [("u", 1, "p1"), ("u", 2, "p2"), ("u", 3, "p5"), ("u", 4, "p6"), ("v", 1, "p1")]


def test_popular_fill_sits_below_blended_scores_and_prefers_touched_categories(spark) -> None:
    pop = spark.createDataFrame(
        [("a1", "A", 10.0), ("a2", "A", 5.0), ("b1", "B", 50.0)], "product_id string, category string, pop double"
    )
    touched = spark.createDataFrame([("u", "A", 3.0)], "user_id string, category string, cat_weight double")
    users = spark.createDataFrame([("u",)], "user_id string")
    fill = popular.popular_fill(users, touched, popular.category_popular(pop, 10), popular.overall_popular(pop, 2))
    rows = sorted(fill.collect(), key=lambda r: -r.score)
    assert [(r.product_id, r.reason) for r in rows] == [
        ("a1", "popular in A"),
        ("a2", "popular in A"),
        ("b1", "popular right now"),
        ("a1", "popular right now"),
    ]
    assert all(r.score < 0 and r.source == "popular" for r in rows)


def test_similar_items_blend_collab_only_between_warm_products(spark) -> None:
    rc = RecommendConfig(similar_top_m=2, similar_collab_weight=0.5)
    content = spark.createDataFrame(
        [(0, 1, 0.9), (0, 2, 0.8), (3, 1, 0.7), (3, 2, 0.6)], "item_idx int, other_idx int, sim float"
    )
    collab = spark.createDataFrame([(0, 2, 0.99), (0, 4, 0.5)], "item_idx int, other_idx int, sim float")
    evidence = spark.createDataFrame([(0, 1.0), (2, 1.0), (4, 1.0)], "item_idx int, b double")
    out = {
        (r.item_idx, r.other_idx): (r.score, r.source)
        for r in similar.similar_items(content, collab, evidence, rc).collect()
    }
    assert out[(0, 2)] == (pytest.approx(0.5 * 0.8 + 0.5 * 0.99), "both")
    assert out[(0, 1)] == (pytest.approx(0.9), "content")  # item 1 is cold: beta 0
    assert (3, 1) in out and (3, 2) in out and len(out) == 4  # item 3 (cold) keeps its content list


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def test_photo_and_plain_products_are_compared_on_their_text(spark) -> None:
    """Products 0-2 have a photo, 3-5 do not (their fused vectors' photo half is imputed: here far
    from 0's). Across the sides the text vectors decide: 3, whose title reads like 0's, is 0's
    nearest neighbour; on one side the fused vectors decide, as ``nearest``."""
    fused = {
        0: [1, 0, 0, 0],
        1: [0.9, 0.1, 0, 0],
        2: [0, 1, 0, 0],
        3: [0, 0, 1, 0],
        4: [0, 0, 0.9, 0.1],
        5: [0, 0, 0, 1],
    }
    text = {0: [1, 0, 0], 1: [0, 1, 0], 2: [0, 0, 1], 3: [2, 0.1, 0], 4: [0, 1, 1], 5: None}
    rows = [
        (i, [float(v) for v in fused[i]], None if text[i] is None else [float(v) for v in text[i]], i < 3)
        for i in range(6)
    ]
    vectors = spark.createDataFrame(rows, "id int, features array<float>, text array<float>, photo boolean")
    shared = {(r.item_idx, r.other_idx): r.sim for r in similar.nearest_on_shared(vectors, 2, 6, 4, 4).collect()}
    plain = {
        (r.item_idx, r.other_idx): r.sim
        for r in similar.nearest(vectors.select("id", "features"), 2, 6, 4, 4).collect()
    }
    assert (0, 3) in shared and (0, 3) not in plain
    assert shared[(0, 3)] == pytest.approx(float(_unit(text[0]) @ _unit(text[3])), abs=1e-5)
    assert shared[(0, 1)] == pytest.approx(plain[(0, 1)], abs=1e-6)  # same side: the fused cosine
    assert shared[(3, 0)] == pytest.approx(shared[(0, 3)], abs=1e-6)  # symmetric
    assert not any(pair[0] == 5 and pair[1] < 3 for pair in shared)  # no title: no photo neighbours
    assert sum(1 for pair in shared if pair[0] == 0) == 2
    one_side = vectors.filter(F.col("photo"))
    got = similar.nearest_on_shared(one_side, 2, 3, 4, 4).orderBy("item_idx", "other_idx")
    want = similar.nearest(one_side.select("id", "features"), 2, 3, 4, 4).orderBy("item_idx", "other_idx")
    assert_df_equality(got.select("item_idx", "other_idx", "sim"), want.select("item_idx", "other_idx", "sim"))


def test_factor_regression_recovers_a_linear_map(spark) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    y = np.hstack([x, np.ones((300, 1), np.float32)]) @ w
    df = spark.createDataFrame(
        [(x[i].tolist(), y[i].tolist()) for i in range(300)], "vec array<float>, factors array<float>"
    )
    model = fit_factor_regression(df.repartition(3), l2=1e-6)
    assert model.rows == 300 and model.r2 == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(model.predict(x[:4]), y[:4], atol=1e-2)


def test_two_writers_of_one_night_never_mix_rows(spark, cfg) -> None:
    night = dt.date(2026, 1, 1)

    def rows(tag: str):
        now = dt.datetime(2026, 1, 1, 3)
        return spark.createDataFrame(
            [(night, f"u{i}", 1, f"p-{tag}", 1.0, "als", "r", None, None, None, None, tag, now) for i in range(50)],
            RECOMMENDATIONS.schema,
        )

    ref = table_ref(cfg, RECOMMENDATIONS)
    _replace_night(rows("seed"), cfg, RECOMMENDATIONS, night)
    errors: list[Exception] = []

    def write(tag: str) -> None:
        try:
            _replace_night(rows(tag), cfg, RECOMMENDATIONS, night)
        except HybridrecError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = read_table(spark, ref).filter(F.col("run_date") == F.lit(night))
    tags = {r.run_id for r in final.select("run_id").distinct().collect()}
    assert len(tags) == 1 and tags <= {"one", "two"} and final.count() == 50
    # The loser learns that another run won and the table holds its complete night.
    assert all(isinstance(e, ConcurrentRunError) and "won" in str(e) for e in errors)
