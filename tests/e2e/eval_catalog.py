"""The offline evaluation's simulator setup, shared by tests/e2e/test_evaluation.py and
bench/bench_lightfm.py so that both judge the systems on exactly the same data.

A generated catalog (12 categories) with simulated users goes through the real ingest; the content
vectors are the catalog's own category and attribute one-hots (what a perfect content model would
learn), written as model version ``VERSION``, so the evaluation checks the recommender and the
protocol, not the CNN/LSTM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tiny_catalog import ingest_job, write_tiny_config

from hybridrec.config import Config, load_config
from hybridrec.demo.raw_files import write_demo_data
from hybridrec.job import run_job
from hybridrec.models.training import CURRENT
from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, read_table, table_ref, write_table

VERSION = "oracle-onehot"
DEFAULT_SEED = 42
DEFAULT_USERS = 1500
DEFAULT_PRODUCTS = 1500


def eval_sections(
    seed: int = DEFAULT_SEED, n_users: int = DEFAULT_USERS, n_products: int = DEFAULT_PRODUCTS
) -> dict[str, dict[str, Any]]:
    """The config sections of the evaluation test (``write_tiny_config`` overrides)."""
    return {
        "demo": {
            "n_products": n_products,
            "n_categories": 12,
            "n_users": n_users,
            "image_size": 16,
            "seed": seed,
            "late_share": 0.2,
        },
        "als": {"rank": 16, "max_iter": 8, "evaluate": False, "top_k": 50},
        "recommend": {"content_candidates": 50, "cold_candidates": 20, "top_n": 20},
        "evaluate": {"bootstrap_replicates": 100, "gallery_users": 2, "gallery_cold_products": 2, "screenshot": False},
    }


def oracle_embeddings(spark, cfg: Config) -> None:
    """gold.product_embeddings rows of VERSION: unit vectors of category + attribute one-hots."""
    products = read_table(spark, table_ref(cfg, PRODUCTS)).select("product_id", "category", "attributes").toPandas()
    keys = ["category"] + sorted({k for a in products["attributes"] for k in (a or {})})
    columns = []
    for key in keys:
        values = (
            products["category"]
            if key == "category"
            else products["attributes"].map(lambda a, key=key: (a or {}).get(key))
        )
        weight = 2.0 if key == "category" else 1.0
        columns.append(weight * pd.get_dummies(values.fillna("?"), dtype=np.float32).to_numpy())
    x = np.hstack(columns)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = pd.DataFrame(
        {
            "product_id": products["product_id"],
            "model_version": VERSION,
            "image_emb": None,
            "text_emb": list(x.astype(np.float32)),
            "fused_emb": list(x.astype(np.float32)),
            "predicted_category": products["category"],
            "predicted_prob": 1.0,
            "predicted_by": "text",
            "created_at": pd.Timestamp("2026-01-01"),
        }
    )
    df = spark.createDataFrame(rows, PRODUCT_EMBEDDINGS.schema)
    write_table(df, table_ref(cfg, PRODUCT_EMBEDDINGS), mode="overwrite")
    models = Path(cfg.paths.models)
    models.mkdir(parents=True, exist_ok=True)
    (models / CURRENT).write_text(json.dumps({"version": VERSION}), encoding="utf-8")


def write_eval_config(
    tmp: Path, seed: int = DEFAULT_SEED, n_users: int = DEFAULT_USERS, n_products: int = DEFAULT_PRODUCTS
) -> Path:
    """The evaluation's tiny config under ``tmp`` (every path there)."""
    return write_tiny_config(tmp, **eval_sections(seed, n_users, n_products))


def build_eval_catalog(spark, conf: Path) -> Config:
    """Demo data of ``conf``, the real ingest and the oracle content vectors; returns the config."""
    cfg = load_config(conf)
    write_demo_data(cfg)
    assert run_job("ingest", ingest_job.main, ["--config", str(conf)], ingest_job.job_parser()) == 0
    oracle_embeddings(spark, cfg)
    return cfg
