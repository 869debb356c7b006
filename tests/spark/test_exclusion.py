"""What a user already has never comes back (``recommend.exclude``), in every list the project
builds: ALS candidates (gold.als_candidates, removed before the top-K is cut), content candidates,
the nightly lists (popular top-up included) and the evaluation's relevant sets.

Two log shapes a new user brings: a rating log (every event is ``rating``: no purchase at all, so
``purchased`` must not mean "nothing purchased") and a purchase-only log (Online Retail's shape).
``none`` lets repeats back in (the setting has an effect)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conftest import make_config
from hybridrec.collab.als import fit_als
from hybridrec.collab.confidence import data_end
from hybridrec.evaluation.protocol import temporal_split
from hybridrec.hybrid import popular
from hybridrec.hybrid.scoring import NightInputs, Progress, hybrid_lists, parquet_stage, score_users

pytestmark = pytest.mark.spark

CUTOFF = dt.datetime(2024, 3, 1)
N_USERS, N_PRODUCTS, TOP_K = 50, 60, 8


def _log(event: str, seed: int = 7) -> pd.DataFrame:
    """Zipf-skewed (user, product) events over 60 days before CUTOFF, repeats included; heavy users
    see most of the popular products, so a list that kept seen items would be full of them."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, N_PRODUCTS + 1) ** 0.9
    pop /= pop.sum()
    rows = []
    for u in range(N_USERS):
        n = int(rng.integers(2, 40))
        for p in rng.choice(N_PRODUCTS, size=n, replace=True, p=pop):
            ts = CUTOFF - dt.timedelta(days=float(rng.uniform(0.5, 60)))
            rows.append((f"u{u}", f"p{p}", ts, event, float(rng.integers(1, 6)) if event == "rating" else 1.0))
    return pd.DataFrame(rows, columns=["user_id", "product_id", "ts", "event", "weight"])


def _inputs(spark, events: pd.DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    interactions = spark.createDataFrame(
        events, "user_id string, product_id string, ts timestamp, event string, weight double"
    )
    products = spark.createDataFrame(
        [(f"p{i}", f"title {i}", None, f"c{i % 4}", None, None) for i in range(N_PRODUCTS)],
        "product_id string, title string, description string, category string, image_path string, listed_at timestamp",
    )
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(N_PRODUCTS, 8))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vectors = spark.createDataFrame(
        [(f"p{i}", [float(x) for x in vecs[i]]) for i in range(N_PRODUCTS)], "product_id string, vec array<float>"
    )
    return interactions, products, vectors


def _night(spark, tmp: Path, event: str, exclude: str) -> dict[str, object]:
    cfg = make_config(
        tmp,
        als={
            "rank": 8,
            "max_iter": 3,
            "top_k": TOP_K,
            "evaluate": False,
            "topk_method": "blocked",
            "checkpoint_interval": 0,
        },
        recommend={
            "exclude": exclude,
            "top_n": TOP_K,
            "als_candidates": TOP_K,
            "content_candidates": TOP_K,
            "cold_candidates": 4,
            "max_per_category": None,
            "embed_new_products": False,
        },
    )
    interactions, products, vectors = _inputs(spark, _log(event))
    fit = fit_als(spark, cfg, interactions, CUTOFF, products=products)
    inputs = NightInputs.from_fit(fit, products.drop("listed_at"), interactions, vectors, "v")
    stage = parquet_stage(tmp / "stage")
    scores = score_users(spark, cfg, inputs, CUTOFF, stage, Progress({}), content_users="all")
    final = hybrid_lists(scores, inputs, cfg, CUTOFF, stage).final
    seen = interactions.select("user_id", "product_id").distinct()
    split_cfg = make_config(tmp, recommend={"exclude": exclude}, evaluate={"test_days": 20.0})
    split = temporal_split(split_cfg, products, interactions, CUTOFF - dt.timedelta(days=20))
    return {
        "cfg": cfg,
        "seen": seen,
        "als": stage(fit.candidates, "als"),
        "content": scores.content,
        "final": stage(final, "final"),
        "split": split,
        "interactions": interactions,
        "scores": scores,
    }


