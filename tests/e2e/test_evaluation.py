"""The offline evaluation on the simulator (fixed seed): behaviour checks, not tuned constants.

A generated catalog (1,500 products, 12 categories) with 1,500 simulated users goes through the
real ingest; the content vectors are the catalog's own category and attribute one-hots (what a
perfect content model would learn), written as a model version, so this checks the recommender
and the protocol, not the CNN/LSTM (the demo and the README figures use trained models). Then
``run_evaluation`` backtests popularity, ALS, content and hybrid on the last 14 days.

What must hold on such data: ALS beats popularity (users follow their own categories and
attributes: the paired interval of ALS − popularity above 0); the hybrid beats ALS on cold items
(ALS cannot rank a product without events; the hybrid reaches them through content and the factor
regression: paired interval above 0); on warm items the hybrid is no worse than ALS within ALS's
interval (its mean recall not below ALS's lower bound; the paired difference is reported, and with
the default cold-item weight it is a small loss: cold products take a few slots from warm ones).
And the bookkeeping: every judged user in every system and segment, intervals around their means,
the report written with its images.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiny_catalog import write_tiny_config
from hybridrec.catalog.demo_data import write_demo_data
from hybridrec.config import load_config
from hybridrec.evaluation.protocol import SEGMENTS
from hybridrec.evaluation.run import run_evaluation
from hybridrec.evaluation.systems import SYSTEMS
from hybridrec.job import run_job
from hybridrec.models.training import CURRENT
from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, read_table, table_ref, write_table

import ingest as ingest_job  # noqa: E402  (jobs/ is on sys.path through tiny_catalog)

pytestmark = pytest.mark.e2e
VERSION = "oracle-onehot"


def oracle_embeddings(spark, cfg) -> None:
    """gold.product_embeddings rows of VERSION: unit vectors of category + attribute one-hots."""
    products = read_table(spark, table_ref(cfg, PRODUCTS)).select("product_id", "category", "attributes").toPandas()
    keys = ["category"] + sorted({k for a in products["attributes"] for k in (a or {})})
    columns = []
    for key in keys:
        values = products["category"] if key == "category" else products["attributes"].map(lambda a: (a or {}).get(key))
        weight = 2.0 if key == "category" else 1.0
        columns.append(weight * pd.get_dummies(values.fillna("?"), dtype=np.float32).to_numpy())
    x = np.hstack(columns)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = pd.DataFrame({"product_id": products["product_id"], "model_version": VERSION,
                         "image_emb": None, "text_emb": list(x.astype(np.float32)), "fused_emb": list(x.astype(np.float32)),
                         "predicted_category": products["category"], "predicted_prob": 1.0, "predicted_by": "text",
                         "created_at": pd.Timestamp("2026-01-01")})
    df = spark.createDataFrame(rows, PRODUCT_EMBEDDINGS.schema)
    write_table(df, table_ref(cfg, PRODUCT_EMBEDDINGS), mode="overwrite")
    models = Path(cfg.paths.models)
    models.mkdir(parents=True, exist_ok=True)
    (models / CURRENT).write_text(json.dumps({"version": VERSION}), encoding="utf-8")


@pytest.fixture(scope="module")
def evaluated(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluation")
    conf = write_tiny_config(
        tmp,
        demo={"n_products": 1500, "n_categories": 12, "n_users": 1500, "image_size": 16, "seed": 42, "late_share": 0.2},
        als={"rank": 16, "max_iter": 8, "evaluate": False, "top_k": 50},
        recommend={"content_candidates": 50, "cold_candidates": 20, "top_n": 20},
        evaluate={"bootstrap_replicates": 100, "gallery_users": 2, "gallery_cold_products": 2, "screenshot": False},
    )
    cfg = load_config(conf)
    write_demo_data(cfg)
    assert run_job("ingest", ingest_job.main, ["--config", str(conf)], ingest_job.job_parser()) == 0
    oracle_embeddings(spark, cfg)
    result = run_evaluation(spark, cfg)
    report = json.loads((Path(cfg.paths.report) / "metrics.json").read_text(encoding="utf-8"))
    return cfg, result, report


def _rows(report: dict, key: str) -> pd.DataFrame:
    return pd.DataFrame(report[key])


def test_every_system_and_segment_is_scored_with_intervals(evaluated) -> None:
    cfg, result, report = evaluated
    head = _rows(report, "headline")
    assert set(head["segment"]) == set(SEGMENTS) and set(head["system"]) == set(SYSTEMS)
    # The same users in every system of a segment: a system without a list scores 0, not absent.
    users = head[head.metric == "recall"].groupby("segment")["n_users"].nunique()
    assert (users == 1).all()
    assert (head["lo"] <= head["mean"] + 1e-12).all() and (head["mean"] <= head["hi"] + 1e-12).all()
    c = result.counts
    assert c["split_judged_users"] == int(head[(head.segment == "all_users") & (head.metric == "recall")]["n_users"].iloc[0])
    assert c["split_cold_items_users"] > 20, "the simulator's late products give a cold-item segment"
    assert result.cutoff == dt.datetime(2025, 12, 18)  # 14 days before the simulated window's end
    assert (Path(cfg.paths.report) / "index.html").stat().st_size > 10_000


def _paired(report: dict, a: str, b: str, segment: str, metric: str = "recall") -> dict:
    rows = [r for r in report["paired"] if r["system_a"] == a and r["system_b"] == b
            and r["segment"] == segment and r["metric"] == metric]
    assert len(rows) == 1
    return rows[0]


def test_als_beats_popularity(evaluated) -> None:
    _, _, report = evaluated
    assert _paired(report, "als", "popularity", "all_users")["lo"] > 0


def test_hybrid_beats_als_on_cold_items(evaluated) -> None:
    _, _, report = evaluated
    assert _paired(report, "hybrid", "als", "cold_items")["lo"] > 0


def _headline(report: dict, system: str, segment: str, metric: str = "recall") -> dict:
    rows = [r for r in report["headline"] if r["system"] == system and r["segment"] == segment and r["metric"] == metric]
    assert len(rows) == 1
    return rows[0]


def test_hybrid_no_worse_than_als_on_warm_items(evaluated) -> None:
    _, _, report = evaluated
    assert _headline(report, "hybrid", "warm_items")["mean"] >= _headline(report, "als", "warm_items")["lo"]