def _overlap(df: DataFrame, seen: DataFrame) -> int:
    return df.select("user_id", "product_id").join(seen, ["user_id", "product_id"], "left_semi").count()


@pytest.mark.parametrize(
    "event, exclude", [("rating", "interacted"), ("rating", "purchased"), ("purchase", "purchased")]
)
def test_no_seen_item_in_any_list(spark, tmp_path: Path, event: str, exclude: str) -> None:
    """A rating log under ``purchased`` falls back to ``interacted`` (it has no purchase events);
    a purchase log under ``purchased`` excludes every purchase."""
    night = _night(spark, tmp_path, event, exclude)
    seen = night["seen"]
    assert night["scores"].exclude == ("interacted" if event == "rating" else "purchased")
    for name in ("als", "content", "final"):
        assert night[name].count() > 0, name
        assert _overlap(night[name], seen) == 0, f"{name} holds already-seen products"
    # Seen products are removed before the ALS depth is cut: every user with enough unseen
    # products still gets TOP_K ALS candidates.
    per_user = night["als"].groupBy("user_id").count()
    unseen = seen.groupBy("user_id").count().select("user_id", (F.lit(N_PRODUCTS) - F.col("count")).alias("unseen"))
    short = per_user.join(unseen, "user_id").filter((F.col("count") < TOP_K) & (F.col("unseen") >= TOP_K)).count()
    assert short == 0
    # The evaluation judges only what a list may hold.
    before = night["interactions"].filter(F.col("ts") < F.lit(night["split"].cutoff)).select("user_id", "product_id")
    assert _overlap(night["split"].relevant, before.distinct()) == 0


def test_exclude_none_lets_repeats_back(spark, tmp_path: Path) -> None:
    night = _night(spark, tmp_path, "purchase", "none")
    assert _overlap(night["als"], night["seen"]) > 0
    assert _overlap(night["final"], night["seen"]) > 0
    before = night["interactions"].filter(F.col("ts") < F.lit(night["split"].cutoff)).select("user_id", "product_id")
    assert _overlap(night["split"].relevant, before.distinct()) > 0


def test_windows_end_where_a_historical_log_ends(spark) -> None:
    """Scored a year after its last event, a log keeps its popularity window and its decay anchor:
    both end at the last event, not at the cutoff."""
    interactions, products, _ = _inputs(spark, _log("purchase"))
    late = CUTOFF + dt.timedelta(days=365)
    end = data_end(interactions, late)
    assert CUTOFF - dt.timedelta(days=1) < end < CUTOFF
    assert data_end(interactions, CUTOFF - dt.timedelta(days=30)) < CUTOFF - dt.timedelta(days=30)
    pop_late = popular.popularity(interactions, end, 14.0, products).orderBy("product_id").collect()
    pop_now = (
        popular.popularity(interactions, data_end(interactions, CUTOFF), 14.0, products).orderBy("product_id").collect()
    )
    assert pop_late and pop_late == pop_now
    everything = popular.popularity(interactions, end, None, products)
    assert everything.count() == interactions.select("product_id").distinct().count()


def test_short_lists_get_back_what_the_rule_allows_before_best_sellers(spark) -> None:
    """With repeats allowed, a user with one product gets it first ("buy it again"), then popular
    products; under ``interacted`` the same user gets popular products only."""
    from hybridrec.hybrid.history import repeat_candidates

    history = spark.createDataFrame(
        [
            ("u1", "p1", 2.0, "purchase", False),
            ("u1", "p2", 1.0, "purchase", True),
            ("u2", "p3", 1.0, "purchase", False),
        ],
        "user_id string, product_id string, weight double, event string, excluded boolean",
    )
    short = spark.createDataFrame([("u1",)], "user_id string")
    rows = repeat_candidates(short, history).collect()
    assert [(r.product_id, r.source, r.reason) for r in rows] == [("p1", "repeat", "buy it again")]
    assert -0.5 < rows[0].score <= -0.25
